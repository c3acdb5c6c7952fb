import { Controller, Get, Inject } from '@nestjs/common';
import { type ExecutorView, ExecutorListResponseSchema } from '@app/contracts';
import { SUPERVISOR_CONFIG, type SupervisorConfig, executorGoneAfterSeconds } from '../config.js';
import { ApiRoute, named } from '../http/api-route.js';
import { ExecutorRepository } from '../repositories/index.js';

/** `GET /executors` (CONTRACT.md section 9): every executor seen, from its claims and heartbeats. */
@Controller()
export class ExecutorsController {
  constructor(
    private readonly executors: ExecutorRepository,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {}

  @Get('executors')
  @ApiRoute({
    tag: 'executor',
    summary: 'Executors seen: capabilities, last seen (gone after three lease lengths), current phase, phases completed and failed',
    response: named('ExecutorList', ExecutorListResponseSchema),
    errors: [401],
  })
  async list(): Promise<ExecutorView[]> {
    const goneAfter = executorGoneAfterSeconds(this.config);
    return (await this.executors.list()).map((e) => ({
      executor_id: e.executorId,
      capabilities: e.capabilities,
      first_seen_at: e.firstSeenAt.toISOString(),
      last_seen_at: e.lastSeenAt.toISOString(),
      status: e.idleSeconds > goneAfter ? 'gone' : 'active',
      current: e.current ? { run_id: e.current.runId, phase_id: e.current.phaseId } : null,
      phases_completed: e.phasesCompleted,
      phases_failed: e.phasesFailed,
    }));
  }
}
