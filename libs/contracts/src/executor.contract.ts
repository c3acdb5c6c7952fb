import { z } from 'zod';
import { CapabilitySchema, DEFAULT_CAPABILITIES, ExecutorIdSchema, IdSchema } from './ids.js';
import { LIMITS } from './limits.js';
import { CiSpecSchema, PhaseScopeSchema } from './runs.contract.js';
import { BudgetLeftSchema, PhaseStrategySchema } from './strategy.contract.js';
import { PhaseStateSchema, QualityLevelSchema, SeveritySchema } from './states.js';
import { SubmitPlanArgsSchema } from './tools.contract.js';

/**
 * What work a phase is. `code` is a planned phase (builder, auditors, CI, commit); the others
 * are the steps of a droplet build (CONTRACT.md section 8): `plan` (planner and SPEC.md),
 * `package` (foundation files), `verify` (the plan's CI on the branch head), `promote` (the
 * base branch moved to the integration branch), `rollback` (the base branch put back), and
 * `deploy` (the supervisor's hooks: never claimed by an executor).
 */
export const PHASE_KINDS = ['code', 'plan', 'package', 'verify', 'promote', 'rollback', 'deploy'] as const;
/** A kind of phase. */
export type PhaseKind = (typeof PHASE_KINDS)[number];
/** A kind of phase. */
export const PhaseKindSchema = z.enum(PHASE_KINDS);

const LeaseTokenSchema = z.string().uuid();

/** `POST /phases/claim` body. */
export const ClaimRequestSchema = z.strictObject({
  executor_id: ExecutorIdSchema,
  run_id: IdSchema.optional(),
  /**
   * What the executor can do: a list of capabilities (CONTRACT.md section 9), or the older
   * object form, whose optional `roles` are the capabilities. None: `builder`.
   */
  capabilities: z
    .union([
      z.array(CapabilitySchema).max(20),
      z.strictObject({
        providers: z.array(z.enum(['openai', 'anthropic'])).max(2).optional(),
        version: z.string().max(50).optional(),
        roles: z.array(CapabilitySchema).max(20).optional(),
      }),
    ])
    .optional(),
  wait_ms: z.number().int().min(0).max(LIMITS.maxClaimWaitMs).optional(),
});
/** `POST /phases/claim` body. */
export type ClaimRequest = z.infer<typeof ClaimRequestSchema>;

/** The capabilities a claim names, in either form, deduplicated and sorted; `builder` when it names none. */
export function claimCapabilities(c: ClaimRequest['capabilities']): string[] {
  const names = Array.isArray(c) ? c : c?.roles;
  return [...new Set(names && names.length > 0 ? names : DEFAULT_CAPABILITIES)].sort();
}

/** One earlier attempt of a phase, with the feedback the next attempt's prompt should carry. */
export const AttemptRecordSchema = z.object({
  attempt: z.number().int(),
  outcome: z.string(),
  reason: z.string().nullable(),
  feedback: z.string().nullable(),
  edits_hash: z.string().nullable(),
  created_at: z.string(),
});
/** One earlier attempt of a phase. */
export type AttemptRecord = z.infer<typeof AttemptRecordSchema>;

/** The phase spec an executor needs. */
export const ClaimedPhaseSchema = z.object({
  phase_id: z.string(),
  tier_id: z.string(),
  phase_index: z.number().int(),
  name: z.string(),
  description: z.string().nullable(),
  task_category: z.string().nullable(),
  complexity: z.string().nullable(),
  builder_mode: z.string().nullable(),
  scope: PhaseScopeSchema.nullable(),
  acceptance_criteria: z.array(z.string()),
  ci: CiSpecSchema.nullable(),
  allow_mass_deletion: z.boolean(),
  allow_mass_addition: z.boolean(),
  /** Additive: absent from older supervisors, which only have code phases. */
  kind: PhaseKindSchema.default('code'),
  /** Additive: the capabilities the phase requires. */
  requires: z.array(z.string()).default([]),
});
/** The phase spec an executor needs. */
export type ClaimedPhase = z.infer<typeof ClaimedPhaseSchema>;

