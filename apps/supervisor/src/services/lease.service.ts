import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DomainError, type HeartbeatResponse } from '@app/contracts';
import { isRunClaimable } from '@app/domain';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import { EventRepository, PhaseRepository, RunRepository } from '../repositories/index.js';
import { MetricsService } from './metrics.service.js';
import { PhaseWriteService } from './phase-write.service.js';
import { CLAIMABLE_CHANNEL, ProgressService } from './progress.service.js';

/** Leases: heartbeats extend them, the sweeper expires them. */
@Injectable()
export class LeaseService {
  constructor(
    private readonly ds: DataSource,
    private readonly runs: RunRepository,
    private readonly phases: PhaseRepository,
    private readonly events: EventRepository,
    private readonly progress: ProgressService,
    private readonly writes: PhaseWriteService,
    private readonly metrics: MetricsService,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {}

  /** `POST .../heartbeat`: extends a live lease; 409 LEASE_LOST otherwise. */
  async heartbeat(runId: string, phaseId: string, token: string): Promise<HeartbeatResponse> {
    const em = this.ds.manager;
    const phase = await this.phases.find(em, runId, phaseId);
    if (!phase) throw new DomainError('NOT_FOUND', `phase ${phaseId} of run ${runId} not found`);
    const expires = await this.phases.extendLease(em, phase.id, token, this.config.leaseSeconds);
    if (!expires) throw new DomainError('LEASE_LOST', 'the lease expired or belongs to another executor');
    const run = await this.runs.find(runId, em);
    return { lease_expires_at: expires.toISOString(), run_state: run!.state, stop_requested: !run || !isRunClaimable(run.state) };
  }

  /**
   * Expires leases past their deadline (the sweeper calls this), one run per transaction with
   * its row locked: each expiry ends the attempt uncharged (`expireLease`). Returns phases
   * requeued or failed.
   */
  async expireLeases(): Promise<number> {
    let changed = 0;
    for (const runId of await this.phases.runsWithExpiredLeases(this.ds.manager)) {
      const onCommit: (() => void)[] = [];
      const reclaimed = await this.ds.transaction(async (em) => {
        const run = await this.runs.lock(em, runId);
        if (!run) return 0;
        const now = await this.runs.now(em);
        let n = 0;
        for (const phase of await this.phases.listForRun(em, runId)) {
          if (!phase.leaseToken || !phase.leaseExpiresAt || new Date(phase.leaseExpiresAt) >= now) continue;
          await this.writes.apply(
            { em, run, phase, onCommit },
            { kind: 'endAttempt', report: { event: 'expireLease', outcome: 'lease_expired', reason: `lease of ${phase.leaseOwner ?? 'an executor'} expired` } },
          );
          n++;
        }
        await this.progress.settle(em, run);
        await this.events.notify(em, CLAIMABLE_CHANNEL, runId);
        return n;
      });
      for (const fn of onCommit) fn();
      if (reclaimed > 0) this.metrics.leaseExpiries.inc(reclaimed);
      changed += reclaimed;
    }
    return changed;
  }
}
