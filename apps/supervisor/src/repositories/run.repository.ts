import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { RunState } from '@app/contracts';
import { RunEntity } from '../entities/index.js';
import { entityColumns, execSql, hydrateRow, knownTransactionNow, rememberTransactionNow } from './sql.js';

/** Fields a run transition may set alongside the state. */
export type RunTransitionSet = Partial<
  Pick<RunEntity, 'failureReason' | 'failureCap' | 'completedAt' | 'startedAt' | 'debtStatus' | 'approvalState' | 'approvalNotes' | 'approvedAt' | 'approvedThroughTierIndex'>
>;

/** Runs: narrow methods, guarded status writes. */
/** Runs whose strategy each transaction (by its entity manager) replaced: `refreshAfterWrite` reads it again. */
const strategyReplaced = new WeakMap<EntityManager, Set<string>>();

@Injectable()
export class RunRepository {
  constructor(private readonly ds: DataSource) {}

  /** Inserts a run row (inside the caller's transaction). */
  async insert(em: EntityManager, run: Omit<RunEntity, 'version' | 'updatedAt'>): Promise<void> {
    await em.getRepository(RunEntity).insert({ ...run, version: 1, updatedAt: run.createdAt });
  }

  /** Reads a run. */
  async find(runId: string, em: EntityManager = this.ds.manager): Promise<RunEntity | null> {
    return em.getRepository(RunEntity).findOne({ where: { runId } });
  }

  /**
   * The run as a write left it, for a run `locked` earlier in this transaction: every column
   * is read again except the strategy (one entry per phase, so the largest part of the row),
   * which is kept from `locked` unless this transaction replaced it (`setStrategy`).
   */
  async refreshAfterWrite(em: EntityManager, locked: RunEntity): Promise<RunEntity> {
    if (strategyReplaced.get(em)?.has(locked.runId)) return (await this.find(locked.runId, em))!;
    const { rows } = await execSql<Record<string, unknown>>(em, `SELECT ${entityColumns(em, RunEntity, 'r', ['strategy'])} FROM runs r WHERE r.run_id = $1`, [locked.runId]);
    return hydrateRow(em, RunEntity, { ...rows[0], strategy: locked.strategy });
  }

  /**
   * Locks a run row for the rest of the transaction. Every write that may cascade into tier
   * or run state takes this lock first, so the derivation runs exactly once per change even
   * when two phases of a tier finish at the same moment.
   */
  async lock(em: EntityManager, runId: string): Promise<RunEntity | null> {
    return em.getRepository(RunEntity).createQueryBuilder('r').setLock('pessimistic_write').where('r.run_id = :runId', { runId }).getOne();
  }

  /** Guarded state change; false when the run was not in `from` (someone else moved it). */
  async transition(em: EntityManager, runId: string, from: RunState, to: RunState, set: RunTransitionSet = {}): Promise<boolean> {
    const result = await em
      .createQueryBuilder()
      .update(RunEntity)
      .set({ ...set, state: to, version: () => 'version + 1', updatedAt: () => 'now()' })
      .where('run_id = :runId AND state = :from', { runId, from })
      .execute();
    return result.affected === 1;
  }

  /** Adds usage atomically (never read-modify-write). */
  async addUsage(em: EntityManager, runId: string, tokens: number, costUsd: number): Promise<void> {
    await execSql(em, `UPDATE runs SET tokens_used = tokens_used + $2, cost_used_usd = cost_used_usd + $3, updated_at = now() WHERE run_id = $1`, [
      runId,
      tokens,
      costUsd,
    ]);
  }

  /** Updates approval bookkeeping without a state change. */
  async setApproval(em: EntityManager, runId: string, set: RunTransitionSet): Promise<void> {
    await em.createQueryBuilder().update(RunEntity).set({ ...set, updatedAt: () => 'now()' }).where('run_id = :runId', { runId }).execute();
  }

  /** Replaces the run's compiled strategy (a build's accepted plan adds its phases). */
  async setStrategy(em: EntityManager, runId: string, strategy: RunEntity['strategy']): Promise<void> {
    await execSql(em, `UPDATE runs SET strategy = $2::jsonb, updated_at = now() WHERE run_id = $1`, [runId, JSON.stringify(strategy)]);
    const replaced = strategyReplaced.get(em) ?? new Set<string>();
    replaced.add(runId);
    strategyReplaced.set(em, replaced);
  }

