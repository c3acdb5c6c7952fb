import type { ApprovalMode, Cleanliness, PhaseState, RunEvent as RunEventRecord, RunState, TierState } from '@app/contracts';
import { deriveRunOutcome, deriveTierCleanliness, deriveTierState, needsCheckpointApproval, tiersBlockedByFailure } from './derive.js';
import { transitionPhase } from './phase.machine.js';
import { type RunEvent, isRunTerminal, transitionRun } from './run.machine.js';
import { type TierEvent, transitionTier } from './tier.machine.js';

/** Why settling skipped a phase: an earlier tier failed. A retry of that failure queues it again. */
export const SKIPPED_BY_FAILED_TIER = 'an earlier tier failed';

/** A phase as settling reads it. */
export interface SettlePhase {
  phaseId: string;
  tierId: string;
  state: PhaseState;
  attemptsUsed: number;
  maxAttempts: number;
  minorIssuesCount: number;
  majorIssuesCount: number;
  leased: boolean;
  lastFailureReason: string | null;
}

/** A tier as settling reads it, with the issues it tolerates (from the run's strategy). */
export interface SettleTier {
  tierId: string;
  tierIndex: number;
  state: TierState;
  maxMajorIssuesTolerated?: number;
  maxMinorIssuesTolerated?: number;
}

/** A run, its tiers and phases, read once with the run row locked. */
export interface RunSnapshot {
  state: RunState;
  approvalMode: ApprovalMode;
  approvedThroughTierIndex: number;
  /**
   * The tiers after which the run waits for approval, whatever its approval mode (a droplet
   * build's checkpoints); absent or null: the approval mode decides.
   */
  checkpointTierIndexes?: readonly number[] | null;
  tiers: readonly SettleTier[];
  phases: readonly SettlePhase[];
}

/** A guarded phase move: applied only if the phase is still `from`. */
export interface PhaseMove {
  phaseId: string;
  from: PhaseState;
  to: PhaseState;
  lastFailureReason: string | null;
  /** The move revokes the phase's lease. */
  clearLease?: boolean;
}

/** A guarded tier move. */
export interface TierMove {
  tierId: string;
  from: TierState;
  to: TierState;
}

/** A tier's derived cleanliness and issue counts, written on every settle. */
export interface TierTally {
  tierId: string;
  cleanliness: Cleanliness;
  minor: number;
  major: number;
}

/** A guarded run move, with the failure reason it records. */
export interface RunMove {
  from: RunState;
  event: RunEvent;
  to: RunState;
  reason: string | null;
}

/** An audit event to append (the run id is the caller's). */
export type SettleEvent = Extract<RunEventRecord, { type: 'phase_state' | 'tier_state' | 'run_state' }> & { phaseId?: string };

/** Everything settling changes, in the order it is applied; `events` in the order they are appended. */
export interface Settlement {
  phaseMoves: PhaseMove[];
  tierMoves: TierMove[];
  tierTallies: TierTally[];
  runMove: RunMove | null;
  events: SettleEvent[];
}

const TIER_EVENT_FOR: Record<TierState, TierEvent | undefined> = {
  PENDING: undefined,
  IN_PROGRESS: 'start',
  COMPLETE: 'complete',
  FAILED: 'fail',
  SKIPPED: 'skip',
};

function failureSummary(phases: readonly SettlePhase[]): string {
  const failed = phases.filter((p) => p.state === 'FAILED');
  return `phase(s) failed: ${failed.map((p) => `${p.phaseId} (${p.lastFailureReason ?? 'no reason'})`).join('; ')}`.slice(0, 2000);
}

/**
 * Settles a run from its phases. Pure. A failed tier blocks every later tier, whose queued
 * phases are skipped; each tier then moves to the state its phases derive (a retried phase
 * reopens a FAILED or SKIPPED tier first); and a run that is not terminal moves to its
 * outcome, to a checkpoint approval, or into execution once a phase has started.
 */
