import type { PhaseState } from '@app/contracts';

/** Events that move a phase. Imperative verbs; the supervisor is the only caller. */
export const PHASE_EVENTS = [
  'claim',
  'startCi',
  'requestAudit',
  'complete',
  'failAttempt',
  'expireLease',
  'release',
  'skip',
  'retry',
  'reopen',
  'fail',
  'deliver',
  'failDelivery',
  'redo',
] as const;
/** A phase event. */
export type PhaseEvent = (typeof PHASE_EVENTS)[number];

/**
 * `RETRY_OR_FAIL` resolves to QUEUED while attempts remain and to FAILED once the last
 * attempt is spent. `REQUEUE_OR_ABANDON` (an expired lease: the executor crashed or lost the
 * supervisor) costs no attempt; it resolves to QUEUED until the phase has been abandoned
 * `maxAbandonments` times, so a phase that kills every executor still ends.
 */
type Target = PhaseState | 'RETRY_OR_FAIL' | 'REQUEUE_OR_ABANDON';

const leasedExits = {
  complete: 'COMPLETE',
  failAttempt: 'RETRY_OR_FAIL',
  expireLease: 'REQUEUE_OR_ABANDON',
  release: 'QUEUED',
  fail: 'FAILED',
} as const satisfies Partial<Record<PhaseEvent, Target>>;

/** The phase transition table: the only place that knows which moves are legal. Terminal rows are empty. */
export const PHASE_TRANSITIONS = {
  // `deliver` and `failDelivery` end a phase the supervisor works itself (a build's deploy
  // phase: its hooks), which no executor ever claims or leases.
  QUEUED: { claim: 'EXECUTING', skip: 'SKIPPED', deliver: 'COMPLETE', failDelivery: 'FAILED' },
  EXECUTING: { startCi: 'CI_RUNNING', requestAudit: 'GATE', ...leasedExits },
  CI_RUNNING: { requestAudit: 'GATE', ...leasedExits },
  GATE: { ...leasedExits },
  // A droplet build retried from an earlier step redoes the phases of the steps after it.
  COMPLETE: { redo: 'QUEUED' },
  FAILED: { retry: 'QUEUED' },
  // Skipped because an earlier tier failed, and that tier's failed phase was retried.
  SKIPPED: { reopen: 'QUEUED' },
} as const satisfies Record<PhaseState, Partial<Record<PhaseEvent, Target>>>;

/** Attempt bookkeeping the guards need. */
export interface AttemptContext {
  attemptsUsed: number;
  maxAttempts: number;
  /** Expired leases so far (before the event); absent: never abandoned. */
  abandonments?: number;
  maxAbandonments?: number;
}

/** Result of a transition: the new state, or why it is illegal. */
export type TransitionResult<S> = { ok: true; to: S } | { ok: false; reason: string };

/** Applies a phase event. Pure: no I/O, no clock. */
export function transitionPhase(from: PhaseState, event: PhaseEvent, ctx: AttemptContext): TransitionResult<PhaseState> {
  const row: Partial<Record<PhaseEvent, Target>> = PHASE_TRANSITIONS[from];
  const target = row[event];
  if (!target) return { ok: false, reason: `phase cannot '${event}' from ${from}` };
  if (target === 'RETRY_OR_FAIL') {
    return { ok: true, to: ctx.attemptsUsed < ctx.maxAttempts ? 'QUEUED' : 'FAILED' };
  }
  if (target === 'REQUEUE_OR_ABANDON') {
    return { ok: true, to: (ctx.abandonments ?? 0) + 1 < (ctx.maxAbandonments ?? Number.POSITIVE_INFINITY) ? 'QUEUED' : 'FAILED' };
  }
  return { ok: true, to: target };
}

/**
 * Maps a requested target state of `update_status` to the event that would produce it from
 * `from`, or undefined when no event leads there. FAILED means "this attempt failed": the
 * machine decides whether that requeues or ends the phase.
 */
export function eventForRequestedPhaseState(from: PhaseState, to: PhaseState): PhaseEvent | undefined {
  switch (to) {
    case 'CI_RUNNING':
      return 'startCi';
    case 'GATE':
      return 'requestAudit';
    case 'COMPLETE':
      return 'complete';
    case 'FAILED':
      return 'failAttempt';
    case 'SKIPPED':
      return 'skip';
    case 'QUEUED':
      return from === 'FAILED' ? 'retry' : 'release';
    case 'EXECUTING':
      return from === 'QUEUED' ? 'claim' : undefined;
  }
}
