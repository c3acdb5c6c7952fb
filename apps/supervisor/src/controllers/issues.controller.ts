import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import {
  PhasePathParamsSchema,
  PhaseWriteResponseSchema,
  ProjectBacklogQuerySchema,
  ProjectBacklogResponseSchema,
  RecordIssueRequestSchema,
  ReserveBudgetRequestSchema,
  ReserveBudgetResponseSchema,
  RunIssueIndexResponseSchema,
  RunPathParamsSchema,
} from '@app/contracts';
import { ApiRoute, type ApiRouteSpec, named } from '../http/api-route.js';
import { parseId, parseRouteBody, parseRouteQuery } from '../http/validation.js';
import { IdempotencyService, type RecordAnswer } from '../services/idempotency.service.js';
import { BudgetService } from '../services/budget.service.js';
import { PhaseReportService } from '../services/phase-report.service.js';
import { ReportService } from '../services/report.service.js';

const WRITE_ERRORS = [400, 401, 404, 409, 413, 415, 422];

/** The schemas each route parses with and answers with (also its OpenAPI entry). */
const ROUTES = {
  record: {
    tag: 'issues',
    summary: 'Record an issue into the phase, the run index and the project backlog',
    nullAsAbsent: true,
    idempotent: true,
    params: PhasePathParamsSchema,
    body: named('RecordIssueRequest', RecordIssueRequestSchema),
    response: named('PhaseWriteResponse', PhaseWriteResponseSchema),
    errors: WRITE_ERRORS,
  },
  reserve: {
    tag: 'executor',
    summary: 'Reserve the worst case of an LLM call before making it (409 BUDGET_EXHAUSTED if it does not fit)',
    idempotent: true,
    params: PhasePathParamsSchema,
    body: named('ReserveBudgetRequest', ReserveBudgetRequestSchema),
    response: named('ReserveBudgetResponse', ReserveBudgetResponseSchema),
    errors: WRITE_ERRORS,
  },
  index: { tag: 'issues', summary: 'Run issue index', params: RunPathParamsSchema, response: named('RunIssueIndex', RunIssueIndexResponseSchema), errors: [401, 404] },
  backlog: { tag: 'issues', summary: 'Project backlog with aging', query: ProjectBacklogQuerySchema, response: named('ProjectBacklog', ProjectBacklogResponseSchema), errors: [401, 422] },
} satisfies Record<string, ApiRouteSpec>;

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
  @ApiRoute(ROUTES.record)
  async record(
    @Param('run_id') runId: string,
    @Param('phase_id') phaseId: string,
    @Body() body: unknown,
    @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<unknown> {
    return this.idempotentPhaseWrite(res, runId, phaseId, 'record_issue', key, body, (run, phase, record) => this.phases.recordIssue(run, phase, parseRouteBody(ROUTES.record, body), record));
  }

  /** A retried reservation with the same Idempotency-Key gets the same reservation instead of a second one. */
  @Post('runs/:run_id/phases/:phase_id/reserve_budget')
  @HttpCode(200)
  @ApiRoute(ROUTES.reserve)
  async reserve(
    @Param('run_id') runId: string,
    @Param('phase_id') phaseId: string,
    @Body() body: unknown,
    @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<unknown> {
    return this.idempotentPhaseWrite(res, runId, phaseId, 'reserve_budget', key, body, (run, phase, record) => this.budgets.reserveBudget(run, phase, parseRouteBody(ROUTES.reserve, body), record));
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
  @ApiRoute(ROUTES.index)
  index(@Param('run_id') runId: string) {
    return this.reports.runIssueIndex(parseId(runId, 'run'));
  }

  @Get('project/issues/backlog')
  @ApiRoute(ROUTES.backlog)
  backlog(@Query() query: unknown) {
    return this.reports.backlog(parseRouteQuery(ROUTES.backlog, query).project_id);
  }
}
