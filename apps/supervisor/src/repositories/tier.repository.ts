import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { Cleanliness, TierState } from '@app/contracts';
import { TierEntity } from '../entities/index.js';
import { execSql } from './sql.js';

/** What the write path needs of each tier of a run: a narrow row read without entity hydration. */
export interface TierStateRow {
  id: number;
  tierId: string;
  tierIndex: number;
  state: TierState;
  cleanliness: Cleanliness;
  minorIssuesCount: number;
  majorIssuesCount: number;
  tokensUsed: number;
  ciRunsUsed: number;
}

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

  /** The narrow state rows of a run's tiers, in index order. */
  async listStates(em: EntityManager, runId: string): Promise<TierStateRow[]> {
    const { rows } = await execSql<TierStateRow>(
      em,
      `SELECT id, tier_id AS "tierId", tier_index AS "tierIndex", state, cleanliness, minor_issues_count AS "minorIssuesCount",
              major_issues_count AS "majorIssuesCount", tokens_used AS "tokensUsed", ci_runs_used AS "ciRunsUsed"
         FROM tiers WHERE run_id = $1 ORDER BY tier_index`,
      [runId],
    );
    return rows.map((r) => ({ ...r, tokensUsed: Number(r.tokensUsed) }));
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

  /** Stores derived counters and cleanliness (tokens_used is kept by PhaseRepository.addUsage). */
  async updateDerived(em: EntityManager, id: number, values: { cleanliness: Cleanliness; minor: number; major: number }): Promise<void> {
    await execSql(
      em,
      `UPDATE tiers SET cleanliness = $2, minor_issues_count = $3, major_issues_count = $4 WHERE id = $1`,
      [id, values.cleanliness, values.minor, values.major],
    );
  }

  /** Counts a CI run against a tier. */
  async addCiRun(em: EntityManager, runId: string, tierId: string): Promise<void> {
    await execSql(em, `UPDATE tiers SET ci_runs_used = ci_runs_used + 1 WHERE run_id = $1 AND tier_id = $2`, [runId, tierId]);
  }
}
