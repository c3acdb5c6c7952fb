import { HOOK_DEFAULTS, type Hook, TEMPLATE_VARIABLES, type TemplateVars } from '@app/contracts';

/** `{{name}}` of a known template variable, spaces inside the braces allowed. */
const PLACEHOLDER = new RegExp(`\\{\\{\\s*(${TEMPLATE_VARIABLES.join('|')})\\s*\\}\\}`, 'g');

/** What replaces a secret in anything recorded or logged. */
export const REDACTED = '[redacted]';

/**
 * Replaces every `{{build_id}}`, `{{droplet_id}}`, `{{commit_sha}}`, `{{branch}}` and
 * `{{deployment_url}}` in `text`; a variable without a value becomes the empty string, and
 * any other `{{...}}` is left as written. Values are inserted as they are (not URL-encoded):
 * ids, SHAs and branch names need no encoding in a URL. Pure.
 */
export function fillTemplate(text: string, vars: TemplateVars): string {
  return text.replace(PLACEHOLDER, (_match, name: keyof TemplateVars) => vars[name] ?? '');
}

/** {@link fillTemplate} applied to every string inside a JSON value (object keys are left alone). Pure. */
export function fillTemplateDeep(value: unknown, vars: TemplateVars): unknown {
  if (typeof value === 'string') return fillTemplate(value, vars);
  if (Array.isArray(value)) return value.map((v) => fillTemplateDeep(v, vars));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, fillTemplateDeep(v, vars)]));
  }
  return value;
}

/** An HTTP call ready to be made: templates filled, defaults applied. */
export interface HttpCall {
  url: string;
  method: string;
  headers: Record<string, string>;
  /** Sent as JSON when present. */
  body?: unknown;
  /** The status that counts as success; null for any 2xx. */
  expectStatus: number | null;
  timeoutS: number;
  /** Further attempts after a failed one. */
  retries: number;
}

/** A hook with its templates filled (`url` and every string of `body`) and its defaults applied. Pure. */
export function renderHook(hook: Hook, vars: TemplateVars): HttpCall {
  return {
    url: fillTemplate(hook.url, vars),
    method: hook.method ?? HOOK_DEFAULTS.method,
    headers: { ...hook.headers },
    ...(hook.body === undefined ? {} : { body: fillTemplateDeep(hook.body, vars) }),
    expectStatus: hook.expect_status ?? null,
    timeoutS: hook.timeout_s ?? HOOK_DEFAULTS.timeout_s,
    retries: hook.retries ?? HOOK_DEFAULTS.retries,
  };
}

/** Whether an answer's status is the expected one (any 2xx when none is expected). Pure. */
export function statusMeetsExpectation(status: number, expectStatus: number | null): boolean {
  return expectStatus === null ? status >= 200 && status < 300 : status === expectStatus;
}

/** Header (and query parameter) names whose values are credentials. */
const SECRET_NAME = /auth|key|token|secret|password|cookie|signature/i;

/**
 * Whether a header carries a credential: `Authorization`, `X-API-Key`, and any header whose
 * name contains key, token, secret, auth, password, cookie or signature. Pure.
 */
export function isSecretHeader(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** The headers with credential values replaced by {@link REDACTED}. Pure. */
export function redactHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, isSecretHeader(k) ? REDACTED : v]));
}

/**
 * The URL as it may be recorded: user info and credential-named query parameters redacted;
 * with `wholePath`, the path and query too (a Slack incoming-webhook URL is itself the
 * credential). A string that is not a URL is redacted whole. Pure.
 */
export function redactUrl(url: string, wholePath = false): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return REDACTED;
  }
  if (wholePath) return `${u.protocol}//${u.host}/${REDACTED}`;
  if (u.username || u.password) {
    u.username = 'redacted';
    u.password = '';
  }
  for (const name of [...u.searchParams.keys()]) if (SECRET_NAME.test(name)) u.searchParams.set(name, REDACTED);
  return u.toString().replaceAll(encodeURIComponent(REDACTED), REDACTED);
}

/**
 * Removes every secret value from a text (an error message), longest first so a secret that
 * contains another is removed whole. Values shorter than 4 characters are left alone: they
 * would redact ordinary words. Pure.
 */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  return [...secrets]
    .filter((s) => s.length >= 4)
    .sort((a, b) => b.length - a.length)
    .reduce((t, s) => t.split(s).join(REDACTED), text);
}

/** The secret values of a call: credential header values, and the URL when its recorded form differs. Pure. */
export function secretValuesOf(url: string, headers: Record<string, string>, wholePathSecret = false): string[] {
  const values = Object.entries(headers)
    .filter(([k]) => isSecretHeader(k))
    .map(([, v]) => v);
  if (redactUrl(url, wholePathSecret) !== url) {
    values.push(url);
    try {
      const u = new URL(url);
      if (wholePathSecret) values.push(u.pathname + u.search);
      if (u.password) values.push(decodeURIComponent(u.password));
      for (const [k, v] of u.searchParams) if (SECRET_NAME.test(k)) values.push(v);
    } catch {
      // not a URL: the whole string is the secret, already listed
    }
  }
  return values.filter((v) => v.length > 0);
}

/**
 * `deployment_url` from a deploy hook's answer: the `url` field of a JSON object answer,
 * when it is a non-empty string. Pure.
 */
export function deploymentUrlOf(answer: unknown): string | null {
  if (!answer || typeof answer !== 'object' || Array.isArray(answer)) return null;
  const url = (answer as Record<string, unknown>).url;
  return typeof url === 'string' && url.length > 0 ? url : null;
}
