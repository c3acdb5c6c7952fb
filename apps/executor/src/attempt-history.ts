import type { AttemptRecord } from '@app/contracts';

/** Prefix of the failure reason of an attempt whose edits repeat an earlier failed attempt's. */
export const REPEATED_EDITS_REASON = 'repeated_edits';

/**
 * Outcomes that say nothing about the model's work: the lease ran out (executor crash) or the
 * attempt was handed back on shutdown.
 */
const NOT_THE_MODELS_FAILURE = new Set(['complete', 'released', 'lease_expired']);

/** Whether an earlier attempt failed because of what was built (refused, CI, auditor, malformed...). */
export function isFailedAttempt(a: AttemptRecord): boolean {
  return !NOT_THE_MODELS_FAILURE.has(a.outcome);
}

/**
 * How far up the escalation chains this attempt goes: one step per earlier failed attempt of
 * the phase, and one more for each attempt that repeated an earlier failed change, because a
 * model that resubmits a rejected change is stuck and its successor should take over sooner.
 */
export function escalationStep(previous: AttemptRecord[]): number {
  const failed = previous.filter(isFailedAttempt);
  const repeated = failed.filter((a) => a.reason?.startsWith(`${REPEATED_EDITS_REASON}:`)).length;
  return failed.length + repeated;
}

/** The earliest failed attempt whose edits hash equals `editsHash`, if any. */
export function findRepeatedAttempt(previous: AttemptRecord[], editsHash: string): AttemptRecord | undefined {
  return previous.find((a) => isFailedAttempt(a) && a.edits_hash === editsHash);
}
