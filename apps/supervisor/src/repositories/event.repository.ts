import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { RunEvent } from '@app/contracts';
import { EventEntity } from '../entities/index.js';
import { execSql } from './sql.js';

/** An event to append: one of the run event types, with its payload (see `RunEvent`). */
export type NewEvent = RunEvent & {
  runId: string;
  phaseId?: string | null;
};

/** The audit trail; appended in the same transaction as the change it describes. */
@Injectable()
export class EventRepository {
  constructor(private readonly ds: DataSource) {}

  /** Appends events and wakes long-polling claimers and event streams. */
  async append(em: EntityManager, events: NewEvent[]): Promise<void> {
    if (events.length === 0) return;
    await em.getRepository(EventEntity).insert(
      events.map((e) => ({ runId: e.runId, phaseId: e.phaseId ?? null, type: e.type, payload: (e.payload ?? {}) as object })),
    );
  }

  /** `append` and `notify` in one statement (one round trip instead of two). */
  async appendAndNotify(em: EntityManager, events: NewEvent[], channel: string, payload: string): Promise<void> {
    await execSql(
      em,
      `WITH appended AS (
         INSERT INTO events (run_id, phase_id, type, payload)
         SELECT e.run_id, e.phase_id, e.type, e.payload
           FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (run_id text, phase_id text, type text, payload jsonb)) WITH ORDINALITY AS e(run_id, phase_id, type, payload, n)
          ORDER BY e.n
         RETURNING id
       )
       SELECT pg_notify($2, $3), (SELECT count(*) FROM appended) AS appended`,
      [JSON.stringify(events.map((e) => ({ run_id: e.runId, phase_id: e.phaseId ?? null, type: e.type, payload: e.payload ?? {} }))), channel, payload],
    );
  }

  /** Sends a NOTIFY on commit of the caller's transaction. */
  async notify(em: EntityManager, channel: string, payload: string): Promise<void> {
    await execSql(em, `SELECT pg_notify($1, $2)`, [channel, payload]);
  }

  /** When the phase was last claimed (its latest `phase_claimed` event), or null. */
  async lastClaimedAt(em: EntityManager, runId: string, phaseId: string): Promise<Date | null> {
    const { rows } = await execSql<{ at: Date }>(
      em,
      `SELECT created_at AS at FROM events WHERE run_id = $1 AND phase_id = $2 AND type = 'phase_claimed' ORDER BY id DESC LIMIT 1`,
      [runId, phaseId],
    );
    return rows[0]?.at ?? null;
  }

  /** Events of a run after an id, oldest first. */
  async listForRun(runId: string, afterId = '0', limit = 500): Promise<EventEntity[]> {
    return this.ds
      .getRepository(EventEntity)
      .createQueryBuilder('e')
      .where('e.run_id = :runId AND e.id > :afterId', { runId, afterId })
      .orderBy('e.id', 'ASC')
      .take(limit)
      .getMany();
  }

  /** LLM usage of a run from its audit trail: calls, tokens, and the prompt-cache hit share. */
  async llmUsage(runId: string) {
    const { rows } = await execSql<{ calls: string; prompt: string; completion: string; cached: string; cost: string }>(
      this.ds.manager,
      `SELECT COALESCE(sum(COALESCE((payload->>'calls')::int, 1)),0) AS calls,
              COALESCE(sum((payload->>'prompt_tokens')::bigint),0) AS prompt,
              COALESCE(sum((payload->>'completion_tokens')::bigint),0) AS completion,
              COALESCE(sum(COALESCE((payload->>'cached_tokens')::bigint,0)),0) AS cached,
              COALESCE(sum(COALESCE((payload->>'cost_usd')::numeric,0)),0) AS cost
         FROM events WHERE run_id = $1 AND type = 'llm_usage'`,
      [runId],
    );
    const r = rows[0];
    const prompt = Number(r.prompt);
    return {
      calls: Number(r.calls),
      prompt_tokens: prompt,
      completion_tokens: Number(r.completion),
      cached_tokens: Number(r.cached),
      cache_hit_share: prompt > 0 ? Math.round((Number(r.cached) / prompt) * 10_000) / 10_000 : 0,
      cost_usd: Math.round(Number(r.cost) * 1e6) / 1e6,
    };
  }

  /**
   * Every LLM call of a run from its `llm_call` audit events, grouped by role and model:
   * calls, failed calls (malformed, truncated or errored), tokens, cost and time spent.
   */
  async llmCallsByModel(runId: string) {
    const { rows } = await execSql<{ role: string; provider: string; model: string; calls: string; failed: string; prompt: string; completion: string; cost: string; duration: string }>(
      this.ds.manager,
      `SELECT payload->>'role' AS role, payload->>'provider' AS provider, payload->>'model' AS model,
              count(*) AS calls,
              count(*) FILTER (WHERE payload->>'outcome' <> 'tool_call') AS failed,
              COALESCE(sum((payload->>'prompt_tokens')::bigint),0) AS prompt,
              COALESCE(sum((payload->>'completion_tokens')::bigint),0) AS completion,
              COALESCE(sum(COALESCE((payload->>'cost_usd')::numeric,0)),0) AS cost,
              COALESCE(sum((payload->>'duration_ms')::bigint),0) AS duration
         FROM events WHERE run_id = $1 AND type = 'llm_call'
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      [runId],
    );
    return rows.map((r) => ({
      role: r.role,
      provider: r.provider,
      model: r.model,
      calls: Number(r.calls),
      failed_calls: Number(r.failed),
      prompt_tokens: Number(r.prompt),
      completion_tokens: Number(r.completion),
      cost_usd: Math.round(Number(r.cost) * 1e6) / 1e6,
      duration_ms: Number(r.duration),
    }));
  }
}
