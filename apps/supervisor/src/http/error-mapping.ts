import { randomUUID } from 'node:crypto';
import { HttpException } from '@nestjs/common';
import { DomainError, type ErrorBody, type ErrorCode } from '@app/contracts';

/** The one place where error codes become HTTP statuses. */
export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  VALIDATION_FAILED: 422,
  NUL_BYTE: 422,
  INVALID_JSON: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  RUN_EXISTS: 409,
  UNKNOWN_TIER: 422,
  INVALID_PLAN: 422,
  INVALID_TRANSITION: 409,
  LEASE_LOST: 409,
  STALE_STATE: 409,
  ID_MISMATCH: 400,
  IDEMPOTENCY_KEY_REUSED: 422,
  BUDGET_EXHAUSTED: 409,
  RATE_LIMITED: 429,
  DATABASE_UNAVAILABLE: 503,
  INTERNAL_ERROR: 500,
};

const DB_DOWN = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004']);

function isDatabaseDown(err: unknown): boolean {
  const e = err as { code?: string; name?: string; driverError?: { code?: string }; message?: string };
  const code = e?.driverError?.code ?? e?.code;
  if (code && DB_DOWN.has(code)) return true;
  // TypeORM releases a transaction's query runner when its connection dies under it; the next
  // query (QueryRunnerProviderAlreadyReleasedError) or the COMMIT (QueryRunnerAlreadyReleasedError)
  // then fails. Nothing was committed: the connection was gone first.
  if (/AlreadyReleasedError$/.test(e?.name ?? '')) return true;
  return /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable|already released/i.test(e?.message ?? '');
}

/**
 * PostgreSQL's refusals of text it cannot store: 22021 (invalid byte sequence, e.g. 0x00 in
 * text) and 22P05 (untranslatable character, e.g. \u0000 in jsonb). The edge refuses NUL
 * bytes first; this is the safety net for any that get past it. It is the client's input, not
 * a fault: a 4xx.
 */
const UNSTORABLE_TEXT = new Set(['22021', '22P05']);

function isUnstorableText(err: unknown): boolean {
  const e = err as { code?: string; driverError?: { code?: string } };
  const code = e?.driverError?.code ?? e?.code;
  return code !== undefined && UNSTORABLE_TEXT.has(code);
}

/**
 * PostgreSQL aborted the transaction for a conflict with a concurrent one: 40P01 (a deadlock,
 * e.g. a build cancelled while admission starts it) and 40001 (a serialization failure).
 * Nothing was written; the request may be repeated.
 */
const CONFLICT = new Set(['40P01', '40001']);

function isConflict(err: unknown): boolean {
  const e = err as { code?: string; driverError?: { code?: string } };
  const code = e?.driverError?.code ?? e?.code;
  return code !== undefined && CONFLICT.has(code);
}

/** A mapped error: status, body, and whether it was unexpected (to be logged with its stack). */
export interface MappedError {
  status: number;
  body: ErrorBody;
  unexpected: boolean;
}

/** Maps anything thrown to the contract's error body. Unexpected errors reveal only an error id. */
export function mapError(err: unknown): MappedError {
  if (err instanceof DomainError) {
    return { status: STATUS_BY_CODE[err.code], body: { error: { code: err.code, message: err.message, details: err.details } }, unexpected: false };
  }
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const code: ErrorCode = status === 404 ? 'ROUTE_NOT_FOUND' : status === 405 ? 'METHOD_NOT_ALLOWED' : status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 401 ? 'UNAUTHORIZED' : status < 500 ? 'VALIDATION_FAILED' : 'INTERNAL_ERROR';
    const message = status === 404 ? 'no such route' : err.message;
    return { status, body: { error: { code, message } }, unexpected: status >= 500 };
  }
  if (isUnstorableText(err)) {
    return {
      status: STATUS_BY_CODE.NUL_BYTE,
      body: { error: { code: 'NUL_BYTE', message: 'the request holds text the database cannot store (a NUL byte, \\u0000, or an invalid character)' } },
      unexpected: false,
    };
  }
  if (isConflict(err)) {
    return { status: STATUS_BY_CODE.STALE_STATE, body: { error: { code: 'STALE_STATE', message: 'a concurrent change conflicted with this request; nothing was written, retry it' } }, unexpected: false };
  }
  if (isDatabaseDown(err)) {
    return { status: 503, body: { error: { code: 'DATABASE_UNAVAILABLE', message: 'the database is unavailable; retry later' } }, unexpected: false };
  }
  const errorId = randomUUID();
  return { status: 500, body: { error: { code: 'INTERNAL_ERROR', message: `internal error (error_id ${errorId})`, error_id: errorId } }, unexpected: true };
}
