import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { type ClaimRequest, type ClaimResponse, type PhaseState, claimCapabilities } from '@app/contracts';
import { isRunTerminal } from '@app/domain';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import type { PhaseEntity, RunEntity } from '../entities/index.js';
import { EventRepository, ExecutorRepository, PhaseRepository, RunRepository, type TierStateRow } from '../repositories/index.js';
import { BudgetService, CLAIMABLE_RUN_STATES } from './budget.service.js';
import { BuildOrchestrator } from './build-orchestrator.service.js';
import type { RecordAnswer } from './idempotency.service.js';
import { MetricsService } from './metrics.service.js';
import { NotificationHub } from './notification-hub.js';
import { CLAIMABLE_CHANNEL, ProgressService, RUN_EVENTS_CHANNEL } from './progress.service.js';

/** The least time between two writes of one executor's "last seen" by one process. */
const SEEN_WRITE_INTERVAL_MS = 1000;

/** `POST /phases/claim`: the long poll and the claim itself. */
@Injectable()
export class ClaimService {
  /** When this process last wrote each executor's row, and with which capabilities. */
  private readonly lastSeenWrites = new Map<string, { at: number; capabilities: string }>();

  constructor(
    private readonly ds: DataSource,
    private readonly runs: RunRepository,
    private readonly phases: PhaseRepository,
    private readonly events: EventRepository,
    private readonly progress: ProgressService,
    private readonly budgets: BudgetService,
    private readonly hub: NotificationHub,
    private readonly builds: BuildOrchestrator,
    private readonly executors: ExecutorRepository,
    private readonly metrics: MetricsService,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {}

  /** Long-polls up to `wait_ms` for a claimable phase; null means 204. */
  async claim(req: ClaimRequest, recordAnswer?: RecordAnswer): Promise<ClaimResponse | null> {
    const started = Date.now();
    const deadline = started + (req.wait_ms ?? 0);
    const waited = (result: 'claimed' | 'empty') => this.metrics.claimWait.observe({ result }, (Date.now() - started) / 1000);
    const capabilities = claimCapabilities(req.capabilities);
    // Seen when the claim comes and when a long poll ends empty (GET /executors, waiting phases).
    await this.markSeen(req.executor_id, capabilities);
    for (;;) {
      const claimed = await this.tryClaim(req, capabilities, recordAnswer);
      if (claimed) {
        waited('claimed');
        return claimed;
      }
      // A run that has ended gives no more work: say so now, not after the whole long poll
      // (an executor serving it would otherwise wait out its poll before it can exit).
      const remaining = req.run_id && (await this.runEnded(req.run_id)) ? 0 : deadline - Date.now();
      if (remaining <= 0) {
        waited('empty');
        if (req.wait_ms) await this.markSeen(req.executor_id, capabilities);
        return null;
      }
      // Woken by NOTIFY; the bounded wait is only a safety net for a lost LISTEN connection.
      await this.hub.waitForClaimable(Math.min(remaining, 5000), req.run_id);
    }
  }

  /**
   * Upserts the executor's row, at most once a second per executor and capability set: an
   * executor claiming in a tight loop would otherwise add a write to every claim, and "last
   * seen" is shown to the second. Other replicas keep their own record (each writes too).
   */
  private async markSeen(executorId: string, capabilities: readonly string[]): Promise<void> {
    const now = Date.now();
    const key = capabilities.join('\n');
    const last = this.lastSeenWrites.get(executorId);
    if (last && last.capabilities === key && now - last.at < SEEN_WRITE_INTERVAL_MS) return;
    await this.executors.seen(this.ds.manager, executorId, capabilities);
    this.lastSeenWrites.set(executorId, { at: now, capabilities: key });
    // Forget executors not heard from for a while, so the map stays as small as the fleet.
    if (this.lastSeenWrites.size > 1000) {
      for (const [id, w] of this.lastSeenWrites) if (now - w.at > 60_000) this.lastSeenWrites.delete(id);
    }
  }

  /** Whether the run exists and has ended. */
  private async runEnded(runId: string): Promise<boolean> {
    const run = await this.runs.find(runId);
    return run !== null && isRunTerminal(run.state);
  }

  /** `recordAnswer` stores an Idempotency-Key's answer in the claim's own transaction. */
  private async tryClaim(req: ClaimRequest, capabilities: readonly string[], recordAnswer?: RecordAnswer): Promise<ClaimResponse | null> {
    return this.ds.transaction(async (em) => {
      const candidates = await this.runs.lockClaimCandidates(em, CLAIMABLE_RUN_STATES, req.run_id, 5, capabilities);
      for (const run of candidates) {
        // Phases, tiers and the clock in one read; the settle below reuses it.
        const { phases, tiers } = await this.phases.readSnapshot(em, run.runId);
        const exhausted = await this.budgets.claimExhaustion(em, run, phases);
        if (exhausted) {
          await this.progress.exhaustBudget(em, run, exhausted);
          continue;
        }
        const token = randomUUID();
        const phase = await this.phases.claimNextInRun(em, run.runId, req.executor_id, token, this.config.leaseSeconds, capabilities);
        if (!phase) continue;
        // Another phase of this run may still be claimable (parallel runs): wake other waiters.
        // Otherwise wake only the run's event streams, so `phase_claimed` is streamed now.
        // (NOTIFY is delivered on commit, whatever the settle below appends.)
        await this.events.appendAndNotify(
          em,
          [{ runId: run.runId, phaseId: phase.phaseId, type: 'phase_claimed', payload: { attempt: phase.claimsCount, executor_id: req.executor_id } }],
          run.maxParallelPhases > 1 ? CLAIMABLE_CHANNEL : RUN_EVENTS_CHANNEL,
          run.runId,
        );
        // The phases read before the claim, with the claimed one as it is now: nothing else of the
        // run changed in between (its row is locked), so no second read of every phase.
        const phasesNow = phases.map((p) =>
          p.id === phase.id ? { ...p, state: phase.state, attemptsUsed: phase.attemptsUsed, claimsCount: phase.claimsCount, leaseToken: phase.leaseToken } : p,
        );
        const settled = await this.progress.settleWithSnapshot(em, run, { phases: phasesNow, tiers });
        const phaseStates = Object.fromEntries(settled.phases.map((p) => [p.phaseId, p.state]));
        const response = await this.claimResponse(em, run, phase, token, phaseStates, settled.tiers);
        await recordAnswer?.(em, { status: 200, body: response });
        return response;
      }
      return null;
    });
  }

  private async claimResponse(
    em: EntityManager,
    run: RunEntity,
    phase: PhaseEntity,
    token: string,
    phaseStates: Record<string, PhaseState>,
    tiers: readonly TierStateRow[],
  ): Promise<ClaimResponse> {
    const strategy = run.strategy.phases[phase.phaseId];
    // Attempts are recorded as they end, numbered by claim: a first claim has none before it.
    const attempts = phase.claimsCount > 1 ? await this.phases.listAttempts(em, run.runId, phase.phaseId) : [];
    const build = await this.builds.claimContext(em, run, Object.keys(phaseStates));
    return {
      run_id: run.runId,
      phase_id: phase.phaseId,
      lease_token: token,
      lease_expires_at: new Date(phase.leaseExpiresAt!).toISOString(),
      lease_seconds: this.config.leaseSeconds,
      attempt: phase.claimsCount,
      max_attempts: phase.maxAttempts,
      phase: {
        phase_id: phase.phaseId,
        tier_id: phase.tierId,
        phase_index: phase.phaseIndex,
        name: phase.name,
        description: phase.description,
        task_category: phase.taskCategory,
        complexity: phase.complexity,
        builder_mode: phase.builderMode,
        scope: phase.scope,
        acceptance_criteria: phase.acceptanceCriteria,
        ci: phase.ci,
        allow_mass_deletion: phase.allowMassDeletion,
        allow_mass_addition: phase.allowMassAddition,
        kind: phase.kind,
        requires: phase.requires,
      },
      strategy,
      budget_left: await this.budgets.budgetLeft(em, run, phase, tiers),
      previous_attempts: attempts.map((a) => ({
        attempt: a.attempt,
        outcome: a.outcome,
        reason: a.reason,
        feedback: a.feedback,
        edits_hash: a.editsHash,
        created_at: new Date(a.createdAt).toISOString(),
      })),
      run: {
        run_id: run.runId,
        base_branch: run.baseBranch,
        integration_branch: `autonomous/${run.runId}`,
        repo_url: run.repoUrl,
        safety_profile: run.safetyProfile,
        ci: run.ci,
        protected_paths: run.protectedPaths,
        phase_states: phaseStates,
      },
      ...(build ? { build } : {}),
    };
  }
}
