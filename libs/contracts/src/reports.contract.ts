import { z } from 'zod';
import { IdSchema, ProjectIdQuerySchema } from './ids.js';
import { ApprovalModeSchema, PhaseStateSchema, RunStateSchema, SafetyProfileSchema, TierStateSchema } from './states.js';
import { CategoryOverrideSchema } from './strategy.contract.js';

/*
 * Response bodies of the read routes (the original Autopack's report shapes) and the query
 * strings they take. The supervisor documents its routes with these schemas (OpenAPI), and a
 * test parses live answers with them, so a field the services stop returning shows up.
 */

const isoTime = z.string();
const count = z.number().int();

/** `GET /runs` 200: one page of runs, newest first. */
export const RunListResponseSchema = z.object({
  runs: z.array(
    z.object({
      id: z.string(),
      run_id: z.string(),
      state: RunStateSchema,
      created_at: isoTime,
      completed_at: isoTime.nullable(),
      tokens_used: z.number(),
      token_cap: z.number(),
      phases_total: count,
      phases_completed: count,
      current_phase_name: z.string().nullable(),
      failure_reason: z.string().nullable(),
    }),
  ),
  total: count,
  limit: count,
  offset: count,
});
/** `GET /runs` response. */
export type RunListResponse = z.infer<typeof RunListResponseSchema>;

/** `GET /runs/{run_id}/issues/index` 200: the run's issues by key. */
export const RunIssueIndexResponseSchema = z.object({
  run_id: z.string(),
  issues_by_key: z.record(
    z.string(),
    z.object({
      category: z.string(),
      severity: z.string(),
      effective_severity: z.string(),
      source: z.string(),
      first_phase_index: count,
      last_phase_index: count,
      occurrence_count: count,
      seen_in_tiers: z.array(z.string()),
      seen_in_phases: z.array(z.string()),
      status: z.string(),
    }),
  ),
});
/** `GET /runs/{run_id}/issues/index` response. */
export type RunIssueIndexResponse = z.infer<typeof RunIssueIndexResponseSchema>;

/** `GET /project/issues/backlog` query. */
export const ProjectBacklogQuerySchema = z.strictObject({ project_id: ProjectIdQuerySchema.default('default') });

/** `GET /project/issues/backlog` 200: the project's backlog with aging. */
export const ProjectBacklogResponseSchema = z.object({
  project_id: z.string(),
  issues_by_key: z.record(
    z.string(),
    z.object({
      category: z.string(),
      base_severity: z.string(),
      effective_severity: z.string(),
      age_in_runs: count,
      age_in_tiers: count,
      occurrence_count: count,
      first_seen_run_id: z.string(),
      last_seen_run_id: z.string(),
      last_seen_at: isoTime.nullable(),
      seen_in_runs: z.array(z.string()),
      seen_in_tiers: z.array(z.string()),
      status: z.enum(['open', 'needs_cleanup', 'resolved']),
      resolved_by_run_id: z.string().nullable(),
    }),
  ),
});
/** `GET /project/issues/backlog` response. */
export type ProjectBacklogResponse = z.infer<typeof ProjectBacklogResponseSchema>;

/** `GET /runs/{run_id}/integration_status` 200: the run's integration branch. */
export const IntegrationStatusResponseSchema = z.object({
  branch: z.string(),
  exists: z.boolean(),
  commits_ahead_of_base: count,
  current_commit: z.string().nullable(),
  base_branch: z.string(),
  /** `repository` when read from a local checkout, `reported` when derived from the executors' reports. */
  source: z.enum(['repository', 'reported']),
});
/** `GET /runs/{run_id}/integration_status` response. */
export type IntegrationStatusResponse = z.infer<typeof IntegrationStatusResponseSchema>;

/** `GET /metrics/runs` query. */
export const RunMetricsQuerySchema = z.strictObject({ status: RunStateSchema.optional() });

