import { ErrorBodySchema } from '@app/contracts';
import type { z } from 'zod';

/*
 * The admin commands' HTTP client of the supervisor. Unlike the executor's client it never
 * retries: an operator at a terminal wants the answer, or why there is none, at once.
 */

/** The supervisor answered with an error status (4xx: the caller's fault, exit 1; 5xx: exit 2). */
export class ApiAnswerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiAnswerError';
  }
}

/** No answer from the supervisor: refused, reset, timed out (exit 2). */
export class ApiUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiUnreachableError';
  }
}

/** A 2xx answer that is not what the API answers: the URL names something else (exit 2). */
export class ApiBadAnswerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiBadAnswerError';
  }
}

/** Options of the client. */
export interface AdminApiOptions {
  /** An absolute http(s) URL. */
  baseUrl: string;
  apiKey?: string;
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
}

/** What an answer looked like before parsing. */
export interface RawAnswer {
  status: number;
  body: unknown;
}

/** The URL as shown to a person: no user or password, no trailing slash. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/+$/, '');
  } catch {
    return url;
  }
}

/** An absolute http:// or https:// URL with a host. */
export function isAbsoluteHttpUrl(v: string): boolean {
  if (!/^https?:\/\/[^/]/i.test(v)) return false;
  try {
    return ['http:', 'https:'].includes(new URL(v).protocol);
  } catch {
    return false;
  }
}

/** JSON requests to the supervisor, the key sent as `X-API-Key`. */
export class AdminApi {
  readonly base: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: AdminApiOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.fetchImpl = opts.fetchImpl ?? fetch;
  }

  /** One request; any status is returned. Throws ApiUnreachableError when nothing answers. */
  async send(method: string, path: string, body?: unknown): Promise<RawAnswer> {
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(this.base + path, {
        method,
        headers: {
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.opts.apiKey ? { 'x-api-key': this.opts.apiKey } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${Math.round(this.timeoutMs / 1000)} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new ApiUnreachableError(`supervisor unreachable at ${displayUrl(this.base)} (${why})`);
    }
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, body: json };
  }

  /** A request whose 2xx answer is parsed with `schema`; an error status is thrown as ApiAnswerError. */
  async call<S extends z.ZodType>(schema: S, method: string, path: string, body?: unknown): Promise<z.infer<S>> {
    return this.parse(schema, await this.send(method, path, body), `${method} ${path}`);
  }

  /** The answer's body parsed with `schema`, or the error it carries thrown. */
  parse<S extends z.ZodType>(schema: S, answer: RawAnswer, what: string): z.infer<S> {
    if (answer.status >= 400) throw answerError(answer);
    const parsed = schema.safeParse(answer.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
      throw new ApiBadAnswerError(`unexpected answer to ${what} from ${displayUrl(this.base)}${where}: ${issue?.message ?? 'invalid'} (is it an Autopack supervisor?)`);
    }
    return parsed.data;
  }
}

/** The coded error of an error answer, `HTTP_<status>` when the body is not the API's error shape. */
export function answerError(answer: RawAnswer): ApiAnswerError {
  const parsed = ErrorBodySchema.safeParse(answer.body);
  if (parsed.success) return new ApiAnswerError(answer.status, parsed.data.error.code, parsed.data.error.message);
  return new ApiAnswerError(answer.status, `HTTP_${answer.status}`, `the supervisor answered ${answer.status}`);
}
