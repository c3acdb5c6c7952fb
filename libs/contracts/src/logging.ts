/**
 * Logging settings shared by the supervisor and the executor: one redaction list, one way to
 * choose between pretty and JSON output. Plain data (no pino here): each app builds its own
 * pino logger from these, so both redact the same keys in both output forms.
 */

/** Keys whose values never reach a log line, wherever they appear (matched case-sensitively, as written). */
export const REDACTED_KEYS: readonly string[] = [
  'authorization',
  'Authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'apiKey',
  'api_key',
  'openaiKey',
  'anthropicKey',
  'password',
  'token',
  'lease_token',
  'leaseToken',
  'secret',
  'databaseUrl',
  'DATABASE_URL',
];

/** What replaces a redacted value. */
export const REDACTED_CENSOR = '[redacted]';

/** pino `redact.paths` for REDACTED_KEYS at the top level and up to three objects deep (e.g. `req.headers.authorization`). */
export function redactPaths(): string[] {
  const key = (k: string) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`);
  const at = (prefix: string, k: string) => (/^[A-Za-z_$][\w$]*$/.test(k) ? `${prefix}.${k}` : `${prefix}${key(k)}`);
  return REDACTED_KEYS.flatMap((k) => [key(k), at('*', k), at('*.*', k), at('*.*.*', k)]);
}

/** pino-pretty settings of the pretty form (both apps): ISO 8601 timestamps in UTC, no pid/hostname. */
export const PRETTY_LOG_OPTIONS = { translateTime: "UTC:yyyy-mm-dd'T'HH:MM:ss.l'Z'", ignore: 'pid,hostname' } as const;

/** Log output forms: `pretty` (pino-pretty, for people) or `json` (one object a line, for machines). */
export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * The output form: `AUTOPACK_LOG_FORMAT` when set (`json` or `pretty`), else pretty when the
 * stream the logs go to is a terminal, JSON otherwise. An unknown value is an error.
 */
export function resolveLogFormat(value: string | undefined, isTty: boolean): LogFormat {
  const v = value?.trim().toLowerCase();
  if (!v) return isTty ? 'pretty' : 'json';
  if ((LOG_FORMATS as readonly string[]).includes(v)) return v as LogFormat;
  throw new Error(`AUTOPACK_LOG_FORMAT must be one of ${LOG_FORMATS.join(', ')}`);
}