/** `GET /metrics/runs` 200. */
export const RunMetricsResponseSchema = z.object({
  total_runs: count,
  runs: z.array(
    z.object({
      run_id: z.string(),
      state: RunStateSchema,
      safety_profile: SafetyProfileSchema,
      tokens_used: z.number(),
      token_cap: z.number(),
      token_utilization: z.number(),
      cost_used_usd: z.number(),
      cost_cap_usd: z.number().nullable(),
      minor_issues_count: count,
      major_issues_count: count,
      max_minor_issues_total: count,
      phase_count: count,
      tier_count: count,
      ci_runs_used: count,
      failure_reason: z.string().nullable(),
      started_at: isoTime.nullable(),
      completed_at: isoTime.nullable(),
    }),
  ),
});
/** `GET /metrics/runs` response. */
export type RunMetricsResponse = z.infer<typeof RunMetricsResponseSchema>;

/** `GET /metrics/tiers/{run_id}` 200. */
export const TierMetricsResponseSchema = z.object({
  run_id: z.string(),
  tier_count: count,
  tiers: z.array(
    z.object({
      tier_id: z.string(),
      tier_index: count,
      name: z.string(),
      state: TierStateSchema,
      cleanliness: z.enum(['clean', 'not_clean']),
      minor_issues_count: count,
      major_issues_count: count,
      phase_count: count,
      /** Phases of the tier per state. */
      phase_states: z.record(z.string(), count),
      tokens_used: z.number(),
      token_cap: z.number().nullable(),
      ci_runs_used: count,
      ci_run_cap: count.nullable(),
    }),
  ),
});
/** `GET /metrics/tiers/{run_id}` response. */
export type TierMetricsResponse = z.infer<typeof TierMetricsResponseSchema>;

/** `GET /reports/issue_backlog_summary` query (no project: every project's backlog). */
export const BacklogSummaryQuerySchema = z.strictObject({ project_id: ProjectIdQuerySchema.optional() });

const BacklogSummaryEntrySchema = z.object({
  issue_key: z.string(),
  project_id: z.string(),
  category: z.string(),
  base_severity: z.string(),
  effective_severity: z.string(),
  age_in_runs: count,
  age_in_tiers: count,
  status: z.enum(['open', 'needs_cleanup', 'resolved']),
  seen_in_tiers: z.array(z.string()),
  first_seen_run_id: z.string(),
  last_seen_run_id: z.string(),
});

/** `GET /reports/issue_backlog_summary` 200. */
export const BacklogSummaryResponseSchema = z.object({
  total_issues: count,
  open_count: count,
  needs_cleanup_count: count,
  resolved_count: count,
  effectively_major_count: count,
  /** `[issue_key, entry]` pairs, oldest first (the original's shape). */
  top_aging_issues: z.array(z.tuple([z.string(), BacklogSummaryEntrySchema])),
  needs_cleanup: z.array(BacklogSummaryEntrySchema),
});
/** `GET /reports/issue_backlog_summary` response. */
export type BacklogSummaryResponse = z.infer<typeof BacklogSummaryResponseSchema>;

const BudgetRunViewSchema = z.object({
  run_id: z.string(),
  state: RunStateSchema,
  failure_reason: z.string().nullable(),
  tokens_used: z.number(),
  token_cap: z.number(),
  token_utilization: z.number(),
  cost_used_usd: z.number(),
  cost_cap_usd: z.number().nullable(),
  phase_count: count,
  max_phases: count,
  minor_issues: count,
  max_minor_issues_total: count,
});

/** `GET /reports/budget_analysis` 200. */
export const BudgetAnalysisResponseSchema = z.object({
  total_runs: count,
  budget_exhausted_count: count,
  /** Budget-exhausted runs per cap that stopped them. */
  budget_exhausted_by_cap: z.record(z.string(), count),
  budget_exhausted_runs: z.array(BudgetRunViewSchema),
  average_token_utilization: z.number(),
  total_tokens_used: z.number(),
  total_cost_usd: z.number(),
  runs: z.array(BudgetRunViewSchema),
});
/** `GET /reports/budget_analysis` response. */
export type BudgetAnalysisResponse = z.infer<typeof BudgetAnalysisResponseSchema>;

