import { Inject, Injectable } from '@nestjs/common';
import type { ExecutorView } from '@app/contracts';
import { SUPERVISOR_CONFIG, type SupervisorConfig, executorGoneAfterSeconds } from '../config.js';
import { ExecutorRepository } from '../repositories/index.js';

/** The executors seen through their claims and heartbeats (CONTRACT.md section 9). */
@Injectable()
export class ExecutorRegistryService {
  constructor(
    private readonly executors: ExecutorRepository,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {}

  /** `GET /executors`: gone once not seen for three lease lengths. */
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
