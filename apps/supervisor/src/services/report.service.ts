import { existsSync } from 'node:fs';
import path from 'node:path';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DomainError, type FailureCap, type RunState } from '@app/contracts';
import { tierTokensUsed } from '@app/domain';
import { integrationStatus } from '@app/git';
import type { PhaseEntity, RunEntity, TierEntity } from '../entities/index.js';
import { EventRepository, IssueRepository, PhaseRepository, RunRepository, TierRepository } from '../repositories/index.js';

const utilization = (used: number, cap: number) => (cap > 0 ? Math.round((used / cap) * 10_000) / 10_000 : 0);
const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

/**
 * The key `budget_analysis` counts a run's cap under. The report names a cap as its reason
 * does (`tier t1 token_cap exhausted` counts as `token_cap`), so tier caps share the run's key.
 */
const REPORTED_CAP: Record<FailureCap, string> = {
  token_cap: 'token_cap',
  cost_cap_usd: 'cost_cap_usd',
  max_duration_minutes: 'max_duration_minutes',
  max_phases: 'max_phases',
  max_minor_issues_total: 'max_minor_issues_total',
  tier_token_cap: 'token_cap',
  tier_ci_run_cap: 'ci_run_cap',
  incident_token_cap: 'incident_token_cap',
  max_attempts: 'max_attempts',
  max_abandonments: 'max_abandonments',
};

/** Read models: metrics, reports, issue index, backlog, integration status (original Autopack shapes). */
@Injectable()
export class ReportService {
  constructor(
    private readonly ds: DataSource,
    private readonly runs: RunRepository,
    private readonly tiers: TierRepository,
    private readonly phases: PhaseRepository,
    private readonly issues: IssueRepository,
    private readonly events: EventRepository,
  ) {}

  private async load(runId: string): Promise<{ run: RunEntity; tiers: TierEntity[]; phases: PhaseEntity[] }> {
    const em = this.ds.manager;
    const run = await this.runs.find(runId, em);
    if (!run) throw new DomainError('NOT_FOUND', `run ${runId} not found`);
    const [tiers, phases] = await Promise.all([this.tiers.listForRun(em, runId), this.phases.listForRun(em, runId)]);
    return { run, tiers, phases };
  }

  private async allRuns(state?: RunState): Promise<RunEntity[]> {
    const { runs } = await this.runs.list({ state, limit: 10_000, offset: 0 });
    return runs;
  }

  /** `GET /metrics/runs`. */
  async runMetrics(state?: RunState) {
    const runs = await this.allRuns(state);
    const tiers = await this.tiers.listForRuns(this.ds.manager, runs.map((r) => r.runId));
    const counts = await this.phaseCounts(runs.map((r) => r.runId));
    return {
      total_runs: runs.length,
      runs: runs.map((r) => ({
        run_id: r.runId,
        state: r.state,
        safety_profile: r.safetyProfile,
        tokens_used: r.tokensUsed,
        token_cap: r.tokenCap,
        token_utilization: utilization(r.tokensUsed, r.tokenCap),
        cost_used_usd: r.costUsedUsd,
        cost_cap_usd: r.costCapUsd,
        minor_issues_count: r.minorIssuesCount,
        major_issues_count: r.majorIssuesCount,
        max_minor_issues_total: r.maxMinorIssuesTotal,
        phase_count: counts.get(r.runId) ?? 0,
        tier_count: tiers.filter((t) => t.runId === r.runId).length,
        ci_runs_used: r.ciRunsUsed,
        failure_reason: r.failureReason,
        started_at: iso(r.startedAt),
        completed_at: iso(r.completedAt),
      })),
    };
  }

  private async phaseCounts(runIds: string[]): Promise<Map<string, number>> {
    if (runIds.length === 0) return new Map();
    return this.phases.countForRuns(this.ds.manager, runIds);
  }

  /** `GET /metrics/tiers/{run_id}`. */
  async tierMetrics(runId: string) {
    const { run, tiers, phases } = await this.load(runId);
    return {
      run_id: run.runId,
      tier_count: tiers.length,
      tiers: tiers.map((t) => {
        const inTier = phases.filter((p) => p.tierId === t.tierId);
        const states: Record<string, number> = {};
        for (const p of inTier) states[p.state] = (states[p.state] ?? 0) + 1;
        const budget = run.strategy.tiers[t.tierId];
        return {
          tier_id: t.tierId,
          tier_index: t.tierIndex,
          name: t.name,
          state: t.state,
          cleanliness: t.cleanliness,
          minor_issues_count: t.minorIssuesCount,
          major_issues_count: t.majorIssuesCount,
          phase_count: inTier.length,
          phase_states: states,
          tokens_used: tierTokensUsed(inTier, t.tierId),
          token_cap: budget?.tokenCap ?? null,
          ci_runs_used: t.ciRunsUsed,
          ci_run_cap: budget?.ciRunCap ?? null,
        };
      }),
    };
  }