/** The build a claimed phase belongs to (present only for a droplet build's phases). */
export const ClaimedBuildSchema = z.object({
  build_id: z.string(),
  intent: z.string(),
  droplet_id: z.string().nullable(),
  droplet_name: z.string().nullable(),
  /** The plan the supervisor accepted (null until the planning step's plan was accepted). */
  plan: SubmitPlanArgsSchema.nullable(),
  /** What the planned phases may spend (for the planner's prompt and `validatePlan`). */
  plan_budgets: z.object({ tokens_left: z.number(), cost_left_usd: z.number().nullable(), max_phases: z.number().int() }),
  /** Tier and phase ids the build already uses: a plan must not reuse them. */
  taken_ids: z.object({ tier_ids: z.array(z.string()), phase_ids: z.array(z.string()) }),
  /** The base branch before and after promotion (set once the promote step reported it). */
  promoted_from: z.string().nullable(),
  promoted_to: z.string().nullable(),
});
/** The build a claimed phase belongs to. */
export type ClaimedBuild = z.infer<typeof ClaimedBuildSchema>;

/** `POST /phases/claim` 200 response. */
export const ClaimResponseSchema = z.object({
  run_id: z.string(),
  phase_id: z.string(),
  lease_token: z.string(),
  lease_expires_at: z.string(),
  lease_seconds: z.number().int(),
  attempt: z.number().int(),
  max_attempts: z.number().int(),
  phase: ClaimedPhaseSchema,
  strategy: PhaseStrategySchema,
  budget_left: BudgetLeftSchema,
  previous_attempts: z.array(AttemptRecordSchema),
  run: z.object({
    run_id: z.string(),
    base_branch: z.string(),
    integration_branch: z.string(),
    repo_url: z.string().nullable(),
    safety_profile: z.string(),
    ci: CiSpecSchema.nullable(),
    protected_paths: z.array(z.string()),
    /** Every phase's state at claim time: commits of phases that ended without COMPLETE leave the branch. */
    phase_states: z.record(z.string(), z.string()).optional(),
  }),
  /** Additive: the droplet build of the run, when it is one. */
  build: ClaimedBuildSchema.optional(),
});
/** `POST /phases/claim` 200 response. */
export type ClaimResponse = z.infer<typeof ClaimResponseSchema>;

/** `POST .../heartbeat` body. */
export const HeartbeatRequestSchema = z.strictObject({ lease_token: LeaseTokenSchema });
/** `POST .../heartbeat` body. */
export type HeartbeatRequest = z.infer<typeof HeartbeatRequestSchema>;

/** `POST .../heartbeat` response. */
export const HeartbeatResponseSchema = z.object({
  lease_expires_at: z.string(),
  run_state: z.string(),
  stop_requested: z.boolean(),
});
/** `POST .../heartbeat` response. */
export type HeartbeatResponse = z.infer<typeof HeartbeatResponseSchema>;

/** An issue suggested by a Builder or found by an Auditor. */
export const SuggestedIssueSchema = z.strictObject({
  issue_key: z.string().min(1).max(200),
  severity: SeveritySchema,
  source: z.string().max(50).optional(),
  category: z.string().min(1).max(100),
  description: z.string().max(5000).optional(),
  location: z.string().max(500).optional(),
  evidence_refs: z.array(z.string().max(500)).max(50).optional(),
});
/** An issue suggested by a Builder or found by an Auditor. */
export type SuggestedIssue = z.infer<typeof SuggestedIssueSchema>;

/** LLM usage of one or more calls, reported by the executor. */
export const UsageReportSchema = z.strictObject({
  provider: z.enum(['openai', 'anthropic']).optional(),
  model: z.string().max(200).optional(),
  prompt_tokens: z.number().int().min(0).max(100_000_000),
  completion_tokens: z.number().int().min(0).max(100_000_000),
  cached_tokens: z.number().int().min(0).max(100_000_000).optional(),
  cost_usd: z.number().min(0).max(1_000_000).optional(),
  calls: z.number().int().min(0).max(10_000).optional(),
  /** Client-chosen id: a usage report with an id already seen is ignored (idempotent retries). */
  report_id: z.string().min(8).max(100).regex(/^[\w.:-]+$/).optional(),
  /** The reservation this usage settles (see `reserve_budget`). */
  reservation_id: z.string().uuid().optional(),
});
/** LLM usage reported by the executor. */
export type UsageReport = z.infer<typeof UsageReportSchema>;

