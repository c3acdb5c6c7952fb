import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { execSql } from './sql.js';

/** A stored idempotent answer. */
export interface StoredAnswer {
  requestHash: string;
  status: number;
  response: unknown;
}

/** Idempotency keys: stored answers, replayed. */
@Injectable()
export class IdempotencyRepository {
  constructor(private readonly ds: DataSource) {}

  /** What is stored under a key, if anything. */
  async find(route: string, key: string, em: EntityManager = this.ds.manager): Promise<StoredAnswer | null> {
    const { rows } = await execSql<{ request_hash: string; status: number; response: unknown }>(
      em,
      `SELECT request_hash, status, response FROM idempotency_keys WHERE route = $1 AND key = $2`,
      [route, key],
    );
    const r = rows[0];
    return r ? { requestHash: r.request_hash, status: r.status, response: r.response } : null;
  }

  /**
   * Stores a finished answer in the caller's transaction, so it commits or rolls back with the
   * change it describes; false when the key was stored meanwhile by a concurrent request.
   */
  async insertDone(route: string, key: string, requestHash: string, status: number, response: unknown, em: EntityManager = this.ds.manager): Promise<boolean> {
    const { rows } = await execSql(
      em,
      `INSERT INTO idempotency_keys (route, key, request_hash, status, response) VALUES ($1,$2,$3,$4,$5::jsonb)
       ON CONFLICT (route, key) DO NOTHING RETURNING key`,
      [route, key, requestHash, status, JSON.stringify(response ?? null)],
    );
    return rows.length === 1;
  }

  /** Drops answers older than a day. */
  async purge(): Promise<void> {
    await execSql(this.ds.manager, `DELETE FROM idempotency_keys WHERE created_at < now() - interval '1 day'`);
  }
}
