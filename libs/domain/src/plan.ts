import { type CiSpec, RelativePathSchema, type SafetyProfile, type SubmitPlanArgs } from '@app/contracts';
import {
  HIGH_RISK_CATEGORY_DEFAULTS,
  NORMAL_CATEGORY_DEFAULTS,
  type StrategyRuleset,
  TASK_CATEGORY_ALIASES,
  categoryDefaults,
  compileStrategy,
  isHighRiskCategory,
} from './strategy.js';

/** A planner's plan: the `submit_plan` arguments (`POST /runs/start` without `run`). */
export type Plan = SubmitPlanArgs;

/** What the planned phases may still spend: the build run's budgets minus what it has used (the planning included). */
export interface PlanBudgets {
  /** Tokens left of the run's `token_cap`. */
  tokensLeft: number;
  /** USD left of the run's `cost_cap_usd`, or null when the run has no cost cap. */
  costLeftUsd: number | null;
  /** Phases the plan may hold (the run's `max_phases`, minus phases the run already has). */
  maxPhases: number;
}

/** What a plan is checked against besides its own content. */
export interface PlanValidationContext {
  budgets: PlanBudgets;
  /** The run's safety profile (default `normal`); it changes no per-phase cap today, but the strategy is compiled with it. */
  safetyProfile?: SafetyProfile;
  /** The project's ruleset: its overrides change incident caps and CI profiles. */
  ruleset?: StrategyRuleset;
  /** The run's default CI command, used by phases without one of their own. */
  runCi?: CiSpec | null;
  /**
   * The highest price, in USD per million tokens (input or output, whichever is higher), of
   * any model the planned phases may be routed to. The cost cap is checked only when it is
   * given: prices are the executor's model-routing knowledge, not the plan's.
   */
  worstCaseUsdPerMTok?: number;
  /** Ids the run already uses (the planning step's tier and phase): the plan must not reuse them. */
  takenIds?: { tierIds?: readonly string[]; phaseIds?: readonly string[] };
  /** A build verifies with the plan's CI command(s): then at least one phase (or the run) must have one. */
  requireCi?: boolean;
}

/** The most a plan can spend, by the caps the supervisor enforces. */
export interface PlanWorstCase {
  /** The sum of the phases' incident token caps. */
  tokens: number;
  /** `tokens` priced at `worstCaseUsdPerMTok`, or null without a price. */
  costUsd: number | null;
  phases: number;
}

/** A plan that passed every rule, with its worst case. */
export interface ValidPlan {
  ok: true;
  plan: Plan;
  worstCase: PlanWorstCase;
}

/** A plan that failed: every problem, each a sentence naming the tier, phase or cap it is about. */
export interface InvalidPlan {
  ok: false;
  problems: string[];
}

/** One row of the category table a planner chooses from. */
export interface PlanningCategory {
  category: string;
  /** Other names the category is known by (the v7 spec's names). */
  aliases: string[];
  highRisk: boolean;
  complexity: 'low' | 'medium' | 'high';
  ciProfile: 'normal' | 'strict';
  /** A phase of this category needs a CI command (its own, or the run's). */
  needsCi: boolean;
  maxBuilderAttempts: number;
  /** The most tokens one phase of this category may use, over all its attempts. */
  incidentTokenCap: number;
}

/** The category an absent `task_category` means. */
export const GENERIC_CATEGORY = 'generic';

/**
 * Whether a CI profile needs a CI command. A strict profile verifies every change (the
 * quality gate blocks a high-risk strict phase without CI); a plan must not promise one it
 * cannot keep, so a strict phase without a command is a planning problem, whatever its category.
 */
export function ciProfileNeedsCommand(profile: 'normal' | 'strict'): boolean {
  return profile === 'strict';
}

/** The category table (normal, high-risk, then `generic`) with a project's ruleset applied. */
export function planningCategories(ruleset: StrategyRuleset = {}): PlanningCategory[] {
  const names = [...Object.keys(NORMAL_CATEGORY_DEFAULTS), ...Object.keys(HIGH_RISK_CATEGORY_DEFAULTS), GENERIC_CATEGORY];
  return names.map((category) => {
    const d = categoryDefaults(category, ruleset);
    return {
      category,
      aliases: Object.entries(TASK_CATEGORY_ALIASES)
        .filter(([, key]) => key === category)
        .map(([alias]) => alias),
      highRisk: isHighRiskCategory(category),
      complexity: d.complexity,
      ciProfile: d.ciProfile,
      needsCi: ciProfileNeedsCommand(d.ciProfile),
      maxBuilderAttempts: d.maxBuilderAttempts,
      incidentTokenCap: d.incidentTokenCap,
    };
  });
}

