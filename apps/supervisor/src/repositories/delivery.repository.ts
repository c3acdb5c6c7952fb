import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { DeliveryState } from '@app/contracts';
import { JOB_QUEUE_SCHEMA } from '../database/job-queue-schema.js';
import { execSql } from './sql.js';

/** A delivery's identity: what it is for (a build, a run), the step, and the kind of call. */
export interface DeliveryKey {
  subjectId: string;
  step: string;
  kind: string;
}

/** A new delivery as stored: the recorded (redacted) request and, apart, its secret values. */
export interface NewDelivery {
  key: DeliveryKey;
  channel: 'http' | 'email';
  request: Record<string, unknown>;
  secrets: Record<string, unknown> | null;
  maxAttempts: number;
  jobId: string;
}

/** A delivery as stored (without its secrets). */
export interface DeliveryRow {
  key: DeliveryKey;
  channel: 'http' | 'email';
  state: DeliveryState;
  request: Record<string, unknown>;
  attempts: number;
  maxAttempts: number;
  jobId: string | null;
  responseStatus: number | null;
  responseUrl: string | null;
  lastError: string | null;
  createdAt: Date;
  settledAt: Date | null;
}

/** One recorded attempt; `outcome` null means it never finished (the process stopped during the call). */
export interface DeliveryAttemptRow {
  attempt: number;
  startedAt: Date;
  outcome: 'succeeded' | 'failed' | null;
  responseStatus: number | null;
  error: string | null;
  durationMs: number | null;
}

/** What a worker needs to make an attempt. */
export interface StartedAttempt {
  attempt: number;
  maxAttempts: number;
  channel: 'http' | 'email';
  request: Record<string, unknown>;
  secrets: Record<string, unknown> | null;
}

/** Why a job makes no attempt. */
export type NoAttempt = 'unknown' | 'settled' | 'stale_job' | 'exhausted';

/** The result of an attempt, as recorded. */
export interface AttemptResult {
  ok: boolean;
  responseStatus: number | null;
  responseUrl: string | null;
  error: string | null;
  durationMs: number;
}

const KEY_WHERE = `subject_id = $1 AND step = $2 AND kind = $3`;
const keyParams = (k: DeliveryKey) => [k.subjectId, k.step, k.kind];

const COLUMNS = `subject_id, step, kind, channel, state, request, attempts, max_attempts, job_id, response_status, response_url, last_error, created_at, settled_at`;

interface RawDelivery {
  subject_id: string;
  step: string;
  kind: string;
  channel: 'http' | 'email';
  state: DeliveryState;
  request: Record<string, unknown>;
  attempts: number;
  max_attempts: number;
  job_id: string | null;
  response_status: number | null;
  response_url: string | null;
  last_error: string | null;
  created_at: Date;
  settled_at: Date | null;
}

function toRow(r: RawDelivery): DeliveryRow {
  return {
    key: { subjectId: r.subject_id, step: r.step, kind: r.kind },
    channel: r.channel,
    state: r.state,
    request: r.request,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    jobId: r.job_id,
    responseStatus: r.response_status,
    responseUrl: r.response_url,
    lastError: r.last_error,
    createdAt: r.created_at,
    settledAt: r.settled_at,
  };
}

/**
 * Outbound deliveries and their attempts. Every state change is one guarded statement (the
 * delivery must still be `pending` and owned by the job that writes), so a stale job (the
 * job of an earlier enqueue, or one retried after its worker vanished) can never settle a
 * delivery twice.
 */
@Injectable()
export class DeliveryRepository {
  constructor(private readonly ds: DataSource) {}