/** One LLM call, for the durable audit trail (model, tokens, cost, duration, outcome). */
export const LlmCallRecordSchema = z.strictObject({
  role: z.enum(['builder', 'auditor', 'secondary_auditor', 'planner']),
  provider: z.enum(['openai', 'anthropic']),
  model: z.string().max(200),
  prompt_tokens: z.number().int().min(0).max(100_000_000),
  completion_tokens: z.number().int().min(0).max(100_000_000),
  cached_tokens: z.number().int().min(0).max(100_000_000).default(0),
  cost_usd: z.number().min(0).max(1_000_000).default(0),
  duration_ms: z.number().int().min(0).max(86_400_000),
  outcome: z.enum(['tool_call', 'malformed', 'truncated', 'error']),
  detail: z.string().max(500).optional(),
});
/** One LLM call record. */
export type LlmCallRecord = z.infer<typeof LlmCallRecordSchema>;

const probeResult = z.strictObject({
  probe_type: z.string().max(100),
  exit_code: z.number().int(),
  stdout: z.string().max(100_000),
  stderr: z.string().max(100_000),
  duration_seconds: z.number().min(0),
});

/** Common fields of executor writes: the fence and optional echo of the path ids. */
const fenced = {
  lease_token: LeaseTokenSchema,
  run_id: IdSchema.optional(),
  phase_id: IdSchema.optional(),
};

/** `POST .../builder_result` body (the original's BuilderResult plus the lease and usage). */
export const BuilderResultRequestSchema = z.strictObject({
  ...fenced,
  status: z.enum(['success', 'failed', 'needs_review']),
  patch_content: z.string().max(LIMITS.patchChars).optional(),
  files_changed: z.array(z.string().max(1000)).max(10_000).default([]),
  lines_added: z.number().int().min(0).default(0),
  lines_removed: z.number().int().min(0).default(0),
  builder_attempts: z.number().int().min(0).max(1000).optional(),
  tokens_used: z.number().int().min(0).max(100_000_000).default(0),
  duration_minutes: z.number().min(0).max(100_000).optional(),
  probe_results: z.array(probeResult).max(50).optional(),
  suggested_issues: z.array(SuggestedIssueSchema).max(100).default([]),
  notes: z.string().max(LIMITS.notesChars).optional(),
  failure_reason: z.string().max(LIMITS.failureReasonChars).optional(),
  feedback: z.string().max(LIMITS.feedbackChars).optional(),
  edits_hash: z.string().max(128).optional(),
  usage: UsageReportSchema.optional(),
  llm_calls: z.array(LlmCallRecordSchema).max(50).optional(),
  commit_sha: z.string().regex(/^[0-9a-f]{40}$/).optional(),
  /**
   * With `status: success` (no commit): the phase also moves to CI_RUNNING, charging a CI run,
   * as `update_status {state: CI_RUNNING}` would: one round trip instead of two. A tier whose
   * CI runs are used up ends the run instead, and the answer's `phase_state` is not CI_RUNNING.
   */
  start_ci: z.boolean().optional(),
  /** Sent by the original Autopack's executors; accepted and ignored (scope and protection are the run's and phase's). */
  run_type: z.string().max(100).optional(),
  /** Sent by the original Autopack's executors; accepted and ignored (scope and protection are the run's and phase's). */
  allowed_paths: z.array(z.string().max(1000)).max(500).optional(),
});
/** `POST .../builder_result` body. */
export type BuilderResultRequest = z.infer<typeof BuilderResultRequestSchema>;

