import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { PhaseState } from '@app/contracts';
import { PhaseAttemptEntity, PhaseEntity } from '../entities/index.js';
import { execSql } from './sql.js';

/** Columns a phase transition may set alongside the state. */
export type PhaseTransitionSet = Partial<
  Pick<
    PhaseEntity,
    | 'lastFailureReason'
    | 'failureCap'
    | 'commitSha'
    | 'qualityLevel'
    | 'filesChanged'
    | 'linesAdded'
    | 'linesRemoved'
    | 'builderAttempts'
    | 'auditorAttempts'
    | 'minorIssuesCount'
    | 'majorIssuesCount'
    | 'attemptsUsed'
    | 'maxAttempts'
    | 'abandonments'
  >
> & { clearLease?: boolean };

/** Phases: claims, leases and guarded state writes. */
@Injectable()
export class PhaseRepository {
  /** Inserts phases. */
  async insertMany(em: EntityManager, phases: Partial<PhaseEntity>[]): Promise<void> {
    await em.getRepository(PhaseEntity).insert(phases);
  }

  /** Phases of a run in tier/phase order. */
  async listForRun(em: EntityManager, runId: string): Promise<PhaseEntity[]> {
    return em.getRepository(PhaseEntity).find({ where: { runId }, order: { phaseIndex: 'ASC', id: 'ASC' } });
  }

  /** One phase. */
  async find(em: EntityManager, runId: string, phaseId: string): Promise<PhaseEntity | null> {
    return em.getRepository(PhaseEntity).findOne({ where: { runId, phaseId } });
  }

  /**
   * Claims the next phase of a run whose run row the caller holds locked: the lowest-index
   * QUEUED phase of the first unfinished tier, unless that tier failed. One statement,
   * guarded by `state = 'QUEUED'`; the attempt is charged here (so crash loops reach the cap)
   * and refunded when the lease is handed back uncharged.
   */
  async claimNextInRun(em: EntityManager, runId: string, owner: string, token: string, leaseSeconds: number, capabilities: readonly string[]): Promise<PhaseEntity | null> {
    const { rows } = await execSql<{ id: number }>(
      em,
      `UPDATE phases p
          SET state = 'EXECUTING', attempts_used = p.attempts_used + 1, claims_count = p.claims_count + 1, lease_token = $2, lease_owner = $3,
              lease_expires_at = now() + make_interval(secs => $4), version = p.version + 1, updated_at = now()
        WHERE p.id = (
              SELECT q.id FROM phases q
                JOIN tiers t ON t.run_id = q.run_id AND t.tier_id = q.tier_id
               WHERE q.run_id = $1 AND q.state = 'QUEUED' AND t.state <> 'FAILED' AND q.kind <> 'deploy' AND q.requires <@ $5::text[]
                 AND t.tier_index = (SELECT min(t2.tier_index) FROM tiers t2 WHERE t2.run_id = $1 AND t2.state NOT IN ('COMPLETE','SKIPPED'))
               ORDER BY q.phase_index, q.id
               LIMIT 1)
          AND p.state = 'QUEUED'
      RETURNING p.id`,
      [runId, token, owner, leaseSeconds, capabilities],
    );
    if (rows.length === 0) return null;
    return em.getRepository(PhaseEntity).findOne({ where: { id: rows[0].id } });
  }

  /**
   * Guarded state change: `UPDATE ... WHERE id AND state = :from [AND lease_token = :t]`.
   * Returns false when the row was not in that state or the lease changed hands.
   */
  async transition(
    em: EntityManager,
    id: number,
    from: PhaseState,
    to: PhaseState,
    fence: { leaseToken?: string | null },
    set: PhaseTransitionSet = {},
  ): Promise<boolean> {
    const { clearLease, ...columns } = set;
    const values: Record<string, unknown> = { ...columns, state: to, version: () => 'version + 1', updatedAt: () => 'now()' };
    if (clearLease) Object.assign(values, { leaseToken: null, leaseOwner: null, leaseExpiresAt: null });
    const qb = em.createQueryBuilder().update(PhaseEntity).set(values).where('id = :id AND state = :from', { id, from });
    if (fence.leaseToken !== undefined) qb.andWhere('lease_token IS NOT DISTINCT FROM :token', { token: fence.leaseToken });
    const r = await qb.execute();
    return r.affected === 1;
  }

