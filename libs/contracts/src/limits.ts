/**
 * Limits both processes rely on. The supervisor's schemas refuse what exceeds them (422), so the
 * executor trims its reports to them before sending; `GET /capabilities` advertises the run-shape
 * ones. Changing one is a contract change (CONTRACT.md).
 */
export const LIMITS = {
  /** `failure_reason` of a report (and an operator's cancel reason), in characters. */
  failureReasonChars: 2000,
  /** `feedback` carried to the next attempt's prompt, in characters. */
  feedbackChars: 20_000,
  /** Builder `notes` and auditor `review_notes`, in characters. */
  notesChars: 20_000,
  /** The CI output tail sent with `auditor_request`, in characters. */
  ciOutputTailChars: 20_000,
  /** `patch_content` of a builder result, in characters. */
  patchChars: 5_000_000,
  /** Longest long poll of `POST /phases/claim` (`wait_ms`). */
  maxClaimWaitMs: 30_000,
  /** Phases of one run. */
  maxPhasesPerRun: 1000,
  /** Tiers of one run. */
  maxTiersPerRun: 100,
  /** Phases of one run leased at the same time. */
  maxParallelPhases: 64,
  /** Default request body limit of the supervisor (`AUTOPACK_MAX_BODY_BYTES`). */
  defaultMaxBodyBytes: 2 * 1024 * 1024,
} as const;