  /** Stores a delivery in the caller's transaction; false when one with this key exists (nothing is changed). */
  async insert(em: EntityManager, d: NewDelivery): Promise<boolean> {
    const { rows } = await execSql(
      em,
      `INSERT INTO deliveries (subject_id, step, kind, channel, request, secrets, max_attempts, job_id)
       VALUES ($1,$2,$3,$4,$5::jsonb,$6::jsonb,$7,$8)
       ON CONFLICT (subject_id, step, kind) DO NOTHING RETURNING subject_id`,
      [...keyParams(d.key), d.channel, JSON.stringify(d.request), d.secrets === null ? null : JSON.stringify(d.secrets), d.maxAttempts, d.jobId],
    );
    return rows.length === 1;
  }

  async find(key: DeliveryKey, em: EntityManager = this.ds.manager): Promise<DeliveryRow | null> {
    const { rows } = await execSql<RawDelivery>(em, `SELECT ${COLUMNS} FROM deliveries WHERE ${KEY_WHERE}`, keyParams(key));
    return rows[0] ? toRow(rows[0]) : null;
  }

  /** Deliveries of one subject (a build), oldest first. */
  async listForSubject(subjectId: string): Promise<DeliveryRow[]> {
    const { rows } = await execSql<RawDelivery>(this.ds.manager, `SELECT ${COLUMNS} FROM deliveries WHERE subject_id = $1 ORDER BY created_at, step, kind`, [subjectId]);
    return rows.map(toRow);
  }

  async attempts(key: DeliveryKey): Promise<DeliveryAttemptRow[]> {
    const { rows } = await execSql<{ attempt: number; started_at: Date; outcome: 'succeeded' | 'failed' | null; response_status: number | null; error: string | null; duration_ms: number | null }>(
      this.ds.manager,
      `SELECT attempt, started_at, outcome, response_status, error, duration_ms FROM delivery_attempts WHERE ${KEY_WHERE} ORDER BY attempt`,
      keyParams(key),
    );
    return rows.map((r) => ({ attempt: r.attempt, startedAt: r.started_at, outcome: r.outcome, responseStatus: r.response_status, error: r.error, durationMs: r.duration_ms }));
  }

  /**
   * Starts attempt n+1 for job `jobId`, in one transaction with the delivery row locked: the
   * attempt row is written (outcome unknown) before the call, so an attempt the process dies
   * in is still on record. A delivery whose attempts are used up (by attempts that never
   * finished) is failed here. Answers why no attempt is made otherwise.
   */
  async startAttempt(key: DeliveryKey, jobId: string): Promise<StartedAttempt | { none: NoAttempt; settled?: DeliveryRow }> {
    return this.ds.transaction(async (em) => {
      const { rows } = await execSql<{ state: DeliveryState; job_id: string | null; attempts: number; max_attempts: number; channel: 'http' | 'email'; request: Record<string, unknown>; secrets: Record<string, unknown> | null }>(
        em,
        `SELECT state, job_id, attempts, max_attempts, channel, request, secrets FROM deliveries WHERE ${KEY_WHERE} FOR UPDATE`,
        keyParams(key),
      );
      const d = rows[0];
      if (!d) return { none: 'unknown' as const };
      if (d.state !== 'pending') return { none: 'settled' as const };
      if (d.job_id !== jobId) return { none: 'stale_job' as const };
      if (d.attempts >= d.max_attempts) {
        const settled = await this.settle(em, key, jobId, { state: 'failed', responseStatus: null, responseUrl: null, error: 'no attempts left (the last ones never finished)' });
        return { none: 'exhausted' as const, settled: settled ?? undefined };
      }
      const attempt = d.attempts + 1;
      await execSql(em, `UPDATE deliveries SET attempts = $4 WHERE ${KEY_WHERE} AND state = 'pending' AND attempts = $5`, [...keyParams(key), attempt, d.attempts]);
      await execSql(em, `INSERT INTO delivery_attempts (subject_id, step, kind, attempt) VALUES ($1,$2,$3,$4)`, [...keyParams(key), attempt]);
      return { attempt, maxAttempts: d.max_attempts, channel: d.channel, request: d.request, secrets: d.secrets };
    });
  }

