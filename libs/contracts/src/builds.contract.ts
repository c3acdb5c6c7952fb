import { z } from 'zod';
import { BUILD_STATUSES, BuildApprovalModeSchema, BuildCheckpointSchema, BuildStatusSchema, BuildStepStatusSchema } from './builds.states.js';
import { HealthCheckSchema, HookSchema, NotifyChannelSchema } from './delivery.contract.js';
import { BranchNameSchema, IdSchema } from './ids.js';
import { RunCreateSchema } from './runs.contract.js';

/*
 * The droplet build API (CONTRACT.md section 8). A build is a run made from an intent:
 * `build_id` is that run's `run_id`.
 */

/** The longest intent a build accepts, in characters. */
export const MAX_INTENT_CHARS = 20_000;

/** Body of `POST /executor/build-droplet`. */
export const BuildDropletRequestSchema = z.strictObject({
  architect_intent: z.string().trim().min(1).max(MAX_INTENT_CHARS),
  /** The droplet (service) built; its first build takes it as build id (and run id), later builds a suffixed one. Generated ids otherwise. */
  droplet_id: IdSchema.optional(),
  droplet_name: z.string().trim().min(1).max(200).optional(),
  approval_mode: BuildApprovalModeSchema.default('auto'),
  auto_deploy: z.boolean().default(true),
  base_branch: BranchNameSchema.default('main'),
  repo_url: RunCreateSchema.shape.repo_url,
  notify_channels: z.array(NotifyChannelSchema).max(10).optional(),
  deploy: HookSchema.optional(),
  health_check: HealthCheckSchema.optional(),
  register: HookSchema.optional(),
  rollback: HookSchema.optional(),
});
/** A build request as parsed (defaults applied). */
export type BuildDropletRequest = z.infer<typeof BuildDropletRequestSchema>;

/** `202` answer of `POST /executor/build-droplet`. */
export const BuildAcceptedResponseSchema = z.object({
  build_id: z.string(),
  status: BuildStatusSchema,
  /** ISO 8601: now plus the estimate from earlier builds' step durations. */
  estimated_completion: z.string(),
  /** `ws` URL path of the build's event stream. */
  stream_url: z.string(),
  status_url: z.string(),
});
/** A build accepted. */
export type BuildAcceptedResponse = z.infer<typeof BuildAcceptedResponseSchema>;

/** One step of a build in `phases[]`. */
export const BuildStepResponseSchema = z.object({
  step: z.number().int().min(1).max(6),
  name: z.string(),
  status: BuildStepStatusSchema,
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
});
/** A build step as answered. */
export type BuildStepResponse = z.infer<typeof BuildStepResponseSchema>;

/** `GET /executor/builds/{build_id}/status`. */
export const BuildStatusResponseSchema = z.object({
  build_id: z.string(),
  droplet_id: z.string().nullable(),
  droplet_name: z.string().nullable(),
  status: BuildStatusSchema,
  /** The name of the step running, waiting or failed; null before the first and after the last. */
  current_phase: z.string().nullable(),
  checkpoint: BuildCheckpointSchema.optional(),
  progress_percent: z.number().int().min(0).max(100),
  /** Seconds. */
  estimated_time_remaining: z.number().int().min(0),
  phases: z.array(BuildStepResponseSchema),
  deployment_url: z.string().optional(),
  error: z.string().optional(),
  created_at: z.string(),
  completed_at: z.string().nullable(),
});
/** A build's status. */
export type BuildStatusResponse = z.infer<typeof BuildStatusResponseSchema>;

/** `GET /executor/builds` query: by status, and created in `[since, until)`. */
export const ListBuildsQuerySchema = z.strictObject({
  status: z.enum(BUILD_STATUSES).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
});
/** The build list query. */
export type ListBuildsQuery = z.infer<typeof ListBuildsQuerySchema>;

/** `GET /executor/builds`. */
export const BuildListResponseSchema = z.object({ builds: z.array(BuildStatusResponseSchema) });
/** The build list. */
export type BuildListResponse = z.infer<typeof BuildListResponseSchema>;

/** Body of `POST /executor/builds/{build_id}/approve`. */
export const BuildApproveRequestSchema = z.strictObject({
  approved: z.boolean(),
  notes: z.string().max(2000).optional(),
  /** When given, it must be the checkpoint the build waits at (409 otherwise). */
  checkpoint: BuildCheckpointSchema.optional(),
});
/** An approval answer. */
export type BuildApproveRequest = z.infer<typeof BuildApproveRequestSchema>;

/** Body of `POST /executor/builds/{build_id}/retry`: a step number (1-6) or a step name; default the failed step. */
export const BuildRetryRequestSchema = z.strictObject({
  from_step: z.union([z.number().int().min(1).max(6), z.string().trim().min(1).max(100)]).optional(),
});
/** A retry request. */
export type BuildRetryRequest = z.infer<typeof BuildRetryRequestSchema>;

/** The event types of a build's stream. */
export const BUILD_STREAM_EVENT_TYPES = ['phase_start', 'phase_progress', 'phase_complete', 'awaiting_approval', 'error', 'build_complete'] as const;

/** One JSON message of `WS /executor/builds/{build_id}/stream`. */
export const BuildStreamEventSchema = z.object({
  type: z.enum(BUILD_STREAM_EVENT_TYPES),
  /** The step's name. */
  phase: z.string(),
  progress_percent: z.number().int().min(0).max(100),
  message: z.string(),
  /** ISO 8601. */
  at: z.string(),
});
/** A build stream event. */
export type BuildStreamEvent = z.infer<typeof BuildStreamEventSchema>;

/** Path parameters of the build routes. */
export const BuildPathParamsSchema = z.strictObject({ build_id: IdSchema });

/** `GET /executor/health`. */
export const ExecutorHealthResponseSchema = z.object({
  status: z.enum(['ok', 'unavailable']),
  database: z.enum(['up', 'down']),
  version: z.string(),
  /** Builds holding a slot: running or awaiting approval. */
  active_builds: z.number().int(),
  queued_builds: z.number().int(),
  max_concurrent_builds: z.number().int(),
});
/** `GET /executor/health`. */
export type ExecutorHealthResponse = z.infer<typeof ExecutorHealthResponseSchema>;

/** `GET /executor/capabilities`. */
export const ExecutorCapabilitiesResponseSchema = z.object({
  version: z.string(),
  approval_modes: z.array(BuildApprovalModeSchema),
  checkpoints: z.array(BuildCheckpointSchema),
  max_concurrent_builds: z.number().int(),
  steps: z.array(z.object({ step: z.number().int(), key: z.string(), name: z.string() })),
  providers: z.array(z.string()),
  /** The default model of each role, per provider (an executor's model-routing file may choose others). */
  models: z.record(z.string(), z.record(z.string(), z.string())),
  notify_channels: z.array(z.string()),
  hooks: z.array(z.string()),
});
/** `GET /executor/capabilities`. */
export type ExecutorCapabilitiesResponse = z.infer<typeof ExecutorCapabilitiesResponseSchema>;