/** `GET /reports/run_summary/{run_id}` 200. */
export const RunSummaryResponseSchema = z.object({
  llm: z.object({
    calls: count,
    prompt_tokens: z.number(),
    completion_tokens: z.number(),
    cached_tokens: z.number(),
    cache_hit_share: z.number(),
    cost_usd: z.number(),
  }),
  llm_calls_by_model: z.array(
    z.object({
      role: z.string(),
      provider: z.string(),
      model: z.string(),
      calls: count,
      failed_calls: count,
      prompt_tokens: z.number(),
      completion_tokens: z.number(),
      cost_usd: z.number(),
      duration_ms: z.number(),
    }),
  ),
  run_id: z.string(),
  state: RunStateSchema,
  safety_profile: SafetyProfileSchema,
  run_scope: z.string(),
  approval_mode: ApprovalModeSchema,
  approval_state: z.enum(['not_required', 'pending', 'approved', 'rejected']),
  failure_reason: z.string().nullable(),
  debt_status: z.string().nullable(),
  budgets: z.object({
    tokens_used: z.number(),
    token_cap: z.number(),
    token_utilization: z.number(),
    cost_used_usd: z.number(),
    cost_cap_usd: z.number().nullable(),
    phase_count: count,
    max_phases: count,
    ci_runs_used: count,
  }),
  issues: z.object({
    minor_count: count,
    major_count: count,
    max_min_total: count,
    distinct_issues: count,
  }),
  tiers: z.array(
    z.object({
      tier_id: z.string(),
      name: z.string(),
      state: TierStateSchema,
      cleanliness: z.enum(['clean', 'not_clean']),
      phase_count: count,
      minor_issues: count,
      major_issues: count,
      tokens_used: z.number(),
    }),
  ),
  phases: z.array(
    z.object({
      phase_id: z.string(),
      phase_index: count,
      name: z.string(),
      state: PhaseStateSchema,
      task_category: z.string().nullable(),
      complexity: z.string().nullable(),
      attempts: count,
      max_attempts: count,
      abandonments: count,
      max_abandonments: count,
      builder_attempts: count,
      auditor_attempts: count,
      tokens_used: z.number(),
      minor_issues: count,
      major_issues: count,
      commit_sha: z.string().nullable(),
      last_failure_reason: z.string().nullable(),
    }),
  ),
  started_at: isoTime.nullable(),
  completed_at: isoTime.nullable(),
});
/** `GET /reports/run_summary/{run_id}` response. */
export type RunSummaryResponse = z.infer<typeof RunSummaryResponseSchema>;

/** `GET` and `PUT /projects/{project_id}/ruleset` 200: the stored overrides of a project. */
export const ProjectRulesetResponseSchema = z.object({
  project_id: IdSchema,
  categories: z.record(z.string(), CategoryOverrideSchema),
});
/** A project ruleset as answered. */
export type ProjectRulesetResponse = z.infer<typeof ProjectRulesetResponseSchema>;

/** `GET /runs/{run_id}/events` query. */
export const RunEventsQuerySchema = z.strictObject({
  /** Resume after this event id (else `Last-Event-ID`, else from the start). */
  after: z.coerce.number().int().min(0).optional(),
  /** `false`: send what exists and end the stream. */
  follow: z.enum(['true', 'false']).default('true'),
});

/** `GET /health` 200 (503 with `database: "down"`). */
export const HealthResponseSchema = z.object({
  status: z.enum(['ok', 'unavailable']),
  database: z.enum(['up', 'down']),
  version: z.string(),
});
/** `GET /health` response. */
export type HealthResponse = z.infer<typeof HealthResponseSchema>;

/** `GET /capabilities` 200: what this supervisor supports, for executors and operators. */
export const CapabilitiesResponseSchema = z.object({
  version: z.string(),
  approval_modes: z.array(ApprovalModeSchema),
  safety_profiles: z.array(SafetyProfileSchema),
  providers: z.array(z.enum(['openai', 'anthropic'])),
  task_categories: z.object({
    normal: z.array(z.string()),
    high_risk: z.array(z.string()),
    aliases: z.record(z.string(), z.string()),
  }),
  llm_tools: z.array(z.string()),
  limits: z.object({
    lease_seconds: count,
    max_claim_wait_ms: count,
    max_body_bytes: count,
    max_phases_per_run: count,
    max_tiers_per_run: count,
    max_parallel_phases: count,
  }),
  auth: z.object({ api_key_required: z.boolean() }),
});
/** `GET /capabilities` response. */
export type CapabilitiesResponse = z.infer<typeof CapabilitiesResponseSchema>;
