import { z } from 'zod';
import { BuildCheckpointSchema, BuildStatusSchema, BuildStepStatusSchema } from './builds.states.js';
import { LlmCallRecordSchema, UsageReportSchema } from './executor.contract.js';
import { PhaseStateSchema, RunStateSchema, SafetyProfileSchema, SeveritySchema, TierStateSchema } from './states.js';

/*
 * The run's audit trail: every event the supervisor appends (in the transaction of the change it
 * describes) and streams over SSE and WebSocket. Payloads are loose objects: events written by
 * an older supervisor stay readable, and a field added later does not break a reader.
 */

/** `run_created`: a run was started from a plan. */
export const RunCreatedEventSchema = z.object({
  type: z.literal('run_created'),
  payload: z.looseObject({ tiers: z.number().int(), phases: z.number().int(), safety_profile: SafetyProfileSchema }),
});

/** `run_state`: the run moved. */
export const RunStateEventSchema = z.object({
  type: z.literal('run_state'),
  payload: z.looseObject({ from: RunStateSchema, to: RunStateSchema, reason: z.string().optional() }),
});

/** `run_approval`: an operator answered the promotion gate. */
export const RunApprovalEventSchema = z.object({
  type: z.literal('run_approval'),
  payload: z.looseObject({ approved: z.boolean(), for: z.literal('promotion') }),
});

/** `tier_state`: a tier moved. */
export const TierStateEventSchema = z.object({
  type: z.literal('tier_state'),
  payload: z.looseObject({ tier_id: z.string(), from: TierStateSchema, to: TierStateSchema }),
});

/** `phase_claimed`: an executor leased the phase for an attempt. */
export const PhaseClaimedEventSchema = z.object({
  type: z.literal('phase_claimed'),
  payload: z.looseObject({ attempt: z.number().int(), executor_id: z.string() }),
});

/** `phase_state`: the phase moved (by a report, a lease expiry, a cascade or a reopen). */
export const PhaseStateEventSchema = z.object({
  type: z.literal('phase_state'),
  payload: z.looseObject({
    from: PhaseStateSchema,
    to: PhaseStateSchema,
    /** The state-machine event (`complete`, `fail`, `expireLease`, `reopen`, …); absent for cascades. */
    event: z.string().optional(),
    reason: z.string().optional(),
    attempt: z.number().int().optional(),
    /** How the attempt ended, when the move ended one (see `PhaseAttemptOutcome`). */
    outcome: z.string().optional(),
    abandonments: z.number().int().optional(),
    max_abandonments: z.number().int().optional(),
    attempt_charged: z.boolean().optional(),
  }),
});

/** `phase_retry`: an operator re-queued a FAILED phase (reopening its run when it had ended). */
export const PhaseRetryEventSchema = z.object({
  type: z.literal('phase_retry'),
  payload: z.looseObject({
    attempts_used_before: z.number().int(),
    max_attempts: z.number().int(),
    abandonments_before: z.number().int(),
    reopened_run: z.boolean(),
    run_state_before: RunStateSchema.optional(),
    requeued_phases: z.array(z.string()).optional(),
  }),
});

/** `issue_recorded`: an issue was recorded into the phase, the run index and the backlog. */
export const IssueRecordedEventSchema = z.object({
  type: z.literal('issue_recorded'),
  payload: z.looseObject({ issue_key: z.string(), severity: SeveritySchema, effective_severity: SeveritySchema, source: z.string() }),
});

/** `issues_resolved`: backlog issues a successful run no longer saw. */
export const IssuesResolvedEventSchema = z.object({
  type: z.literal('issues_resolved'),
  payload: z.looseObject({ issue_keys: z.array(z.string()) }),
});

/** `llm_call`: one LLM call of an attempt, as the executor reported it. */
export const LlmCallEventSchema = z.object({
  type: z.literal('llm_call'),
  payload: LlmCallRecordSchema.loose().extend({ attempt: z.number().int() }),
});

/** `llm_usage`: tokens and cost charged to the run by one report. */
export const LlmUsageEventSchema = z.object({
  type: z.literal('llm_usage'),
  payload: UsageReportSchema.loose().extend({ role: z.string(), tokens: z.number() }),
});

/** `build_status`: a droplet build moved (the build's stream is made from these). */
export const BuildStatusEventSchema = z.object({
  type: z.literal('build_status'),
  payload: z.looseObject({
    from: BuildStatusSchema,
    to: BuildStatusSchema,
    /** The checkpoint it waits at (when `to` is `awaiting_approval`) or was answered at. */
    checkpoint: BuildCheckpointSchema.optional(),
    /** The step concerned (the one that completed, failed, or a retry restarts from). */
    step: z.number().int().min(1).max(6).optional(),
    error: z.string().optional(),
  }),
});

/** `build_step`: a step of a droplet build moved (the stream's phase_start, phase_complete and error). */
export const BuildStepEventSchema = z.object({
  type: z.literal('build_step'),
  payload: z.looseObject({
    step: z.number().int().min(1).max(6),
    name: z.string(),
    from: BuildStepStatusSchema,
    to: BuildStepStatusSchema,
    /** The build's progress once the step moved. */
    progress_percent: z.number().int().min(0).max(100),
    error: z.string().optional(),
  }),
});

/** Every event type with its payload. */
export const RunEventSchema = z.discriminatedUnion('type', [
  RunCreatedEventSchema,
  RunStateEventSchema,
  RunApprovalEventSchema,
  TierStateEventSchema,
  PhaseClaimedEventSchema,
  PhaseStateEventSchema,
  PhaseRetryEventSchema,
  IssueRecordedEventSchema,
  IssuesResolvedEventSchema,
  LlmCallEventSchema,
  LlmUsageEventSchema,
  BuildStatusEventSchema,
  BuildStepEventSchema,
]);
/** An event type with its payload. */
export type RunEvent = z.infer<typeof RunEventSchema>;
/** An event type. */
export type RunEventType = RunEvent['type'];
/** The payload of one event type. */
export type RunEventPayload<T extends RunEventType> = Extract<RunEvent, { type: T }>['payload'];
/** Every event type. */
export const RUN_EVENT_TYPES = RunEventSchema.options.map((o) => o.shape.type.value) as readonly RunEventType[];

/** One event as streamed (SSE `data:` lines and WebSocket messages). */
export const StreamedEventSchema = z.intersection(
  z.object({
    /** Increasing per supervisor database; resume with `Last-Event-ID` or `?after=`. */
    id: z.number().int(),
    run_id: z.string(),
    phase_id: z.string().nullable(),
    created_at: z.string(),
  }),
  RunEventSchema,
);
/** One streamed event. */
export type StreamedEvent = z.infer<typeof StreamedEventSchema>;
