import type { ApprovalMode, Cleanliness, PhaseState, TierState } from '@app/contracts';

const FINISHED: readonly PhaseState[] = ['COMPLETE', 'FAILED', 'SKIPPED'];

/**
 * The state a tier should be in, derived from its phases. Pure; the supervisor applies the
 * result with a guarded update in the same transaction as the phase change that caused it.
 */
export function deriveTierState(phaseStates: readonly PhaseState[]): TierState {
  if (phaseStates.length === 0) return 'COMPLETE';
  if (phaseStates.every((s) => s === 'SKIPPED')) return 'SKIPPED';
  if (phaseStates.every((s) => s === 'COMPLETE' || s === 'SKIPPED')) return 'COMPLETE';
  if (phaseStates.every((s) => FINISHED.includes(s))) return 'FAILED';
  if (phaseStates.some((s) => s !== 'QUEUED')) return 'IN_PROGRESS';
  return 'PENDING';
}

/** Issue counts of a phase, for cleanliness. */
export interface PhaseIssueCounts {
  state: PhaseState;
  minorIssues: number;
  majorIssues: number;
}

/**
 * A tier is clean when no phase failed, it has no more major issues than tolerated (v7: 0)
 * and no more minor issues than tolerated.
 */
export function deriveTierCleanliness(
  phases: readonly PhaseIssueCounts[],
  tolerated: { major: number; minor: number },
): Cleanliness {
  const failed = phases.some((p) => p.state === 'FAILED');
  const major = phases.reduce((n, p) => n + p.majorIssues, 0);
  const minor = phases.reduce((n, p) => n + p.minorIssues, 0);
  return failed || major > tolerated.major || minor > tolerated.minor ? 'not_clean' : 'clean';
}

/** What a run's tiers say about the run. */
export type RunOutcome = 'succeed' | 'failForReview' | 'awaitApproval' | null;

/**
 * The outcome of a run once its tiers are settled: every tier complete means success (or
 * waiting for approval in `final` and `checkpoints` modes); every tier settled with one
 * failed means a human has to look. Null while work remains.
 */
export function deriveRunOutcome(tierStates: readonly TierState[], approvalMode: ApprovalMode): RunOutcome {
  const settled = tierStates.every((s) => s === 'COMPLETE' || s === 'FAILED' || s === 'SKIPPED');
  if (!settled) return null;
  if (tierStates.some((s) => s === 'FAILED')) return 'failForReview';
  return approvalMode === 'auto' ? 'succeed' : 'awaitApproval';
}

/** A tier with its index, for ordering decisions. */
export interface IndexedTier {
  tierId: string;
  tierIndex: number;
  state: TierState;
}

/** Tiers that can never run because an earlier tier failed: they are skipped. */
export function tiersBlockedByFailure(tiers: readonly IndexedTier[]): IndexedTier[] {
  const failedIndex = Math.min(...tiers.filter((t) => t.state === 'FAILED').map((t) => t.tierIndex));
  if (!Number.isFinite(failedIndex)) return [];
  return tiers.filter((t) => t.tierIndex > failedIndex && (t.state === 'PENDING' || t.state === 'IN_PROGRESS'));
}

/**
 * In `checkpoints` mode a run waits for approval after each tier: true when a tier finished
 * beyond the last approved one while later tiers remain and nothing is in flight.
 */
export function needsCheckpointApproval(tiers: readonly IndexedTier[], approvedThroughTierIndex: number, anyLeased: boolean): { needed: boolean; doneThrough: number } {
  const ordered = [...tiers].sort((a, b) => a.tierIndex - b.tierIndex);
  let doneThrough = -1;
  for (const t of ordered) {
    if (t.state !== 'COMPLETE' && t.state !== 'SKIPPED') break;
    doneThrough = t.tierIndex;
  }
  const remaining = ordered.some((t) => t.tierIndex > doneThrough);
  return { needed: !anyLeased && remaining && doneThrough > approvedThroughTierIndex, doneThrough };
}
