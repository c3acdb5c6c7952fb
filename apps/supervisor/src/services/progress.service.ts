import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { DomainError, type FailureCap, type PhaseKind, type PhaseState, type RunState, type TierState } from '@app/contracts';
import {
  type BudgetExhaustion,
  type RunEndEvent,
  type RunMove,
  type SettlePhase,
  decideRunEnd,
  decideRunReopen,
  isRunTerminal,
  settleRun,
  transitionRun,
} from '@app/domain';
import type { RunEntity } from '../entities/index.js';
import { EventRepository, type NewEvent, PhaseRepository, type PhaseStateRow, RunRepository, TierRepository, type TierStateRow } from '../repositories/index.js';
import { IssueService } from './issue.service.js';

/** A run as a settle left it: what listeners (a build's orchestration) follow. */
export interface SettledRun {
  run: RunEntity;
  state: RunState;
  tiers: { tierId: string; tierIndex: number; state: TierState }[];
  phases: { phaseId: string; kind: PhaseKind; state: PhaseState }[];
}

/** Called inside the settling transaction, the run row locked. */
export type SettleListener = (em: EntityManager, settled: SettledRun) => Promise<void>;

/** Channel on which the supervisor announces that a run may have claimable work. */
export const CLAIMABLE_CHANNEL = 'autopack_claimable';
/**
 * Channel for a run's new events that make nothing claimable (a claim of a serial run): event
 * streams wake on it, claim waiters do not.
 */
export const RUN_EVENTS_CHANNEL = 'autopack_run_events';

/**
 * Cascades phase changes into tier and run state. Always called inside the transaction
 * that changed a phase, with the run row locked, so each derivation happens exactly once.
 */
@Injectable()
export class ProgressService {
  private readonly listeners: SettleListener[] = [];

  constructor(
    private readonly runs: RunRepository,
    private readonly tiers: TierRepository,
    private readonly phases: PhaseRepository,
    private readonly events: EventRepository,
    private readonly issues: IssueService,
  ) {}

  /** Registers a listener of every settle (called in its transaction, after its moves). */
  onSettled(listener: SettleListener): void {
    this.listeners.push(listener);
  }

  /**
   * Re-derives tiers and the run from the phases: reads the run's snapshot once, lets the
   * domain decide (`settleRun`) and applies every move as a guarded write. `run` must be
   * locked by the caller, so a guarded write that finds its row moved is a bug: STALE_STATE.
   */
  async settle(em: EntityManager, run: RunEntity): Promise<RunState> {
    return (await this.settleWithSnapshot(em, run)).state;
  }

  /**
   * `settle`, also returning the phases and tiers as it left them, so the rest of the write
   * reads neither again (tiers' states may lag behind the moves; their usage figures do not).
   */
  async settleWithSnapshot(
    em: EntityManager,
    run: RunEntity,
    /** The run's phases and tiers as they are now, when the caller just read them and knows what it changed since (the claim). */
    known?: { phases: PhaseStateRow[]; tiers: TierStateRow[] },
    /** A NOTIFY to send with the settle's read (delivered on commit either way). */
    notify?: { channel: string; payload: string },
  ): Promise<{ state: RunState; phases: PhaseStateRow[]; tiers: TierStateRow[] }> {
    const { phases, tiers } = known ?? (await this.phases.readSnapshot(em, run.runId, notify));
    if (known && notify) await this.events.notify(em, notify.channel, notify.payload);
    const settlement = settleRun({
      state: run.state,
      approvalMode: run.approvalMode,
      approvedThroughTierIndex: run.approvedThroughTierIndex,
      checkpointTierIndexes: run.checkpointTiers,
      tiers: tiers.map((t) => ({
        tierId: t.tierId,
        tierIndex: t.tierIndex,
        state: t.state,
        maxMajorIssuesTolerated: run.strategy.tiers[t.tierId]?.maxMajorIssuesTolerated,
        maxMinorIssuesTolerated: run.strategy.tiers[t.tierId]?.maxMinorIssuesTolerated,
      })),
      phases: phases.map(settlePhase),
    });
    const phaseRow = new Map(phases.map((p) => [p.phaseId, p.id]));
    const tierRow = new Map(tiers.map((t) => [t.tierId, t]));
    for (const m of settlement.phaseMoves) {
      if (!(await this.phases.transition(em, phaseRow.get(m.phaseId)!, m.from, m.to, {}, { lastFailureReason: m.lastFailureReason }))) throw stale();
    }
    for (const m of settlement.tierMoves) {
      if (!(await this.tiers.transition(em, tierRow.get(m.tierId)!.id, m.from, m.to))) throw stale();
    }
    // Derived figures are written only when they changed: most writes change none of them.
    for (const t of settlement.tierTallies) {
      const row = tierRow.get(t.tierId)!;
      if (row.cleanliness !== t.cleanliness || row.minorIssuesCount !== t.minor || row.majorIssuesCount !== t.major) await this.tiers.updateDerived(em, row.id, t);
    }
    const minor = phases.reduce((n, p) => n + p.minorIssuesCount, 0);
    const major = phases.reduce((n, p) => n + p.majorIssuesCount, 0);
    if (minor !== run.minorIssuesCount || major !== run.majorIssuesCount) {
      await this.runs.setIssueCounts(em, run.runId, { minor, major });
      // A later settle of this transaction compares with what is stored now.
      run.minorIssuesCount = minor;
      run.majorIssuesCount = major;
    }
    if (settlement.runMove && !(await this.applyRunMove(em, run, settlement.runMove))) throw stale();
    if (settlement.events.length > 0) await this.events.append(em, settlement.events.map((e) => ({ runId: run.runId, ...e })));
    const state = settlement.runMove?.to ?? run.state;
    if (this.listeners.length > 0 && run.checkpointTiers !== null && run.checkpointTiers !== undefined) {
      const tierTo = new Map(settlement.tierMoves.map((m) => [m.tierId, m.to]));
      const phaseTo = new Map(settlement.phaseMoves.map((m) => [m.phaseId, m.to]));
      const settled: SettledRun = {
        run,
        state,
        tiers: tiers.map((t) => ({ tierId: t.tierId, tierIndex: t.tierIndex, state: tierTo.get(t.tierId) ?? t.state })),
        phases: phases.map((p) => ({ phaseId: p.phaseId, kind: p.kind, state: phaseTo.get(p.phaseId) ?? p.state })),
      };
      for (const listener of this.listeners) await listener(em, settled);
    }
    const moved = new Map(settlement.phaseMoves.map((m) => [m.phaseId, m.to]));
    return { state, tiers, phases: moved.size === 0 ? phases : phases.map((p) => ({ ...p, state: moved.get(p.phaseId) ?? p.state })) };
  }

