import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { DomainError, type RunState, type TierState } from '@app/contracts';
import {
  type TierEvent,
  deriveRunOutcome,
  deriveTierCleanliness,
  deriveTierState,
  isRunTerminal,
  needsCheckpointApproval,
  tiersBlockedByFailure,
  transitionPhase,
  transitionRun,
  transitionTier,
} from '@app/domain';
import type { RunEntity } from '../entities/index.js';
import { EventRepository, type NewEvent, PhaseRepository, RunRepository, TierRepository } from '../repositories/index.js';
import { IssueService } from './issue.service.js';

const TIER_EVENT_FOR: Record<TierState, TierEvent | undefined> = {
  PENDING: undefined,
  IN_PROGRESS: 'start',
  COMPLETE: 'complete',
  FAILED: 'fail',
  SKIPPED: 'skip',
};

/** Why settle skipped a phase: an earlier tier failed. A retry of that failure queues it again. */
export const SKIPPED_BY_FAILED_TIER = 'an earlier tier failed';

/** Channel on which the supervisor announces that a run may have claimable work. */
export const CLAIMABLE_CHANNEL = 'autopack_claimable';

/**
 * Cascades phase changes into tier and run state. Always called inside the transaction
 * that changed a phase, with the run row locked, so each derivation happens exactly once.
 */
@Injectable()
export class ProgressService {
  constructor(
    private readonly runs: RunRepository,
    private readonly tiers: TierRepository,
    private readonly phases: PhaseRepository,
    private readonly events: EventRepository,
    private readonly issues: IssueService,
  ) {}

  /** Re-derives tiers and the run from the phases. `run` must be locked by the caller. */
  async settle(em: EntityManager, run: RunEntity): Promise<RunState> {
    const events: NewEvent[] = [];
    let phases = await this.phases.listForRun(em, run.runId);
    let tiers = await this.tiers.listForRun(em, run.runId);

    // A failed tier blocks every later tier: their queued phases are skipped.
    const blocked = tiersBlockedByFailure(tiers.map((t) => ({ tierId: t.tierId, tierIndex: t.tierIndex, state: this.derivedState(t.tierId, phases) })));
    if (blocked.length > 0) {
      const blockedIds = new Set(blocked.map((t) => t.tierId));
      for (const p of phases.filter((x) => blockedIds.has(x.tierId) && x.state === 'QUEUED')) {
        const t = transitionPhase(p.state, 'skip', { attemptsUsed: p.attemptsUsed, maxAttempts: p.maxAttempts });
        if (t.ok && (await this.phases.transition(em, p.id, p.state, t.to, {}, { lastFailureReason: SKIPPED_BY_FAILED_TIER }))) {
          events.push({ runId: run.runId, phaseId: p.phaseId, type: 'phase_state', payload: { from: p.state, to: t.to, reason: SKIPPED_BY_FAILED_TIER } });
        }
      }
      phases = await this.phases.listForRun(em, run.runId);
    }

    const strategy = run.strategy;
    for (const tier of tiers) {
      const inTier = phases.filter((p) => p.tierId === tier.tierId);
      const derived = deriveTierState(inTier.map((p) => p.state));
      let current = tier.state;
      // A retried phase makes a FAILED (or SKIPPED) tier unfinished again: it reopens first.
      if ((current === 'FAILED' || current === 'SKIPPED') && (derived === 'PENDING' || derived === 'IN_PROGRESS')) {
        const t = transitionTier(current, 'reopen');
        if (t.ok && (await this.tiers.transition(em, tier.id, current, t.to))) {
          events.push({ runId: run.runId, type: 'tier_state', payload: { tier_id: tier.tierId, from: current, to: t.to } });
          current = t.to;
        }
      }
      if (derived !== current) {
        const event = TIER_EVENT_FOR[derived];
        const t = event ? transitionTier(current, event) : { ok: false as const, reason: 'no event' };
        if (t.ok && (await this.tiers.transition(em, tier.id, current, t.to))) {
          events.push({ runId: run.runId, type: 'tier_state', payload: { tier_id: tier.tierId, from: current, to: t.to } });
        }
      }
      const budgets = strategy.tiers[tier.tierId];
      const minor = inTier.reduce((n, p) => n + p.minorIssuesCount, 0);
      const major = inTier.reduce((n, p) => n + p.majorIssuesCount, 0);
      const cleanliness = deriveTierCleanliness(
        inTier.map((p) => ({ state: p.state, minorIssues: p.minorIssuesCount, majorIssues: p.majorIssuesCount })),
        { major: budgets?.maxMajorIssuesTolerated ?? 0, minor: budgets?.maxMinorIssuesTolerated ?? 2 * inTier.length },
      );
      await this.tiers.updateDerived(em, tier.id, { cleanliness, minor, major });
    }
    await this.runs.refreshIssueCounts(em, run.runId);

    let state = run.state;
    if (!isRunTerminal(state)) {
      tiers = await this.tiers.listForRun(em, run.runId);
      const started = phases.some((p) => p.state !== 'QUEUED');
      const outcome = deriveRunOutcome(
        tiers.map((t) => t.state),
        run.approvalMode,
      );
      const checkpoint =
        run.approvalMode === 'checkpoints' && state !== 'AWAITING_APPROVAL'
          ? needsCheckpointApproval(
              tiers.map((t) => ({ tierId: t.tierId, tierIndex: t.tierIndex, state: t.state })),
              run.approvedThroughTierIndex,
              phases.some((p) => p.leaseToken !== null),
            )
          : { needed: false, doneThrough: -1 };
      if (outcome && state !== 'AWAITING_APPROVAL') {
        const reason = outcome === 'failForReview' ? this.failureSummary(phases) : null;
        state = await this.moveRun(em, run, state, outcome, reason, events);
      } else if (checkpoint.needed) {
        state = await this.moveRun(em, run, state, 'awaitApproval', null, events);
      } else if (started && (state === 'RUN_CREATED' || state === 'PHASE_QUEUEING')) {
        state = await this.moveRun(em, run, state, 'beginExecution', null, events);
      }
    }
    await this.events.append(em, events);
    return state;
  }

