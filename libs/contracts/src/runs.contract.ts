import { z } from 'zod';
import { BranchNameSchema, CapabilitySchema, IdSchema, RelativePathSchema } from './ids.js';
import { LIMITS } from './limits.js';
import {
  ApprovalModeSchema,
  ComplexitySchema,
  PhaseStateSchema,
  RunStateSchema,
  SafetyProfileSchema,
  TierStateSchema,
} from './states.js';

const text = (max: number) => z.string().max(max);

/** A CI command for a phase (or a run's default). */
export const CiSpecSchema = z.strictObject({
  command: z.string().min(1).max(4000),
  timeout_s: z.number().int().min(1).max(24 * 3600).optional(),
});
/** A CI command spec. */
export type CiSpec = z.infer<typeof CiSpecSchema>;

/** Which files a phase may change (`paths`, directory prefixes allowed) and may read (`read_only_context`). */
export const PhaseScopeSchema = z.strictObject({
  paths: z.array(RelativePathSchema).max(500).optional(),
  read_only_context: z.array(RelativePathSchema).max(500).optional(),
});
/** A phase scope. */
export type PhaseScope = z.infer<typeof PhaseScopeSchema>;

/** `run` part of `POST /runs/start`. */
export const RunCreateSchema = z.strictObject({
  run_id: IdSchema,
  safety_profile: SafetyProfileSchema.optional(),
  run_scope: z.enum(['single_tier', 'multi_tier']).optional(),
  token_cap: z.number().int().min(1).max(1_000_000_000).optional(),
  max_phases: z.number().int().min(1).max(LIMITS.maxPhasesPerRun).optional(),
  max_duration_minutes: z.number().int().min(1).max(7 * 24 * 60).optional(),
  cost_cap_usd: z.number().min(0).max(1_000_000).optional(),
  approval_mode: ApprovalModeSchema.optional(),
  base_branch: BranchNameSchema.optional(),
  repo_url: z.string().min(1).max(2000).optional(),
  project_id: IdSchema.optional(),
  ci: CiSpecSchema.optional(),
  protected_paths: z.array(RelativePathSchema).max(200).optional(),
  /** Phases of this run that may be leased at the same time (default 1: commits are serialized). */
  max_parallel_phases: z.number().int().min(1).max(LIMITS.maxParallelPhases).optional(),
  /** Add a debt-cleanup phase for aged backlog issues of the project (default true). */
  schedule_debt_cleanup: z.boolean().optional(),
});
/** Run creation fields. */
export type RunCreate = z.infer<typeof RunCreateSchema>;

/** A tier in `POST /runs/start`. */
export const TierCreateSchema = z.strictObject({
  tier_id: IdSchema,
  tier_index: z.number().int().min(0).max(10_000),
  name: z.string().min(1).max(200),
  description: text(10_000).optional(),
});
/** A tier creation body. */
export type TierCreate = z.infer<typeof TierCreateSchema>;

/** A phase in `POST /runs/start`. */
export const PhaseCreateSchema = z.strictObject({
  phase_id: IdSchema,
  phase_index: z.number().int().min(0).max(100_000),
  tier_id: IdSchema,
  name: z.string().min(1).max(200),
  description: text(20_000).optional(),
  task_category: z.string().min(1).max(64).regex(/^[a-z0-9_]+$/, 'snake_case').optional(),
  complexity: ComplexitySchema.optional(),
  builder_mode: z.enum(['full_file', 'structured_edit', 'auto']).optional(),
  scope: PhaseScopeSchema.optional(),
  acceptance_criteria: z.array(z.string().min(1).max(2000)).max(100).optional(),
  ci: CiSpecSchema.optional(),
  allow_mass_deletion: z.boolean().optional(),
  allow_mass_addition: z.boolean().optional(),
  /** Capabilities an executor must have to be handed this phase (CONTRACT.md section 9); none: any executor. */
  requires: z.array(CapabilitySchema).max(10).optional(),
});
/** A phase creation body. */
export type PhaseCreate = z.infer<typeof PhaseCreateSchema>;

/** `POST /runs/start` body. */
export const RunStartRequestSchema = z.strictObject({
  run: RunCreateSchema,
  tiers: z.array(TierCreateSchema).min(1).max(LIMITS.maxTiersPerRun),
  phases: z.array(PhaseCreateSchema).min(1).max(LIMITS.maxPhasesPerRun),
});
/** `POST /runs/start` body. */
export type RunStartRequest = z.infer<typeof RunStartRequestSchema>;

/** `GET /runs` query. */
export const ListRunsQuerySchema = z.strictObject({
  state: RunStateSchema.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});
/** `GET /runs` query. */
export type ListRunsQuery = z.infer<typeof ListRunsQuerySchema>;

