import { Body, Controller, Get, HttpCode, Param, Post, Put } from '@nestjs/common';
import {
  ApproveRequestSchema,
  CancelRequestSchema,
  IdSchema,
  ProjectPathParamsSchema,
  ProjectRulesetResponseSchema,
  ProjectRulesetSchema,
  RunPathParamsSchema,
  RunResponseSchema,
} from '@app/contracts';
import { ApiRoute, type ApiRouteSpec, named } from '../http/api-route.js';
import { parseId, parseRouteBody } from '../http/validation.js';
import { ProjectService } from '../services/project.service.js';
import { RunService } from '../services/run.service.js';

/** The schemas each route parses with and answers with (also its OpenAPI entry). */
const ROUTES = {
  cancel: {
    tag: 'operator',
    summary: 'Cancel a run',
    params: RunPathParamsSchema,
    body: named('CancelRequest', CancelRequestSchema),
    bodyOptional: true,
    response: named('Run', RunResponseSchema),
    errors: [401, 404, 409, 422],
  },
  approve: {
    tag: 'operator',
    summary: 'Answer an approval gate',
    params: RunPathParamsSchema,
    body: named('ApproveRequest', ApproveRequestSchema),
    response: named('Run', RunResponseSchema),
    errors: [401, 404, 409, 422],
  },
  getRuleset: {
    tag: 'operator',
    summary: 'Strategy overrides of a project',
    params: ProjectPathParamsSchema,
    response: named('ProjectRulesetResponse', ProjectRulesetResponseSchema),
    errors: [401, 404],
  },
  putRuleset: {
    tag: 'operator',
    summary: 'Replace the strategy overrides of a project',
    params: ProjectPathParamsSchema,
    body: named('ProjectRuleset', ProjectRulesetSchema),
    response: named('ProjectRulesetResponse', ProjectRulesetResponseSchema),
    errors: [401, 404, 422],
  },
} satisfies Record<string, ApiRouteSpec>;

/** Operator actions: cancel, approve, project rulesets. */
@Controller()
export class OperatorController {
  constructor(
    private readonly runs: RunService,
    private readonly projects: ProjectService,
  ) {}

  @Post('runs/:run_id/cancel')
  @HttpCode(200)
  @ApiRoute(ROUTES.cancel)
  cancel(@Param('run_id') runId: string, @Body() body: unknown) {
    return this.runs.cancel(parseId(runId, 'run'), parseRouteBody(ROUTES.cancel, body ?? {}).reason);
  }

  @Post('runs/:run_id/approve')
  @HttpCode(200)
  @ApiRoute(ROUTES.approve)
  approve(@Param('run_id') runId: string, @Body() body: unknown) {
    return this.runs.approve(parseId(runId, 'run'), parseRouteBody(ROUTES.approve, body));
  }

  @Get('projects/:project_id/ruleset')
  @ApiRoute(ROUTES.getRuleset)
  getRuleset(@Param('project_id') projectId: string) {
    return this.projects.getRuleset(parseProject(projectId));
  }

  @Put('projects/:project_id/ruleset')
  @ApiRoute(ROUTES.putRuleset)
  putRuleset(@Param('project_id') projectId: string, @Body() body: unknown) {
    return this.projects.putRuleset(parseProject(projectId), parseRouteBody(ROUTES.putRuleset, body));
  }
}

function parseProject(id: string): string {
  return IdSchema.safeParse(id).success ? id : parseId(id, 'run');
}
