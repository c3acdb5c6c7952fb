import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ListRunsQuerySchema, RunListResponseSchema, RunPathParamsSchema, type RunResponse, RunResponseSchema, RunStartRequestSchema } from '@app/contracts';
import { ApiRoute, type ApiRouteSpec, named } from '../http/api-route.js';
import { parseId, parseRouteBody, parseRouteQuery } from '../http/validation.js';
import { IdempotencyService } from '../services/idempotency.service.js';
import { RunService } from '../services/run.service.js';

const WRITE_ERRORS = [400, 401, 404, 409, 413, 415, 422];

/** The schemas each route parses with and answers with (also its OpenAPI entry). */
const ROUTES = {
  start: {
    tag: 'runs',
    summary: 'Create a run from tiers and phases',
    nullAsAbsent: true,
    idempotent: true,
    body: named('RunStartRequest', RunStartRequestSchema),
    response: named('Run', RunResponseSchema),
    success: 201,
    errors: WRITE_ERRORS,
  },
  list: { tag: 'runs', summary: 'List runs (filter by state, paging)', query: ListRunsQuerySchema, response: named('RunList', RunListResponseSchema), errors: [401, 422] },
  get: {
    tag: 'runs',
    summary: 'A run with tiers[].phases[], flat phases[], budgets and promotion eligibility',
    params: RunPathParamsSchema,
    response: named('Run', RunResponseSchema),
    errors: [401, 404],
  },
} satisfies Record<string, ApiRouteSpec>;

/** Runs: create, read, list. */
@Controller()
export class RunsController {
  constructor(
    private readonly runs: RunService,
    private readonly idempotency: IdempotencyService,
  ) {}

  @Post('runs/start')
  @HttpCode(201)
  @ApiRoute(ROUTES.start)
  async start(@Body() body: unknown, @Headers('idempotency-key') key: string | undefined, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    return this.idempotency.respond(res, 'POST /runs/start', key, body, async (record) => ({ status: 201, body: await this.runs.start(parseRouteBody(ROUTES.start, body), record) }));
  }

  @Get('runs')
  @ApiRoute(ROUTES.list)
  list(@Query() query: unknown) {
    return this.runs.list(parseRouteQuery(ROUTES.list, query));
  }

  @Get('runs/:run_id')
  @ApiRoute(ROUTES.get)
  get(@Param('run_id') runId: string): Promise<RunResponse> {
    return this.runs.get(parseId(runId, 'run'));
  }
}
