import { Body, Controller, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import {
  AuditorRequestSchema,
  AuditorResultRequestSchema,
  BuilderResultRequestSchema,
  ClaimRequestSchema,
  type ClaimResponse,
  HeartbeatRequestSchema,
  type HeartbeatResponse,
  type PhaseWriteResponse,
  UpdateStatusRequestSchema,
} from '@app/contracts';
import { parseBody, parseId } from '../http/validation.js';
import { IdempotencyService } from '../services/idempotency.service.js';
import { ClaimService } from '../services/claim.service.js';
import { LeaseService } from '../services/lease.service.js';
import { PhaseReportService } from '../services/phase-report.service.js';

/** The Autopack-compatible reports take `null` in optional fields as absent (Python clients send `None`). */
const COMPAT = { nullAsAbsent: true };

/** Executor routes: claim, heartbeat and the fenced reports. */
@Controller()
export class PhasesController {
  constructor(
    private readonly claims: ClaimService,
    private readonly leases: LeaseService,
    private readonly phases: PhaseReportService,
    private readonly idempotency: IdempotencyService,
  ) {}

  /** A retried claim with the same Idempotency-Key gets the same lease instead of a second one. */
  @Post('phases/claim')
  @HttpCode(200)
  async claim(@Body() body: unknown, @Headers('idempotency-key') key: string | undefined, @Res({ passthrough: true }) res: Response): Promise<ClaimResponse | undefined> {
    return (await this.idempotency.respond(res, 'POST /phases/claim', key, body, async (record) => {
      const claimed = await this.claims.claim(parseBody(ClaimRequestSchema, body), record);
      return claimed ? { status: 200, body: claimed } : { status: 204, body: null };
    })) as ClaimResponse | undefined;
  }

  @Post('runs/:run_id/phases/:phase_id/heartbeat')
  @HttpCode(200)
  heartbeat(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown): Promise<HeartbeatResponse> {
    return this.leases.heartbeat(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseBody(HeartbeatRequestSchema, body).lease_token);
  }

  @Post('runs/:run_id/phases/:phase_id/builder_result')
  @HttpCode(200)
  builderResult(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown): Promise<PhaseWriteResponse> {
    return this.phases.builderResult(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseBody(BuilderResultRequestSchema, body, COMPAT));
  }

  @Post('runs/:run_id/phases/:phase_id/auditor_request')
  @HttpCode(200)
  auditorRequest(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown): Promise<PhaseWriteResponse> {
    return this.phases.auditorRequest(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseBody(AuditorRequestSchema, body, COMPAT));
  }

  @Post('runs/:run_id/phases/:phase_id/auditor_result')
  @HttpCode(200)
  auditorResult(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown): Promise<PhaseWriteResponse> {
    return this.phases.auditorResult(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseBody(AuditorResultRequestSchema, body, COMPAT));
  }

  @Post('runs/:run_id/phases/:phase_id/update_status')
  @HttpCode(200)
  updateStatus(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown): Promise<PhaseWriteResponse> {
    return this.phases.updateStatus(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseBody(UpdateStatusRequestSchema, body, COMPAT));
  }

  @Post('runs/:run_id/phases/:phase_id/retry')
  @HttpCode(200)
  retry(@Param('run_id') runId: string, @Param('phase_id') phaseId: string): Promise<PhaseWriteResponse> {
    return this.phases.retry(parseId(runId, 'run'), parseId(phaseId, 'phase'));
  }
}
