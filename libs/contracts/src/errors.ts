import { z } from 'zod';

/** Every error code the supervisor can answer with; the HTTP status is chosen in one place (the exception filter). */
export const ERROR_CODES = [
  'VALIDATION_FAILED',
  'NUL_BYTE',
  'INVALID_JSON',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'ROUTE_NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'RUN_EXISTS',
  'UNKNOWN_TIER',
  'INVALID_PLAN',
  'INVALID_TRANSITION',
  'LEASE_LOST',
  'STALE_STATE',
  'ID_MISMATCH',
  'IDEMPOTENCY_KEY_REUSED',
  'BUDGET_EXHAUSTED',
  'RATE_LIMITED',
  'DATABASE_UNAVAILABLE',
  'INTERNAL_ERROR',
] as const;
/** A coded error. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** The JSON error body: `{"error": {"code", "message", "details"}}`. */
export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
    error_id: z.string().optional(),
  }),
});
/** The JSON error body. */
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** A domain error carrying a code, not an HTTP status. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'DomainError';
  }

  /** Serializable form. */
  toJSON(): { code: ErrorCode; message: string; details?: unknown } {
    return { code: this.code, message: this.message, details: this.details };
  }
}
