import type { Complexity, PhaseStrategy, SafetyProfile } from '@app/contracts';

/** Lease expiries a phase survives unless a ruleset says otherwise (CONTRACT.md section 3). */
export const DEFAULT_MAX_ABANDONMENTS = 10;

/** Defaults of one task category (v7 StrategyEngine `CategoryDefaults`). */
export interface CategoryDefaults {
  complexity: Complexity;
  ciProfile: 'normal' | 'strict';
  maxBuilderAttempts: number;
  maxAuditorAttempts: number;
  /**
   * Lease expiries a phase survives: a crash is no attempt of the model, but a phase that kills
   * every executor that takes it must end, as FAILED with the reason `abandoned`.
   */
  maxAbandonments: number;
  incidentTokenCap: number;
  autoApply: boolean;
  auditorProfile: string | null;
  defaultSeverity: 'minor' | 'major';
  /** Tier minor-issue tolerance multiplier (per phase). */
  tierMinorMultiplier: number;
}

const generic: CategoryDefaults = {
  complexity: 'medium',
  ciProfile: 'normal',
  maxBuilderAttempts: 3,
  maxAuditorAttempts: 2,
  maxAbandonments: DEFAULT_MAX_ABANDONMENTS,
  incidentTokenCap: 500_000,
  autoApply: true,
  auditorProfile: null,
  defaultSeverity: 'minor',
  tierMinorMultiplier: 2,
};

const highRisk = (
  maxBuilderAttempts: number,
  maxAuditorAttempts: number,
  incidentTokenCap: number,
  tierMinorMultiplier: number,
  auditorProfile: string,
): CategoryDefaults => ({
  complexity: 'high',
  ciProfile: 'strict',
  maxBuilderAttempts,
  maxAuditorAttempts,
  maxAbandonments: DEFAULT_MAX_ABANDONMENTS,
  incidentTokenCap,
  autoApply: false,
  auditorProfile,
  defaultSeverity: 'major',
  tierMinorMultiplier,
});

/**
 * The single high-risk registry: strategy, model routing, dual audit and the quality gate
 * all ask `isHighRiskCategory`, so the original's four diverging lists cannot recur.
 */
export const HIGH_RISK_CATEGORY_DEFAULTS: Readonly<Record<string, CategoryDefaults>> = {
  cross_cutting_refactor: highRisk(2, 2, 1_000_000, 1, 'refactor_review'),
  index_registry_change: highRisk(2, 2, 800_000, 1, 'index_review'),
  schema_contract_change: highRisk(2, 3, 1_000_000, 1, 'schema_review'),
  bulk_multi_file_operation: highRisk(1, 2, 1_500_000, 1, 'bulk_review'),
  security_auth_change: highRisk(2, 3, 800_000, 0.5, 'security_review'),
  external_feature_reuse: highRisk(2, 2, 1_000_000, 1, 'external_code_review'),
  external_code_intake: highRisk(2, 3, 1_200_000, 0.5, 'license_and_security_review'),
};

/** Normal categories (v7 `NORMAL_CATEGORY_DEFAULTS`). */
export const NORMAL_CATEGORY_DEFAULTS: Readonly<Record<string, CategoryDefaults>> = {
  feature_scaffolding: { ...generic },
  docs: { ...generic, complexity: 'low', maxBuilderAttempts: 2, maxAuditorAttempts: 1, incidentTokenCap: 200_000 },
  tests: { ...generic, complexity: 'low', maxBuilderAttempts: 3, maxAuditorAttempts: 1, incidentTokenCap: 300_000 },
  debt_cleanup: {
    ...generic,
    maxBuilderAttempts: 2,
    maxAuditorAttempts: 1,
    incidentTokenCap: 400_000,
    autoApply: false,
    auditorProfile: 'debt_cleanup_review',
  },
};

/** The v7 spec's task-category names, mapped to the table keys (the original silently missed these). */
export const TASK_CATEGORY_ALIASES: Readonly<Record<string, string>> = {
  schema_change: 'schema_contract_change',
  index_registry_maintenance: 'index_registry_change',
  bulk_operation: 'bulk_multi_file_operation',
  security_auth: 'security_auth_change',
};


/** Resolves a task category (or alias) to its table key; unknown categories resolve to `generic`. */
export function resolveCategory(taskCategory: string | null | undefined): string {
  if (!taskCategory) return 'generic';
  const key = TASK_CATEGORY_ALIASES[taskCategory] ?? taskCategory;
  return key in HIGH_RISK_CATEGORY_DEFAULTS || key in NORMAL_CATEGORY_DEFAULTS ? key : 'generic';
}

/** True for the high-risk categories (after alias resolution). */
export function isHighRiskCategory(taskCategory: string | null | undefined): boolean {
  return resolveCategory(taskCategory) in HIGH_RISK_CATEGORY_DEFAULTS;
}