export function settleRun(run: RunSnapshot): Settlement {
  const out: Settlement = { phaseMoves: [], tierMoves: [], tierTallies: [], runMove: null, events: [] };
  const derivedState = (tierId: string, phases: readonly SettlePhase[]) => deriveTierState(phases.filter((p) => p.tierId === tierId).map((p) => p.state));

  let phases = [...run.phases];
  const blocked = tiersBlockedByFailure(run.tiers.map((t) => ({ tierId: t.tierId, tierIndex: t.tierIndex, state: derivedState(t.tierId, phases) })));
  if (blocked.length > 0) {
    const blockedIds = new Set(blocked.map((t) => t.tierId));
    phases = phases.map((p) => {
      if (!blockedIds.has(p.tierId) || p.state !== 'QUEUED') return p;
      const t = transitionPhase(p.state, 'skip', { attemptsUsed: p.attemptsUsed, maxAttempts: p.maxAttempts });
      if (!t.ok) return p;
      out.phaseMoves.push({ phaseId: p.phaseId, from: p.state, to: t.to, lastFailureReason: SKIPPED_BY_FAILED_TIER });
      out.events.push({ phaseId: p.phaseId, type: 'phase_state', payload: { from: p.state, to: t.to, reason: SKIPPED_BY_FAILED_TIER } });
      return { ...p, state: t.to, lastFailureReason: SKIPPED_BY_FAILED_TIER };
    });
  }

  const tiers = run.tiers.map((tier) => {
    const inTier = phases.filter((p) => p.tierId === tier.tierId);
    const derived = deriveTierState(inTier.map((p) => p.state));
    let current = tier.state;
    const move = (event: TierEvent) => {
      const t = transitionTier(current, event);
      if (!t.ok) return;
      out.tierMoves.push({ tierId: tier.tierId, from: current, to: t.to });
      out.events.push({ type: 'tier_state', payload: { tier_id: tier.tierId, from: current, to: t.to } });
      current = t.to;
    };
    if ((current === 'FAILED' || current === 'SKIPPED' || current === 'COMPLETE') && (derived === 'PENDING' || derived === 'IN_PROGRESS')) move('reopen');
    const event = TIER_EVENT_FOR[derived];
    if (derived !== current && event) move(event);
    out.tierTallies.push({
      tierId: tier.tierId,
      cleanliness: deriveTierCleanliness(
        inTier.map((p) => ({ state: p.state, minorIssues: p.minorIssuesCount, majorIssues: p.majorIssuesCount })),
        { major: tier.maxMajorIssuesTolerated ?? 0, minor: tier.maxMinorIssuesTolerated ?? 2 * inTier.length },
      ),
      minor: inTier.reduce((n, p) => n + p.minorIssuesCount, 0),
      major: inTier.reduce((n, p) => n + p.majorIssuesCount, 0),
    });
    return { tierId: tier.tierId, tierIndex: tier.tierIndex, state: current };
  });

  const state = run.state;
  if (isRunTerminal(state)) return out;
  const moveRun = (event: RunEvent, reason: string | null) => {
    const t = transitionRun(state, event);
    if (!t.ok) return;
    out.runMove = { from: state, event, to: t.to, reason };
    out.events.push({ type: 'run_state', payload: { from: state, to: t.to, ...(reason ? { reason } : {}) } });
  };
  const outcome = deriveRunOutcome(
    tiers.map((t) => t.state),
    run.approvalMode,
  );
  const explicit = run.checkpointTierIndexes ?? null;
  const checkpoint =
    state === 'AWAITING_APPROVAL'
      ? { needed: false, doneThrough: -1 }
      : explicit
        ? checkpointAtTiers(tiers, explicit, run.approvedThroughTierIndex, phases.some((p) => p.leased))
        : run.approvalMode === 'checkpoints'
          ? needsCheckpointApproval(tiers, run.approvedThroughTierIndex, phases.some((p) => p.leased))
          : { needed: false, doneThrough: -1 };
  if (outcome && state !== 'AWAITING_APPROVAL') moveRun(outcome, outcome === 'failForReview' ? failureSummary(phases) : null);
  else if (checkpoint.needed) moveRun('awaitApproval', null);
  else if (phases.some((p) => p.state !== 'QUEUED') && (state === 'RUN_CREATED' || state === 'PHASE_QUEUEING')) moveRun('beginExecution', null);
  return out;
}

/**
 * Whether the run must wait at one of the given checkpoint tiers: every tier through one of
 * them is done, it was not approved yet, nothing is leased, and work remains after it.
 */
