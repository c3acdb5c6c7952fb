import {
  type AuditorRequest,
  type AuditorResultRequest,
  type BuilderResultRequest,
  type ClaimRequest,
  type ClaimResponse,
  ClaimResponseSchema,
  type HeartbeatResponse,
  HeartbeatResponseSchema,
  type PhaseWriteResponse,
  PhaseWriteResponseSchema,
  type ReserveBudgetRequest,
  type ReserveBudgetResponse,
  ReserveBudgetResponseSchema,
  type RunResponse,
  RunResponseSchema,
  type UpdateStatusRequest, type StepResultRequest, type StepResultResponse, StepResultResponseSchema } from '@app/contracts';
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';

/** The supervisor answered with a coded error. */
export class SupervisorError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SupervisorError';
  }
}

/** The supervisor could not be reached after every retry (exit code 2). */
export class SupervisorUnreachableError extends Error {
  readonly code = 'SUPERVISOR_UNREACHABLE';
  constructor(message: string) {
    super(message);
    this.name = 'SupervisorUnreachableError';
  }
}

/** Options of the client. */
export interface SupervisorClientOptions {
  baseUrl: string;
  apiKey?: string;
  /** Total time to keep retrying an unreachable supervisor before giving up. */
  retryForMs?: number;
  log?: (msg: string) => void;
  fetchImpl?: typeof fetch;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How many 500 answers one request retries before it reports the fault. */
const MAX_INTERNAL_ERROR_RETRIES = 2;

/** Why an error answer is worth another try (the text logged), or undefined when it is the answer. */
function retryableFailure(status: number, err: { code?: string; message?: string } | undefined, faultRetryLeft: boolean): string | undefined {
  if (status === 502 || status === 503 || status === 504) return `HTTP ${status}`;
  // A 500 is a supervisor fault, not an answer; one caught mid-failover may not recur, so it gets
  // a couple of retries (every request is idempotent or fenced by its lease).
  if (status === 500 && faultRetryLeft) return `HTTP 500: ${err?.message ?? 'internal error'}`;
  return undefined;
}

/**
 * What a NUL byte is sent as: U+2400 SYMBOL FOR NULL (`␀`), visible, so a reason naming a refused
 * path still says what it was, and one character long, so a text cut to a field's maximum
 * length still fits after escaping.
 */
const NUL_TEXT = '\u2400';
const hasNul = (s: string) => s.includes('\0');

/**
 * `JSON.stringify` replacer for every body sent to the supervisor: a NUL byte (U+0000) in a
 * string or an object key becomes the visible `␀` (U+2400). PostgreSQL cannot store NUL
 * bytes, so the supervisor refuses them (422 NUL_BYTE); a reason quoting a hostile path must
 * still be accepted and reach the next attempt's prompt.
 */
export function escapeNulBytes(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'string') return hasNul(value) ? value.replace(/\0/g, NUL_TEXT) : value;
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).some(hasNul)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replace(/\0/g, NUL_TEXT), v]));
  }
  return value;
}

/**
 * HTTP client of the supervisor. Responses are parsed with the same zod schemas the
 * supervisor is built from. Network errors and 502/503/504 are retried with exponential
 * backoff and jitter for `retryForMs`; a 500 is retried twice; other coded errors are thrown as `SupervisorError`.
 */
