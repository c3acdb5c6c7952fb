import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { SuggestedIssue } from '@app/contracts';
import { type BacklogState, issuesResolvedBy, observeIssue } from '@app/domain';
import type { BacklogEntity, PhaseEntity, RunEntity } from '../entities/index.js';
import { EventRepository, IssueRepository } from '../repositories/index.js';

/** Maps a backlog row to the domain's view. */
export function toBacklogState(b: BacklogEntity): BacklogState {
  return {
    issueKey: b.issueKey,
    category: b.category,
    baseSeverity: b.baseSeverity,
    effectiveSeverity: b.effectiveSeverity,
    ageInRuns: b.ageInRuns,
    ageInTiers: b.ageInTiers,
    occurrenceCount: b.occurrenceCount,
    seenInRuns: b.seenInRuns,
    seenInTiers: b.seenInTiers,
    firstSeenRunId: b.firstSeenRunId,
    lastSeenRunId: b.lastSeenRunId,
    status: b.status,
  };
}

/**
 * Three-level issue tracking in Postgres: the phase (deduplicated by key), the run index
 * (derived from phase issues) and the project backlog with aging.
 */
@Injectable()
export class IssueService {
  constructor(
    private readonly issues: IssueRepository,
    private readonly events: EventRepository,
  ) {}

  /** Records one issue of a phase at an attempt, in the caller's transaction. */
  async record(em: EntityManager, run: RunEntity, phase: PhaseEntity, issue: SuggestedIssue, defaultSource: string, opts: { backlog?: boolean } = {}): Promise<void> {
    let effective = issue.severity;
    if (opts.backlog !== false) {
      const entry = await this.issues.lockBacklogEntry(em, run.projectId, issue.issue_key);
      const next = observeIssue(
        entry ? toBacklogState(entry) : undefined,
        { issueKey: issue.issue_key, category: issue.category, severity: issue.severity, runId: run.runId, tierId: phase.tierId },
        run.strategy.agingThresholds,
      );
      await this.issues.saveBacklogEntry(em, run.projectId, next);
      effective = next.effectiveSeverity;
    }
    await this.issues.upsertPhaseIssue(em, {
      runId: run.runId,
      phaseId: phase.phaseId,
      tierId: phase.tierId,
      issueKey: issue.issue_key,
      severity: issue.severity,
      effectiveSeverity: effective,
      source: issue.source ?? defaultSource,
      category: issue.category,
      description: issue.description ?? null,
      location: issue.location ?? null,
      evidenceRefs: issue.evidence_refs ?? [],
      attempt: Math.max(1, phase.claimsCount),
    });
    await this.issues.refreshPhaseCounts(em, run.runId, phase.phaseId);
    await this.events.append(em, [
      { runId: run.runId, phaseId: phase.phaseId, type: 'issue_recorded', payload: { issue_key: issue.issue_key, severity: issue.severity, effective_severity: effective, source: issue.source ?? defaultSource } },
    ]);
  }

  /** Records several issues. */
  async recordAll(em: EntityManager, run: RunEntity, phase: PhaseEntity, issues: SuggestedIssue[], defaultSource: string): Promise<void> {
    for (const issue of issues) await this.record(em, run, phase, issue, defaultSource);
  }

  /** The kept attempt of a phase fixed what earlier attempts raised and did not raise again. */
  async phaseCompleted(em: EntityManager, phase: PhaseEntity): Promise<void> {
    await this.issues.fixIssuesBefore(em, phase.runId, phase.phaseId, phase.claimsCount);
  }

  /** A successful run resolves the project's backlog issues it no longer saw. */
  async runSucceeded(em: EntityManager, run: RunEntity): Promise<string[]> {
    const entries = await this.issues.listBacklog(run.projectId, em, true);
    const resolved = new Set(issuesResolvedBy(entries.map(toBacklogState), run.runId));
    for (const e of entries.filter((x) => resolved.has(x.issueKey))) {
      await this.issues.saveBacklogEntry(em, run.projectId, { ...toBacklogState(e), status: 'resolved' }, { resolvedByRunId: run.runId, resolvedAt: new Date() });
    }
    if (resolved.size) await this.events.append(em, [{ runId: run.runId, type: 'issues_resolved', payload: { issue_keys: [...resolved] } }]);
    return [...resolved];
  }
}
