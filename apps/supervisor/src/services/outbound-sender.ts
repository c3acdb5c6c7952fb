import { Inject, Injectable } from '@nestjs/common';
import nodemailer from 'nodemailer';
import { type HttpCall, deploymentUrlOf, scrubSecrets, secretValuesOf, statusMeetsExpectation } from '@app/domain';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';

/** An HTTP call with its secrets put back, ready to be sent once (its retries are the queue's). */
export type OutboundHttp = Omit<HttpCall, 'retries'> & {
  /** The URL itself is a credential (a Slack incoming webhook): never shown, even in part. */
  urlIsSecret?: boolean;
};

/** An email to send over the configured SMTP server. */
export interface OutboundEmail {
  to: string;
  subject: string;
  text: string;
  timeoutS: number;
}

/** What one attempt gave; `error` never holds a secret value. */
export interface SendResult {
  ok: boolean;
  /** The HTTP status, or the SMTP reply code. */
  responseStatus: number | null;
  /** The `url` of a successful JSON answer (a deploy hook's deployment URL). */
  responseUrl: string | null;
  error: string | null;
}

/** The result of a health check: healthy in time or not, after how many requests. */
export interface ProbeResult {
  ok: boolean;
  /** Status of the last answer, if any came. */
  responseStatus: number | null;
  /** Why the last request did not count as healthy. */
  error: string | null;
  tries: number;
  durationMs: number;
}

/** Pause between health-check requests. */
const PROBE_INTERVAL_MS = 1000;

/** Answers longer than this are not read further (only a deploy answer's `url` is used). */
const MAX_ANSWER_BYTES = 1024 * 1024;

async function readAnswer(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size >= MAX_ANSWER_BYTES) {
      await reader.cancel();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A short, secret-free description of why a call failed. */
function describeFailure(err: unknown, timeoutS: number): string {
  const e = err as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `timed out after ${timeoutS}s`;
  if (e?.cause?.message) return e.cause.code && !e.cause.message.includes(e.cause.code) ? `${e.cause.code}: ${e.cause.message}` : e.cause.message;
  if (e?.code && e.message && !e.message.includes(e.code)) return `${e.code}: ${e.message}`;
  return e?.message ?? String(err);
}

/**
 * Makes one outbound attempt: an HTTP call with a timeout, or an email over SMTP
 * (nodemailer). It never throws; failures come back as results whose error text has every
 * secret of the call removed.
 */
@Injectable()
export class OutboundSender {
  constructor(@Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig) {}

  async sendHttp(call: OutboundHttp, idempotencyKey?: string): Promise<SendResult> {
    const headers: Record<string, string> = { 'user-agent': 'autopack-supervisor' };
    if (call.body !== undefined) headers['content-type'] = 'application/json';
    // Lets a receiver recognize a retry of a call it may already have acted on.
    if (idempotencyKey && !Object.keys(call.headers).some((h) => h.toLowerCase() === 'idempotency-key')) headers['idempotency-key'] = idempotencyKey;
    Object.assign(headers, call.headers);
    const secrets = secretValuesOf(call.url, call.headers, call.urlIsSecret);
    try {
      const res = await fetch(call.url, {
        method: call.method,
        headers,
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
        // A redirect could carry the credentials elsewhere; a hook answers where it is asked.
        redirect: 'manual',
        signal: AbortSignal.timeout(call.timeoutS * 1000),
      });
      const text = await readAnswer(res);
      if (!statusMeetsExpectation(res.status, call.expectStatus)) {
        return { ok: false, responseStatus: res.status, responseUrl: null, error: `unexpected status ${res.status} (expected ${call.expectStatus ?? '2xx'})` };
      }
      let answer: unknown = null;
      try {
        answer = JSON.parse(text);
      } catch {
        // not JSON: no deployment URL in it
      }
      return { ok: true, responseStatus: res.status, responseUrl: deploymentUrlOf(answer), error: null };
    } catch (err) {
      return { ok: false, responseStatus: null, responseUrl: null, error: scrubSecrets(describeFailure(err, call.timeoutS), secrets) };
    }
  }

  /**
   * A deploy's health check: GETs `url` until it answers `expectStatus`, for at most
   * `timeoutS` overall (each request is cut off at what is left), a second between requests.
   * A freshly started service may refuse connections at first, so failures before the
   * deadline are not final. Not a delivery: nothing is stored, and after a restart the
   * check is simply made again.
   */
  async probeHealth(check: { url: string; expectStatus: number; timeoutS: number }, signal?: AbortSignal): Promise<ProbeResult> {
    const began = Date.now();
    const deadline = began + check.timeoutS * 1000;
    let tries = 0;
    let last: SendResult = { ok: false, responseStatus: null, responseUrl: null, error: 'not checked' };
    while (Date.now() < deadline && !signal?.aborted) {
      tries++;
      const leftS = Math.max(0.1, (deadline - Date.now()) / 1000);
      last = await this.sendHttp({ url: check.url, method: 'GET', headers: {}, expectStatus: check.expectStatus, timeoutS: leftS });
      if (last.ok) break;
      const pause = Math.min(PROBE_INTERVAL_MS, deadline - Date.now());
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
    }
    if (!last.ok && last.error?.startsWith('timed out')) last = { ...last, error: `timed out after ${check.timeoutS}s` };
    return { ok: last.ok, responseStatus: last.responseStatus, error: last.ok ? null : last.error, tries, durationMs: Date.now() - began };
  }

  async sendEmail(mail: OutboundEmail): Promise<SendResult> {
    const smtpUrl = this.config.smtpUrl;
    if (!smtpUrl) return { ok: false, responseStatus: null, responseUrl: null, error: 'AUTOPACK_SMTP_URL is not set' };
    const secrets = secretValuesOf(smtpUrl, {});
    const timeoutMs = mail.timeoutS * 1000;
    const transport = nodemailer.createTransport({ url: smtpUrl, connectionTimeout: timeoutMs, greetingTimeout: timeoutMs, socketTimeout: timeoutMs } as never);
    try {
      const info = (await transport.sendMail({ from: this.config.notifyFrom, to: mail.to, subject: mail.subject, text: mail.text })) as { response?: string; rejected?: unknown[] };
      const code = Number.parseInt(String(info.response ?? '').slice(0, 3), 10);
      const responseStatus = Number.isFinite(code) ? code : null;
      if (info.rejected && info.rejected.length > 0) return { ok: false, responseStatus, responseUrl: null, error: `recipient(s) rejected: ${info.rejected.length}` };
      return { ok: true, responseStatus, responseUrl: null, error: null };
    } catch (err) {
      const e = err as { responseCode?: number };
      return { ok: false, responseStatus: e?.responseCode ?? null, responseUrl: null, error: scrubSecrets(describeFailure(err, mail.timeoutS), secrets) };
    } finally {
      transport.close();
    }
  }
}
