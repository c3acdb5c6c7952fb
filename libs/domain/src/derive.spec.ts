import { needsCheckpointApproval, deriveRunOutcome, deriveTierCleanliness, deriveTierState, tiersBlockedByFailure } from './derive.js';

describe('derivations', () => {
  it.each([
    [['QUEUED', 'QUEUED'], 'PENDING'],
    [['EXECUTING', 'QUEUED'], 'IN_PROGRESS'],
    [['COMPLETE', 'QUEUED'], 'IN_PROGRESS'],
    [['COMPLETE', 'SKIPPED'], 'COMPLETE'],
    [['SKIPPED', 'SKIPPED'], 'SKIPPED'],
    [['FAILED', 'COMPLETE'], 'FAILED'],
    [['FAILED', 'QUEUED'], 'IN_PROGRESS'],
    [[], 'COMPLETE'],
  ] as const)('tier of %j is %s', (phases, tier) => {
    expect(deriveTierState(phases)).toBe(tier);
  });

  it('derives cleanliness from failures and issue tolerances', () => {
    const ok = { state: 'COMPLETE' as const, minorIssues: 1, majorIssues: 0 };
    expect(deriveTierCleanliness([ok, ok], { major: 0, minor: 2 })).toBe('clean');
    expect(deriveTierCleanliness([ok, ok, ok], { major: 0, minor: 2 })).toBe('not_clean');
    expect(deriveTierCleanliness([{ ...ok, majorIssues: 1 }], { major: 0, minor: 2 })).toBe('not_clean');
    expect(deriveTierCleanliness([{ ...ok, state: 'FAILED' }], { major: 0, minor: 2 })).toBe('not_clean');
  });

  it('derives the run outcome', () => {
    expect(deriveRunOutcome(['COMPLETE', 'IN_PROGRESS'], 'auto')).toBeNull();
    expect(deriveRunOutcome(['COMPLETE', 'COMPLETE'], 'auto')).toBe('succeed');
    expect(deriveRunOutcome(['COMPLETE', 'SKIPPED'], 'final')).toBe('awaitApproval');
    expect(deriveRunOutcome(['COMPLETE'], 'checkpoints')).toBe('awaitApproval');
    expect(deriveRunOutcome(['FAILED', 'SKIPPED'], 'auto')).toBe('failForReview');
  });

  it('skips the unfinished tiers after a failed one', () => {
    const tiers = [
      { tierId: 'b', tierIndex: 1, state: 'PENDING' as const },
      { tierId: 'a', tierIndex: 0, state: 'COMPLETE' as const },
      { tierId: 'c', tierIndex: 2, state: 'PENDING' as const },
    ];
    expect(tiersBlockedByFailure(tiers)).toEqual([]);
    const failed = [{ ...tiers[1], state: 'FAILED' as const }, tiers[0], tiers[2]];
    expect(tiersBlockedByFailure(failed).map((t) => t.tierId).sort()).toEqual(['b', 'c']);
  });
});

describe('checkpoint approvals', () => {
  const tiers = (a: 'COMPLETE' | 'IN_PROGRESS' | 'PENDING', b: 'COMPLETE' | 'PENDING') => [
    { tierId: 'a', tierIndex: 0, state: a },
    { tierId: 'b', tierIndex: 1, state: b },
  ];
  it('waits after a finished tier when later tiers remain', () => {
    expect(needsCheckpointApproval(tiers('COMPLETE', 'PENDING'), -1, false)).toEqual({ needed: true, doneThrough: 0 });
    expect(needsCheckpointApproval(tiers('COMPLETE', 'PENDING'), 0, false).needed).toBe(false);
    expect(needsCheckpointApproval(tiers('COMPLETE', 'PENDING'), -1, true).needed).toBe(false);
    expect(needsCheckpointApproval(tiers('IN_PROGRESS', 'PENDING'), -1, false).needed).toBe(false);
    expect(needsCheckpointApproval(tiers('COMPLETE', 'COMPLETE'), -1, false).needed).toBe(false);
  });
});