/** `POST .../auditor_request` body: the phase moves to GATE. */
export const AuditorRequestSchema = z.strictObject({
  ...fenced,
  tier_id: IdSchema.optional(),
  builder_result: z.record(z.string(), z.unknown()).optional(),
  failure_context: z.string().max(20_000).optional(),
  review_focus: z.string().max(200).optional(),
  auditor_profile: z.string().max(200).optional(),
  ci: z
    .strictObject({
      passed: z.boolean(),
      exit_code: z.number().int().nullable().optional(),
      duration_seconds: z.number().min(0).optional(),
      output_tail: z.string().max(LIMITS.ciOutputTailChars).optional(),
    })
    .optional(),
});
/** `POST .../auditor_request` body. */
export type AuditorRequest = z.infer<typeof AuditorRequestSchema>;

/** `POST .../auditor_result` body. */
export const AuditorResultRequestSchema = z.strictObject({
  ...fenced,
  recommendation: z.enum(['approve', 'revise', 'escalate']),
  review_notes: z.string().max(LIMITS.notesChars).optional(),
  issues_found: z.array(SuggestedIssueSchema).max(200).default([]),
  suggested_patches: z.array(z.record(z.string(), z.unknown())).max(20).optional(),
  auditor_attempts: z.number().int().min(0).max(1000).optional(),
  tokens_used: z.number().int().min(0).max(100_000_000).default(0),
  confidence: z.enum(['low', 'medium', 'high']).optional(),
  quality_level: QualityLevelSchema.optional(),
  commit_sha: z.string().regex(/^[0-9a-f]{40}$/).optional(),
  feedback: z.string().max(LIMITS.feedbackChars).optional(),
  edits_hash: z.string().max(128).optional(),
  usage: UsageReportSchema.optional(),
  llm_calls: z.array(LlmCallRecordSchema).max(50).optional(),
});
/** `POST .../auditor_result` body. */
export type AuditorResultRequest = z.infer<typeof AuditorResultRequestSchema>;

/** `POST .../update_status` body: a state change checked against the phase state machine. */
export const UpdateStatusRequestSchema = z.strictObject({
  lease_token: LeaseTokenSchema.optional(),
  run_id: IdSchema.optional(),
  phase_id: IdSchema.optional(),
  state: PhaseStateSchema,
  builder_attempts: z.number().int().min(0).max(1000).optional(),
  tokens_used: z.number().int().min(0).max(100_000_000).optional(),
  minor_issues_count: z.number().int().min(0).max(100_000).optional(),
  major_issues_count: z.number().int().min(0).max(100_000).optional(),
  quality_level: QualityLevelSchema.optional(),
  quality_blocked: z.boolean().optional(),
  failure_reason: z.string().max(LIMITS.failureReasonChars).optional(),
  feedback: z.string().max(LIMITS.feedbackChars).optional(),
  edits_hash: z.string().max(128).optional(),
  commit_sha: z.string().regex(/^[0-9a-f]{40}$/).optional(),
  ci_passed: z.boolean().optional(),
  usage: UsageReportSchema.optional(),
  llm_calls: z.array(LlmCallRecordSchema).max(50).optional(),
});
/** `POST .../update_status` body. */
export type UpdateStatusRequest = z.infer<typeof UpdateStatusRequestSchema>;

/** Response of every executor write: the phase and run state after it. */
export const PhaseWriteResponseSchema = z.object({
  message: z.string(),
  run_id: z.string(),
  phase_id: z.string(),
  phase_state: PhaseStateSchema,
  run_state: z.string(),
  attempt: z.number().int(),
  attempts_left: z.number().int(),
  commit_sha: z.string().nullable().optional(),
  recommendation: z.string().optional(),
});
/** Response of every executor write. */
export type PhaseWriteResponse = z.infer<typeof PhaseWriteResponseSchema>;

