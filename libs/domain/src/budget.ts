/** What a budget check needs to know about a run, at one instant. */
export interface RunBudgetSnapshot {
  tokensUsed: number;
  tokenCap: number;
  costUsedUsd: number;
  costCapUsd: number | null;
  elapsedMinutes: number;
  maxDurationMinutes: number;
  /** Phases that have been claimed at least once. */
  phasesStarted: number;
  maxPhases: number;
  /** True when the next claim would start a phase never tried before. */
  nextClaimStartsNewPhase: boolean;
  minorIssues: number;
  maxMinorIssuesTotal: number;
}

/** A crossed budget: which cap, and a human-readable reason naming it. */
export interface BudgetExhaustion {
  cap: 'token_cap' | 'cost_cap_usd' | 'max_duration_minutes' | 'max_phases' | 'max_minor_issues_total';
  reason: string;
}

/**
 * The first run budget that is exhausted, or null. Pure. Token and cost caps are reached
 * when usage meets the cap; the phase cap stops only the start of a phase beyond it
 * (retries of started phases remain allowed).
 */
export function runBudgetExhaustion(s: RunBudgetSnapshot): BudgetExhaustion | null {
  if (s.tokensUsed >= s.tokenCap) return { cap: 'token_cap', reason: `token_cap exhausted: ${s.tokensUsed} of ${s.tokenCap} tokens used` };
  if (s.costCapUsd !== null && s.costUsedUsd >= s.costCapUsd) {
    return { cap: 'cost_cap_usd', reason: `cost_cap_usd exhausted: $${s.costUsedUsd.toFixed(4)} of $${s.costCapUsd.toFixed(4)} spent` };
  }
  if (s.elapsedMinutes >= s.maxDurationMinutes) {
    return { cap: 'max_duration_minutes', reason: `max_duration_minutes exhausted: ${s.elapsedMinutes.toFixed(1)} of ${s.maxDurationMinutes} minutes elapsed` };
  }
  if (s.nextClaimStartsNewPhase && s.phasesStarted >= s.maxPhases) {
    return { cap: 'max_phases', reason: `max_phases exhausted: ${s.phasesStarted} of ${s.maxPhases} phases started` };
  }
  if (s.minorIssues > s.maxMinorIssuesTotal) {
    return { cap: 'max_minor_issues_total', reason: `max_minor_issues_total exceeded: ${s.minorIssues} of ${s.maxMinorIssuesTotal} minor issues` };
  }
  return null;
}