  /** Ends a run on a crossed budget, storing the cap that ended it. */
  async exhaustBudget(em: EntityManager, run: RunEntity, exhaustion: BudgetExhaustion): Promise<boolean> {
    return this.endRun(em, run, 'exhaustBudget', exhaustion.reason, exhaustion.cap);
  }

  /**
   * Ends a run for a reason outside its phases (budget, cancel, rejection): `decideRunEnd`
   * skips queued phases and fails leased ones, then the run is settled. False when the run
   * had already ended. `run` must be locked by the caller.
   */
  async endRun(em: EntityManager, run: RunEntity, event: RunEndEvent, reason: string, cap: FailureCap | null = null): Promise<boolean> {
    const phases = await this.phases.listStates(em, run.runId);
    const end = decideRunEnd({ state: run.state, phases: phases.map(settlePhase) }, event, reason);
    if (!end) return false;
    const phaseRow = new Map(phases.map((p) => [p.phaseId, p.id]));
    for (const m of end.phaseMoves) {
      if (!(await this.phases.transition(em, phaseRow.get(m.phaseId)!, m.from, m.to, {}, { clearLease: m.clearLease, lastFailureReason: m.lastFailureReason }))) throw stale();
    }
    if (!(await this.applyRunMove(em, run, end.runMove, cap))) throw stale();
    await this.events.append(em, end.events.map((e) => ({ runId: run.runId, ...e })));
    await this.settle(em, { ...run, state: end.runMove.to });
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
    const phases = await this.phases.listStates(em, run.runId);
    const reopen = decideRunReopen({ state: run.state, phases: phases.map(settlePhase) }, retriedPhaseId);
    if (!reopen) {
      throw new DomainError('INVALID_TRANSITION', `run ${run.runId} is ${run.state}; only a run that ended DONE_FAILED_REQUIRES_HUMAN_REVIEW is reopened by a retry`, {
        run_state: run.state,
      });
    }
    const phaseRow = new Map(phases.map((p) => [p.phaseId, p.id]));
    for (const m of reopen.phaseMoves) {
      if (!(await this.phases.transition(em, phaseRow.get(m.phaseId)!, m.from, m.to, {}, { lastFailureReason: m.lastFailureReason }))) throw stale();
    }
    if (!(await this.applyRunMove(em, run, reopen.runMove))) throw stale();
    await this.events.append(em, reopen.events.map((e) => ({ runId: run.runId, ...e })));
    return reopen.phaseMoves.map((m) => m.phaseId);
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
    const move: RunMove = { from, event, to: t.to, reason };
    if (!(await this.applyRunMove(em, run, move))) return from;
    events.push({ runId: run.runId, type: 'run_state', payload: { from, to: t.to, ...(reason ? { reason } : {}) } });
    return t.to;
  }

  /** One guarded run write with the hooks of its target state; false when the run was no longer `from`. */
  private async applyRunMove(em: EntityManager, run: RunEntity, move: RunMove, cap: FailureCap | null = null): Promise<boolean> {
    const terminal = isRunTerminal(move.to);
    const ok = await this.runs.transition(em, run.runId, move.from, move.to, {
      ...(terminal ? { completedAt: await this.runs.now(em) } : {}),
      // A reopened run is running again: it has no end and no failure until it ends anew.
      ...(move.event === 'reopen' ? { completedAt: null, failureReason: null, failureCap: null } : {}),
      ...(move.reason ? { failureReason: move.reason } : {}),
      ...(cap ? { failureCap: cap } : {}),
    });
    if (!ok) return false;
    if (move.to === 'AWAITING_APPROVAL') await this.runs.setApproval(em, run.runId, { approvalState: 'pending' });
    if (move.to === 'DONE_SUCCESS') await this.issues.runSucceeded(em, run);
    return true;
  }
}

/** A phase as the domain's settlement reads it. */
function settlePhase(p: PhaseStateRow): SettlePhase {
  return {
    phaseId: p.phaseId,
    tierId: p.tierId,
    state: p.state,
    attemptsUsed: p.attemptsUsed,
    maxAttempts: p.maxAttempts,
    minorIssuesCount: p.minorIssuesCount,
    majorIssuesCount: p.majorIssuesCount,
    leased: p.leaseToken !== null,
    lastFailureReason: p.lastFailureReason,
  };
}

function stale(): DomainError {
  return new DomainError('STALE_STATE', 'the run changed concurrently');
}