/** True for a table key, an alias, or `generic`; the strategy would silently treat anything else as `generic`. */
export function isKnownCategory(category: string): boolean {
  return category === GENERIC_CATEGORY || category in TASK_CATEGORY_ALIASES || category in NORMAL_CATEGORY_DEFAULTS || category in HIGH_RISK_CATEGORY_DEFAULTS;
}

/**
 * Why a scope path is not a relative path inside the repository, or null. The rules of
 * `RelativePathSchema` (the `POST /runs/start` schema), plus what libs/git refuses at commit
 * time: empty and `.` segments, and `.git` in the spellings a file system folds to it
 * (`.GIT`, `.git.`, `git~1`). One trailing `/` is allowed: it marks a directory prefix.
 */
export function scopePathProblem(p: string): string | null {
  const parsed = RelativePathSchema.safeParse(p);
  if (!parsed.success) return parsed.error.issues.map((i) => i.message).join('; ');
  const segments = (p.endsWith('/') ? p.slice(0, -1) : p).split('/');
  if (segments.some((s) => s === '')) return 'must not contain an empty segment';
  if (segments.some((s) => s === '.')) return 'must not contain a "." segment';
  if (segments.some((s) => /^(\.git|git~\d+)$/.test(s.replace(/[. ]+$/, '').toLowerCase()))) return 'must not touch .git';
  return null;
}

/**
 * The worst case of a plan. The exact bound the supervisor enforces on a phase is its
 * incident token cap: every LLM call is admitted only if it fits what is left of it, over all
 * the phase's attempts (max attempts x a per-attempt size is no cap anything enforces, and
 * each tier's cap is three times its phases' caps, so it never binds first). The plan's worst
 * case is therefore the sum of its phases' incident caps, as the strategy compiles them
 * (category defaults with the project's ruleset). Cost is that many tokens at the highest
 * price a phase may be routed to; wall time is not estimated (no phase has a duration cap).
 */
export function planWorstCase(plan: Plan, ctx: Pick<PlanValidationContext, 'safetyProfile' | 'ruleset' | 'worstCaseUsdPerMTok'>): PlanWorstCase {
  const strategy = compileStrategy({
    safetyProfile: ctx.safetyProfile ?? 'normal',
    tierIds: [...new Set(plan.tiers.map((t) => t.tier_id))],
    phases: plan.phases.map((p) => ({ phaseId: p.phase_id, tierId: p.tier_id, taskCategory: p.task_category, complexity: p.complexity })),
    ruleset: ctx.ruleset,
  });
  const tokens = plan.phases.reduce((n, p) => n + strategy.phases[p.phase_id].incident_token_cap, 0);
  return {
    tokens,
    costUsd: ctx.worstCaseUsdPerMTok === undefined ? null : (tokens / 1_000_000) * ctx.worstCaseUsdPerMTok,
    phases: plan.phases.length,
  };
}

function repeated<T>(values: readonly T[]): T[] {
  const counts = new Map<T, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].filter(([, n]) => n > 1).map(([v]) => v);
}

const quote = (s: string) => JSON.stringify(s);

/**
 * Checks a plan before any of its phases is queued, and names every problem (not the first
 * only), so the planner's next attempt can fix them all. Pure. The rules:
 * - tier ids, tier indexes and phase ids are unique, and none is already used by the run;
 * - every phase's tier is in the plan;
 * - task categories are known (a table key, an alias, or `generic`);
 * - scope paths (`paths` and `read_only_context`) are relative paths inside the repository;
 * - a phase whose category's CI profile needs CI has a command (its own or the run's), and
 *   with `requireCi` the plan has at least one;
 * - the worst case fits the run: phases within `maxPhases`, the sum of incident token caps
 *   within the tokens left, and (with a price) its cost within the cost left.
 */
