import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import { AppLogger } from '../http/logger.js';
import { BudgetService } from './budget.service.js';
import { LeaseService } from './lease.service.js';
import { IdempotencyRepository } from '../repositories/index.js';

/**
 * Reclaims expired leases. Runs every third of a lease, so an expired lease is reclaimed
 * within one more lease length (CONTRACT.md, AUTOPACK_LEASE_SECONDS). Safe with several
 * supervisor replicas: each reclaim is a guarded update under the run's row lock.
 */
@Injectable()
export class LeaseSweeperService implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly leases: LeaseService,
    private readonly budgets: BudgetService,
    private readonly idempotency: IdempotencyRepository,
    private readonly log: AppLogger,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {}

  onApplicationBootstrap(): void {
    const every = Math.max(1000, Math.floor((this.config.leaseSeconds * 1000) / 3));
    this.timer = setInterval(() => void this.sweep(), every);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One sweep; errors are logged (a database outage must not crash the process). */
  async sweep(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      const n = await this.leases.expireLeases();
      if (n > 0) this.log.info({ reclaimed: n }, 'expired leases reclaimed');
      const overdue = await this.budgets.endOverdueRuns();
      await this.idempotency.purge();
      if (overdue > 0) this.log.info({ runs: overdue }, 'runs past their wall-time budget ended');
      return n + overdue;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'lease sweep failed');
      return 0;
    } finally {
      this.running = false;
    }
  }
}
