import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { Cleanliness, TierState } from '@app/contracts';
import { TierEntity } from '../entities/index.js';
import { execSql } from './sql.js';

/** Tiers: read and guarded state writes. */
@Injectable()
export class TierRepository {
  /** Inserts tiers. */
  async insertMany(em: EntityManager, tiers: Omit<TierEntity, 'id' | 'version'>[]): Promise<void> {
    await em.getRepository(TierEntity).insert(tiers.map((t) => ({ ...t, version: 1 })));
  }

  /** Tiers of a run in index order. */
  async listForRun(em: EntityManager, runId: string): Promise<TierEntity[]> {
    return em.getRepository(TierEntity).find({ where: { runId }, order: { tierIndex: 'ASC' } });
  }

  /** Tiers of many runs. */
  async listForRuns(em: EntityManager, runIds: string[]): Promise<TierEntity[]> {
    if (runIds.length === 0) return [];
    return em.getRepository(TierEntity).createQueryBuilder('t').where('t.run_id IN (:...runIds)', { runIds }).orderBy('t.tier_index').getMany();
  }

  /** Guarded state change. */
  async transition(em: EntityManager, id: number, from: TierState, to: TierState): Promise<boolean> {
    const r = await em
      .createQueryBuilder()
      .update(TierEntity)
      .set({ state: to, version: () => 'version + 1' })
      .where('id = :id AND state = :from', { id, from })
      .execute();
    return r.affected === 1;
  }

  /** Stores derived counters and cleanliness. */
  async updateDerived(em: EntityManager, id: number, values: { cleanliness: Cleanliness; minor: number; major: number }): Promise<void> {
    await execSql(
      em,
      `UPDATE tiers t SET cleanliness = $2, minor_issues_count = $3, major_issues_count = $4,
              tokens_used = (SELECT COALESCE(sum(p.tokens_used),0) FROM phases p WHERE p.run_id = t.run_id AND p.tier_id = t.tier_id)
        WHERE t.id = $1`,
      [id, values.cleanliness, values.minor, values.major],
    );
  }

  /** Counts a CI run against a tier. */
  async addCiRun(em: EntityManager, runId: string, tierId: string): Promise<void> {
    await execSql(em, `UPDATE tiers SET ci_runs_used = ci_runs_used + 1 WHERE run_id = $1 AND tier_id = $2`, [runId, tierId]);
  }
}
