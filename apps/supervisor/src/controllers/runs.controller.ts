import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ListRunsQuerySchema, type RunResponse, RunStartRequestSchema } from '@app/contracts';
import { parseBody, parseId, parseQuery } from '../http/validation.js';
import { IdempotencyService } from '../services/idempotency.service.js';
import { RunService } from '../services/run.service.js';

/** Runs: create, read, list. */
@Controller()
export class RunsController {
  constructor(
    private readonly runs: RunService,
    private readonly idempotency: IdempotencyService,
  ) {}

  @Post('runs/start')
  @HttpCode(201)
  async start(@Body() body: unknown, @Headers('idempotency-key') key: string | undefined, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    return this.idempotency.respond(res, 'POST /runs/start', key, body, async (record) => ({ status: 201, body: await this.runs.start(parseBody(RunStartRequestSchema, body, { nullAsAbsent: true }), record) }));
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
