import type { FailureCap } from '@app/contracts';

/** A crossed budget: which cap, and a human-readable reason naming it. */
export interface BudgetExhaustion {
  cap: FailureCap;
  reason: string;
}

/** Usage of a run against its token and cost caps. */
export interface RunUsage {
  tokensUsed: number;
  tokenCap: number;
  costUsedUsd: number;
  costCapUsd: number | null;
}

/** What a budget check needs to know about a run, at one instant. */
export interface RunBudgetSnapshot extends RunUsage {
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

/** The run's token or cost cap, when usage has reached it. Pure. */
export function runUsageExhaustion(s: RunUsage): BudgetExhaustion | null {
  if (s.tokensUsed >= s.tokenCap) return { cap: 'token_cap', reason: `token_cap exhausted: ${s.tokensUsed} of ${s.tokenCap} tokens used` };
  if (s.costCapUsd !== null && s.costUsedUsd >= s.costCapUsd) {
    return { cap: 'cost_cap_usd', reason: `cost_cap_usd exhausted: $${s.costUsedUsd.toFixed(4)} of $${s.costCapUsd.toFixed(4)} spent` };
  }
  return null;
}

/** The run's wall-time cap, when it has passed. Pure. */
export function wallTimeExhaustion(s: { elapsedMinutes: number; maxDurationMinutes: number }): BudgetExhaustion | null {
  if (s.elapsedMinutes < s.maxDurationMinutes) return null;
  return { cap: 'max_duration_minutes', reason: `max_duration_minutes exhausted: ${s.elapsedMinutes.toFixed(1)} of ${s.maxDurationMinutes} minutes elapsed` };
}

/**
 * The first run budget that is exhausted, or null. Pure. Token and cost caps are reached
 * when usage meets the cap; the phase cap stops only the start of a phase beyond it
 * (retries of started phases remain allowed).
 */
export function runBudgetExhaustion(s: RunBudgetSnapshot): BudgetExhaustion | null {
  const usage = runUsageExhaustion(s);
  if (usage) return usage;
  const wallTime = wallTimeExhaustion(s);
  if (wallTime) return wallTime;
  if (s.nextClaimStartsNewPhase && s.phasesStarted >= s.maxPhases) {
    return { cap: 'max_phases', reason: `max_phases exhausted: ${s.phasesStarted} of ${s.maxPhases} phases started` };
  }
  if (s.minorIssues > s.maxMinorIssuesTotal) {
    return { cap: 'max_minor_issues_total', reason: `max_minor_issues_total exceeded: ${s.minorIssues} of ${s.maxMinorIssuesTotal} minor issues` };
  }
  return null;
}

/** Tokens the phases of tier `tierId` used: what a tier's token cap is held to. Pure. */
export function tierTokensUsed(phases: readonly { tierId: string; tokensUsed: number }[], tierId: string): number {
  return phases.reduce((n, p) => (p.tierId === tierId ? n + p.tokensUsed : n), 0);
}

/** Tokens used by one tier against its cap. */
export interface TierTokenUsage {
  tierId: string;
  tokensUsed: number;
  tokenCap: number;
}

/**
 * The usage cap a report has crossed, checked after every fenced write: run tokens, run
 * cost, then each tier's token cap in strategy order. Pure.
 */
export function usageCapCrossed(run: RunUsage, tiers: readonly TierTokenUsage[]): BudgetExhaustion | null {
  const usage = runUsageExhaustion(run);
  if (usage) return usage;
  for (const t of tiers) {
    if (t.tokensUsed >= t.tokenCap) return { cap: 'tier_token_cap', reason: `tier ${t.tierId} token_cap exhausted: ${t.tokensUsed} of ${t.tokenCap} tokens used` };
  }
  return null;
}

/** A tier's CI-run cap, when starting one more CI run would go beyond it. Pure. */
export function ciRunExhaustion(t: { tierId: string; ciRunsUsed: number; ciRunCap: number | undefined }): BudgetExhaustion | null {
  if (t.ciRunCap === undefined || t.ciRunsUsed < t.ciRunCap) return null;
  return { cap: 'tier_ci_run_cap', reason: `tier ${t.tierId} ci_run_cap exhausted: ${t.ciRunsUsed} of ${t.ciRunCap} CI runs used` };
}

/** What is left of every budget a phase's LLM call draws on (after open reservations). */
export interface BudgetRemaining {
  tokens: number;
  cost_usd: number | null;
  phase_tokens: number;
  tier_tokens?: number;
}

/** A reservation that does not fit: the first cap it would cross, and what that cap has left. */
export interface BudgetShortfall {
  cap: 'token_cap' | 'incident_token_cap' | 'tier_token_cap' | 'cost_cap_usd';
  left: number;
}

/**
 * Whether an LLM call's worst case fits what is left: run tokens, then the phase's incident
 * cap, the tier's tokens and the run's cost. Null when it fits. Pure.
 */
export function reservationShortfall(request: { tokens: number; costUsd: number }, left: BudgetRemaining): BudgetShortfall | null {
  if (request.tokens > left.tokens) return { cap: 'token_cap', left: left.tokens };
  if (request.tokens > left.phase_tokens) return { cap: 'incident_token_cap', left: left.phase_tokens };
  if (left.tier_tokens !== undefined && request.tokens > left.tier_tokens) return { cap: 'tier_token_cap', left: left.tier_tokens };
  if (left.cost_usd !== null && request.costUsd > left.cost_usd) return { cap: 'cost_cap_usd', left: left.cost_usd };
  return null;
}
