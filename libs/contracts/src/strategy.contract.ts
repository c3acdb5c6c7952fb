import { z } from 'zod';

/** The compiled per-phase strategy slice, persisted at run start and returned with each claim. */
export const PhaseStrategySchema = z.object({
  task_category: z.string(),
  resolved_category: z.string(),
  high_risk: z.boolean(),
  complexity: z.enum(['low', 'medium', 'high']),
  max_builder_attempts: z.number().int(),
  max_auditor_attempts: z.number().int(),
  /** Lease expiries (a crashed or cut-off executor) after which the phase ends FAILED `abandoned`; absent in runs started before it existed. */
  max_abandonments: z.number().int().optional(),
  incident_token_cap: z.number().int(),
  ci_profile: z.enum(['normal', 'strict']),
  auditor_profile: z.string().nullable(),
  auto_apply: z.boolean(),
  dual_audit: z.boolean(),
  default_severity: z.enum(['minor', 'major']),
});
/** A compiled per-phase strategy slice. */
export type PhaseStrategy = z.infer<typeof PhaseStrategySchema>;

/** What is left of the run's budgets at claim time, so an executor can stop early. */
export const BudgetLeftSchema = z.object({
  tokens: z.number(),
  cost_usd: z.number().nullable(),
  phase_tokens: z.number(),
  tier_tokens: z.number().optional(),
  minutes: z.number(),
  ci_runs: z.number().int(),
});
/** What is left of the budgets. */
export type BudgetLeft = z.infer<typeof BudgetLeftSchema>;

/** One category's overrides in a project ruleset (snake_case over the wire). */
export const CategoryOverrideSchema = z.strictObject({
  complexity: z.enum(['low', 'medium', 'high']).optional(),
  ci_profile: z.enum(['normal', 'strict']).optional(),
  max_builder_attempts: z.number().int().min(1).max(20).optional(),
  max_auditor_attempts: z.number().int().min(1).max(20).optional(),
  max_abandonments: z.number().int().min(1).max(100).optional(),
  incident_token_cap: z.number().int().min(1000).max(100_000_000).optional(),
  auto_apply: z.boolean().optional(),
  auditor_profile: z.string().max(100).nullable().optional(),
  default_severity: z.enum(['minor', 'major']).optional(),
});

/** `PUT /projects/{project_id}/ruleset` body: per-category overrides of the strategy table. */
export const ProjectRulesetSchema = z.strictObject({
  categories: z.record(z.string().regex(/^[a-z0-9_]{1,64}$/), CategoryOverrideSchema),
});
/** A project ruleset. */
export type ProjectRuleset = z.infer<typeof ProjectRulesetSchema>;
