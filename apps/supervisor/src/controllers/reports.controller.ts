import { Controller, Get, Header, Param, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { RunStateSchema } from '@app/contracts';
import { z } from 'zod';
import { parseId, parseQuery } from '../http/validation.js';
import { MetricsService } from '../services/metrics.service.js';
import { ReportService } from '../services/report.service.js';

const StatusQuery = z.strictObject({ status: RunStateSchema.optional() });
const SummaryQuery = z.strictObject({ project_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/).optional() });

/** Metrics and reports (the original Autopack's shapes), and Prometheus. */
@Controller()
export class ReportsController {
  constructor(
    private readonly reports: ReportService,
    private readonly metrics: MetricsService,
  ) {}

  @Get('metrics/runs')
  runs(@Query() query: unknown) {
    return this.reports.runMetrics(parseQuery(StatusQuery, query).status);
  }

  @Get('metrics/tiers/:run_id')
  tiers(@Param('run_id') runId: string) {
    return this.reports.tierMetrics(parseId(runId, 'run'));
  }

  @Get('reports/issue_backlog_summary')
  backlogSummary(@Query() query: unknown) {
    return this.reports.backlogSummary(parseQuery(SummaryQuery, query).project_id);
  }

  @Get('reports/budget_analysis')
  budgetAnalysis() {
    return this.reports.budgetAnalysis();
  }

  @Get('reports/run_summary/:run_id')
  runSummary(@Param('run_id') runId: string) {
    return this.reports.runSummary(parseId(runId, 'run'));
  }

  @Get('runs/:run_id/integration_status')
  integration(@Param('run_id') runId: string) {
    return this.reports.integrationStatus(parseId(runId, 'run'));
  }

  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  async prometheus(@Res() res: Response): Promise<void> {
    const { contentType, body } = await this.metrics.render();
    res.setHeader('Content-Type', contentType);
    res.status(200).send(body);
  }
}
