import type { Provider } from './types.js';

/** Why an LLM call failed after the SDK's own retries. */
export type LlmErrorCode =
  | 'RATE_LIMITED'
  | 'PROVIDER_UNAVAILABLE'
  | 'AUTHENTICATION'
  | 'PERMISSION'
  | 'MODEL_NOT_FOUND'
  | 'QUOTA_EXHAUSTED'
  | 'BAD_REQUEST'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'NO_PROVIDER';

/** Codes worth retrying later (rate limits, outages, timeouts). */
export const RETRYABLE_LLM_ERROR_CODES: readonly LlmErrorCode[] = ['RATE_LIMITED', 'PROVIDER_UNAVAILABLE', 'TIMEOUT'];

/**
 * Codes no retry can mend: the provider refuses the key, the account, the model or the request
 * itself. They are configuration problems, never a failed attempt (CONTRACT.md section 3): the
 * model produced nothing that could be judged.
 */
export const CONFIGURATION_LLM_ERROR_CODES: readonly LlmErrorCode[] = ['AUTHENTICATION', 'PERMISSION', 'MODEL_NOT_FOUND', 'QUOTA_EXHAUSTED', 'BAD_REQUEST', 'NO_PROVIDER'];

/** What a failed call means for the attempt that made it. */
export type LlmErrorKind = 'configuration' | 'transient' | 'aborted';

/** Plain words for each code, for the one line an operator reads. */
const PROBLEM: Record<LlmErrorCode, string> = {
  RATE_LIMITED: 'rate limit still hit after retries',
  PROVIDER_UNAVAILABLE: 'unavailable after retries',
  AUTHENTICATION: 'refused the API key',
  PERMISSION: 'refused access with this key (permission denied)',
  MODEL_NOT_FOUND: 'does not know the model (or the key may not use it)',
  QUOTA_EXHAUSTED: 'reports the quota or credit of this key exhausted',
  BAD_REQUEST: 'refused the request as invalid',
  TIMEOUT: 'timed out after retries',
  ABORTED: 'call aborted',
  NO_PROVIDER: 'has no API key configured',
};

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

  /** Whether the call's failure is a configuration problem, a transient one, or our own abort. */
  get kind(): LlmErrorKind {
    if (this.code === 'ABORTED') return 'aborted';
    return this.retryable ? 'transient' : 'configuration';
  }

  /** One line for an operator: `openai refused the API key (HTTP 401, model gpt-x)`. */
  describe(model?: string): string {
    const details = [this.status !== undefined ? `HTTP ${this.status}` : undefined, model ? `model ${model}` : undefined].filter(Boolean).join(', ');
    return `${this.provider} ${PROBLEM[this.code]}${details ? ` (${details})` : ''}`;
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

/** The root error class of each SDK; every error either SDK throws derives from one of them. */
const SDK_ROOT_ERRORS: ReadonlySet<string> = new Set(['OpenAIError', 'AnthropicError']);

/** The SDK error classes this module tells apart (the same names in both SDKs). */
export type SdkErrorClass =
  | 'APIError'
  | 'APIUserAbortError'
  | 'APIConnectionError'
  | 'APIConnectionTimeoutError'
  | 'AuthenticationError'
  | 'PermissionDeniedError'
  | 'NotFoundError'
  | 'RateLimitError'
  | 'InternalServerError';

/** What an SDK's `APIError` carries. */
interface SdkApiError extends Error {
  status?: unknown;
  headers?: unknown;
  error?: unknown;
}

/**
 * Whether `err` is an instance of the OpenAI or Anthropic SDK's error class `name` (or of a
 * subclass), told by the class names on its prototype chain: the SDKs are imported only when a
 * provider is first called (see LlmClient), so their classes are not at hand for `instanceof`.
 */
export function isSdkError(err: unknown, name: SdkErrorClass): err is SdkApiError {
  if (typeof err !== 'object' || err === null) return false;
  let found = false;
  for (let proto: unknown = Object.getPrototypeOf(err); proto; proto = Object.getPrototypeOf(proto)) {
    const ctorName = (proto as { constructor?: { name?: unknown } }).constructor?.name;
    if (ctorName === name) found = true;
    if (typeof ctorName === 'string' && SDK_ROOT_ERRORS.has(ctorName)) return found;
  }
  return false;
}

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
  if (status === 401) return 'AUTHENTICATION';
  if (status === 402) return 'QUOTA_EXHAUSTED';
  if (status === 403) return 'PERMISSION';
  if (status === 404) return 'MODEL_NOT_FOUND';
  if (status === 408) return 'TIMEOUT';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 409 || status >= 500) return 'PROVIDER_UNAVAILABLE';
  return 'BAD_REQUEST';
}

/**
 * The code of an SDK error: first by the SDKs' own error classes, then by status. A 429 is a
 * rate limit to wait out, except when the provider says the quota is gone (OpenAI's
 * `insufficient_quota`, Anthropic's `billing_error`): waiting does not mend that.
 */
function codeForApiError(err: SdkApiError, status: number | undefined): LlmErrorCode {
  const type = errorType(err);
  const code = (err as { code?: unknown }).code ?? (err.error as { error?: { code?: unknown } } | undefined)?.error?.code;
  if (type === 'insufficient_quota' || code === 'insufficient_quota' || type === 'billing_error') return 'QUOTA_EXHAUSTED';
  if (isSdkError(err, 'AuthenticationError')) return 'AUTHENTICATION';
  if (isSdkError(err, 'PermissionDeniedError')) return 'PERMISSION';
  if (isSdkError(err, 'NotFoundError')) return 'MODEL_NOT_FOUND';
  if (isSdkError(err, 'RateLimitError')) return 'RATE_LIMITED';
  if (isSdkError(err, 'InternalServerError')) return 'PROVIDER_UNAVAILABLE';
  return status !== undefined ? codeForStatus(status) : codeForStreamErrorType(type);
}

/** Code of an error that arrived inside a stream (no HTTP status), from the provider's error type. */
function codeForStreamErrorType(type: unknown): LlmErrorCode {
  switch (type) {
    case 'rate_limit_error':
    case 'rate_limit_exceeded':
      return 'RATE_LIMITED';
    case 'authentication_error':
      return 'AUTHENTICATION';
    case 'permission_error':
      return 'PERMISSION';
    case 'not_found_error':
      return 'MODEL_NOT_FOUND';
    case 'billing_error':
    case 'insufficient_quota':
      return 'QUOTA_EXHAUSTED';
    case 'invalid_request_error':
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

  if (isSdkError(err, 'APIUserAbortError')) return make('ABORTED');
  if (err instanceof Error && err.name === 'AbortError') return make('ABORTED');
  if (isSdkError(err, 'APIConnectionTimeoutError')) return make('TIMEOUT');
  if (isSdkError(err, 'APIConnectionError')) return make('PROVIDER_UNAVAILABLE');
  if (isSdkError(err, 'APIError')) {
    const status = typeof err.status === 'number' ? err.status : undefined;
    return make(codeForApiError(err, status), status, err.headers as HeadersLike);
  }
  return make('BAD_REQUEST');
}
