import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { execSql } from './sql.js';

/** A stored idempotent answer. */
export interface StoredAnswer {
  requestHash: string;
  state: 'in_progress' | 'done';
  status: number | null;
  response: unknown;
}

/** Idempotency keys: reserve, complete, replay. */
@Injectable()
export class IdempotencyRepository {
  constructor(private readonly ds: DataSource) {}

  /**
   * Reserves a key; null when it is new (the caller proceeds), else what is stored. A
   * reservation older than `staleAfterSeconds` for the same body is taken over: its request
   * died with its process or lost the database before it could release the key, and leaving
   * it would refuse every retry of that request for a day.
   */
  async reserve(route: string, key: string, requestHash: string, staleAfterSeconds: number): Promise<StoredAnswer | null> {
    const inserted = await execSql(
      this.ds.manager,
      `INSERT INTO idempotency_keys (route, key, request_hash, state) VALUES ($1,$2,$3,'in_progress')
       ON CONFLICT (route, key) DO UPDATE SET created_at = now()
         WHERE idempotency_keys.state = 'in_progress' AND idempotency_keys.request_hash = EXCLUDED.request_hash
           AND idempotency_keys.created_at < now() - make_interval(secs => $4)
       RETURNING key`,
      [route, key, requestHash, staleAfterSeconds],
    );
    if (inserted.rows.length === 1) return null;
    return this.find(route, key);
  }

  /** What is stored under a key, if anything. */
  async find(route: string, key: string, em: EntityManager = this.ds.manager): Promise<StoredAnswer | null> {
    const { rows } = await execSql<{ request_hash: string; state: 'in_progress' | 'done'; status: number | null; response: unknown }>(
      em,
      `SELECT request_hash, state, status, response FROM idempotency_keys WHERE route = $1 AND key = $2`,
      [route, key],
    );
    const r = rows[0];
    return r ? { requestHash: r.request_hash, state: r.state, status: r.status, response: r.response } : null;
  }

  /**
   * Stores a finished answer in the caller's transaction, so it commits or rolls back with the
   * change it describes; false when the key was stored meanwhile by a concurrent request.
   */
  async insertDone(route: string, key: string, requestHash: string, status: number, response: unknown, em: EntityManager = this.ds.manager): Promise<boolean> {
    const { rows } = await execSql(
      em,
      `INSERT INTO idempotency_keys (route, key, request_hash, state, status, response) VALUES ($1,$2,$3,'done',$4,$5::jsonb)
       ON CONFLICT (route, key) DO NOTHING RETURNING key`,
      [route, key, requestHash, status, JSON.stringify(response ?? null)],
    );
    return rows.length === 1;
  }

  /** Stores the first answer. */
  async complete(route: string, key: string, status: number, response: unknown): Promise<void> {
    await execSql(this.ds.manager, `UPDATE idempotency_keys SET state = 'done', status = $3, response = $4::jsonb WHERE route = $1 AND key = $2`, [
      route,
      key,
      status,
      JSON.stringify(response ?? null),
    ]);
  }

  /** Forgets a key whose request failed unexpectedly, so a retry can run it. */
  async release(route: string, key: string): Promise<void> {
    await execSql(this.ds.manager, `DELETE FROM idempotency_keys WHERE route = $1 AND key = $2 AND state = 'in_progress'`, [route, key]);
  }

  /** Drops answers older than a day. */
  async purge(): Promise<void> {
    await execSql(this.ds.manager, `DELETE FROM idempotency_keys WHERE created_at < now() - interval '1 day'`);
  }
}
