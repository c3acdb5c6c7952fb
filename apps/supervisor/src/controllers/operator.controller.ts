import { Body, Controller, Get, HttpCode, Param, Post, Put } from '@nestjs/common';
import { ApproveRequestSchema, CancelRequestSchema, IdSchema, ProjectRulesetSchema } from '@app/contracts';
import { parseBody, parseId } from '../http/validation.js';
import { ProjectService } from '../services/project.service.js';
import { RunService } from '../services/run.service.js';

/** Operator actions: cancel, approve, project rulesets. */
@Controller()
export class OperatorController {
  constructor(
    private readonly runs: RunService,
    private readonly projects: ProjectService,
  ) {}

  @Post('runs/:run_id/cancel')
  @HttpCode(200)
  cancel(@Param('run_id') runId: string, @Body() body: unknown) {
    return this.runs.cancel(parseId(runId, 'run'), parseBody(CancelRequestSchema, body ?? {}).reason);
  }

  @Post('runs/:run_id/approve')
  @HttpCode(200)
  approve(@Param('run_id') runId: string, @Body() body: unknown) {
    return this.runs.approve(parseId(runId, 'run'), parseBody(ApproveRequestSchema, body));
  }

  @Get('projects/:project_id/ruleset')
  getRuleset(@Param('project_id') projectId: string) {
    return this.projects.getRuleset(parseProject(projectId));
  }

  @Put('projects/:project_id/ruleset')
  putRuleset(@Param('project_id') projectId: string, @Body() body: unknown) {
    return this.projects.putRuleset(parseProject(projectId), parseBody(ProjectRulesetSchema, body));
  }
}

function parseProject(id: string): string {
  return IdSchema.safeParse(id).success ? id : parseId(id, 'run');
}
