import { PHASE_STATES, type PhaseState } from '@app/contracts';
import { PHASE_EVENTS, type PhaseEvent, eventForRequestedPhaseState, transitionPhase } from './phase.machine.js';

// Written out by hand (not read from the table) so a change to the table fails here.
const LEGAL: Record<string, PhaseState | 'retry-or-fail' | 'requeue-or-abandon'> = {
  'QUEUED:claim': 'EXECUTING',
  'QUEUED:skip': 'SKIPPED',
  'EXECUTING:startCi': 'CI_RUNNING',
  'EXECUTING:requestAudit': 'GATE',
  'CI_RUNNING:requestAudit': 'GATE',
  'FAILED:retry': 'QUEUED',
  'SKIPPED:reopen': 'QUEUED',
  // The supervisor's own phase (a build's deploy) ends from QUEUED; a retried build redoes completed phases.
  'QUEUED:deliver': 'COMPLETE',
  'QUEUED:failDelivery': 'FAILED',
  'COMPLETE:redo': 'QUEUED',
};
for (const s of ['EXECUTING', 'CI_RUNNING', 'GATE']) {
  LEGAL[`${s}:complete`] = 'COMPLETE';
  LEGAL[`${s}:failAttempt`] = 'retry-or-fail';
  LEGAL[`${s}:expireLease`] = 'requeue-or-abandon';
  LEGAL[`${s}:release`] = 'QUEUED';
  LEGAL[`${s}:fail`] = 'FAILED';
}

describe('phase machine', () => {
  const pairs = PHASE_STATES.flatMap((s) => PHASE_EVENTS.map((e) => [s, e] as [PhaseState, PhaseEvent]));

  it('covers every (state, event) pair', () => {
    expect(pairs).toHaveLength(7 * 14);
  });

  it.each(pairs)('%s + %s', (state, event) => {
    const expected = LEGAL[`${state}:${event}`];
    const withAttemptsLeft = transitionPhase(state, event, { attemptsUsed: 1, maxAttempts: 3 });
    const exhausted = transitionPhase(state, event, { attemptsUsed: 3, maxAttempts: 3 });
    if (!expected) {
      expect(withAttemptsLeft.ok).toBe(false);
      expect(exhausted.ok).toBe(false);
    } else if (expected === 'retry-or-fail') {
      expect(withAttemptsLeft).toEqual({ ok: true, to: 'QUEUED' });
      expect(exhausted).toEqual({ ok: true, to: 'FAILED' });
    } else if (expected === 'requeue-or-abandon') {
      // Attempts do not matter to an expired lease; only how often the phase was abandoned.
      expect(withAttemptsLeft).toEqual({ ok: true, to: 'QUEUED' });
      expect(exhausted).toEqual({ ok: true, to: 'QUEUED' });
      expect(transitionPhase(state, event, { attemptsUsed: 3, maxAttempts: 3, abandonments: 8, maxAbandonments: 10 })).toEqual({ ok: true, to: 'QUEUED' });
      expect(transitionPhase(state, event, { attemptsUsed: 0, maxAttempts: 3, abandonments: 9, maxAbandonments: 10 })).toEqual({ ok: true, to: 'FAILED' });
    } else {
      expect(withAttemptsLeft).toEqual({ ok: true, to: expected });
      expect(exhausted).toEqual({ ok: true, to: expected });
    }
  });

  it('maps requested states to events', () => {
    expect(eventForRequestedPhaseState('FAILED', 'QUEUED')).toBe('retry');
    expect(eventForRequestedPhaseState('EXECUTING', 'QUEUED')).toBe('release');
    expect(eventForRequestedPhaseState('GATE', 'FAILED')).toBe('failAttempt');
    expect(eventForRequestedPhaseState('GATE', 'EXECUTING')).toBeUndefined();
  });
});
