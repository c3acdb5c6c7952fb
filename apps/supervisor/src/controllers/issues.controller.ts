import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { RecordIssueRequestSchema, ReserveBudgetRequestSchema } from '@app/contracts';
import { z } from 'zod';
import { parseBody, parseId, parseQuery } from '../http/validation.js';
import { PhaseService } from '../services/phase.service.js';
import { ReportService } from '../services/report.service.js';

const ProjectQuery = z.strictObject({ project_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/).default('default') });

/** Issue tracking and budget reservations. */
@Controller()
export class IssuesController {
  constructor(
    private readonly phases: PhaseService,
    private readonly reports: ReportService,
  ) {}

  @Post('runs/:run_id/phases/:phase_id/record_issue')
  @HttpCode(200)
  record(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown) {
    return this.phases.recordIssue(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseBody(RecordIssueRequestSchema, body));
  }

  @Post('runs/:run_id/phases/:phase_id/reserve_budget')
  @HttpCode(200)
  reserve(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown) {
    return this.phases.reserveBudget(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseBody(ReserveBudgetRequestSchema, body));
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
