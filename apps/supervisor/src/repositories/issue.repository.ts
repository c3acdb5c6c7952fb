import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { BacklogState } from '@app/domain';
import { BacklogEntity, PhaseIssueEntity } from '../entities/index.js';
import { execSql } from './sql.js';

/** A phase issue sighting to upsert. */
export interface PhaseIssueSighting {
  runId: string;
  phaseId: string;
  tierId: string;
  issueKey: string;
  severity: 'minor' | 'major';
  effectiveSeverity: 'minor' | 'major';
  source: string;
  category: string;
  description: string | null;
  location: string | null;
  evidenceRefs: string[];
  attempt: number;
}

/** Phase issues and the project backlog. */
@Injectable()
export class IssueRepository {
  constructor(private readonly ds: DataSource) {}

  /** Deduplicates by (run, phase, issue_key): a repeat bumps the occurrence count. */
  async upsertPhaseIssue(em: EntityManager, s: PhaseIssueSighting): Promise<void> {
    await execSql(
      em,
      `INSERT INTO phase_issues (run_id, phase_id, tier_id, issue_key, severity, effective_severity, source, category, description, location, evidence_refs, last_seen_attempt)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11::jsonb,$12)
       ON CONFLICT (run_id, phase_id, issue_key) DO UPDATE SET
         occurrence_count = phase_issues.occurrence_count + 1,
         severity = CASE WHEN phase_issues.severity = 'major' OR EXCLUDED.severity = 'major' THEN 'major' ELSE 'minor' END,
         effective_severity = CASE WHEN phase_issues.effective_severity = 'major' OR EXCLUDED.effective_severity = 'major' THEN 'major' ELSE 'minor' END,
         description = COALESCE(EXCLUDED.description, phase_issues.description),
         location = COALESCE(EXCLUDED.location, phase_issues.location),
         last_seen_attempt = GREATEST(phase_issues.last_seen_attempt, EXCLUDED.last_seen_attempt),
         status = 'open',
         last_seen_at = now()`,
      [s.runId, s.phaseId, s.tierId, s.issueKey, s.severity, s.effectiveSeverity, s.source, s.category, s.description, s.location, JSON.stringify(s.evidenceRefs), s.attempt],
    );
  }

  /**
   * A phase completed with attempt `keptAttempt`: its open issues last seen before that attempt
   * are fixed, and its counters become the open issues left, in one statement. (The counts
   * cannot see the CTE's update, which shares their snapshot, so they leave those rows out.)
   */
  async fixIssuesBefore(em: EntityManager, runId: string, phaseId: string, keptAttempt: number): Promise<void> {
    await execSql(
      em,
      `WITH fixed AS (
         UPDATE phase_issues SET status = 'fixed_in_phase' WHERE run_id = $1 AND phase_id = $2 AND last_seen_attempt < $3 AND status = 'open' RETURNING 1
       )
       UPDATE phases p SET
         minor_issues_count = (SELECT count(*) FROM phase_issues i WHERE i.run_id = p.run_id AND i.phase_id = p.phase_id AND i.status = 'open' AND i.last_seen_attempt >= $3 AND i.effective_severity = 'minor'),
         major_issues_count = (SELECT count(*) FROM phase_issues i WHERE i.run_id = p.run_id AND i.phase_id = p.phase_id AND i.status = 'open' AND i.last_seen_attempt >= $3 AND i.effective_severity = 'major')
       WHERE p.run_id = $1 AND p.phase_id = $2`,
      [runId, phaseId, keptAttempt],
    );
  }


  /** Phase counters = distinct open issue keys by effective severity. */
  async refreshPhaseCounts(em: EntityManager, runId: string, phaseId: string): Promise<void> {
    await execSql(
      em,
      `UPDATE phases p SET
         minor_issues_count = (SELECT count(*) FROM phase_issues i WHERE i.run_id = p.run_id AND i.phase_id = p.phase_id AND i.status = 'open' AND i.effective_severity = 'minor'),
         major_issues_count = (SELECT count(*) FROM phase_issues i WHERE i.run_id = p.run_id AND i.phase_id = p.phase_id AND i.status = 'open' AND i.effective_severity = 'major')
       WHERE p.run_id = $1 AND p.phase_id = $2`,
      [runId, phaseId],
    );
  }

  /** Issues of a run. */
  async listForRun(runId: string, em: EntityManager = this.ds.manager): Promise<PhaseIssueEntity[]> {
    return em.getRepository(PhaseIssueEntity).find({ where: { runId }, order: { id: 'ASC' } });
  }

  /** A backlog entry, locked for update. */
  async lockBacklogEntry(em: EntityManager, projectId: string, issueKey: string): Promise<BacklogEntity | null> {
    return em
      .getRepository(BacklogEntity)
      .createQueryBuilder('b')
      .setLock('pessimistic_write')
      .where('b.project_id = :projectId AND b.issue_key = :issueKey', { projectId, issueKey })
      .getOne();
  }

  /** Writes a backlog entry. */
  async saveBacklogEntry(em: EntityManager, projectId: string, e: BacklogState, extra: Partial<BacklogEntity> = {}): Promise<void> {
    await em.getRepository(BacklogEntity).save({
      projectId,
      issueKey: e.issueKey,
      category: e.category,
      baseSeverity: e.baseSeverity,
      effectiveSeverity: e.effectiveSeverity,
      ageInRuns: e.ageInRuns,
      ageInTiers: e.ageInTiers,
      occurrenceCount: e.occurrenceCount,
      seenInRuns: e.seenInRuns,
      seenInTiers: e.seenInTiers,
      firstSeenRunId: e.firstSeenRunId,
      lastSeenRunId: e.lastSeenRunId,
      lastSeenAt: new Date(),
      status: e.status,
      resolvedByRunId: e.status === 'resolved' ? (extra.resolvedByRunId ?? null) : null,
      resolvedAt: e.status === 'resolved' ? (extra.resolvedAt ?? new Date()) : null,
    });
  }

  /** The backlog of a project, oldest first. */
  async listBacklog(projectId: string, em: EntityManager = this.ds.manager, lock = false): Promise<BacklogEntity[]> {
    const qb = em.getRepository(BacklogEntity).createQueryBuilder('b').where('b.project_id = :projectId', { projectId });
    if (lock) qb.setLock('pessimistic_write');
    return qb.orderBy('b.age_in_runs', 'DESC').addOrderBy('b.issue_key', 'ASC').getMany();
  }

  /** Every backlog entry (all projects). */
  async listAllBacklog(): Promise<BacklogEntity[]> {
    return this.ds.getRepository(BacklogEntity).createQueryBuilder('b').orderBy('b.age_in_runs', 'DESC').addOrderBy('b.issue_key', 'ASC').getMany();
  }
}