/** A phase as returned by the API. */
export const PhaseResponseSchema = z.object({
  id: z.number().int(),
  phase_id: z.string(),
  tier_id: z.string(),
  phase_index: z.number().int(),
  name: z.string(),
  description: z.string().nullable(),
  state: PhaseStateSchema,
  task_category: z.string().nullable(),
  complexity: z.string().nullable(),
  builder_mode: z.string().nullable(),
  scope: PhaseScopeSchema.nullable(),
  acceptance_criteria: z.array(z.string()),
  ci: CiSpecSchema.nullable(),
  attempts_used: z.number().int(),
  max_attempts: z.number().int(),
  /** Leases that expired (crashed or cut-off executors): not attempts; at `max_abandonments` the phase ends FAILED `abandoned`. */
  abandonments: z.number().int(),
  max_abandonments: z.number().int(),
  builder_attempts: z.number().int(),
  auditor_attempts: z.number().int(),
  tokens_used: z.number(),
  minor_issues_count: z.number().int(),
  major_issues_count: z.number().int(),
  quality_level: z.string().nullable(),
  last_failure_reason: z.string().nullable(),
  commit_sha: z.string().nullable(),
  /** Capabilities an executor needs to take the phase. */
  requires: z.array(z.string()),
  /** A queued phase no live executor can take: the capabilities missing (CONTRACT.md section 9); null otherwise. */
  waiting_for_capabilities: z.array(z.string()).nullable(),
  files_changed: z.array(z.string()),
  lines_added: z.number().int(),
  lines_removed: z.number().int(),
  lease_owner: z.string().nullable(),
  lease_expires_at: z.string().nullable(),
});
/** A phase as returned by the API. */
export type PhaseResponse = z.infer<typeof PhaseResponseSchema>;

/** A tier as returned by the API. */
export const TierResponseSchema = z.object({
  id: z.number().int(),
  tier_id: z.string(),
  tier_index: z.number().int(),
  name: z.string(),
  description: z.string().nullable(),
  state: TierStateSchema,
  cleanliness: z.enum(['clean', 'not_clean']),
  minor_issues_count: z.number().int(),
  major_issues_count: z.number().int(),
  tokens_used: z.number(),
  phases: z.array(PhaseResponseSchema),
});
/** A tier as returned by the API. */
export type TierResponse = z.infer<typeof TierResponseSchema>;

/** Budget usage and what is left. */
export const BudgetsSchema = z.object({
  tokens_used: z.number(),
  token_cap: z.number(),
  tokens_left: z.number(),
  cost_used_usd: z.number(),
  cost_cap_usd: z.number().nullable(),
  cost_left_usd: z.number().nullable(),
  phases: z.number().int(),
  max_phases: z.number().int(),
  ci_runs_used: z.number().int(),
  minor_issues_count: z.number().int(),
  max_minor_issues_total: z.number().int(),
  elapsed_minutes: z.number(),
  max_duration_minutes: z.number().int(),
  minutes_left: z.number(),
});
/** Budget usage and what is left. */
export type Budgets = z.infer<typeof BudgetsSchema>;

/** A run as returned by `GET /runs/{id}` and `POST /runs/start`. */
export const RunResponseSchema = z.object({
  id: z.string(),
  run_id: z.string(),
  state: RunStateSchema,
  safety_profile: SafetyProfileSchema,
  run_scope: z.string(),
  approval_mode: ApprovalModeSchema,
  base_branch: z.string(),
  integration_branch: z.string(),
  repo_url: z.string().nullable(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  tokens_used: z.number(),
  token_cap: z.number(),
  ci_runs_used: z.number().int(),
  minor_issues_count: z.number().int(),
  major_issues_count: z.number().int(),
  max_minor_issues_total: z.number().int(),
  promotion_eligible_to_main: z.string(),
  promotion_eligible: z.boolean(),
  approval_state: z.enum(['not_required', 'pending', 'approved', 'rejected']),
  project_id: z.string(),
  max_parallel_phases: z.number().int(),
  debt_status: z.string().nullable(),
  failure_reason: z.string().nullable(),
  budgets: BudgetsSchema,
  tiers: z.array(TierResponseSchema),
  phases: z.array(PhaseResponseSchema),
});
/** A run as returned by the API. */
export type RunResponse = z.infer<typeof RunResponseSchema>;

/** `POST /runs/{id}/approve` and `POST /executor/builds/{id}/approve` body. */
export const ApproveRequestSchema = z.strictObject({
  approved: z.boolean(),
  notes: z.string().max(10_000).optional(),
});
/** An approval decision. */
export type ApproveRequest = z.infer<typeof ApproveRequestSchema>;

/** `POST /runs/{id}/cancel` body (optional). */
export const CancelRequestSchema = z.strictObject({ reason: z.string().max(LIMITS.failureReasonChars).optional() });
/** A cancel request. */
export type CancelRequest = z.infer<typeof CancelRequestSchema>;