export function validatePlan(plan: Plan, ctx: PlanValidationContext): ValidPlan | InvalidPlan {
  const problems: string[] = [];

  for (const id of repeated(plan.tiers.map((t) => t.tier_id))) problems.push(`tier id ${quote(id)} is used by more than one tier`);
  for (const index of repeated(plan.tiers.map((t) => t.tier_index))) {
    const ids = plan.tiers.filter((t) => t.tier_index === index).map((t) => t.tier_id);
    problems.push(`tier index ${index} is used by more than one tier (${ids.join(', ')})`);
  }
  for (const id of repeated(plan.phases.map((p) => p.phase_id))) problems.push(`phase id ${quote(id)} is used by more than one phase`);
  const takenTiers = new Set(ctx.takenIds?.tierIds ?? []);
  const takenPhases = new Set(ctx.takenIds?.phaseIds ?? []);
  for (const t of plan.tiers) if (takenTiers.has(t.tier_id)) problems.push(`tier id ${quote(t.tier_id)} is already used by the run`);
  for (const p of plan.phases) if (takenPhases.has(p.phase_id)) problems.push(`phase id ${quote(p.phase_id)} is already used by the run`);

  const tierIds = new Set(plan.tiers.map((t) => t.tier_id));
  for (const p of plan.phases) {
    if (!tierIds.has(p.tier_id)) problems.push(`phase ${p.phase_id}: tier ${quote(p.tier_id)} is not in the plan`);
  }

  const known = planningCategories(ctx.ruleset).map((c) => c.category);
  for (const p of plan.phases) {
    if (p.task_category !== undefined && !isKnownCategory(p.task_category)) {
      problems.push(`phase ${p.phase_id}: unknown task category ${quote(p.task_category)} (known: ${known.join(', ')})`);
    }
  }

  for (const p of plan.phases) {
    for (const [field, paths] of [
      ['scope.paths', p.scope?.paths ?? []],
      ['scope.read_only_context', p.scope?.read_only_context ?? []],
    ] as const) {
      for (const path of paths) {
        const problem = scopePathProblem(path);
        if (problem) problems.push(`phase ${p.phase_id}: ${field} ${quote(path)} is not a relative path inside the repository: ${problem}`);
      }
    }
  }

  const runHasCi = ctx.runCi !== undefined && ctx.runCi !== null;
  for (const p of plan.phases) {
    if (p.task_category !== undefined && !isKnownCategory(p.task_category)) continue;
    const d = categoryDefaults(p.task_category, ctx.ruleset);
    if (ciProfileNeedsCommand(d.ciProfile) && !p.ci && !runHasCi) {
      problems.push(`phase ${p.phase_id}: category ${p.task_category ?? GENERIC_CATEGORY} has the ${d.ciProfile} CI profile and needs a CI command (ci)`);
    }
  }
  if (ctx.requireCi && !runHasCi && !plan.phases.some((p) => p.ci)) {
    problems.push('the plan has no CI command: a build is verified with its plan\'s CI command, so at least one phase needs ci');
  }

  const worstCase = planWorstCase(plan, ctx);
  const { budgets } = ctx;
  if (plan.phases.length > budgets.maxPhases) {
    problems.push(`the plan has ${plan.phases.length} phase${plan.phases.length === 1 ? '' : 's'}, more than the ${budgets.maxPhases} the run's max_phases allows`);
  }
  if (worstCase.tokens > budgets.tokensLeft) {
    problems.push(
      `the plan's worst case is ${worstCase.tokens} tokens (the sum of its phases' incident token caps), more than the ${budgets.tokensLeft} tokens left of the run's token_cap`,
    );
  }
  if (worstCase.costUsd !== null && budgets.costLeftUsd !== null && worstCase.costUsd > budgets.costLeftUsd) {
    problems.push(
      `the plan's worst case costs $${worstCase.costUsd.toFixed(4)} (${worstCase.tokens} tokens at $${ctx.worstCaseUsdPerMTok} per million), more than the $${budgets.costLeftUsd.toFixed(4)} left of the run's cost_cap_usd`,
    );
  }

  return problems.length ? { ok: false, problems } : { ok: true, plan, worstCase };
}

/** The feedback a failed plan carries to the planner's next attempt: every problem, one per line. */
export function planProblemsFeedback(problems: readonly string[]): string {
  return `Your previous plan was rejected; fix every problem:\n${problems.map((p) => `- ${p}`).join('\n')}`;
}
