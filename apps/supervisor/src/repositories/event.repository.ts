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

  /** Sends a NOTIFY on commit of the caller's transaction. */
  async notify(em: EntityManager, channel: string, payload: string): Promise<void> {
    await execSql(em, `SELECT pg_notify($1, $2)`, [channel, payload]);
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
}
