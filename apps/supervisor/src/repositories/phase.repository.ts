import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { PhaseState } from '@app/contracts';
import { PhaseAttemptEntity, PhaseEntity } from '../entities/index.js';
import { entityColumns, execSql, hydrateRow, rememberTransactionNow } from './sql.js';
import type { TierStateRow } from './tier.repository.js';

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

/**
 * What the write path needs of each phase of a run (settling, budgets, claims): a narrow row
 * read without entity hydration, so a write's cost barely grows with the run's size.
 */
export interface PhaseStateRow {
  id: number;
  phaseId: string;
  tierId: string;
  kind: PhaseEntity['kind'];
  state: PhaseState;
  attemptsUsed: number;
  maxAttempts: number;
  claimsCount: number;
  tokensUsed: number;
  minorIssuesCount: number;
  majorIssuesCount: number;
  leaseToken: string | null;
  lastFailureReason: string | null;
  commitSha: string | null;
}

/** A phase of `readSnapshot`'s statement, in its column order. */
type SnapshotPhaseTuple = [
  number,
  string,
  string,
  PhaseStateRow['kind'],
  PhaseState,
  number,
  number,
  number,
  number,
  number,
  number,
  string | null,
  string | null,
  string | null,
];
/** A tier of `readSnapshot`'s statement, in its column order. */
type SnapshotTierTuple = [number, string, number, TierStateRow['state'], TierStateRow['cleanliness'], number, number, number, number];

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

  /** The narrow state rows of a run's phases, in tier/phase order (one plain query, no hydration). */
  async listStates(em: EntityManager, runId: string): Promise<PhaseStateRow[]> {
    const { rows } = await execSql<PhaseStateRow & { tokensUsed: string }>(
      em,
      `SELECT id, phase_id AS "phaseId", tier_id AS "tierId", kind, state, attempts_used AS "attemptsUsed", max_attempts AS "maxAttempts",
              claims_count AS "claimsCount", tokens_used AS "tokensUsed", minor_issues_count AS "minorIssuesCount",
              major_issues_count AS "majorIssuesCount", lease_token AS "leaseToken", last_failure_reason AS "lastFailureReason",
              commit_sha AS "commitSha"
         FROM phases WHERE run_id = $1 ORDER BY phase_index, id`,
      [runId],
    );
    return rows.map((r) => ({ ...r, tokensUsed: Number(r.tokensUsed) }));
  }

  /**
   * What a settle reads, in one round trip: the narrow state rows of the run's phases and
   * tiers, and the transaction's clock (remembered, so `RunRepository.now` needs no query).
   */
  async readSnapshot(
    em: EntityManager,
    runId: string,
    /** A NOTIFY to send with the read (it is delivered on commit either way): one round trip fewer. */
    notify?: { channel: string; payload: string },
  ): Promise<{ phases: PhaseStateRow[]; tiers: TierStateRow[] }> {
    // Rows as positional JSON arrays (cheaper to build and parse than objects with keys).
    const { rows } = await execSql<{ now: Date; phases: SnapshotPhaseTuple[]; tiers: SnapshotTierTuple[] }>(
      em,
      `SELECT now() AS now, CASE WHEN $2::text IS NULL THEN NULL ELSE pg_notify($2, $3) END AS notified,
              (SELECT COALESCE(json_agg(json_build_array(
                        id, phase_id, tier_id, kind, state, attempts_used, max_attempts, claims_count, tokens_used,
                        minor_issues_count, major_issues_count, lease_token, last_failure_reason, commit_sha
                      ) ORDER BY phase_index, id), '[]'::json) FROM phases WHERE run_id = $1) AS phases,
              (SELECT COALESCE(json_agg(json_build_array(
                        id, tier_id, tier_index, state, cleanliness, minor_issues_count, major_issues_count, tokens_used, ci_runs_used
                      ) ORDER BY tier_index), '[]'::json) FROM tiers WHERE run_id = $1) AS tiers`,
      [runId, notify?.channel ?? null, notify?.payload ?? null],
    );
    rememberTransactionNow(em, new Date(rows[0].now));
    return {
      phases: rows[0].phases.map(
        ([id, phaseId, tierId, kind, state, attemptsUsed, maxAttempts, claimsCount, tokensUsed, minorIssuesCount, majorIssuesCount, leaseToken, lastFailureReason, commitSha]) => ({
          id,
          phaseId,
          tierId,
          kind,
          state,
          attemptsUsed,
          maxAttempts,
          claimsCount,
          tokensUsed,
          minorIssuesCount,
          majorIssuesCount,
          leaseToken,
          lastFailureReason,
          commitSha,
        }),
      ),
      tiers: rows[0].tiers.map(([id, tierId, tierIndex, state, cleanliness, minorIssuesCount, majorIssuesCount, tokensUsed, ciRunsUsed]) => ({
        id,
        tierId,
        tierIndex,
        state,
        cleanliness,
        minorIssuesCount,
        majorIssuesCount,
        tokensUsed,
        ciRunsUsed,
      })),
    };
  }

  /** One phase, read whole for a write, with the transaction's clock (remembered for `RunRepository.now`). */
  async findForWrite(em: EntityManager, runId: string, phaseId: string): Promise<PhaseEntity | null> {
    const { rows } = await execSql<Record<string, unknown> & { __now: Date }>(
      em,
      `SELECT ${entityColumns(em, PhaseEntity, 'p')}, now() AS "__now" FROM phases p WHERE p.run_id = $1 AND p.phase_id = $2`,
      [runId, phaseId],
    );
    if (rows.length === 0) return null;
    rememberTransactionNow(em, new Date(rows[0].__now));
    return hydrateRow(em, PhaseEntity, rows[0]);
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
    const { rows } = await execSql<Record<string, unknown>>(
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
      RETURNING ${entityColumns(em, PhaseEntity, 'p')}`,
      [runId, token, owner, leaseSeconds, capabilities],
    );
    // The claimed row comes back whole: no second read.
    return rows.length === 0 ? null : hydrateRow(em, PhaseEntity, rows[0]);
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
    // The phase's tier sums its phases' tokens: both move in one statement, so they never differ.
    await execSql(
      em,
      `WITH p AS (UPDATE phases SET tokens_used = tokens_used + $2, updated_at = now() WHERE id = $1 RETURNING run_id, tier_id)
       UPDATE tiers t SET tokens_used = t.tokens_used + $2 FROM p WHERE t.run_id = p.run_id AND t.tier_id = p.tier_id`,
      [id, tokens],
    );
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


}