/** `POST .../record_issue` body: one issue into the phase, the run index and the project backlog. */
export const RecordIssueRequestSchema = z.strictObject({
  lease_token: LeaseTokenSchema.optional(),
  issue_key: z.string().min(1).max(200),
  severity: SeveritySchema,
  source: z.enum(['test', 'probe', 'ci', 'static_check', 'cursor_self_doubt', 'auditor', 'builder', 'api_server', 'operator']).default('api_server'),
  category: z.string().min(1).max(100),
  task_category: z.string().max(64).optional(),
  complexity: z.enum(['low', 'medium', 'high']).optional(),
  description: z.string().max(5000).optional(),
  location: z.string().max(500).optional(),
  evidence_refs: z.array(z.string().max(500)).max(50).optional(),
});
/** `POST .../record_issue` body. */
export type RecordIssueRequest = z.infer<typeof RecordIssueRequestSchema>;

/** `POST .../reserve_budget` body: reserve the worst case of an LLM call before making it. */
export const ReserveBudgetRequestSchema = z.strictObject({
  lease_token: LeaseTokenSchema,
  tokens: z.number().int().min(1).max(10_000_000),
  cost_usd: z.number().min(0).max(100_000).optional(),
  purpose: z.enum(['builder', 'auditor', 'planner']).optional(),
});
/** `POST .../reserve_budget` body. */
export type ReserveBudgetRequest = z.infer<typeof ReserveBudgetRequestSchema>;

/** `POST .../reserve_budget` 200 response. */
export const ReserveBudgetResponseSchema = z.object({
  reservation_id: z.string(),
  budget_left: BudgetLeftSchema,
});
/** `POST .../reserve_budget` response. */
export type ReserveBudgetResponse = z.infer<typeof ReserveBudgetResponseSchema>;

/**
 * `POST /runs/{run_id}/phases/{phase_id}/step_result` body: what a build step produced that
 * the supervisor must record before the phase completes. `plan`: the planner's plan, validated
 * again by the supervisor and, when accepted, its tiers and phases inserted (a refused plan
 * ends the attempt with feedback naming every problem). `promoting`: where the base branch is
 * before promotion moves it, and `promoted`: where it went (each recorded once, so an attempt
 * resumed after the branch moved cannot overwrite where a rollback goes back to).
 */
export const StepResultRequestSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('plan'),
    lease_token: LeaseTokenSchema,
    plan: SubmitPlanArgsSchema,
    usage: UsageReportSchema.optional(),
    llm_calls: z.array(LlmCallRecordSchema).max(50).optional(),
  }),
  z.strictObject({
    kind: z.literal('promoting'),
    lease_token: LeaseTokenSchema,
    /** The base branch's commit before promotion moves it; null when there is no base branch yet. */
    from: z.string().regex(/^[0-9a-f]{40}$/).nullable(),
  }),
  z.strictObject({
    kind: z.literal('promoted'),
    lease_token: LeaseTokenSchema,
    from: z.string().regex(/^[0-9a-f]{40}$/).nullable(),
    to: z.string().regex(/^[0-9a-f]{40}$/),
    pushed: z.boolean().default(false),
  }),
]);
/** `POST .../step_result` body. */
export type StepResultRequest = z.infer<typeof StepResultRequestSchema>;

/** `POST .../step_result` answer: the phase write's answer, and for a plan whether it was accepted. */
export const StepResultResponseSchema = PhaseWriteResponseSchema.extend({
  accepted: z.boolean(),
  problems: z.array(z.string()).optional(),
});
/** `POST .../step_result` answer. */
export type StepResultResponse = z.infer<typeof StepResultResponseSchema>;

/** One executor as `GET /executors` shows it (CONTRACT.md section 9). */
export const ExecutorViewSchema = z.object({
  executor_id: z.string(),
  capabilities: z.array(z.string()),
  first_seen_at: z.string(),
  last_seen_at: z.string(),
  /** `active` while seen within a few lease lengths, else `gone`. */
  status: z.enum(['active', 'gone']),
  current: z.object({ run_id: z.string(), phase_id: z.string() }).nullable(),
  phases_completed: z.number().int(),
  phases_failed: z.number().int(),
});
/** One executor as `GET /executors` shows it. */
export type ExecutorView = z.infer<typeof ExecutorViewSchema>;
/** `GET /executors`. */
export const ExecutorListResponseSchema = z.array(ExecutorViewSchema);
