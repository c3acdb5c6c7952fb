import { z } from 'zod';

/** Run states (CONTRACT.md section 7), equal to the values stored in the database. */
export const RUN_STATES = [
  /** Not entered yet: a droplet build (CONTRACT.md section 8) will start here while its planner step runs. */
  'PLAN_BOOTSTRAP',
  /** Where `POST /runs/start` puts a run. */
  'RUN_CREATED',
  /** Not entered yet: kept for the original's clients; a run goes from RUN_CREATED to PHASE_EXECUTION. */
  'PHASE_QUEUEING',
  'PHASE_EXECUTION',
  /** Not entered yet as a run state (phases have their own GATE): the original's run sub-state. */
  'GATE',
  /** Not entered yet as a run state (phases have their own CI_RUNNING): the original's run sub-state. */
  'CI_RUNNING',
  /** Not entered yet: promotion of a build (CONTRACT.md section 8) will snapshot the branch here. */
  'SNAPSHOT_CREATED',
  'AWAITING_APPROVAL',
  'DONE_SUCCESS',
  'DONE_FAILED_BUDGET_EXHAUSTED',
  /** Not entered yet: a build's plan or deploy refused by policy (CONTRACT.md section 8) will end here. */
  'DONE_FAILED_POLICY_VIOLATION',
  'DONE_FAILED_REQUIRES_HUMAN_REVIEW',
  /** Not entered yet: a deploy or health check that cannot reach its environment (CONTRACT.md section 8) will end here. */
  'DONE_FAILED_ENVIRONMENT',
  'CANCELLED',
] as const;
/** A run state. */
export type RunState = (typeof RUN_STATES)[number];
/** Zod enum of run states. */
export const RunStateSchema = z.enum(RUN_STATES);

/** Terminal run states: nothing is claimable and nothing changes afterwards (except approval bookkeeping). */
export const TERMINAL_RUN_STATES: readonly RunState[] = [
  'DONE_SUCCESS',
  'DONE_FAILED_BUDGET_EXHAUSTED',
  'DONE_FAILED_POLICY_VIOLATION',
  'DONE_FAILED_REQUIRES_HUMAN_REVIEW',
  'DONE_FAILED_ENVIRONMENT',
  'CANCELLED',
];

/** Tier states. */
export const TIER_STATES = ['PENDING', 'IN_PROGRESS', 'COMPLETE', 'FAILED', 'SKIPPED'] as const;
/** A tier state. */
export type TierState = (typeof TIER_STATES)[number];
/** Zod enum of tier states. */
export const TierStateSchema = z.enum(TIER_STATES);

/** Tier cleanliness. */
export const CLEANLINESS = ['clean', 'not_clean'] as const;
/** Tier cleanliness value. */
export type Cleanliness = (typeof CLEANLINESS)[number];

/** Phase states. */
export const PHASE_STATES = ['QUEUED', 'EXECUTING', 'GATE', 'CI_RUNNING', 'COMPLETE', 'FAILED', 'SKIPPED'] as const;
/** A phase state. */
export type PhaseState = (typeof PHASE_STATES)[number];
/** Zod enum of phase states. */
export const PhaseStateSchema = z.enum(PHASE_STATES);

/** Phase states in which an executor holds a lease. */
export const LEASED_PHASE_STATES: readonly PhaseState[] = ['EXECUTING', 'GATE', 'CI_RUNNING'];
/** Phase states that never change again (FAILED only by an operator retry). */
export const TERMINAL_PHASE_STATES: readonly PhaseState[] = ['COMPLETE', 'FAILED', 'SKIPPED'];

/** Safety profiles. */
export const SafetyProfileSchema = z.enum(['normal', 'safety_critical']);
/** A safety profile. */
export type SafetyProfile = z.infer<typeof SafetyProfileSchema>;

/** Approval modes: auto promotes nothing by itself; checkpoints wait after each tier; final waits once at the end. */
export const ApprovalModeSchema = z.enum(['auto', 'checkpoints', 'final']);
/** An approval mode. */
export type ApprovalMode = z.infer<typeof ApprovalModeSchema>;

/** Issue severities. */
export const SeveritySchema = z.enum(['minor', 'major']);
/** An issue severity. */
export type Severity = z.infer<typeof SeveritySchema>;

/** Phase complexity. */
export const ComplexitySchema = z.enum(['low', 'medium', 'high']);
/** A phase complexity. */
export type Complexity = z.infer<typeof ComplexitySchema>;

/** Quality gate levels (v7 semantics). */
export const QualityLevelSchema = z.enum(['ok', 'needs_review', 'blocked']);
/** A quality gate level. */
export type QualityLevel = z.infer<typeof QualityLevelSchema>;
