import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
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

  /** Reserves a key; null when it is new (the caller proceeds), else what is stored. */
  async reserve(route: string, key: string, requestHash: string): Promise<StoredAnswer | null> {
    const em = this.ds.manager;
    const inserted = await execSql(
      em,
      `INSERT INTO idempotency_keys (route, key, request_hash, state) VALUES ($1,$2,$3,'in_progress') ON CONFLICT (route, key) DO NOTHING RETURNING key`,
      [route, key, requestHash],
    );
    if (inserted.rows.length === 1) return null;
    const { rows } = await execSql<{ request_hash: string; state: 'in_progress' | 'done'; status: number | null; response: unknown }>(
      em,
      `SELECT request_hash, state, status, response FROM idempotency_keys WHERE route = $1 AND key = $2`,
      [route, key],
    );
    const r = rows[0];
    return r ? { requestHash: r.request_hash, state: r.state, status: r.status, response: r.response } : null;
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
