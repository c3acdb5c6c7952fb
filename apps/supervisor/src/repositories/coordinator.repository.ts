import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { execSql } from './sql.js';

/** A service on the assembly line. */
export interface CoordinatorServiceRow {
  service: string;
  path: string;
  stage: string;
  stageSince: Date;
  activeRunId: string | null;
  /** `build` or `run`: what the active run is. */
  activeKind: string | null;
  /** The run last cleared as finished (the coordinator promotes it when it succeeded). */
  lastRunId: string | null;
}

/** A recorded stage change. */
export interface StageChangeRow {
  service: string;
  from: string | null;
  to: string;
  at: Date;
}

interface ServiceSql {
  service: string;
  path: string;
  stage: string;
  stage_since: Date;
  active_run_id: string | null;
  active_kind: string | null;
  last_run_id: string | null;
}

const toRow = (r: ServiceSql): CoordinatorServiceRow => ({
  service: r.service,
  path: r.path,
  stage: r.stage,
  stageSince: r.stage_since,
  activeRunId: r.active_run_id,
  activeKind: r.active_kind,
  lastRunId: r.last_run_id,
});

/** The coordinator's services and their stage changes. */
@Injectable()
export class CoordinatorRepository {
  constructor(private readonly ds: DataSource) {}

  /**
   * The service's row, locked for this transaction (created first when it is new, with a
   * first stage change). Two coordinators observing one service take turns here.
   */
  async lockService(em: EntityManager, service: string, init: { path: string; stage: string }): Promise<{ row: CoordinatorServiceRow; created: boolean }> {
    const inserted = await execSql(
      em,
      `INSERT INTO coordinator_services (service, path, stage) VALUES ($1, $2, $3) ON CONFLICT (service) DO NOTHING RETURNING service`,
      [service, init.path, init.stage],
    );
    const created = inserted.rows.length > 0;
    if (created) await execSql(em, `INSERT INTO coordinator_stage_changes (service, from_stage, to_stage) VALUES ($1, NULL, $2)`, [service, init.stage]);
    const { rows } = await execSql<ServiceSql>(em, `SELECT * FROM coordinator_services WHERE service = $1 FOR UPDATE`, [service]);
    return { row: toRow(rows[0]), created };
  }

  /** Records a new stage (and its change) now; returns the seconds spent in the previous one. */
  async changeStage(em: EntityManager, service: string, from: string, to: string): Promise<number> {
    const { rows } = await execSql<{ seconds: number }>(
      em,
      `WITH old AS (SELECT stage_since FROM coordinator_services WHERE service = $1)
       UPDATE coordinator_services SET stage = $2, stage_since = now(), updated_at = now() WHERE service = $1
       RETURNING EXTRACT(EPOCH FROM now() - (SELECT stage_since FROM old))::float8 AS seconds`,
      [service, to],
    );
    await execSql(em, `INSERT INTO coordinator_stage_changes (service, from_stage, to_stage) VALUES ($1, $2, $3)`, [service, from, to]);
    return rows[0]?.seconds ?? 0;
  }

  async setPath(em: EntityManager, service: string, path: string): Promise<void> {
    await execSql(em, `UPDATE coordinator_services SET path = $2, updated_at = now() WHERE service = $1 AND path <> $2`, [service, path]);
  }

  /** Sets (or clears, with null) the service's active run; a cleared run is remembered as the last one. */
  async setActiveRun(em: EntityManager, service: string, run: { runId: string; kind: string } | null): Promise<void> {
    if (run) await execSql(em, `UPDATE coordinator_services SET active_run_id = $2, active_kind = $3, updated_at = now() WHERE service = $1`, [service, run.runId, run.kind]);
    else
      await execSql(
        em,
        `UPDATE coordinator_services SET last_run_id = active_run_id, active_run_id = NULL, active_kind = NULL, updated_at = now() WHERE service = $1`,
        [service],
      );
  }

  /** The state of a run, or null when there is none. */
  async runState(em: EntityManager, runId: string): Promise<string | null> {
    const { rows } = await execSql<{ state: string }>(em, `SELECT state FROM runs WHERE run_id = $1`, [runId]);
    return rows[0]?.state ?? null;
  }

  /** True when a build of the repository completed with a deployment URL (deployed and registered). */
  async deployed(em: EntityManager, repoUrl: string): Promise<boolean> {
    const { rows } = await execSql(
      em,
      `SELECT 1 FROM builds b JOIN runs r ON r.run_id = b.run_id WHERE r.repo_url = $1 AND b.status = 'completed' AND b.deployment_url IS NOT NULL LIMIT 1`,
      [repoUrl],
    );
    return rows.length > 0;
  }

  async list(em: EntityManager = this.ds.manager): Promise<CoordinatorServiceRow[]> {
    const { rows } = await execSql<ServiceSql>(em, `SELECT * FROM coordinator_services ORDER BY service`);
    return rows.map(toRow);
  }

  async stageChanges(em: EntityManager = this.ds.manager): Promise<StageChangeRow[]> {
    const { rows } = await execSql<{ service: string; from_stage: string | null; to_stage: string; at: Date }>(
      em,
      `SELECT service, from_stage, to_stage, at FROM coordinator_stage_changes ORDER BY service, at, id`,
    );
    return rows.map((r) => ({ service: r.service, from: r.from_stage, to: r.to_stage, at: r.at }));
  }

  /** Records a request for a coordinator pass now; returns its id and time. */
  async requestPass(em: EntityManager = this.ds.manager): Promise<{ id: number; requestedAt: Date }> {
    const { rows } = await execSql<{ id: string; requested_at: Date }>(em, `INSERT INTO coordinator_pass_requests DEFAULT VALUES RETURNING id, requested_at`);
    return { id: Number(rows[0].id), requestedAt: rows[0].requested_at };
  }

  /** The newest pass request, if any. */
  async latestPassRequest(em: EntityManager = this.ds.manager): Promise<{ id: number; requestedAt: Date } | null> {
    const { rows } = await execSql<{ id: string; requested_at: Date }>(em, `SELECT id, requested_at FROM coordinator_pass_requests ORDER BY id DESC LIMIT 1`);
    return rows[0] ? { id: Number(rows[0].id), requestedAt: rows[0].requested_at } : null;
  }
}
