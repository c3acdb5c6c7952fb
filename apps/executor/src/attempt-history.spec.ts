import type { AttemptRecord } from '@app/contracts';
import { escalationStep, findRepeatedAttempt, isFailedAttempt } from './attempt-history.js';

const attempt = (n: number, outcome: string, over: Partial<AttemptRecord> = {}): AttemptRecord => ({
  attempt: n,
  outcome,
  reason: outcome,
  feedback: null,
  edits_hash: null,
  created_at: '2026-01-01T00:00:00.000Z',
  ...over,
});

describe('attempt history', () => {
  it('counts model failures, not expired or handed-back leases', () => {
    expect(['builder_failed', 'ci_failed', 'auditor_revise', 'failed'].map((o) => isFailedAttempt(attempt(1, o)))).toEqual([true, true, true, true]);
    expect(['complete', 'released', 'lease_expired'].map((o) => isFailedAttempt(attempt(1, o)))).toEqual([false, false, false]);
  });

  it('escalates one step per failed attempt and one more per repeated change', () => {
    expect(escalationStep([])).toBe(0);
    expect(escalationStep([attempt(1, 'ci_failed'), attempt(2, 'lease_expired')])).toBe(1);
    expect(escalationStep([attempt(1, 'ci_failed'), attempt(2, 'auditor_revise')])).toBe(2);
    expect(escalationStep([attempt(1, 'ci_failed'), attempt(2, 'builder_failed', { reason: 'repeated_edits: identical to attempt 1' })])).toBe(3);
  });

  it('finds the earliest failed attempt with the same edits hash', () => {
    const history = [
      attempt(1, 'released', { edits_hash: 'h1' }),
      attempt(2, 'ci_failed', { edits_hash: 'h1' }),
      attempt(3, 'auditor_revise', { edits_hash: 'h1' }),
      attempt(4, 'builder_failed', { edits_hash: null }),
    ];
    expect(findRepeatedAttempt(history, 'h1')?.attempt).toBe(2);
    expect(findRepeatedAttempt(history, 'h2')).toBeUndefined();
  });
});
