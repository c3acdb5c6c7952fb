import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
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

  /** LLM tokens reported over all runs. */
  async tokensUsed(): Promise<number> {
    return Number((await execSql<{ n: string }>(this.ds.manager, `SELECT COALESCE(sum(tokens_used),0) AS n FROM runs`)).rows[0].n);
  }

  /** LLM cost in USD reported over all runs. */
  async costUsedUsd(): Promise<number> {
    return Number((await execSql<{ n: string }>(this.ds.manager, `SELECT COALESCE(sum(cost_used_usd),0) AS n FROM runs`)).rows[0].n);
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
