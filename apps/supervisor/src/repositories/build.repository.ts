import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { BUILD_STEPS, type BuildStatus, type BuildStepNumber, type BuildStepStatus } from '@app/contracts';
import { BuildEntity, BuildStepEntity } from '../entities/index.js';
import { execSql } from './sql.js';

/** A build as inserted: what the request gave (the run exists already, in the same transaction). */
export type NewBuild = Pick<BuildEntity, 'runId' | 'dropletId' | 'dropletName' | 'intent' | 'approvalMode' | 'autoDeploy' | 'notifyChannels' | 'hooks'>;

/** Columns a guarded build update may set besides the status. */
export type BuildChanges = Partial<Pick<BuildEntity, 'checkpoint' | 'deploymentUrl' | 'error' | 'promotedFrom' | 'promotedTo'>> & {
  /** Stamps `started_at` (the first start only), `completed_at`, or `queued_at` (back in the queue) with the database's now. */
  stamp?: 'started' | 'completed' | 'queued';
};

/** Columns a guarded step update may set besides the status. */
export interface StepChanges {
  error?: string | null;
  /** `started`: started_at = now, completed_at cleared, one more try; `completed`: completed_at = now; `reset`: both times and the error cleared. */
  stamp?: 'started' | 'completed' | 'reset';
}

/** Filters of the build list: by status, and created in `[since, until)`. */
export interface BuildFilter {
  status?: BuildStatus;
  since?: Date;
  until?: Date;
}

/** How many completed runs of a step the estimate looks at. */
export const STEP_HISTORY_SIZE = 20;

const BUILD_STAMPS: Record<NonNullable<BuildChanges['stamp']>, string> = {
  started: 'started_at = COALESCE(started_at, now())',
  completed: 'completed_at = now()',
  queued: 'queued_at = now(), completed_at = NULL',
};
const STEP_STAMPS: Record<NonNullable<StepChanges['stamp']>, string> = {
  started: 'started_at = now(), completed_at = NULL, tries = tries + 1',
  completed: 'completed_at = now()',
  reset: 'started_at = NULL, completed_at = NULL, error = NULL',
};

/**
 * Droplet builds and their steps. Every status change is one guarded statement (the row must
 * still be in the status the caller read), so two writers can never both move a build: the
 * caller checks the row count (409 STALE_STATE otherwise).
 */
@Injectable()
export class BuildRepository {
  constructor(private readonly ds: DataSource) {}

  /** Stores a build `queued` with its six steps `pending`, in the caller's transaction. */
  async insert(em: EntityManager, b: NewBuild): Promise<BuildEntity> {
    await execSql(
      em,
      `INSERT INTO builds (run_id, droplet_id, droplet_name, intent, approval_mode, auto_deploy, notify_channels, hooks)
       VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb,$8::jsonb)`,
      [b.runId, b.dropletId, b.dropletName, b.intent, b.approvalMode, b.autoDeploy, b.notifyChannels === null ? null : JSON.stringify(b.notifyChannels), JSON.stringify(b.hooks)],
    );
    await em.getRepository(BuildStepEntity).insert(BUILD_STEPS.map(({ step }) => ({ runId: b.runId, step, status: 'pending' as const, tries: 0 })));
    return em.getRepository(BuildEntity).findOneByOrFail({ runId: b.runId });
  }

  /** The build, locked until the caller's transaction ends; null when there is none. */
  async lock(em: EntityManager, runId: string): Promise<BuildEntity | null> {
    return em.getRepository(BuildEntity).findOne({ where: { runId }, lock: { mode: 'pessimistic_write' } });
  }

  async find(runId: string, em: EntityManager = this.ds.manager): Promise<BuildEntity | null> {
    return em.getRepository(BuildEntity).findOneBy({ runId });
  }

  /** A build's steps, in order. */
  async steps(runId: string, em: EntityManager = this.ds.manager): Promise<BuildStepEntity[]> {
    return em.getRepository(BuildStepEntity).find({ where: { runId }, order: { step: 'ASC' } });
  }