/** A per-project override of category defaults, stored by the supervisor. */
export type StrategyRuleset = Partial<Record<string, Partial<CategoryDefaults>>>;

/** Looks up the defaults of a category, with a project ruleset layered on top. */
export function categoryDefaults(taskCategory: string | null | undefined, ruleset: StrategyRuleset = {}): CategoryDefaults {
  const key = resolveCategory(taskCategory);
  const base = HIGH_RISK_CATEGORY_DEFAULTS[key] ?? NORMAL_CATEGORY_DEFAULTS[key] ?? generic;
  return { ...base, ...(ruleset[key] ?? {}) };
}

/** The phase fields the strategy reads. */
export interface StrategyPhaseInput {
  phaseId: string;
  tierId: string;
  taskCategory?: string | null;
  complexity?: Complexity | null;
}

/** Run-level budgets compiled at run start. */
export interface CompiledRunBudgets {
  tokenCap: number;
  maxPhases: number;
  maxDurationMinutes: number;
  maxMinorIssuesTotal: number;
}

/** Tier-level budgets compiled at run start. */
export interface CompiledTierBudgets {
  tokenCap: number;
  ciRunCap: number;
  maxMinorIssuesTolerated: number;
  maxMajorIssuesTolerated: number;
}

/** The whole compiled strategy of a run: persisted at start, enforced, and returned with each claim. */
export interface CompiledStrategy {
  safetyProfile: SafetyProfile;
  agingThresholds: { runs: number; tiers: number };
  run: CompiledRunBudgets;
  tiers: Record<string, CompiledTierBudgets>;
  phases: Record<string, PhaseStrategy>;
}

/** Aging thresholds per safety profile: a minor issue seen this often becomes effectively major. */
export const AGING_THRESHOLDS: Readonly<Record<SafetyProfile, { runs: number; tiers: number }>> = {
  normal: { runs: 3, tiers: 2 },
  safety_critical: { runs: 2, tiers: 1 },
};

/** Run budget defaults of the v7 ruleset. */
export const RUN_BUDGET_DEFAULTS = { tokenCap: 5_000_000, maxPhases: 25, maxDurationMinutes: 120 } as const;

/**
 * Compiles the strategy of a run (v7 `compile_strategy`, with its bugs fixed: phases keep
 * their tier, aliases resolve, and the safety profile changes tier tolerances).
 */
export function compileStrategy(input: {
  safetyProfile: SafetyProfile;
  phases: readonly StrategyPhaseInput[];
  tierIds: readonly string[];
  run?: Partial<Omit<CompiledRunBudgets, 'maxMinorIssuesTotal'>>;
  ruleset?: StrategyRuleset;
}): CompiledStrategy {
  const ruleset = input.ruleset ?? {};
  const phases: Record<string, PhaseStrategy> = {};
  for (const p of input.phases) {
    const d = categoryDefaults(p.taskCategory, ruleset);
    const high = isHighRiskCategory(p.taskCategory);
    phases[p.phaseId] = {
      task_category: p.taskCategory ?? 'generic',
      resolved_category: resolveCategory(p.taskCategory),
      high_risk: high,
      complexity: p.complexity ?? d.complexity,
      max_builder_attempts: d.maxBuilderAttempts,
      max_auditor_attempts: d.maxAuditorAttempts,
      max_abandonments: d.maxAbandonments,
      incident_token_cap: d.incidentTokenCap,
      ci_profile: d.ciProfile,
      auditor_profile: d.auditorProfile,
      auto_apply: d.autoApply,
      dual_audit: high,
      default_severity: d.defaultSeverity,
    };
  }
  const tiers: Record<string, CompiledTierBudgets> = {};
  for (const tierId of input.tierIds) {
    const inTier = input.phases.filter((p) => p.tierId === tierId);
    const caps = inTier.reduce((n, p) => n + phases[p.phaseId].incident_token_cap, 0);
    const minorPerPhase = input.safetyProfile === 'safety_critical' ? 1 : 2;
    tiers[tierId] = {
      tokenCap: Math.floor(3 * caps),
      ciRunCap: 2 * inTier.length,
      maxMinorIssuesTolerated: minorPerPhase * inTier.length,
      maxMajorIssuesTolerated: 0,
    };
  }
  return {
    safetyProfile: input.safetyProfile,
    agingThresholds: AGING_THRESHOLDS[input.safetyProfile],
    run: {
      tokenCap: input.run?.tokenCap ?? RUN_BUDGET_DEFAULTS.tokenCap,
      maxPhases: input.run?.maxPhases ?? RUN_BUDGET_DEFAULTS.maxPhases,
      maxDurationMinutes: input.run?.maxDurationMinutes ?? RUN_BUDGET_DEFAULTS.maxDurationMinutes,
      maxMinorIssuesTotal: 3 * input.phases.length,
    },
    tiers,
    phases,
  };
}