  /** `GET /runs/{run_id}/issues/index`: the run's issues by key, derived from phase issues. */
  async runIssueIndex(runId: string) {
    const { phases } = await this.load(runId);
    const index = new Map(phases.map((p) => [p.phaseId, p]));
    const byKey: Record<string, Record<string, unknown>> = {};
    for (const i of await this.issues.listForRun(runId)) {
      const phaseIndex = index.get(i.phaseId)?.phaseIndex ?? 0;
      const e = byKey[i.issueKey] as
        | { first_phase_index: number; last_phase_index: number; occurrence_count: number; seen_in_tiers: string[]; seen_in_phases: string[]; severity: string; effective_severity: string; status: string }
        | undefined;
      if (!e) {
        byKey[i.issueKey] = {
          category: i.category,
          severity: i.severity,
          effective_severity: i.effectiveSeverity,
          source: i.source,
          first_phase_index: phaseIndex,
          last_phase_index: phaseIndex,
          occurrence_count: i.occurrenceCount,
          seen_in_tiers: [i.tierId],
          seen_in_phases: [i.phaseId],
          status: i.status,
        };
        continue;
      }
      e.first_phase_index = Math.min(e.first_phase_index, phaseIndex);
      e.last_phase_index = Math.max(e.last_phase_index, phaseIndex);
      e.occurrence_count += i.occurrenceCount;
      if (!e.seen_in_tiers.includes(i.tierId)) e.seen_in_tiers.push(i.tierId);
      if (!e.seen_in_phases.includes(i.phaseId)) e.seen_in_phases.push(i.phaseId);
      if (i.severity === 'major') e.severity = 'major';
      if (i.effectiveSeverity === 'major') e.effective_severity = 'major';
      if (i.status === 'open') e.status = 'open';
    }
    return { run_id: runId, issues_by_key: byKey };
  }

  /** `GET /project/issues/backlog`. */
  async backlog(projectId: string) {
    const entries = await this.issues.listBacklog(projectId);
    return {
      project_id: projectId,
      issues_by_key: Object.fromEntries(
        entries.map((b) => [
          b.issueKey,
          {
            category: b.category,
            base_severity: b.baseSeverity,
            effective_severity: b.effectiveSeverity,
            age_in_runs: b.ageInRuns,
            age_in_tiers: b.ageInTiers,
            occurrence_count: b.occurrenceCount,
            first_seen_run_id: b.firstSeenRunId,
            last_seen_run_id: b.lastSeenRunId,
            last_seen_at: iso(b.lastSeenAt),
            seen_in_runs: b.seenInRuns,
            seen_in_tiers: b.seenInTiers,
            status: b.status,
            resolved_by_run_id: b.resolvedByRunId,
          },
        ]),
      ),
    };
  }

  /** `GET /reports/issue_backlog_summary`. */
  async backlogSummary(projectId?: string) {
    const entries = projectId ? await this.issues.listBacklog(projectId) : await this.issues.listAllBacklog();
    const view = (b: (typeof entries)[number]) => ({
      issue_key: b.issueKey,
      project_id: b.projectId,
      category: b.category,
      base_severity: b.baseSeverity,
      effective_severity: b.effectiveSeverity,
      age_in_runs: b.ageInRuns,
      age_in_tiers: b.ageInTiers,
      status: b.status,
      seen_in_tiers: b.seenInTiers,
      first_seen_run_id: b.firstSeenRunId,
      last_seen_run_id: b.lastSeenRunId,
    });
    const unresolved = entries.filter((b) => b.status !== 'resolved');
    return {
      total_issues: entries.length,
      open_count: entries.filter((b) => b.status === 'open').length,
      needs_cleanup_count: entries.filter((b) => b.status === 'needs_cleanup').length,
      resolved_count: entries.filter((b) => b.status === 'resolved').length,
      effectively_major_count: unresolved.filter((b) => b.effectiveSeverity === 'major').length,
      top_aging_issues: unresolved.slice(0, 10).map((b) => [b.issueKey, view(b)]),
      needs_cleanup: entries.filter((b) => b.status === 'needs_cleanup').map(view),
    };
  }

