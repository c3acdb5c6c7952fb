import { z } from 'zod';
import { BuildApprovalModeSchema } from './builds.states.js';
import { MAX_INTENT_CHARS } from './builds.contract.js';
import { IdSchema } from './ids.js';

/*
 * The coordinator (CONTRACT.md section 9): each service's stage on the assembly line, the
 * observation a coordinator pass reports, and the line as the supervisor shows it.
 */

/** A service's stages, in the order a service moves through them. */
export const SERVICE_STAGES = ['needs_spec', 'ready_for_build', 'needs_tests', 'tests_failing', 'ready_for_deploy', 'production'] as const;
export const ServiceStageSchema = z.enum(SERVICE_STAGES);
export type ServiceStage = z.infer<typeof ServiceStageSchema>;

/** Path parameter: a service is named by its directory. */
export const ServiceNameSchema = IdSchema;

/** Body of `POST /coordinator/services/{service}/observe`. */
export const ObserveServiceRequestSchema = z.strictObject({
  /** The service's repository (a local path the executors can reach). */
  path: z.string().trim().min(1).max(2000),
  stage: ServiceStageSchema,
  /** The service's own test command, when it has one. */
  test_command: z.string().trim().min(1).max(2000).optional(),
  /** What the service is for (its README's first paragraph, or its directory name). */
  intent: z.string().trim().min(1).max(MAX_INTENT_CHARS).optional(),
  approval_mode: BuildApprovalModeSchema.default('auto'),
});
export type ObserveServiceRequest = z.infer<typeof ObserveServiceRequestSchema>;

/** Answer of `POST /coordinator/services/{service}/observe`. */
export const ObserveServiceResponseSchema = z.object({
  service: z.string(),
  stage: ServiceStageSchema,
  stage_since: z.string(),
  active_run_id: z.string().nullable(),
  /** True when this observation started the service's active run. */
  started: z.boolean(),
});
export type ObserveServiceResponse = z.infer<typeof ObserveServiceResponseSchema>;

/** Seconds spent in each finished stage (a stage entered twice adds up). */
export const CycleTimesSchema = z.record(z.string(), z.number());

/** One service of `GET /coordinator/services`. */
export const CoordinatorServiceSchema = z.object({
  service: z.string(),
  path: z.string(),
  stage: ServiceStageSchema,
  stage_since: z.string(),
  active_run_id: z.string().nullable(),
  cycle_times: CycleTimesSchema,
  /** The run last cleared as finished (the coordinator promotes it into the base branch when it succeeded). */
  last_run_id: z.string().nullable(),
});
export type CoordinatorService = z.infer<typeof CoordinatorServiceSchema>;
export const CoordinatorServicesResponseSchema = z.array(CoordinatorServiceSchema);

/** `GET /coordinator/cycle_times`: per stage, across services, over finished stays. */
export const StageCycleStatsSchema = z.object({ count: z.number().int(), median_s: z.number(), p90_s: z.number() });
export const CoordinatorCycleTimesResponseSchema = z.record(z.string(), StageCycleStatsSchema);
export type CoordinatorCycleTimes = z.infer<typeof CoordinatorCycleTimesResponseSchema>;

/** `POST /coordinator/pass` (the dashboard's "assign now") and `GET /coordinator/pass`: the newest request for a coordinator pass. */
export const CoordinatorPassResponseSchema = z.object({
  /** Increasing; a running coordinator makes a pass when it sees a newer one. 0: none yet. */
  request_id: z.number().int(),
  requested_at: z.string().nullable(),
});
/** A coordinator pass request. */
export type CoordinatorPassResponse = z.infer<typeof CoordinatorPassResponseSchema>;

/** `GET /reports/cycle_times`: the assembly line's cycle times, across services and per service. */
export const CycleTimesReportSchema = z.object({
  generated_at: z.string(),
  /** Per stage, over finished stays across services. */
  stages: CoordinatorCycleTimesResponseSchema,
  services: z.array(z.object({ service: z.string(), stage: z.string(), stage_since: z.string().nullable(), cycle_times: z.record(z.string(), z.number()) })),
});
/** `GET /reports/cycle_times`. */
export type CycleTimesReport = z.infer<typeof CycleTimesReportSchema>;
