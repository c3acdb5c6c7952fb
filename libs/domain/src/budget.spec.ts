import { type RunBudgetSnapshot, runBudgetExhaustion } from './budget.js';

const base: RunBudgetSnapshot = {
  tokensUsed: 0,
  tokenCap: 1000,
  costUsedUsd: 0,
  costCapUsd: null,
  elapsedMinutes: 0,
  maxDurationMinutes: 120,
  phasesStarted: 0,
  maxPhases: 25,
  nextClaimStartsNewPhase: true,
  minorIssues: 0,
  maxMinorIssuesTotal: 9,
};

describe('runBudgetExhaustion', () => {
  it('is null within every cap', () => expect(runBudgetExhaustion(base)).toBeNull());
  it.each([
    [{ tokensUsed: 1000 }, 'token_cap'],
    [{ costCapUsd: 1, costUsedUsd: 1.2 }, 'cost_cap_usd'],
    [{ elapsedMinutes: 121 }, 'max_duration_minutes'],
    [{ phasesStarted: 25 }, 'max_phases'],
    [{ minorIssues: 10 }, 'max_minor_issues_total'],
  ] as const)('%j crosses %s', (change, cap) => {
    const r = runBudgetExhaustion({ ...base, ...change });
    expect(r?.cap).toBe(cap);
    expect(r?.reason).toContain(cap);
  });
  it('lets started phases retry at the phase cap', () => {
    expect(runBudgetExhaustion({ ...base, phasesStarted: 25, nextClaimStartsNewPhase: false })).toBeNull();
  });
});