  /** Builds matching the filter, newest first. */
  async list(filter: BuildFilter, limit = 500, em: EntityManager = this.ds.manager): Promise<BuildEntity[]> {
    const q = em.getRepository(BuildEntity).createQueryBuilder('b');
    if (filter.status) q.andWhere('b.status = :status', { status: filter.status });
    if (filter.since) q.andWhere('b.created_at >= :since', { since: filter.since });
    if (filter.until) q.andWhere('b.created_at < :until', { until: filter.until });
    return q.orderBy('b.created_at', 'DESC').addOrderBy('b.run_id', 'DESC').take(limit).getMany();
  }

  /** Steps of several builds, by build id, each in order. */
  async stepsOf(runIds: readonly string[], em: EntityManager = this.ds.manager): Promise<Map<string, BuildStepEntity[]>> {
    const byRun = new Map<string, BuildStepEntity[]>(runIds.map((id) => [id, []]));
    if (runIds.length === 0) return byRun;
    const rows = await em.getRepository(BuildStepEntity).createQueryBuilder('s').where('s.run_id IN (:...ids)', { ids: runIds }).orderBy('s.step', 'ASC').getMany();
    for (const s of rows) byRun.get(s.runId)?.push(s);
    return byRun;
  }

  /**
   * Moves a build from `from` to `to` if it is still `from`, setting `changes` (a key given
   * with `null` clears that column); `version` counts the moves. Returns the rows changed (0 or 1).
   */
  async updateStatus(em: EntityManager, runId: string, from: BuildStatus, to: BuildStatus, changes: BuildChanges = {}): Promise<number> {
    const columns: Record<keyof Omit<BuildChanges, 'stamp'>, string> = {
      checkpoint: 'checkpoint',
      deploymentUrl: 'deployment_url',
      error: 'error',
      promotedFrom: 'promoted_from',
      promotedTo: 'promoted_to',
    };
    const sets = ['status = $3', 'version = version + 1'];
    const params: unknown[] = [runId, from, to];
    for (const [key, column] of Object.entries(columns) as [keyof typeof columns, string][]) {
      if (changes[key] === undefined) continue;
      params.push(changes[key]);
      sets.push(`${column} = $${params.length}`);
    }
    if (changes.stamp) sets.push(BUILD_STAMPS[changes.stamp]);
    const { count } = await execSql(em, `UPDATE builds SET ${sets.join(', ')} WHERE run_id = $1 AND status = $2`, params);
    return count;
  }

  /** Moves a step from `from` to `to` if it is still `from`. Returns the rows changed (0 or 1). */
  async updateStep(em: EntityManager, runId: string, step: BuildStepNumber, from: BuildStepStatus, to: BuildStepStatus, changes: StepChanges = {}): Promise<number> {
    const sets = ['status = $4'];
    const params: unknown[] = [runId, step, from, to];
    if (changes.stamp) sets.push(STEP_STAMPS[changes.stamp]);
    if (changes.error !== undefined) {
      params.push(changes.error);
      sets.push(`error = $${params.length}`);
    }
    const { count } = await execSql(em, `UPDATE build_steps SET ${sets.join(', ')} WHERE run_id = $1 AND step = $2 AND status = $3`, params);
    return count;
  }

  /**
   * How long each step took in the last {@link STEP_HISTORY_SIZE} completed runs of it (any
   * build but `excludeRunId`: a build is estimated from earlier builds, not from itself), in
   * seconds, by step number: what the estimate of a build is made from.
   */
  async stepDurations(em: EntityManager = this.ds.manager, perStep = STEP_HISTORY_SIZE, excludeRunId: string | null = null): Promise<Partial<Record<BuildStepNumber, number[]>>> {
    const { rows } = await execSql<{ step: number; seconds: number }>(
      em,
      `SELECT step, seconds FROM (
         SELECT step, EXTRACT(EPOCH FROM completed_at - started_at)::float8 AS seconds,
                row_number() OVER (PARTITION BY step ORDER BY completed_at DESC) AS n
           FROM build_steps
          WHERE status = 'completed' AND started_at IS NOT NULL AND completed_at IS NOT NULL
            AND ($2::text IS NULL OR run_id <> $2)
       ) recent WHERE n <= $1 ORDER BY step, seconds`,
      [perStep, excludeRunId],
    );
    const history: Partial<Record<BuildStepNumber, number[]>> = {};
    for (const r of rows) (history[r.step as BuildStepNumber] ??= []).push(Number(r.seconds));
    return history;
  }

