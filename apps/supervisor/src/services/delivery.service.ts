import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { DeliveryState, Hook, TemplateVars } from '@app/contracts';
import { type HttpCall, isSecretHeader, redactHeaders, redactUrl, renderHook } from '@app/domain';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import { JOB_QUEUES } from '../database/job-queue-schema.js';
import { AppLogger } from '../http/logger.js';
import { type DeliveryAttemptRow, type DeliveryKey, DeliveryRepository, type DeliveryRow } from '../repositories/index.js';
import { JobQueue, type QueuedJob } from './job-queue.service.js';
import { OutboundSender, type SendResult } from './outbound-sender.js';

export type { DeliveryKey } from '../repositories/index.js';

/** What to deliver: an HTTP call (a hook, a webhook or Slack notification) or an email. */
export type DeliveryRequest =
  | {
      channel: 'http';
      call: HttpCall;
      /** The URL itself is a credential (a Slack incoming webhook): it is stored apart and recorded redacted. */
      urlIsSecret?: boolean;
    }
  | { channel: 'email'; to: string; subject: string; text: string; timeoutS: number; retries: number };

/** A delivery as the caller sees it. */
export interface DeliveryOutcome {
  key: DeliveryKey;
  /** `pending` until it was delivered or its attempts ran out (`failed`). */
  state: DeliveryState;
  attempts: number;
  maxAttempts: number;
  /** HTTP status (or SMTP reply code) of the last finished attempt. */
  responseStatus: number | null;
  /** The `url` field of a delivered call's JSON answer (a deploy hook's deployment URL). */
  responseUrl: string | null;
  lastError: string | null;
  /** The request as recorded: templates filled, credentials redacted. */
  request: Record<string, unknown>;
  createdAt: Date;
  settledAt: Date | null;
}

/** A settled delivery (delivered or failed). */
export type SettledDelivery = DeliveryOutcome & { state: 'delivered' | 'failed' };

/** The job's payload: only the key; everything else is read from the delivery row. */
interface DeliveryJob {
  subjectId: string;
  step: string;
  kind: string;
}

/** Thrown by a job whose attempt failed with attempts left, so the queue retries it with backoff. */
class AttemptFailed extends Error {
  override name = 'AttemptFailed';
}

/** Room above the call's own timeout before a run counts as lost (reading and recording take a moment). */
const EXPIRY_MARGIN_S = 60;

const keyString = (k: DeliveryKey) => `${k.subjectId}/${k.step}/${k.kind}`;

function toOutcome(d: DeliveryRow): DeliveryOutcome {
  return {
    key: d.key,
    state: d.state,
    attempts: d.attempts,
    maxAttempts: d.maxAttempts,
    responseStatus: d.responseStatus,
    responseUrl: d.responseUrl,
    lastError: d.lastError,
    request: d.request,
    createdAt: d.createdAt,
    settledAt: d.settledAt,
  };
}

/**
 * Durable outbound deliveries, at most one per key and each call made once per success.
 *
 * - `request` stores the delivery (its request recorded with credentials redacted, the
 *   credentials apart) and enqueues its job in the caller's transaction; a key already
 *   stored changes nothing and enqueues nothing.
 * - The job (queue `autopack-delivery`) records an attempt before the call and its result
 *   after; a success or the last failure settles the delivery and drops its credentials. A
 *   failure with attempts left is retried by the queue with exponential backoff.
 * - A settled delivery is never called again, whatever job runs for it; a job that is not
 *   the delivery's current one does nothing.
 * - After a restart the queue hands out pending jobs again; `reconcile` (at boot and after
 *   each queue maintenance) gives a new job to a pending delivery whose job is gone.
 *
 * The row is the truth for callers: `outcomeOf` reads it, `waitForOutcome` resolves when it
 * settles, and `onSettled` listeners hear of settlements made in this process.
 */
@Injectable()
export class DeliveryService implements OnApplicationBootstrap {
  private readonly settled = new EventEmitter();

