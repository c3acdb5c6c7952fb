import { z } from 'zod';

/**
 * How one attempt ended, as the executor's loop sees it (its `runClaim` result): each outcome is
 * reported to the supervisor by exactly one call (or, for `resumed` and `stopped`, by none).
 */
export const ATTEMPT_OUTCOMES = ['complete', 'resumed', 'builder_failed', 'refused', 'repeated_edits', 'ci_failed', 'auditor_rejected', 'push_rejected', 'stopped'] as const;
/** How one attempt ended, executor side. */
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];
/** Zod enum of executor attempt outcomes. */
export const AttemptOutcomeSchema = z.enum(ATTEMPT_OUTCOMES);

/**
 * How an attempt ended as the supervisor records it (`phase_attempts.outcome`, the `outcome` of
 * `phase_state` events and `previous_attempts[].outcome` of a claim).
 */
export const PHASE_ATTEMPT_OUTCOMES = ['complete', 'builder_failed', 'auditor_approve', 'auditor_revise', 'auditor_escalate', 'ci_failed', 'failed', 'released', 'lease_expired'] as const;
/** How an attempt ended, supervisor side. */
export type PhaseAttemptOutcome = (typeof PHASE_ATTEMPT_OUTCOMES)[number];
/** Zod enum of recorded attempt outcomes. */
export const PhaseAttemptOutcomeSchema = z.enum(PHASE_ATTEMPT_OUTCOMES);

/**
 * What failed, as the code that opens a report's `failure_reason` (`<code>: <detail>`): the
 * executor writes it, the supervisor stores it and operators read it.
 */
export const FAILURE_CODES = ['budget', 'llm_error', 'executor_error', 'provider_error', 'ci_failed', 'push_rejected'] as const;
/** A failure code. */
export type FailureCode = (typeof FAILURE_CODES)[number];
/** Zod enum of failure codes. */
export const FailureCodeSchema = z.enum(FAILURE_CODES);

/** `<code>: <detail>`, cut to the length a report accepts. */
export function failureReason(code: FailureCode, detail: string, maxChars = 2000): string {
  return `${code}: ${detail}`.slice(0, maxChars);
}

/** The failure code that opens `reason`, if it opens with one. */
export function failureCodeOf(reason: string | null | undefined): FailureCode | undefined {
  const head = /^([a-z_]+):/.exec(reason ?? '')?.[1];
  return FailureCodeSchema.safeParse(head).success ? (head as FailureCode) : undefined;
}

/**
 * Every cap that can end a run or a phase, stored as a code in `runs.failure_cap` and
 * `phases.failure_cap` when it does: run caps, a tier's caps, a phase's incident cap, its
 * attempts and its abandonments. Reports read this code; nothing parses a failure reason.
 */
export const FAILURE_CAPS = [
  'token_cap',
  'cost_cap_usd',
  'max_duration_minutes',
  'max_phases',
  'max_minor_issues_total',
  'tier_token_cap',
  'tier_ci_run_cap',
  'incident_token_cap',
  'max_attempts',
  'max_abandonments',
] as const;
/** A cap that ended a run or a phase. */
export type FailureCap = (typeof FAILURE_CAPS)[number];
/** Zod enum of failure caps. */
export const FailureCapSchema = z.enum(FAILURE_CAPS);
