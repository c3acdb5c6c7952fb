import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ListRunsQuerySchema, type RunResponse, RunStartRequestSchema } from '@app/contracts';
import { parseBody, parseId, parseQuery } from '../http/validation.js';
import { RunService } from '../services/run.service.js';

/** Runs: create, read, list. */
@Controller()
export class RunsController {
  constructor(private readonly runs: RunService) {}

  @Post('runs/start')
  @HttpCode(201)
  start(@Body() body: unknown): Promise<RunResponse> {
    return this.runs.start(parseBody(RunStartRequestSchema, body));
  }

  @Get('runs')
  list(@Query() query: unknown) {
    return this.runs.list(parseQuery(ListRunsQuerySchema, query));
  }

  @Get('runs/:run_id')
  get(@Param('run_id') runId: string): Promise<RunResponse> {
    return this.runs.get(parseId(runId, 'run'));
  }
}