export function checkpointAtTiers(
  tiers: readonly { tierIndex: number; state: string }[],
  checkpointTierIndexes: readonly number[],
  approvedThroughTierIndex: number,
  anyLeased: boolean,
): { needed: boolean; doneThrough: number } {
  const base = needsCheckpointApproval(tiers as Parameters<typeof needsCheckpointApproval>[0], approvedThroughTierIndex, anyLeased);
  const reached = checkpointTierIndexes.filter((i) => i > approvedThroughTierIndex && i <= base.doneThrough);
  const remaining = tiers.some((t) => t.tierIndex > base.doneThrough);
  return { needed: !anyLeased && remaining && reached.length > 0, doneThrough: base.doneThrough };
}

/** The events that end a run for a reason outside its phases. */
export type RunEndEvent = Extract<RunEvent, 'exhaustBudget' | 'cancel' | 'failEnvironment' | 'violatePolicy' | 'reject'>;

/** What ending a run changes: its phases, then the run; `settleRun` derives the tiers after. */
export interface RunEnd {
  phaseMoves: PhaseMove[];
  runMove: RunMove;
  events: SettleEvent[];
}

/**
 * Ends a run for a reason outside its phases (a budget, a cancel, a rejection): queued phases
 * are skipped and leased ones fail, their leases revoked. Pure. Null when the run cannot take
 * the event (it already ended).
 */
export function decideRunEnd(run: { state: RunState; phases: readonly SettlePhase[] }, event: RunEndEvent, reason: string): RunEnd | null {
  const t = transitionRun(run.state, event);
  if (!t.ok) return null;
  const out: RunEnd = { phaseMoves: [], runMove: { from: run.state, event, to: t.to, reason }, events: [] };
  const why = `run ended: ${reason}`;
  for (const p of run.phases) {
    const phaseEvent = p.state === 'QUEUED' ? 'skip' : p.leased ? 'fail' : undefined;
    if (!phaseEvent) continue;
    const pt = transitionPhase(p.state, phaseEvent, { attemptsUsed: p.attemptsUsed, maxAttempts: p.maxAttempts });
    if (!pt.ok) continue;
    out.phaseMoves.push({ phaseId: p.phaseId, from: p.state, to: pt.to, lastFailureReason: why, clearLease: true });
    out.events.push({ phaseId: p.phaseId, type: 'phase_state', payload: { from: p.state, to: pt.to, reason: why } });
  }
  out.events.push({ type: 'run_state', payload: { from: run.state, to: t.to, ...(reason ? { reason } : {}) } });
  return out;
}

/** What reopening a run changes: the phases a failed tier skipped are queued again, and the run runs again. */
export interface RunReopen {
  phaseMoves: PhaseMove[];
  runMove: RunMove;
  events: SettleEvent[];
}

/**
 * Reopens a run that ended DONE_FAILED_REQUIRES_HUMAN_REVIEW because an operator retried one
 * of its failed phases: the phases skipped because a tier failed are queued again (`settleRun`
 * skips them anew if another failure still blocks them). Pure. Null when the run ended any
 * other way: a budget, a policy, the environment or a cancel decided that, not a phase.
 */
export function decideRunReopen(run: { state: RunState; phases: readonly SettlePhase[] }, retriedPhaseId: string): RunReopen | null {
  const t = transitionRun(run.state, 'reopen');
  if (!t.ok) return null;
  const out: RunReopen = { phaseMoves: [], runMove: { from: run.state, event: 'reopen', to: t.to, reason: null }, events: [] };
  for (const p of run.phases) {
    if (p.state !== 'SKIPPED' || p.lastFailureReason !== SKIPPED_BY_FAILED_TIER) continue;
    const pt = transitionPhase(p.state, 'reopen', { attemptsUsed: p.attemptsUsed, maxAttempts: p.maxAttempts });
    if (!pt.ok) continue;
    out.phaseMoves.push({ phaseId: p.phaseId, from: p.state, to: pt.to, lastFailureReason: null });
    out.events.push({ phaseId: p.phaseId, type: 'phase_state', payload: { from: p.state, to: pt.to, event: 'reopen', reason: `phase ${retriedPhaseId} was retried` } });
  }
  out.events.push({ type: 'run_state', payload: { from: run.state, to: t.to } });
  return out;
}