export class SupervisorClient {
  private readonly base: string;
  private readonly retryForMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: SupervisorClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.retryForMs = opts.retryForMs ?? 120_000;
    this.fetchImpl = opts.fetchImpl ?? fetch;
  }

  /**
   * `POST /phases/claim`; null on 204. One Idempotency-Key per claim, reused by the retries
   * of this call, so a response lost on the wire cannot leave a second, orphaned lease.
   */
  async claim(req: ClaimRequest): Promise<ClaimResponse | null> {
    const res = await this.request('POST', '/phases/claim', req, (req.wait_ms ?? 0) + 30_000, { 'idempotency-key': `claim-${randomUUID()}` });
    return res.status === 204 ? null : this.parse(ClaimResponseSchema, res.body);
  }

  /** Heartbeat; throws SupervisorError(409, LEASE_LOST) when the lease is gone. */
  async heartbeat(runId: string, phaseId: string, leaseToken: string): Promise<HeartbeatResponse> {
    const res = await this.request('POST', this.phasePath(runId, phaseId, 'heartbeat'), { lease_token: leaseToken });
    return this.parse(HeartbeatResponseSchema, res.body);
  }

  async builderResult(runId: string, phaseId: string, body: BuilderResultRequest): Promise<PhaseWriteResponse> {
    return this.write(this.phasePath(runId, phaseId, 'builder_result'), body);
  }

  async auditorRequest(runId: string, phaseId: string, body: AuditorRequest): Promise<PhaseWriteResponse> {
    return this.write(this.phasePath(runId, phaseId, 'auditor_request'), body);
  }

  async auditorResult(runId: string, phaseId: string, body: AuditorResultRequest): Promise<PhaseWriteResponse> {
    return this.write(this.phasePath(runId, phaseId, 'auditor_result'), body);
  }

  async updateStatus(runId: string, phaseId: string, body: UpdateStatusRequest): Promise<PhaseWriteResponse> {
    return this.write(this.phasePath(runId, phaseId, 'update_status'), body);
  }

  /** What a build step produced (the plan, the promotion); the plan's answer says whether it was accepted. */
  async stepResult(runId: string, phaseId: string, body: StepResultRequest): Promise<StepResultResponse> {
    const res = await this.request('POST', this.phasePath(runId, phaseId, 'step_result'), body);
    return this.parse(StepResultResponseSchema, res.body);
  }

  /** Reserves the worst case of an LLM call; throws SupervisorError(409, BUDGET_EXHAUSTED) if it does not fit. */
  async reserveBudget(runId: string, phaseId: string, body: ReserveBudgetRequest): Promise<ReserveBudgetResponse> {
    // One key per reservation, reused by the retries: a lost response does not reserve twice.
    const res = await this.request('POST', this.phasePath(runId, phaseId, 'reserve_budget'), body, undefined, { 'idempotency-key': `reserve-${randomUUID()}` });
    return this.parse(ReserveBudgetResponseSchema, res.body);
  }

  /** `GET /runs/{id}`. */
  async getRun(runId: string): Promise<RunResponse> {
    const res = await this.request('GET', `/runs/${encodeURIComponent(runId)}`);
    return this.parse(RunResponseSchema, res.body);
  }

  private phasePath(runId: string, phaseId: string, action: string): string {
    return `/runs/${encodeURIComponent(runId)}/phases/${encodeURIComponent(phaseId)}/${action}`;
  }

  private async write(path: string, body: unknown): Promise<PhaseWriteResponse> {
    const res = await this.request('POST', path, body);
    return this.parse(PhaseWriteResponseSchema, res.body);
  }

  private parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new SupervisorError(502, 'BAD_RESPONSE', `unexpected supervisor response: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    return parsed.data;
  }

  private async request(method: string, path: string, body?: unknown, timeoutMs = 30_000, extraHeaders: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
    const deadline = Date.now() + this.retryForMs;
    let internalErrors = 0;
    for (let attempt = 0; ; attempt++) {
      let failure: string;
      try {
        const res = await this.fetchImpl(this.base + path, {
          method,
          headers: {
            accept: 'application/json',
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(this.opts.apiKey ? { 'x-api-key': this.opts.apiKey } : {}),
            ...extraHeaders,
          },
          body: body === undefined ? undefined : JSON.stringify(body, escapeNulBytes),
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        if (res.status < 400) return { status: res.status, body: json };
        const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
        if (res.status === 500) internalErrors++;
        const retryable = retryableFailure(res.status, err, internalErrors <= MAX_INTERNAL_ERROR_RETRIES);
        if (!retryable) throw new SupervisorError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? `HTTP ${res.status}`);
        failure = retryable;
      } catch (err) {
        if (err instanceof SupervisorError) throw err;
        failure = (err as Error).name === 'TimeoutError' ? 'request timed out' : ((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message);
      }
      const delay = Math.min(10_000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
      if (Date.now() + delay > deadline) {
        throw new SupervisorUnreachableError(`supervisor at ${this.base} unreachable (${failure}) after ${attempt + 1} tries`);
      }
      this.opts.log?.(`supervisor ${method} ${path} failed (${failure}); retrying in ${Math.round(delay)} ms`);
      await sleep(delay);
    }
  }
}
