import { Controller, Get, Header, Param, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import {
  BacklogSummaryQuerySchema,
  BacklogSummaryResponseSchema,
  BudgetAnalysisResponseSchema,
  IntegrationStatusResponseSchema,
  RunMetricsQuerySchema,
  RunMetricsResponseSchema,
  RunPathParamsSchema,
  RunSummaryResponseSchema,
  TierMetricsResponseSchema,
} from '@app/contracts';
import { z } from 'zod';
import { ApiRoute, type ApiRouteSpec, named } from '../http/api-route.js';
import { parseId, parseRouteQuery } from '../http/validation.js';
import { MetricsService } from '../services/metrics.service.js';
import { ReportService } from '../services/report.service.js';

/** The schemas each route parses with and answers with (also its OpenAPI entry). */
const ROUTES = {
  runs: { tag: 'metrics', summary: 'Run metrics', query: RunMetricsQuerySchema, response: named('RunMetrics', RunMetricsResponseSchema), errors: [401, 422] },
  tiers: { tag: 'metrics', summary: 'Tier metrics of a run', params: RunPathParamsSchema, response: named('TierMetrics', TierMetricsResponseSchema), errors: [401, 404] },
  backlogSummary: {
    tag: 'reports',
    summary: 'Backlog summary: aging, needs cleanup',
    query: BacklogSummaryQuerySchema,
    response: named('BacklogSummary', BacklogSummaryResponseSchema),
    errors: [401, 422],
  },
  budgetAnalysis: { tag: 'reports', summary: 'Budget utilization and budget-exhausted runs', response: named('BudgetAnalysis', BudgetAnalysisResponseSchema), errors: [401] },
  runSummary: { tag: 'reports', summary: 'Run summary', params: RunPathParamsSchema, response: named('RunSummary', RunSummaryResponseSchema), errors: [401, 404] },
  integration: {
    tag: 'runs',
    summary: 'The run integration branch: {branch, exists, commits_ahead_of_base, current_commit}',
    params: RunPathParamsSchema,
    response: named('IntegrationStatus', IntegrationStatusResponseSchema),
    errors: [401, 404],
  },
  prometheus: { tag: 'metrics', summary: 'Prometheus text format', contentType: 'text/plain', response: z.string(), errors: [401] },
} satisfies Record<string, ApiRouteSpec>;

/** Metrics and reports (the original Autopack's shapes), and Prometheus. */
@Controller()
export class ReportsController {
  constructor(
    private readonly reports: ReportService,
    private readonly metrics: MetricsService,
  ) {}

  @Get('metrics/runs')
  @ApiRoute(ROUTES.runs)
  runs(@Query() query: unknown) {
    return this.reports.runMetrics(parseRouteQuery(ROUTES.runs, query).status);
  }

  @Get('metrics/tiers/:run_id')
  @ApiRoute(ROUTES.tiers)
  tiers(@Param('run_id') runId: string) {
    return this.reports.tierMetrics(parseId(runId, 'run'));
  }

  @Get('reports/issue_backlog_summary')
  @ApiRoute(ROUTES.backlogSummary)
  backlogSummary(@Query() query: unknown) {
    return this.reports.backlogSummary(parseRouteQuery(ROUTES.backlogSummary, query).project_id);
  }

  @Get('reports/budget_analysis')
  @ApiRoute(ROUTES.budgetAnalysis)
  budgetAnalysis() {
    return this.reports.budgetAnalysis();
  }

  @Get('reports/run_summary/:run_id')
  @ApiRoute(ROUTES.runSummary)
  runSummary(@Param('run_id') runId: string) {
    return this.reports.runSummary(parseId(runId, 'run'));
  }

  @Get('runs/:run_id/integration_status')
  @ApiRoute(ROUTES.integration)
  integration(@Param('run_id') runId: string) {
    return this.reports.integrationStatus(parseId(runId, 'run'));
  }

  @Get('metrics')
  @ApiRoute(ROUTES.prometheus)
  @Header('Cache-Control', 'no-store')
  async prometheus(@Res() res: Response): Promise<void> {
    const { contentType, body } = await this.metrics.render();
    res.setHeader('Content-Type', contentType);
    res.status(200).send(body);
  }
}
