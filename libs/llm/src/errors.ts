import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { Provider } from './types.js';

/** Why an LLM call failed after the SDK's own retries. */
export type LlmErrorCode =
  | 'RATE_LIMITED'
  | 'PROVIDER_UNAVAILABLE'
  | 'AUTHENTICATION'
  | 'BAD_REQUEST'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'NO_PROVIDER';

/** Codes worth retrying later (rate limits, outages, timeouts). */
export const RETRYABLE_LLM_ERROR_CODES: readonly LlmErrorCode[] = ['RATE_LIMITED', 'PROVIDER_UNAVAILABLE', 'TIMEOUT'];

/** Serializable form of an {@link LlmError}. */
export interface LlmErrorJson {
  /** Error code. */
  code: LlmErrorCode;
  /** Message, scrubbed of API keys. */
  message: string;
  /** Provider that failed. */
  provider: Provider;
  /** HTTP status, when the provider answered. */
  status?: number;
}

/** A failed LLM call. Its message never contains an API key. */
export class LlmError extends Error {
  /** Error code. */
  readonly code: LlmErrorCode;
  /** Provider that failed. */
  readonly provider: Provider;
  /** HTTP status, when the provider answered. */
  readonly status?: number;
  /** Whether trying again later may succeed. */
  readonly retryable: boolean;
  /** Delay the provider asked for (retry-after), when it did. */
  readonly retryAfterMs?: number;

  /**
   * @param code error code
   * @param message message (callers must pass it scrubbed; see {@link scrubSecrets})
   * @param opts provider, HTTP status, retryability (default: by code) and retry-after
   */
  constructor(
    code: LlmErrorCode,
    message: string,
    opts: { provider: Provider; status?: number; retryable?: boolean; retryAfterMs?: number },
  ) {
    super(message);
    this.name = 'LlmError';
    this.code = code;
    this.provider = opts.provider;
    if (opts.status !== undefined) this.status = opts.status;
    this.retryable = opts.retryable ?? RETRYABLE_LLM_ERROR_CODES.includes(code);
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
  }

  /** `{code, message, provider, status}`. */
  toJSON(): LlmErrorJson {
    return { code: this.code, message: this.message, provider: this.provider, status: this.status };
  }
}

const REDACTED = '[REDACTED]';

/**
 * Removes secrets from `text`: every occurrence of the given keys, plus anything that looks
 * like an API key (`sk-...`, masked keys with `***`, bearer tokens, `x-api-key` values).
 */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join(REDACTED);
  return out
    .replace(/\bsk-[A-Za-z0-9_\-*.]{3,}/g, REDACTED)
    .replace(/(Bearer\s+)[^\s"',}]+/gi, `$1${REDACTED}`)
    .replace(/(x-api-key["']?\s*[:=]\s*["']?)[^\s"',}]+/gi, `$1${REDACTED}`)
    .replace(/[^\s"',:]*\*{3,}[^\s"',]*/g, REDACTED);
}

type HeadersLike = { get(name: string): string | null } | undefined;

function retryAfterMs(headers: HeadersLike): number | undefined {
  if (!headers) return undefined;
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const raw = headers.get('retry-after');
  if (!raw) return undefined;
  const seconds = Number.parseFloat(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

function codeForStatus(status: number): LlmErrorCode {
  if (status === 401 || status === 403) return 'AUTHENTICATION';
  if (status === 408) return 'TIMEOUT';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 409 || status >= 500) return 'PROVIDER_UNAVAILABLE';
  return 'BAD_REQUEST';
}

/** Code of an error that arrived inside a stream (no HTTP status), from the provider's error type. */
function codeForStreamErrorType(type: unknown): LlmErrorCode {
  switch (type) {
    case 'rate_limit_error':
    case 'rate_limit_exceeded':
      return 'RATE_LIMITED';
    case 'authentication_error':
    case 'permission_error':
      return 'AUTHENTICATION';
    case 'invalid_request_error':
    case 'not_found_error':
    case 'request_too_large':
      return 'BAD_REQUEST';
    case 'timeout_error':
      return 'TIMEOUT';
    default:
      return 'PROVIDER_UNAVAILABLE';
  }
}

function errorType(err: { error?: unknown }): unknown {
  const body = err.error as { type?: unknown; error?: { type?: unknown } } | undefined;
  return body?.error?.type ?? body?.type;
}

/**
 * Converts anything an SDK call threw into an {@link LlmError} with a scrubbed message.
 * @param secrets the configured API keys, removed from the message
 */
export function toLlmError(err: unknown, provider: Provider, secrets: readonly string[]): LlmError {
  if (err instanceof LlmError) return err;
  const clean = (m: string): string => scrubSecrets(m, secrets);
  const raw = err instanceof Error ? err.message : String(err);
  const make = (code: LlmErrorCode, status?: number, headers?: HeadersLike): LlmError =>
    new LlmError(code, clean(`${provider} ${code}${status !== undefined ? ` (HTTP ${status})` : ''}: ${raw}`), {
      provider,
      status,
      retryAfterMs: retryAfterMs(headers),
    });

  if (err instanceof OpenAI.APIUserAbortError || err instanceof Anthropic.APIUserAbortError) return make('ABORTED');
  if (err instanceof Error && err.name === 'AbortError') return make('ABORTED');
  if (err instanceof OpenAI.APIConnectionTimeoutError || err instanceof Anthropic.APIConnectionTimeoutError) return make('TIMEOUT');
  if (err instanceof OpenAI.APIConnectionError || err instanceof Anthropic.APIConnectionError) return make('PROVIDER_UNAVAILABLE');
  if (err instanceof OpenAI.APIError || err instanceof Anthropic.APIError) {
    const status = typeof err.status === 'number' ? err.status : undefined;
    const code = status !== undefined ? codeForStatus(status) : codeForStreamErrorType(errorType(err));
    return make(code, status, err.headers as HeadersLike);
  }
  return make('BAD_REQUEST');
}
