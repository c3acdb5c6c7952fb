import type { Budgets, PhaseResponse, RunResponse, TierResponse } from '@app/contracts';
import type { PhaseEntity, RunEntity, TierEntity } from '../entities/index.js';
import { msBetween } from './clock.js';

const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);

/** Maps a phase row to its API shape. */
/**
 * What a queued phase waits for when no live executor can take it: the capabilities it
 * requires that no live executor has (all of them when each exists but never together), or
 * null when some live executor covers them all (or it requires none, or is not queued).
 */
export function waitingForCapabilities(state: string, requires: readonly string[], live: readonly (readonly string[])[]): string[] | null {
  if (state !== 'QUEUED' || requires.length === 0) return null;
  if (live.some((caps) => requires.every((c) => caps.includes(c)))) return null;
  const missing = requires.filter((c) => !live.some((caps) => caps.includes(c)));
  return missing.length > 0 ? missing : [...requires];
}

export function toPhaseResponse(p: PhaseEntity, live: readonly (readonly string[])[] = []): PhaseResponse {
  return {
    id: p.id,
    phase_id: p.phaseId,
    tier_id: p.tierId,
    phase_index: p.phaseIndex,
    name: p.name,
    description: p.description,
    state: p.state,
    task_category: p.taskCategory,
    complexity: p.complexity,
    builder_mode: p.builderMode,
    scope: p.scope,
    acceptance_criteria: p.acceptanceCriteria,
    ci: p.ci,
    attempts_used: p.attemptsUsed,
    max_attempts: p.maxAttempts,
    abandonments: p.abandonments,
    max_abandonments: p.maxAbandonments,
    builder_attempts: p.builderAttempts,
    auditor_attempts: p.auditorAttempts,
    tokens_used: p.tokensUsed,
    minor_issues_count: p.minorIssuesCount,
    major_issues_count: p.majorIssuesCount,
    quality_level: p.qualityLevel,
    last_failure_reason: p.lastFailureReason,
    commit_sha: p.commitSha,
    files_changed: p.filesChanged,
    lines_added: p.linesAdded,
    lines_removed: p.linesRemoved,
    lease_owner: p.leaseOwner,
    lease_expires_at: iso(p.leaseExpiresAt),
    requires: p.requires,
    waiting_for_capabilities: waitingForCapabilities(p.state, p.requires, live),
  };
}

/** Budget usage and what is left, at `now` (database time). */
export function budgetsOf(run: RunEntity, phases: PhaseEntity[], now: Date): Budgets {
  const elapsed = run.startedAt ? msBetween(run.startedAt, run.completedAt ?? now) / 60_000 : 0;
  return {
    tokens_used: run.tokensUsed,
    token_cap: run.tokenCap,
    tokens_left: Math.max(0, run.tokenCap - run.tokensUsed),
    cost_used_usd: run.costUsedUsd,
    cost_cap_usd: run.costCapUsd,
    cost_left_usd: run.costCapUsd === null ? null : Math.max(0, run.costCapUsd - run.costUsedUsd),
    phases: phases.length,
    max_phases: run.maxPhases,
    ci_runs_used: run.ciRunsUsed,
    minor_issues_count: run.minorIssuesCount,
    max_minor_issues_total: run.maxMinorIssuesTotal,
    elapsed_minutes: Math.round(elapsed * 100) / 100,
    max_duration_minutes: run.maxDurationMinutes,
    minutes_left: Math.max(0, Math.round((run.maxDurationMinutes - elapsed) * 100) / 100),
  };
}

/**
 * Promotion eligibility: the run succeeded, every tier is clean, no major issue is open,
 * and no high-risk phase without auto-apply is waiting for approval.
 */
export function isPromotionEligible(run: RunEntity, tiers: TierEntity[]): boolean {
  return (
    run.state === 'DONE_SUCCESS' &&
    tiers.every((t) => t.cleanliness === 'clean') &&
    run.majorIssuesCount === 0 &&
    run.approvalState !== 'pending' &&
    run.approvalState !== 'rejected'
  );
}

/** Maps a run with its tiers and phases to the API shape. */
export function toRunResponse(run: RunEntity, tiers: TierEntity[], phases: PhaseEntity[], now: Date, live: readonly (readonly string[])[] = []): RunResponse {
  const phaseViews = phases.map((p) => toPhaseResponse(p, live));
  const tierViews: TierResponse[] = tiers.map((t) => ({
    id: t.id,
    tier_id: t.tierId,
    tier_index: t.tierIndex,
    name: t.name,
    description: t.description,
    state: t.state,
    cleanliness: t.cleanliness,
    minor_issues_count: t.minorIssuesCount,
    major_issues_count: t.majorIssuesCount,
    tokens_used: t.tokensUsed,
    phases: phaseViews.filter((p) => p.tier_id === t.tierId),
  }));
  const eligible = isPromotionEligible(run, tiers);
  return {
    id: run.runId,
    run_id: run.runId,
    state: run.state,
    safety_profile: run.safetyProfile,
    run_scope: run.runScope,
    approval_mode: run.approvalMode,
    base_branch: run.baseBranch,
    integration_branch: `autonomous/${run.runId}`,
    repo_url: run.repoUrl,
    created_at: new Date(run.createdAt).toISOString(),
    started_at: iso(run.startedAt),
    completed_at: iso(run.completedAt),
    tokens_used: run.tokensUsed,
    token_cap: run.tokenCap,
    ci_runs_used: run.ciRunsUsed,
    minor_issues_count: run.minorIssuesCount,
    major_issues_count: run.majorIssuesCount,
    max_minor_issues_total: run.maxMinorIssuesTotal,
    promotion_eligible_to_main: eligible ? 'true' : 'false',
    promotion_eligible: eligible,
    approval_state: run.approvalState,
    project_id: run.projectId,
    max_parallel_phases: run.maxParallelPhases,
    debt_status: run.debtStatus,
    failure_reason: run.failureReason,
    budgets: budgetsOf(run, phases, now),
    tiers: tierViews,
    phases: phaseViews,
  };
}