  /** Builds holding a slot: running or awaiting approval. */
  async countRunning(em: EntityManager): Promise<number> {
    const { rows } = await execSql<{ n: number }>(em, `SELECT count(*)::int AS n FROM builds WHERE status IN ('running','awaiting_approval')`);
    return rows[0].n;
  }

  /** Queued builds, first come first. */
  async listQueued(em: EntityManager, limit = 100): Promise<{ runId: string; queuedAt: number }[]> {
    const { rows } = await execSql<{ run_id: string; queued_at: Date }>(em, `SELECT run_id, queued_at FROM builds WHERE status = 'queued' ORDER BY queued_at, run_id LIMIT $1`, [limit]);
    return rows.map((r) => ({ runId: r.run_id, queuedAt: r.queued_at.getTime() }));
  }

  /** Stores the plan the planning step had accepted (the first one: a plan is accepted once). Returns whether it was stored. */
  async setPlan(em: EntityManager, runId: string, plan: unknown): Promise<boolean> {
    const { count } = await execSql(em, `UPDATE builds SET plan = $2::jsonb WHERE run_id = $1 AND plan IS NULL`, [runId, JSON.stringify(plan)]);
    return count === 1;
  }

  /**
   * Records where the base branch is before promotion moves it (null: there is none yet), once
   * per generation: an attempt resumed after the branch moved cannot overwrite it. Returns
   * whether it was recorded now.
   */
  async startPromotion(em: EntityManager, runId: string, from: string | null): Promise<boolean> {
    const { count } = await execSql(em, `UPDATE builds SET promoted_from = $2, promotion_started = true WHERE run_id = $1 AND NOT promotion_started`, [runId, from]);
    return count === 1;
  }

  /**
   * Records where promotion moved the base branch, once per generation; `from` counts only when
   * no start was recorded (an executor that did not report one). Returns whether it was stored.
   */
  async setPromotion(em: EntityManager, runId: string, from: string | null, to: string): Promise<boolean> {
    const { count } = await execSql(
      em,
      `UPDATE builds SET promoted_to = $3, promoted_from = CASE WHEN promotion_started THEN promoted_from ELSE $2 END, promotion_started = true
        WHERE run_id = $1 AND promoted_to IS NULL`,
      [runId, from, to],
    );
    return count === 1;
  }

  /** Starts a new generation (a retry): promotion and deployment are forgotten when the retry redoes them. */
  async nextGeneration(em: EntityManager, runId: string, o: { forgetPromotion: boolean }): Promise<void> {
    await execSql(
      em,
      `UPDATE builds SET generation = generation + 1, deployment_url = NULL${o.forgetPromotion ? ', promoted_from = NULL, promoted_to = NULL, promotion_started = false' : ''} WHERE run_id = $1`,
      [runId],
    );
  }

  /** Builds whose hooks may be due: running at step 5 or 6 (the orchestration's safety net after a restart). */
  async listDelivering(em: EntityManager = this.ds.manager): Promise<string[]> {
    const { rows } = await execSql<{ run_id: string }>(
      em,
      `SELECT b.run_id FROM builds b JOIN build_steps s ON s.run_id = b.run_id
        WHERE b.status = 'running' AND s.step IN (5, 6) AND s.status = 'running' GROUP BY b.run_id`,
    );
    return rows.map((r) => r.run_id);
  }

  /** Takes the lock that serializes admission (the cap holds across processes), until the caller's transaction ends. */
  async lockAdmission(em: EntityManager): Promise<void> {
    await execSql(em, `SELECT pg_advisory_xact_lock(hashtext('autopack.build-admission'))`);
  }
}