  /** `GET /reports/budget_analysis`: runs stopped by a budget, and utilization across runs. */
  async budgetAnalysis() {
    const runs = await this.allRuns();
    const counts = await this.phaseCounts(runs.map((r) => r.runId));
    const view = (r: RunEntity) => ({
      run_id: r.runId,
      state: r.state,
      failure_reason: r.failureReason,
      tokens_used: r.tokensUsed,
      token_cap: r.tokenCap,
      token_utilization: utilization(r.tokensUsed, r.tokenCap),
      cost_used_usd: r.costUsedUsd,
      cost_cap_usd: r.costCapUsd,
      phase_count: counts.get(r.runId) ?? 0,
      max_phases: r.maxPhases,
      minor_issues: r.minorIssuesCount,
      max_minor_issues_total: r.maxMinorIssuesTotal,
    });
    const exhausted = runs.filter((r) => r.state === 'DONE_FAILED_BUDGET_EXHAUSTED');
    const byCap: Record<string, number> = {};
    for (const r of exhausted) {
      const cap = r.failureCap ? REPORTED_CAP[r.failureCap] : 'unknown';
      byCap[cap] = (byCap[cap] ?? 0) + 1;
    }
    const avg = runs.length ? runs.reduce((n, r) => n + utilization(r.tokensUsed, r.tokenCap), 0) / runs.length : 0;
    return {
      total_runs: runs.length,
      budget_exhausted_count: exhausted.length,
      budget_exhausted_by_cap: byCap,
      budget_exhausted_runs: exhausted.map(view),
      average_token_utilization: Math.round(avg * 10_000) / 10_000,
      total_tokens_used: runs.reduce((n, r) => n + r.tokensUsed, 0),
      total_cost_usd: Math.round(runs.reduce((n, r) => n + r.costUsedUsd, 0) * 1e6) / 1e6,
      runs: runs.map(view),
    };
  }

  /** `GET /reports/run_summary/{run_id}`. */
  async runSummary(runId: string) {
    const { run, tiers, phases } = await this.load(runId);
    const index = await this.runIssueIndex(runId);
    return {
      llm: await this.events.llmUsage(runId),
      llm_calls_by_model: await this.events.llmCallsByModel(runId),
      run_id: run.runId,
      state: run.state,
      safety_profile: run.safetyProfile,
      run_scope: run.runScope,
      approval_mode: run.approvalMode,
      approval_state: run.approvalState,
      failure_reason: run.failureReason,
      debt_status: run.debtStatus,
      budgets: {
        tokens_used: run.tokensUsed,
        token_cap: run.tokenCap,
        token_utilization: utilization(run.tokensUsed, run.tokenCap),
        cost_used_usd: run.costUsedUsd,
        cost_cap_usd: run.costCapUsd,
        phase_count: phases.length,
        max_phases: run.maxPhases,
        ci_runs_used: run.ciRunsUsed,
      },
      issues: {
        minor_count: run.minorIssuesCount,
        major_count: run.majorIssuesCount,
        max_min_total: run.maxMinorIssuesTotal,
        distinct_issues: Object.keys(index.issues_by_key).length,
      },
      tiers: tiers.map((t) => ({
        tier_id: t.tierId,
        name: t.name,
        state: t.state,
        cleanliness: t.cleanliness,
        phase_count: phases.filter((p) => p.tierId === t.tierId).length,
        minor_issues: t.minorIssuesCount,
        major_issues: t.majorIssuesCount,
        tokens_used: tierTokensUsed(phases, t.tierId),
      })),
      phases: phases.map((p) => ({
        phase_id: p.phaseId,
        phase_index: p.phaseIndex,
        name: p.name,
        state: p.state,
        task_category: p.taskCategory,
        complexity: p.complexity,
        attempts: p.attemptsUsed,
        max_attempts: p.maxAttempts,
        abandonments: p.abandonments,
        max_abandonments: p.maxAbandonments,
        builder_attempts: p.builderAttempts,
        auditor_attempts: p.auditorAttempts,
        tokens_used: p.tokensUsed,
        minor_issues: p.minorIssuesCount,
        major_issues: p.majorIssuesCount,
        commit_sha: p.commitSha,
        last_failure_reason: p.lastFailureReason,
      })),
      started_at: iso(run.startedAt),
      completed_at: iso(run.completedAt),
    };
  }

  /**
   * `GET /runs/{run_id}/integration_status`. Read from the repository when `repo_url` is a
   * local path the supervisor can open (isomorphic-git, no binary), else from the commits
   * executors reported.
   */
  async integrationStatus(runId: string) {
    const { run, phases } = await this.load(runId);
    const branch = `autonomous/${run.runId}`;
    if (run.repoUrl && !/^[a-z]+:\/\//i.test(run.repoUrl) && existsSync(path.join(run.repoUrl, '.git'))) {
      try {
        const s = await integrationStatus(run.repoUrl, { runId: run.runId, baseBranch: run.baseBranch });
        return { ...s, base_branch: run.baseBranch, source: 'repository' as const };
      } catch {
        // fall through to what was reported
      }
    }
    const committed = phases.filter((p) => p.commitSha).sort((a, b) => new Date(a.updatedAt).getTime() - new Date(b.updatedAt).getTime());
    return {
      branch,
      exists: committed.length > 0,
      commits_ahead_of_base: new Set(committed.map((p) => p.commitSha)).size,
      current_commit: committed.at(-1)?.commitSha ?? null,
      base_branch: run.baseBranch,
      source: 'reported' as const,
    };
  }
}
