import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Post, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import {
  BUILD_APPROVAL_MODES,
  BUILD_CHECKPOINTS,
  BUILD_STEPS,
  BuildAcceptedResponseSchema,
  BuildApproveRequestSchema,
  BuildDropletRequestSchema,
  BuildListResponseSchema,
  BuildPathParamsSchema,
  BuildRetryRequestSchema,
  BuildStatusResponseSchema,
  type ExecutorCapabilitiesResponse,
  ExecutorCapabilitiesResponseSchema,
  ExecutorHealthResponseSchema,
  ListBuildsQuerySchema,
  NOTIFY_CHANNEL_TYPES,
  PhasePathParamsSchema,
  StepResultRequestSchema,
  StepResultResponseSchema,
} from '@app/contracts';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import { ApiRoute, type ApiRouteSpec, named } from '../http/api-route.js';
import { parseId, parseRouteBody, parseRouteQuery } from '../http/validation.js';
import { BuildOrchestrator } from '../services/build-orchestrator.service.js';
import { BuildService } from '../services/build.service.js';
import { HealthService } from '../services/health.service.js';
import { IdempotencyService } from '../services/idempotency.service.js';
import { AUTOPACK_VERSION } from '../version.js';

const WRITE_ERRORS = [400, 401, 404, 409, 413, 415, 422];
const STATUS = named('BuildStatus', BuildStatusResponseSchema);

/** The schemas each route parses with and answers with (also its OpenAPI entry). */
const ROUTES = {
  create: {
    tag: 'builds',
    summary: 'Start a droplet build from an intent (queued when the concurrent-build cap is reached)',
    idempotent: true,
    body: named('BuildDropletRequest', BuildDropletRequestSchema),
    response: named('BuildAccepted', BuildAcceptedResponseSchema),
    success: 202,
    errors: WRITE_ERRORS,
  },
  status: { tag: 'builds', summary: 'A build: status, steps, progress and estimate, checkpoint, deployment URL', params: BuildPathParamsSchema, response: STATUS, errors: [401, 404] },
  list: { tag: 'builds', summary: 'List builds (filter by status and creation time)', query: ListBuildsQuerySchema, response: named('BuildList', BuildListResponseSchema), errors: [401, 422] },
  approve: {
    tag: 'builds',
    summary: 'Answer the checkpoint the build waits at (409 when it waits at none or another)',
    params: BuildPathParamsSchema,
    body: named('BuildApproveRequest', BuildApproveRequestSchema),
    response: STATUS,
    errors: WRITE_ERRORS,
  },
  cancel: { tag: 'builds', summary: 'Cancel a build that has not finished (409 otherwise)', params: BuildPathParamsSchema, response: STATUS, errors: [401, 404, 409] },
  retry: {
    tag: 'builds',
    summary: 'Restart a failed build from a step (default: the failed one)',
    params: BuildPathParamsSchema,
    body: named('BuildRetryRequest', BuildRetryRequestSchema),
    response: STATUS,
    errors: WRITE_ERRORS,
  },
  health: { tag: 'builds', summary: 'Health with the number of active builds', response: named('ExecutorHealth', ExecutorHealthResponseSchema), extraSuccess: { 503: 'database unreachable' } },
  capabilities: { tag: 'builds', summary: 'Approval modes, max concurrent builds, providers and models', response: named('ExecutorCapabilities', ExecutorCapabilitiesResponseSchema), errors: [401] },
  stepResult: {
    tag: 'executor',
    summary: "What a build step produced: the planner's plan (validated, then its phases queued) or the promotion",
    params: PhasePathParamsSchema,
    body: named('StepResultRequest', StepResultRequestSchema),
    response: named('StepResultResponse', StepResultResponseSchema),
    errors: WRITE_ERRORS,
  },
} satisfies Record<string, ApiRouteSpec>;

