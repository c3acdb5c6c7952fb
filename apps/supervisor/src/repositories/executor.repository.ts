import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { execSql } from './sql.js';

/** An executor as remembered from its claims and heartbeats, with what it did and holds. */
export interface ExecutorRow {
  executorId: string;
  capabilities: string[];
  firstSeenAt: Date;
  lastSeenAt: Date;
  /** Seconds since it was last seen (by the database's clock). */
  idleSeconds: number;
  current: { runId: string; phaseId: string } | null;
  phasesCompleted: number;
  phasesFailed: number;
}

/** Executors seen by this supervisor's database: who they are, what they can do, when last seen. */
@Injectable()
export class ExecutorRepository {
  constructor(private readonly ds: DataSource) {}

  /** Records a claim: the executor and the capabilities it claims with now, seen now. */
  async seen(em: EntityManager, executorId: string, capabilities: readonly string[]): Promise<void> {
    await execSql(
      em,
      `INSERT INTO executors (executor_id, capabilities) VALUES ($1, $2::text[])
       ON CONFLICT (executor_id) DO UPDATE SET capabilities = EXCLUDED.capabilities, last_seen_at = now()`,
      [executorId, capabilities],
    );
  }

  /** Records a heartbeat of the executor holding a lease (known executors only). */
  async touch(em: EntityManager, executorId: string): Promise<void> {
    await execSql(em, `UPDATE executors SET last_seen_at = now() WHERE executor_id = $1`, [executorId]);
  }

  /** The capability sets of executors seen within `withinSeconds`. */
  async liveCapabilities(em: EntityManager, withinSeconds: number): Promise<string[][]> {
    const { rows } = await execSql<{ capabilities: string[] }>(em, `SELECT capabilities FROM executors WHERE last_seen_at > now() - make_interval(secs => $1)`, [withinSeconds]);
    return rows.map((r) => r.capabilities);
  }

  /** Every executor, most recently seen first, with its current lease and attempt counts. */
  async list(em: EntityManager = this.ds.manager): Promise<ExecutorRow[]> {
    const { rows } = await execSql<{
      executor_id: string;
      capabilities: string[];
      first_seen_at: Date;
      last_seen_at: Date;
      idle_seconds: number;
      run_id: string | null;
      phase_id: string | null;
      completed: number;
      failed: number;
    }>(
      em,
      `SELECT e.executor_id, e.capabilities, e.first_seen_at, e.last_seen_at,
              EXTRACT(EPOCH FROM now() - e.last_seen_at)::float8 AS idle_seconds,
              cur.run_id, cur.phase_id,
              COALESCE(a.completed, 0)::int AS completed, COALESCE(a.failed, 0)::int AS failed
         FROM executors e
         LEFT JOIN LATERAL (SELECT p.run_id, p.phase_id FROM phases p
                             WHERE p.lease_owner = e.executor_id AND p.lease_token IS NOT NULL
                             ORDER BY p.updated_at DESC LIMIT 1) cur ON true
         LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE outcome = 'complete') AS completed,
                                   count(*) FILTER (WHERE outcome NOT IN ('complete', 'released', 'lease_expired')) AS failed
                              FROM phase_attempts pa WHERE pa.executor_id = e.executor_id) a ON true
        ORDER BY e.last_seen_at DESC, e.executor_id`,
    );
    return rows.map((r) => ({
      executorId: r.executor_id,
      capabilities: r.capabilities,
      firstSeenAt: r.first_seen_at,
      lastSeenAt: r.last_seen_at,
      idleSeconds: Number(r.idle_seconds),
      current: r.run_id && r.phase_id ? { runId: r.run_id, phaseId: r.phase_id } : null,
      phasesCompleted: r.completed,
      phasesFailed: r.failed,
    }));
  }
}