  /**
   * Records an attempt's result and, when it succeeded or was the last one, settles the
   * delivery (its secrets are dropped then). Returns the delivery when this settled it.
   */
  async finishAttempt(key: DeliveryKey, jobId: string, attempt: number, result: AttemptResult, last: boolean): Promise<DeliveryRow | null> {
    return this.ds.transaction(async (em) => {
      await execSql(
        em,
        `UPDATE delivery_attempts SET outcome = $5, response_status = $6, error = $7, duration_ms = $8 WHERE ${KEY_WHERE} AND attempt = $4`,
        [...keyParams(key), attempt, result.ok ? 'succeeded' : 'failed', result.responseStatus, result.error, Math.round(result.durationMs)],
      );
      if (result.ok) return this.settle(em, key, jobId, { state: 'delivered', responseStatus: result.responseStatus, responseUrl: result.responseUrl, error: null });
      if (last) return this.settle(em, key, jobId, { state: 'failed', responseStatus: result.responseStatus, responseUrl: null, error: result.error });
      await execSql(em, `UPDATE deliveries SET last_error = $4, response_status = $5 WHERE ${KEY_WHERE} AND state = 'pending'`, [...keyParams(key), result.error, result.responseStatus]);
      return null;
    });
  }

  private async settle(
    em: EntityManager,
    key: DeliveryKey,
    jobId: string,
    s: { state: 'delivered' | 'failed'; responseStatus: number | null; responseUrl: string | null; error: string | null },
  ): Promise<DeliveryRow | null> {
    const { rows } = await execSql<RawDelivery>(
      em,
      `UPDATE deliveries SET state = $4, response_status = $5, response_url = $6, last_error = $7, settled_at = now(), secrets = NULL
       WHERE ${KEY_WHERE} AND state = 'pending' AND job_id = $8 RETURNING ${COLUMNS}`,
      [...keyParams(key), s.state, s.responseStatus, s.responseUrl, s.error, jobId],
    );
    return rows[0] ? toRow(rows[0]) : null;
  }

  /**
   * Pending deliveries whose job is gone: finished, failed or archived by the queue without
   * settling them (its retries ran out on errors before an attempt could start, or the queue
   * lost it). These need a new job.
   */
  async orphans(limit = 100): Promise<{ key: DeliveryKey; jobId: string | null; maxAttempts: number; attempts: number; timeoutS: number }[]> {
    const { rows } = await execSql<{ subject_id: string; step: string; kind: string; job_id: string | null; max_attempts: number; attempts: number; timeout_s: number | null }>(
      this.ds.manager,
      `SELECT d.subject_id, d.step, d.kind, d.job_id, d.max_attempts, d.attempts, (d.request->>'timeout_s')::int AS timeout_s
         FROM deliveries d
        WHERE d.state = 'pending'
          AND NOT EXISTS (SELECT 1 FROM ${JOB_QUEUE_SCHEMA}.job j WHERE j.id = d.job_id AND j.state < 'completed')
        ORDER BY d.created_at LIMIT $1`,
      [limit],
    );
    return rows.map((r) => ({ key: { subjectId: r.subject_id, step: r.step, kind: r.kind }, jobId: r.job_id, maxAttempts: r.max_attempts, attempts: r.attempts, timeoutS: r.timeout_s ?? 30 }));
  }

  /** Hands a pending delivery to a new job, if it still belongs to `fromJobId`; false when another process did first. */
  async reassignJob(em: EntityManager, key: DeliveryKey, fromJobId: string | null, toJobId: string): Promise<boolean> {
    const { count } = await execSql(em, `UPDATE deliveries SET job_id = $5 WHERE ${KEY_WHERE} AND state = 'pending' AND job_id IS NOT DISTINCT FROM $4`, [
      ...keyParams(key),
      fromJobId,
      toJobId,
    ]);
    return count === 1;
  }
}