/** Droplet builds (CONTRACT.md section 8). */
@Controller()
export class BuildsController {
  constructor(
    private readonly orchestrator: BuildOrchestrator,
    private readonly builds: BuildService,
    private readonly health: HealthService,
    private readonly idempotency: IdempotencyService,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {}

  @Post('executor/build-droplet')
  @HttpCode(202)
  @ApiRoute(ROUTES.create)
  create(@Body() body: unknown, @Headers('idempotency-key') key: string | undefined, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    return this.idempotency.respond(res, 'POST /executor/build-droplet', key, body, async (record) => ({ status: 202, body: await this.orchestrator.create(parseRouteBody(ROUTES.create, body), record) }));
  }

  @Get('executor/builds/:build_id/status')
  @ApiRoute(ROUTES.status)
  status(@Param('build_id') id: string) {
    return this.builds.statusView(parseId(id, 'build'));
  }

  @Get('executor/builds')
  @ApiRoute(ROUTES.list)
  async list(@Query() query: unknown) {
    return { builds: await this.builds.list(parseRouteQuery(ROUTES.list, query)) };
  }

  @Post('executor/builds/:build_id/approve')
  @HttpCode(200)
  @ApiRoute(ROUTES.approve)
  approve(@Param('build_id') id: string, @Body() body: unknown) {
    return this.orchestrator.approve(parseId(id, 'build'), parseRouteBody(ROUTES.approve, body));
  }

  @Post('executor/builds/:build_id/cancel')
  @HttpCode(200)
  @ApiRoute(ROUTES.cancel)
  cancel(@Param('build_id') id: string) {
    return this.orchestrator.cancel(parseId(id, 'build'));
  }

  @Delete('executor/builds/:build_id')
  @HttpCode(200)
  @ApiRoute(ROUTES.cancel)
  remove(@Param('build_id') id: string) {
    return this.orchestrator.cancel(parseId(id, 'build'));
  }

  @Post('executor/builds/:build_id/retry')
  @HttpCode(200)
  @ApiRoute(ROUTES.retry)
  retry(@Param('build_id') id: string, @Body() body: unknown) {
    return this.orchestrator.retry(parseId(id, 'build'), parseRouteBody(ROUTES.retry, body ?? {}).from_step);
  }

  @Get('executor/health')
  @ApiRoute(ROUTES.health)
  async executorHealth(@Res({ passthrough: true }) res: Response) {
    const h = await this.health.check();
    if (h.database !== 'up') {
      res.status(503);
      return { ...h, active_builds: 0, queued_builds: 0, max_concurrent_builds: this.config.maxConcurrentBuilds };
    }
    const counts = await this.builds.counts();
    return { ...h, active_builds: counts.active, queued_builds: counts.queued, max_concurrent_builds: this.config.maxConcurrentBuilds };
  }

  @Get('executor/capabilities')
  @ApiRoute(ROUTES.capabilities)
  async capabilities(): Promise<ExecutorCapabilitiesResponse> {
    // Loaded on first use: the LLM library (and its SDKs) is the executor's, not needed to serve runs.
    const { DEFAULT_MODELS } = await import('@app/llm');
    return {
      version: AUTOPACK_VERSION,
      approval_modes: [...BUILD_APPROVAL_MODES],
      checkpoints: [...BUILD_CHECKPOINTS],
      max_concurrent_builds: this.config.maxConcurrentBuilds,
      steps: BUILD_STEPS.map((s) => ({ ...s })),
      providers: Object.keys(DEFAULT_MODELS),
      models: Object.fromEntries(Object.entries(DEFAULT_MODELS).map(([p, roles]) => [p, { ...roles }])),
      notify_channels: [...NOTIFY_CHANNEL_TYPES],
      hooks: ['deploy', 'health_check', 'register', 'rollback'],
    };
  }

  @Post('runs/:run_id/phases/:phase_id/step_result')
  @HttpCode(200)
  @ApiRoute(ROUTES.stepResult)
  stepResult(@Param('run_id') runId: string, @Param('phase_id') phaseId: string, @Body() body: unknown) {
    return this.orchestrator.reportStep(parseId(runId, 'run'), parseId(phaseId, 'phase'), parseRouteBody(ROUTES.stepResult, body));
  }
}
