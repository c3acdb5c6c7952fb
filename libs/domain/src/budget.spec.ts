import { type RunBudgetSnapshot, ciRunExhaustion, reservationShortfall, runBudgetExhaustion, tierTokensUsed, usageCapCrossed, wallTimeExhaustion } from './budget.js';

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

describe('usageCapCrossed', () => {
  const run = { tokensUsed: 0, tokenCap: 1000, costUsedUsd: 0, costCapUsd: null };
  const tier = { tierId: 't1', tokensUsed: 0, tokenCap: 500 };
  it.each([
    ['within every cap', run, [tier], null, null],
    ['run tokens at the cap', { ...run, tokensUsed: 1000 }, [tier], 'token_cap', 'token_cap exhausted: 1000 of 1000 tokens used'],
    ['run cost at the cap', { ...run, costCapUsd: 0.5, costUsedUsd: 0.5 }, [tier], 'cost_cap_usd', 'cost_cap_usd exhausted: $0.5000 of $0.5000 spent'],
    ['a tier at its cap', run, [{ ...tier, tokensUsed: 500 }], 'tier_token_cap', 'tier t1 token_cap exhausted: 500 of 500 tokens used'],
    ['run tokens before a tier', { ...run, tokensUsed: 1000 }, [{ ...tier, tokensUsed: 500 }], 'token_cap', 'token_cap exhausted: 1000 of 1000 tokens used'],
  ] as const)('%s', (_name, r, tiers, cap, reason) => {
    const crossed = usageCapCrossed(r, tiers);
    expect(crossed ? crossed : null).toEqual(cap === null ? null : { cap, reason });
  });
});

describe('wallTimeExhaustion', () => {
  it.each([
    [119.9, null],
    [120, 'max_duration_minutes exhausted: 120.0 of 120 minutes elapsed'],
    [130.26, 'max_duration_minutes exhausted: 130.3 of 120 minutes elapsed'],
  ] as const)('after %d minutes: %s', (elapsedMinutes, reason) => {
    expect(wallTimeExhaustion({ elapsedMinutes, maxDurationMinutes: 120 })).toEqual(reason === null ? null : { cap: 'max_duration_minutes', reason });
  });
});

describe('ciRunExhaustion', () => {
  it.each([
    [0, 2, null],
    [1, 2, null],
    [2, 2, 'tier t1 ci_run_cap exhausted: 2 of 2 CI runs used'],
    [5, undefined, null],
  ] as const)('%d CI runs used of %s', (ciRunsUsed, ciRunCap, reason) => {
    expect(ciRunExhaustion({ tierId: 't1', ciRunsUsed, ciRunCap })).toEqual(reason === null ? null : { cap: 'tier_ci_run_cap', reason });
  });
});

describe('reservationShortfall', () => {
  const left = { tokens: 1000, cost_usd: 1, phase_tokens: 800, tier_tokens: 600 };
  it.each([
    ['fits', { tokens: 600, costUsd: 1 }, left, null],
    ['beyond the run tokens', { tokens: 1001, costUsd: 0 }, left, { cap: 'token_cap', left: 1000 }],
    ['beyond the incident cap', { tokens: 801, costUsd: 0 }, left, { cap: 'incident_token_cap', left: 800 }],
    ['beyond the tier tokens', { tokens: 601, costUsd: 0 }, left, { cap: 'tier_token_cap', left: 600 }],
    ['beyond the cost', { tokens: 1, costUsd: 1.01 }, left, { cap: 'cost_cap_usd', left: 1 }],
    ['no cost cap', { tokens: 1, costUsd: 99 }, { ...left, cost_usd: null }, null],
    ['no tier figure', { tokens: 700, costUsd: 0 }, { tokens: 1000, cost_usd: null, phase_tokens: 800 }, null],
  ] as const)('%s', (_name, request, l, shortfall) => {
    expect(reservationShortfall(request, l)).toEqual(shortfall);
  });
});

describe('tierTokensUsed', () => {
  const phases = [
    { tierId: 't1', tokensUsed: 100 },
    { tierId: 't2', tokensUsed: 40 },
    { tierId: 't1', tokensUsed: 25 },
  ];
  it.each([
    ['t1', 125],
    ['t2', 40],
    ['t3', 0],
  ])('tier %s used %i tokens', (tierId, tokens) => {
    expect(tierTokensUsed(phases, tierId)).toBe(tokens);
  });
});
