import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { RecordIssueRequestSchema, ReserveBudgetRequestSchema } from '@app/contracts';
import { z } from 'zod';
import { parseBody, parseId, parseQuery } from '../http/validation.js';
import { IdempotencyService, type RecordAnswer } from '../services/idempotency.service.js';
import { BudgetService } from '../services/budget.service.js';
import { PhaseReportService } from '../services/phase-report.service.js';
import { ReportService } from '../services/report.service.js';

const ProjectQuery = z.strictObject({ project_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/).default('default') });

/** Issue tracking and budget reservations. */
@Controller()
export class IssuesController {
  constructor(
    private readonly phases: PhaseReportService,
    private readonly budgets: BudgetService,
    private readonly reports: ReportService,
    private readonly idempotency: IdempotencyService,
  ) {}

  /** A retried report with the same Idempotency-Key does not count the issue's occurrence twice. */
  @Post('runs/:run_id/phases/:phase_id/record_issue')
  @HttpCode(200)
  async record(
    @Param('run_id') runId: string,
    @Param('phase_id') phaseId: string,
    @Body() body: unknown,
    @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<unknown> {
    return this.idempotentPhaseWrite(res, runId, phaseId, 'record_issue', key, body, (run, phase, record) => this.phases.recordIssue(run, phase, parseBody(RecordIssueRequestSchema, body, { nullAsAbsent: true }), record));
  }

  /** A retried reservation with the same Idempotency-Key gets the same reservation instead of a second one. */
  @Post('runs/:run_id/phases/:phase_id/reserve_budget')
  @HttpCode(200)
  async reserve(
    @Param('run_id') runId: string,
    @Param('phase_id') phaseId: string,
    @Body() body: unknown,
    @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<unknown> {
    return this.idempotentPhaseWrite(res, runId, phaseId, 'reserve_budget', key, body, (run, phase, record) => this.budgets.reserveBudget(run, phase, parseBody(ReserveBudgetRequestSchema, body), record));
  }

  /** A phase write whose key is scoped to its path: the same key on another phase is another request. */
  private idempotentPhaseWrite(
    res: Response,
    runId: string,
    phaseId: string,
    action: string,
    key: string | undefined,
    body: unknown,
    write: (run: string, phase: string, record: RecordAnswer | undefined) => Promise<unknown>,
  ): Promise<unknown> {
    const [run, phase] = [parseId(runId, 'run'), parseId(phaseId, 'phase')];
    return this.idempotency.respond(res, `POST /runs/${run}/phases/${phase}/${action}`, key, body, async (record) => ({ status: 200, body: await write(run, phase, record) }));
  }

  @Get('runs/:run_id/issues/index')
  index(@Param('run_id') runId: string) {
    return this.reports.runIssueIndex(parseId(runId, 'run'));
  }

  @Get('project/issues/backlog')
  backlog(@Query() query: unknown) {
    return this.reports.backlog(parseQuery(ProjectQuery, query).project_id);
  }
}