  constructor(
    private readonly ds: DataSource,
    private readonly deliveries: DeliveryRepository,
    private readonly queue: JobQueue,
    private readonly sender: OutboundSender,
    private readonly log: AppLogger,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {
    this.settled.setMaxListeners(0);
    queue.handle<DeliveryJob>(JOB_QUEUES.delivery, (job) => this.deliver(job));
    queue.onMaintenance(() => void this.reconcile().catch((err: Error) => this.log.warn({ err: err.message }, 'delivery reconcile failed')));
  }

  async onApplicationBootstrap(): Promise<void> {
    const n = await this.reconcile();
    if (n > 0) this.log.info({ deliveries: n }, 'pending deliveries without a job re-enqueued');
  }

  /**
   * Requests a hook call: templates filled from `vars` (`url` and every string of `body`),
   * defaults applied, then {@link request}. Returns whether this call created the delivery.
   */
  requestHook(em: EntityManager, input: { key: DeliveryKey; hook: Hook; vars: TemplateVars }): Promise<boolean> {
    return this.request(em, input.key, { channel: 'http', call: renderHook(input.hook, input.vars) });
  }

  /**
   * Stores the delivery `key` and enqueues its job, both in `em`'s transaction (a transaction
   * of its own when `em` has none). Returns false, changing nothing, when the key exists: a
   * repeated request never calls twice.
   */
  async request(em: EntityManager, key: DeliveryKey, req: DeliveryRequest): Promise<boolean> {
    if (!em.queryRunner?.isTransactionActive) return em.transaction((tx) => this.request(tx, key, req));
    const { record, secrets, timeoutS, retries } = this.recordOf(req);
    const jobId = randomUUID();
    const created = await this.deliveries.insert(em, { key, channel: req.channel, request: record, secrets, maxAttempts: retries + 1, jobId });
    if (!created) return false;
    await this.enqueue(em, key, jobId, retries, timeoutS);
    this.log.info({ delivery: keyString(key), channel: req.channel }, 'delivery requested');
    return true;
  }

  /** The delivery as stored, or null when it was never requested. */
  async outcomeOf(key: DeliveryKey): Promise<DeliveryOutcome | null> {
    const d = await this.deliveries.find(key);
    return d ? toOutcome(d) : null;
  }

  /** Every attempt of a delivery, in order (an attempt with outcome null never finished: the process stopped during it). */
  attemptsOf(key: DeliveryKey): Promise<DeliveryAttemptRow[]> {
    return this.deliveries.attempts(key);
  }

  /** Every delivery of a subject (a build), oldest first. */
  async listFor(subjectId: string): Promise<DeliveryOutcome[]> {
    return (await this.deliveries.listForSubject(subjectId)).map(toOutcome);
  }

  /**
   * Resolves with the delivery once it is settled (delivered or failed), wherever it was
   * settled: at once when it already is, on this process's settlement event, or by reading
   * the row again every `pollMs` (another supervisor may work it). Rejects when the key was
   * never requested, on `timeoutMs`, or when `signal` aborts.
   */
  async waitForOutcome(key: DeliveryKey, opts: { timeoutMs?: number; pollMs?: number; signal?: AbortSignal } = {}): Promise<SettledDelivery> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
    const name = keyString(key);
    for (;;) {
      opts.signal?.throwIfAborted();
      const outcome = await this.outcomeOf(key);
      if (!outcome) throw new Error(`delivery ${name} was never requested`);
      if (outcome.state !== 'pending') return outcome as SettledDelivery;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for delivery ${name}`);
      const stop = new AbortController();
      const onAbort = () => stop.abort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await Promise.race([once(this.settled, name, { signal: stop.signal }), sleep(Math.min(left, opts.pollMs ?? 1000), undefined, { signal: stop.signal })]).catch(() => undefined);
      } finally {
        stop.abort();
        opts.signal?.removeEventListener('abort', onAbort);
      }
    }
  }

  /** Calls `listener` for every delivery this process settles; returns the unsubscribe function. Not durable: after a restart, read {@link outcomeOf}. */
  onSettled(listener: (outcome: SettledDelivery) => void): () => void {
    this.settled.on('*', listener);
    return () => this.settled.off('*', listener);
  }

  /**
   * Gives a new job to every pending delivery whose job is gone (finished, failed or archived
   * without settling it). Guarded per delivery, so concurrent supervisors re-enqueue each once.
   */
  async reconcile(): Promise<number> {
    let n = 0;
    for (const o of await this.deliveries.orphans()) {
      const jobId = randomUUID();
      const moved = await this.ds.transaction(async (em) => {
        if (!(await this.deliveries.reassignJob(em, o.key, o.jobId, jobId))) return false;
        await this.enqueue(em, o.key, jobId, Math.max(0, o.maxAttempts - o.attempts - 1), o.timeoutS);
        return true;
      });
      if (moved) {
        n++;
        this.log.warn({ delivery: keyString(o.key), previous_job: o.jobId }, 'pending delivery had no job: re-enqueued');
      }
    }
    return n;
  }

  /** The job: one attempt, recorded before and after the call. */
  private async deliver(job: QueuedJob<DeliveryJob>): Promise<void> {
    const key: DeliveryKey = { subjectId: job.data.subjectId, step: job.data.step, kind: job.data.kind };
    const name = keyString(key);
    const start = await this.deliveries.startAttempt(key, job.id);
    if ('none' in start) {
      if (start.settled) this.announce(start.settled);
      if (start.none !== 'settled') this.log.info({ delivery: name, job: job.id, reason: start.none }, 'delivery job makes no attempt');
      return;
    }
    const began = performance.now();
    const result = await this.attempt(start.channel, start.request, start.secrets, name);
    const durationMs = performance.now() - began;
    const last = start.attempt >= start.maxAttempts;
    const settled = await this.deliveries.finishAttempt(key, job.id, start.attempt, { ...result, durationMs }, last);
    const log = { delivery: name, attempt: start.attempt, of: start.maxAttempts, status: result.responseStatus, duration_ms: Math.round(durationMs) };
    if (result.ok) this.log.info(log, 'delivered');
    else this.log.warn({ ...log, error: result.error }, last ? 'delivery failed: no attempts left' : 'delivery attempt failed; will retry');
    if (settled) this.announce(settled);
    if (!result.ok && !last) throw new AttemptFailed(`attempt ${start.attempt} of ${start.maxAttempts} failed: ${result.error}`);
  }

  private attempt(channel: 'http' | 'email', request: Record<string, unknown>, secrets: Record<string, unknown> | null, idempotencyKey: string): Promise<SendResult> {
    if (channel === 'email') {
      const r = request as { to: string; subject: string; text: string; timeout_s: number };
      return this.sender.sendEmail({ to: r.to, subject: r.subject, text: r.text, timeoutS: r.timeout_s });
    }
    const r = request as { url: string; method: string; headers: Record<string, string>; body?: unknown; expect_status: number | null; timeout_s: number; url_is_secret?: boolean };
    const s = (secrets ?? {}) as { url?: string; headers?: Record<string, string> };
    return this.sender.sendHttp(
      {
        url: s.url ?? r.url,
        method: r.method,
        headers: { ...r.headers, ...s.headers },
        ...('body' in r ? { body: r.body } : {}),
        expectStatus: r.expect_status,
        timeoutS: r.timeout_s,
        urlIsSecret: r.url_is_secret === true,
      },
      idempotencyKey,
    );
  }

  private announce(d: DeliveryRow): void {
    const outcome = toOutcome(d) as SettledDelivery;
    this.settled.emit(keyString(d.key), outcome);
    this.settled.emit('*', outcome);
  }

  private enqueue(em: EntityManager, key: DeliveryKey, jobId: string, retries: number, timeoutS: number): Promise<void> {
    const data: DeliveryJob = { subjectId: key.subjectId, step: key.step, kind: key.kind };
    return this.queue.enqueue(em, JOB_QUEUES.delivery, data, {
      id: jobId,
      // Room for runs that end without an attempt (an error before it started): the row's
      // attempt count, not the queue's, decides when the delivery has failed.
      retryLimit: retries + 2,
      retryDelaySeconds: this.config.deliveryRetryDelaySeconds,
      expireInSeconds: timeoutS + EXPIRY_MARGIN_S,
    });
  }

  /** The request as recorded (credentials redacted), its credentials apart, and its limits. */
  private recordOf(req: DeliveryRequest): { record: Record<string, unknown>; secrets: Record<string, unknown> | null; timeoutS: number; retries: number } {
    if (req.channel === 'email') {
      return { record: { to: req.to, subject: req.subject, text: req.text, timeout_s: req.timeoutS }, secrets: null, timeoutS: req.timeoutS, retries: req.retries };
    }
    const { call } = req;
    const recordedUrl = redactUrl(call.url, req.urlIsSecret === true);
    const secretHeaders = Object.fromEntries(Object.entries(call.headers).filter(([h]) => isSecretHeader(h)));
    const secrets: Record<string, unknown> = {};
    if (recordedUrl !== call.url) secrets.url = call.url;
    if (Object.keys(secretHeaders).length > 0) secrets.headers = secretHeaders;
    return {
      record: {
        url: recordedUrl,
        method: call.method,
        headers: redactHeaders(call.headers),
        ...(call.body === undefined ? {} : { body: call.body }),
        expect_status: call.expectStatus,
        timeout_s: call.timeoutS,
        ...(req.urlIsSecret ? { url_is_secret: true } : {}),
      },
      secrets: Object.keys(secrets).length > 0 ? secrets : null,
      timeoutS: call.timeoutS,
      retries: call.retries,
    };
  }
}