  /** Ends a run for a reason outside its phases (budget, cancel): queued phases are skipped, leases revoked. */
  async endRun(em: EntityManager, run: RunEntity, event: 'exhaustBudget' | 'cancel' | 'failEnvironment' | 'violatePolicy' | 'reject', reason: string): Promise<boolean> {
    const t = transitionRun(run.state, event);
    if (!t.ok) return false;
    const events: NewEvent[] = [];
    const phases = await this.phases.listForRun(em, run.runId);
    for (const p of phases) {
      const phaseEvent = p.state === 'QUEUED' ? 'skip' : p.leaseToken ? 'fail' : undefined;
      if (!phaseEvent) continue;
      const pt = transitionPhase(p.state, phaseEvent, { attemptsUsed: p.attemptsUsed, maxAttempts: p.maxAttempts });
      if (!pt.ok) continue;
      const ok = await this.phases.transition(em, p.id, p.state, pt.to, {}, { clearLease: true, lastFailureReason: `run ended: ${reason}` });
      if (ok) events.push({ runId: run.runId, phaseId: p.phaseId, type: 'phase_state', payload: { from: p.state, to: pt.to, reason: `run ended: ${reason}` } });
    }
    const moved = await this.moveRun(em, run, run.state, event, reason, events);
    await this.events.append(em, events);
    await this.settle(em, { ...run, state: moved });
    return true;
  }

  /**
   * Reopens a run that ended DONE_FAILED_REQUIRES_HUMAN_REVIEW because an operator retried one
   * of its failed phases (CONTRACT.md section 6): the phases skipped because a tier failed are
   * queued again and the run goes back to PHASE_EXECUTION. `settle` then derives the tiers, and
   * skips again whatever another failure still blocks. Budgets are not reset. Returns the
   * phases queued again; a run that ended any other way is refused (409) before any write.
   */
  async reopenRun(em: EntityManager, run: RunEntity, retriedPhaseId: string): Promise<string[]> {
    if (!transitionRun(run.state, 'reopen').ok) {
      throw new DomainError('INVALID_TRANSITION', `run ${run.runId} is ${run.state}; only a run that ended DONE_FAILED_REQUIRES_HUMAN_REVIEW is reopened by a retry`, {
        run_state: run.state,
      });
    }
    const events: NewEvent[] = [];
    const requeued: string[] = [];
    for (const p of await this.phases.listForRun(em, run.runId)) {
      if (p.state !== 'SKIPPED' || p.lastFailureReason !== SKIPPED_BY_FAILED_TIER) continue;
      const t = transitionPhase(p.state, 'reopen', { attemptsUsed: p.attemptsUsed, maxAttempts: p.maxAttempts });
      if (t.ok && (await this.phases.transition(em, p.id, p.state, t.to, {}, { lastFailureReason: null }))) {
        requeued.push(p.phaseId);
        events.push({ runId: run.runId, phaseId: p.phaseId, type: 'phase_state', payload: { from: p.state, to: t.to, event: 'reopen', reason: `phase ${retriedPhaseId} was retried` } });
      }
    }
    await this.moveRun(em, run, run.state, 'reopen', null, events);
    await this.events.append(em, events);
    return requeued;
  }

  /** Applies one run event (with its hooks and events) outside a derivation, e.g. an approval. */
  async advanceRun(em: EntityManager, run: RunEntity, event: Parameters<typeof transitionRun>[1], reason: string | null = null): Promise<RunState> {
    const events: NewEvent[] = [];
    const to = await this.moveRun(em, run, run.state, event, reason, events);
    await this.events.append(em, events);
    return to;
  }

  private async moveRun(
    em: EntityManager,
    run: RunEntity,
    from: RunState,
    event: Parameters<typeof transitionRun>[1],
    reason: string | null,
    events: NewEvent[],
  ): Promise<RunState> {
    const t = transitionRun(from, event);
    if (!t.ok) return from;
    const terminal = isRunTerminal(t.to);
    const ok = await this.runs.transition(em, run.runId, from, t.to, {
      ...(terminal ? { completedAt: await this.runs.now(em) } : {}),
      // A reopened run is running again: it has no end and no failure until it ends anew.
      ...(event === 'reopen' ? { completedAt: null, failureReason: null } : {}),
      ...(reason ? { failureReason: reason } : {}),
    });
    if (!ok) return from;
    if (t.to === 'AWAITING_APPROVAL') await this.runs.setApproval(em, run.runId, { approvalState: 'pending' });
    if (t.to === 'DONE_SUCCESS') await this.issues.runSucceeded(em, run);
    events.push({ runId: run.runId, type: 'run_state', payload: { from, to: t.to, ...(reason ? { reason } : {}) } });
    return t.to;
  }

  private derivedState(tierId: string, phases: { tierId: string; state: import('@app/contracts').PhaseState }[]): TierState {
    return deriveTierState(phases.filter((p) => p.tierId === tierId).map((p) => p.state));
  }

  private failureSummary(phases: { phaseId: string; state: string; lastFailureReason: string | null }[]): string {
    const failed = phases.filter((p) => p.state === 'FAILED');
    return `phase(s) failed: ${failed.map((p) => `${p.phaseId} (${p.lastFailureReason ?? 'no reason'})`).join('; ')}`.slice(0, 2000);
  }
}