  /** Sets the tiers the run waits after and resets what was approved (a retried build waits at its checkpoints anew). */
  async setCheckpoints(em: EntityManager, runId: string, approvedThroughTierIndex: number): Promise<void> {
    await execSql(em, `UPDATE runs SET approved_through_tier_index = $2, updated_at = now() WHERE run_id = $1`, [runId, approvedThroughTierIndex]);
  }

  /** Starts the run's wall-time budget now (a queued build starts when admitted). */
  async restartClock(em: EntityManager, runId: string): Promise<void> {
    await execSql(em, `UPDATE runs SET started_at = now(), updated_at = now() WHERE run_id = $1`, [runId]);
  }

  /** Counts a CI run. */
  async addCiRun(em: EntityManager, runId: string): Promise<void> {
    await execSql(em, `UPDATE runs SET ci_runs_used = ci_runs_used + 1, updated_at = now() WHERE run_id = $1`, [runId]);
  }

  /** Stores the run's issue counters (the sums over its phases, computed by the settle that read them). */
  async setIssueCounts(em: EntityManager, runId: string, counts: { minor: number; major: number }): Promise<void> {
    await execSql(em, `UPDATE runs SET minor_issues_count = $2, major_issues_count = $3 WHERE run_id = $1`, [runId, counts.minor, counts.major]);
  }

  /** Runs that may have claimable work, locked so concurrent claimers skip them. */
  async lockClaimCandidates(em: EntityManager, claimable: readonly RunState[], runId: string | undefined, limit: number, capabilities: readonly string[]): Promise<RunEntity[]> {
    // One statement: the candidates are locked and read whole (no second read by id).
    const qb = em
      .getRepository(RunEntity)
      .createQueryBuilder('r')
      .where('r.state = ANY(:claimable)', { claimable })
      .andWhere('(CAST(:runId AS text) IS NULL OR r.run_id = :runId)', { runId: runId ?? null })
      .andWhere('(SELECT count(*) FROM phases l WHERE l.run_id = r.run_id AND l.lease_token IS NOT NULL) < r.max_parallel_phases')
      .andWhere(`EXISTS (SELECT 1 FROM phases q WHERE q.run_id = r.run_id AND q.state = 'QUEUED' AND q.kind <> 'deploy' AND q.requires <@ CAST(:capabilities AS text[]))`, {
        capabilities,
      })
      // A droplet build's run is claimable only while its build runs (not queued, waiting or over).
      .andWhere(`NOT EXISTS (SELECT 1 FROM builds b WHERE b.run_id = r.run_id AND b.status <> 'running')`)
      .orderBy('r.created_at')
      .addOrderBy('r.run_id')
      .limit(limit)
      .setLock('pessimistic_write')
      .setOnLocked('skip_locked');
    return qb.getMany();
  }

  /** Non-terminal runs whose wall-time budget has passed (checked by the sweeper). */
  async findOverdue(em: EntityManager, active: readonly RunState[]): Promise<string[]> {
    const { rows } = await execSql<{ run_id: string }>(
      em,
      `SELECT run_id FROM runs WHERE state = ANY($1::text[]) AND started_at + make_interval(mins => max_duration_minutes) < now()`,
      [active],
    );
    return rows.map((r) => r.run_id);
  }

  /** Lists runs, newest first. */
  async list(filter: { state?: RunState; limit: number; offset: number }): Promise<{ runs: RunEntity[]; total: number }> {
    const qb = this.ds.getRepository(RunEntity).createQueryBuilder('r').orderBy('r.created_at', 'DESC').addOrderBy('r.run_id', 'ASC');
    if (filter.state) qb.where('r.state = :state', { state: filter.state });
    const [runs, total] = await qb.take(filter.limit).skip(filter.offset).getManyAndCount();
    return { runs, total };
  }

  /** Database time, so leases and budgets never depend on a client's clock. */
  async now(em: EntityManager = this.ds.manager): Promise<Date> {
    // now() is the transaction's start time in PostgreSQL: asked once per transaction.
    const known = knownTransactionNow(em);
    if (known) return known;
    const { rows } = await execSql<{ now: Date }>(em, 'SELECT now() AS now');
    const now = new Date(rows[0].now);
    rememberTransactionNow(em, now);
    return now;
  }
}