  /** Extends a live lease; null when the token is stale or the lease already expired. */
  async extendLease(em: EntityManager, id: number, token: string, seconds: number): Promise<Date | null> {
    const { rows } = await execSql<{ lease_expires_at: Date }>(
      em,
      `UPDATE phases SET lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
        WHERE id = $1 AND lease_token = $2 AND lease_expires_at > now()
      RETURNING lease_expires_at`,
      [id, token, seconds],
    );
    return rows.length ? new Date(rows[0].lease_expires_at) : null;
  }

  /** Runs with at least one expired lease (for the sweeper). */
  async runsWithExpiredLeases(em: EntityManager, limit = 50): Promise<string[]> {
    const { rows } = await execSql<{ run_id: string }>(
      em,
      `SELECT DISTINCT run_id FROM phases WHERE lease_token IS NOT NULL AND lease_expires_at < now() LIMIT $1`,
      [limit],
    );
    return rows.map((r) => r.run_id);
  }

  /** Adds usage to a phase atomically. */
  async addUsage(em: EntityManager, id: number, tokens: number): Promise<void> {
    await execSql(em, `UPDATE phases SET tokens_used = tokens_used + $2, updated_at = now() WHERE id = $1`, [id, tokens]);
  }

  /** Adds counters reported by builder/auditor results. */
  async addCounters(em: EntityManager, id: number, c: { builder?: number; auditor?: number; minor?: number; major?: number }): Promise<void> {
    await execSql(
      em,
      `UPDATE phases SET builder_attempts = builder_attempts + $2, auditor_attempts = auditor_attempts + $3,
              minor_issues_count = minor_issues_count + $4, major_issues_count = major_issues_count + $5, updated_at = now()
        WHERE id = $1`,
      [id, c.builder ?? 0, c.auditor ?? 0, c.minor ?? 0, c.major ?? 0],
    );
  }

  /** Records the end of an attempt (idempotent per attempt number). */
  async recordAttempt(em: EntityManager, a: Omit<PhaseAttemptEntity, 'id' | 'createdAt'>): Promise<void> {
    await execSql(
      em,
      `INSERT INTO phase_attempts (run_id, phase_id, attempt, outcome, reason, feedback, edits_hash, executor_id, commit_sha)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (run_id, phase_id, attempt) DO NOTHING`,
      [a.runId, a.phaseId, a.attempt, a.outcome, a.reason, a.feedback, a.editsHash, a.executorId, a.commitSha],
    );
  }

  /** Earlier attempts of a phase, oldest first. */
  async listAttempts(em: EntityManager, runId: string, phaseId: string): Promise<PhaseAttemptEntity[]> {
    return em.getRepository(PhaseAttemptEntity).find({ where: { runId, phaseId }, order: { attempt: 'ASC' } });
  }

  /** Phases per run, for many runs at once. */
  async countForRuns(em: EntityManager, runIds: string[]): Promise<Map<string, number>> {
    const { rows } = await execSql<{ run_id: string; n: number }>(em, `SELECT run_id, count(*)::int AS n FROM phases WHERE run_id = ANY($1::text[]) GROUP BY run_id`, [runIds]);
    return new Map(rows.map((r) => [r.run_id, r.n]));
  }

  /** Tokens used per tier of a run, summed by the database (no phase rows read). */
  async tokensByTier(em: EntityManager, runId: string): Promise<Map<string, number>> {
    const { rows } = await execSql<{ tier_id: string; tokens: string }>(em, `SELECT tier_id, COALESCE(sum(tokens_used), 0)::bigint AS tokens FROM phases WHERE run_id = $1 GROUP BY tier_id`, [runId]);
    return new Map(rows.map((r) => [r.tier_id, Number(r.tokens)]));
  }
}
