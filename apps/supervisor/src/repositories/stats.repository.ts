import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { TERMINAL_RUN_STATES } from '@app/contracts';
import { JOB_QUEUE_SCHEMA } from '../database/job-queue-schema.js';
import { execSql } from './sql.js';

/** Whole-database figures read at scrape time (metrics) and the health ping. */
@Injectable()
export class StatsRepository {
  constructor(private readonly ds: DataSource) {}

  /** Runs per state. */
  async runsByState(): Promise<{ state: string; n: number }[]> {
    return (await execSql<{ state: string; n: number }>(this.ds.manager, `SELECT state, count(*)::int AS n FROM runs GROUP BY state`)).rows;
  }

  /** Phases per state. */
  async phasesByState(): Promise<{ state: string; n: number }[]> {
    return (await execSql<{ state: string; n: number }>(this.ds.manager, `SELECT state, count(*)::int AS n FROM phases GROUP BY state`)).rows;
  }

  /** Phases waiting to be claimed (QUEUED) in runs that are not over. */
  async queuedPhases(): Promise<number> {
    const sql = `SELECT count(*)::int AS n FROM phases p JOIN runs r ON r.run_id = p.run_id WHERE p.state = 'QUEUED' AND r.state <> ALL($1::text[])`;
    return (await execSql<{ n: number }>(this.ds.manager, sql, [TERMINAL_RUN_STATES])).rows[0].n;
  }

  /** Jobs of the durable queue waiting to run (created, or failed and due for a retry), by queue. */
  async jobQueueDepth(): Promise<{ queue: string; n: number }[]> {
    const sql = `SELECT name AS queue, count(*)::int AS n FROM ${JOB_QUEUE_SCHEMA}.job WHERE state IN ('created', 'retry') GROUP BY name`;
    return (await execSql<{ queue: string; n: number }>(this.ds.manager, sql)).rows;
  }

  /** Phases leased by an executor right now. */
  async activeLeases(): Promise<number> {
    return (await execSql<{ n: number }>(this.ds.manager, `SELECT count(*)::int AS n FROM phases WHERE lease_token IS NOT NULL`)).rows[0].n;
  }

  /** One round trip to the database; rejects when it is down. */
  async ping(): Promise<void> {
    await execSql(this.ds.manager, 'SELECT 1');
  }
}
