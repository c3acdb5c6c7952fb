import { Body, Controller, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import {
  AuditorRequestSchema,
  AuditorResultRequestSchema,
  BuilderResultRequestSchema,
  ClaimRequestSchema,
  type ClaimResponse,
  ClaimResponseSchema,
  HeartbeatRequestSchema,
  type HeartbeatResponse,
  HeartbeatResponseSchema,
  PhasePathParamsSchema,
  type PhaseWriteResponse,
  PhaseWriteResponseSchema,
  UpdateStatusRequestSchema,
} from '@app/contracts';
import { ApiRoute, type ApiRouteSpec, named } from '../http/api-route.js';
import { parseId, parseRouteBody } from '../http/validation.js';
import { IdempotencyService } from '../services/idempotency.service.js';
import { ClaimService } from '../services/claim.service.js';
import { LeaseService } from '../services/lease.service.js';
import { PhaseReportService } from '../services/phase-report.service.js';

const WRITE_ERRORS = [400, 401, 404, 409, 413, 415, 422];
const PHASE_WRITE = named('PhaseWriteResponse', PhaseWriteResponseSchema);

/**
 * The schemas each route parses with and answers with (also its OpenAPI entry). The
 * Autopack-compatible reports take `null` in optional fields as absent (Python clients send `None`).
 */
const ROUTES = {
  claim: {
    tag: 'executor',
    summary: 'Claim the next phase (long poll up to wait_ms)',
    idempotent: true,
    body: named('ClaimRequest', ClaimRequestSchema),
    response: named('ClaimResponse', ClaimResponseSchema),
    extraSuccess: { 204: 'nothing claimable within wait_ms' },
    errors: WRITE_ERRORS,
  },
  heartbeat: {
    tag: 'executor',
    summary: 'Extend a lease',
    params: PhasePathParamsSchema,
    body: named('HeartbeatRequest', HeartbeatRequestSchema),
    response: named('HeartbeatResponse', HeartbeatResponseSchema),
    errors: WRITE_ERRORS,
  },
  builderResult: {
    tag: 'executor',
    summary: 'Builder outcome of the current attempt',
    nullAsAbsent: true,
    params: PhasePathParamsSchema,
    body: named('BuilderResultRequest', BuilderResultRequestSchema),
    response: PHASE_WRITE,
    errors: WRITE_ERRORS,
  },
  auditorRequest: {
    tag: 'executor',
    summary: 'Move the phase to GATE for review',
    nullAsAbsent: true,
    params: PhasePathParamsSchema,
    body: named('AuditorRequest', AuditorRequestSchema),
    response: PHASE_WRITE,
    errors: WRITE_ERRORS,
  },
  auditorResult: {
    tag: 'executor',
    summary: 'Review outcome: approve, revise or escalate',
    nullAsAbsent: true,
    params: PhasePathParamsSchema,
    body: named('AuditorResultRequest', AuditorResultRequestSchema),
    response: PHASE_WRITE,
    errors: WRITE_ERRORS,
  },
  updateStatus: {
    tag: 'executor',
    summary: 'State change checked against the phase state machine',
    nullAsAbsent: true,
    params: PhasePathParamsSchema,
    body: named('UpdateStatusRequest', UpdateStatusRequestSchema),
    response: PHASE_WRITE,
    errors: WRITE_ERRORS,
  },
  retry: { tag: 'operator', summary: 'Re-queue a FAILED phase', params: PhasePathParamsSchema, response: PHASE_WRITE, errors: [401, 404, 409] },
} satisfies Record<string, ApiRouteSpec>;

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
  @ApiRoute(ROUTES.claim)
  async claim(@Body() body: unknown, @Headers('idempotency-key') key: string | undefined, @Res({ passthrough: true }) res: Response): Promise<ClaimResponse | undefined> {
    return (await this.idempotency.respond(res, 'POST /phases/claim', key, body, async (record) => {
      const claimed = await this.claims.claim(parseRouteBody(ROUTES.claim, body), record);
      return claimed ? { status: 200, body: claimed } : { status: 204, body: null };
    })) as ClaimResponse | undefined;
  }

  @Post('runs/:run_id/phases/:phase_id/heartbeat')
  @HttpCode(200)
  @ApiRoute(ROUTES.heartbeat)
  heartbeat(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown): Promise<HeartbeatResponse> {
    return this.leases.heartbeat(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseRouteBody(ROUTES.heartbeat, body).lease_token);
  }

  @Post('runs/:run_id/phases/:phase_id/builder_result')
  @HttpCode(200)
  @ApiRoute(ROUTES.builderResult)
  builderResult(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown): Promise<PhaseWriteResponse> {
    return this.phases.builderResult(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseRouteBody(ROUTES.builderResult, body));
  }

  @Post('runs/:run_id/phases/:phase_id/auditor_request')
  @HttpCode(200)
  @ApiRoute(ROUTES.auditorRequest)
  auditorRequest(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown): Promise<PhaseWriteResponse> {
    return this.phases.auditorRequest(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseRouteBody(ROUTES.auditorRequest, body));
  }

  @Post('runs/:run_id/phases/:phase_id/auditor_result')
  @HttpCode(200)
  @ApiRoute(ROUTES.auditorResult)
  auditorResult(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown): Promise<PhaseWriteResponse> {
    return this.phases.auditorResult(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseRouteBody(ROUTES.auditorResult, body));
  }

  @Post('runs/:run_id/phases/:phase_id/update_status')
  @HttpCode(200)
  @ApiRoute(ROUTES.updateStatus)
  updateStatus(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown): Promise<PhaseWriteResponse> {
    return this.phases.updateStatus(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseRouteBody(ROUTES.updateStatus, body));
  }

  @Post('runs/:run_id/phases/:phase_id/retry')
  @HttpCode(200)
  @ApiRoute(ROUTES.retry)
  retry(@Param('run_id') runId: string, @Param('phase_id') phaseId: string): Promise<PhaseWriteResponse> {
    return this.phases.retry(parseId(runId, 'run'), parseId(phaseId, 'phase'));
  }
}
