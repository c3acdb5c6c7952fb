import fs, { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import git from 'isomorphic-git';
import { DomainError } from '@app/contracts';
import { ReportService } from '../../../apps/supervisor/src/services/report.service.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let reports: ReportService;
beforeEach(async () => {
  // A database per test: the reports aggregate over every run and backlog entry there is.
  ctx = await createMediumContext();
  reports = ctx.get(ReportService);
});
afterEach(() => ctx?.close());

/** A run with two tiers: t1 (a finished and a failed phase), t2 (one queued phase). */
async function twoTierRun(runId: string, run: Parameters<MediumContext['factory']['makeRun']>[0] = {}) {
  await ctx.factory.makeRun({ runId, ...run });
  await ctx.factory.makeTier({ runId, tierId: 't1', state: 'IN_PROGRESS', ciRunsUsed: 2 });
  await ctx.factory.makeTier({ runId, tierId: 't2' });
  await ctx.factory.makePhase({ runId, tierId: 't1', phaseId: 'p1', state: 'COMPLETE', tokensUsed: 300, commitSha: 'a'.repeat(40) });
  await ctx.factory.makePhase({ runId, tierId: 't1', phaseId: 'p2', state: 'FAILED', tokensUsed: 200, lastFailureReason: 'tests failed' });
  await ctx.factory.makePhase({ runId, tierId: 't2', phaseId: 'p3' });
}

describe('ReportService', () => {
  it('GET /metrics/runs: per-run usage, utilization and counts, filtered by state', async () => {
    await twoTierRun('m-1', { tokenCap: 1000, tokensUsed: 250, ciRunsUsed: 3 });
    await ctx.factory.makeRun({ runId: 'm-2', state: 'DONE_SUCCESS', tokenCap: 3000, tokensUsed: 1000 });
    const all = await reports.runMetrics();
    expect(all.total_runs).toBe(2);
    expect(all.runs.find((r) => r.run_id === 'm-1')).toMatchObject({ token_utilization: 0.25, phase_count: 3, tier_count: 2, ci_runs_used: 3 });
    expect(all.runs.find((r) => r.run_id === 'm-2')).toMatchObject({ token_utilization: 0.3333, phase_count: 0, tier_count: 0 });
    const done = await reports.runMetrics('DONE_SUCCESS');
    expect(done.runs.map((r) => r.run_id)).toEqual(['m-2']);
  });

  it('GET /metrics/tiers/{run}: phase states, tokens from the phases and the caps of the strategy', async () => {
    await twoTierRun('t-1');
    const run = await ctx.ds.query(`SELECT strategy FROM runs WHERE run_id = 't-1'`);
    const t1Cap = (run[0].strategy as { tiers: Record<string, { tokenCap: number; ciRunCap: number }> }).tiers.t1;
    const m = await reports.tierMetrics('t-1');
    expect(m.tier_count).toBe(2);
    expect(m.tiers[0]).toMatchObject({
      tier_id: 't1',
      phase_count: 2,
      phase_states: { COMPLETE: 1, FAILED: 1 },
      tokens_used: 500,
      token_cap: t1Cap.tokenCap,
      ci_runs_used: 2,
      ci_run_cap: 4,
    });
    expect(m.tiers[1]).toMatchObject({ tier_id: 't2', phase_states: { QUEUED: 1 }, tokens_used: 0, ci_run_cap: 2 });
    await expect(reports.tierMetrics('nope')).rejects.toEqual(new DomainError('NOT_FOUND', 'run nope not found'));
  });

  it("GET /runs/{run}/issues/index: one entry per key across phases, the worst severity, open if open anywhere", async () => {
    await twoTierRun('i-1');
    await ctx.factory.makeIssue({ runId: 'i-1', phaseId: 'p1', issueKey: 'lint', severity: 'minor', occurrenceCount: 2, status: 'fixed_in_phase' });
    await ctx.factory.makeIssue({ runId: 'i-1', phaseId: 'p3', issueKey: 'lint', severity: 'major', effectiveSeverity: 'major', occurrenceCount: 1 });
    await ctx.factory.makeIssue({ runId: 'i-1', phaseId: 'p2', issueKey: 'docs', category: 'docs', status: 'fixed_in_phase' });
    const { issues_by_key: index } = await reports.runIssueIndex('i-1');
    expect(index.lint).toMatchObject({
      severity: 'major',
      effective_severity: 'major',
      first_phase_index: 0,
      last_phase_index: 2,
      occurrence_count: 3,
      seen_in_tiers: ['t1', 't2'],
      seen_in_phases: ['p1', 'p3'],
      status: 'open',
    });
    expect(index.docs).toMatchObject({ category: 'docs', first_phase_index: 1, last_phase_index: 1, status: 'fixed_in_phase' });
  });

  it('GET /project/issues/backlog and the backlog summary: counts by status, unresolved major ones, oldest first', async () => {
    await ctx.factory.makeBacklogEntry({ projectId: 'p', issueKey: 'old', ageInRuns: 5, status: 'needs_cleanup', effectiveSeverity: 'major' });
    await ctx.factory.makeBacklogEntry({ projectId: 'p', issueKey: 'new', ageInRuns: 1 });
    await ctx.factory.makeBacklogEntry({ projectId: 'p', issueKey: 'gone', ageInRuns: 9, status: 'resolved', effectiveSeverity: 'major', resolvedByRunId: 'r-9' });
    await ctx.factory.makeBacklogEntry({ projectId: 'other', issueKey: 'elsewhere' });
    const backlog = await reports.backlog('p');
    expect(Object.keys(backlog.issues_by_key)).toEqual(['gone', 'old', 'new']);
    expect(backlog.issues_by_key.gone).toMatchObject({ status: 'resolved', resolved_by_run_id: 'r-9', age_in_runs: 9 });

    const summary = await reports.backlogSummary('p');
    expect(summary).toMatchObject({ total_issues: 3, open_count: 1, needs_cleanup_count: 1, resolved_count: 1, effectively_major_count: 1 });
    expect(summary.top_aging_issues.map(([key]) => key)).toEqual(['old', 'new']);
    expect(summary.needs_cleanup.map((e) => e.issue_key)).toEqual(['old']);
    expect((await reports.backlogSummary()).total_issues).toBe(4);
  });

  it('GET /reports/budget_analysis: budget-stopped runs by their stored cap, and utilization', async () => {
    await ctx.factory.makeRun({ runId: 'b-tokens', state: 'DONE_FAILED_BUDGET_EXHAUSTED', tokenCap: 1000, tokensUsed: 1000, failureReason: 'token_cap exhausted: 1000 of 1000 tokens used', failureCap: 'token_cap' });
    await ctx.factory.makeRun({ runId: 'b-tier', state: 'DONE_FAILED_BUDGET_EXHAUSTED', tokenCap: 1000, tokensUsed: 500, failureReason: 'tier t1 ci_run_cap exceeded', failureCap: 'tier_ci_run_cap' });
    await ctx.factory.makeRun({ runId: 'b-time', state: 'DONE_FAILED_BUDGET_EXHAUSTED', tokenCap: 1000, tokensUsed: 0, failureReason: 'max_duration_minutes exhausted: 61.0 of 60 minutes elapsed', failureCap: 'max_duration_minutes' });
    await ctx.factory.makeRun({ runId: 'b-ok', state: 'DONE_SUCCESS', tokenCap: 1000, tokensUsed: 100, costUsedUsd: 0.25 });
    const a = await reports.budgetAnalysis();
    expect(a).toMatchObject({
      total_runs: 4,
      budget_exhausted_count: 3,
      budget_exhausted_by_cap: { token_cap: 1, ci_run_cap: 1, max_duration_minutes: 1 },
      average_token_utilization: 0.4,
      total_tokens_used: 1600,
      total_cost_usd: 0.25,
    });
    expect(a.budget_exhausted_runs.map((r) => r.run_id).sort()).toEqual(['b-tier', 'b-time', 'b-tokens']);
  });

  it('GET /reports/run_summary/{run}: LLM usage and calls by model from the audit trail, with tiers and phases', async () => {
    await twoTierRun('s-1', { tokensUsed: 500 });
    await ctx.factory.makeIssue({ runId: 's-1', phaseId: 'p1', issueKey: 'lint' });
    await ctx.factory.makeEvent({ runId: 's-1', type: 'llm_usage', payload: { calls: 2, prompt_tokens: 400, completion_tokens: 50, cached_tokens: 100, cost_usd: 0.01 } });
    await ctx.factory.makeEvent({ runId: 's-1', type: 'llm_usage', payload: { prompt_tokens: 100, completion_tokens: 10 } });
    const call = { role: 'builder', provider: 'openai', model: 'm-1', prompt_tokens: 10, completion_tokens: 5, duration_ms: 40, cost_usd: 0.001 };
    await ctx.factory.makeEvent({ runId: 's-1', type: 'llm_call', payload: { ...call, outcome: 'tool_call' } });
    await ctx.factory.makeEvent({ runId: 's-1', type: 'llm_call', payload: { ...call, outcome: 'malformed' } });
    await ctx.factory.makeEvent({ runId: 's-1', type: 'llm_call', payload: { ...call, role: 'auditor', outcome: 'tool_call' } });
    await ctx.factory.makeEvent({ runId: 'other', type: 'llm_usage', payload: { prompt_tokens: 9999, completion_tokens: 1 } });
    const s = await reports.runSummary('s-1');
    expect(s.llm).toEqual({ calls: 3, prompt_tokens: 500, completion_tokens: 60, cached_tokens: 100, cache_hit_share: 0.2, cost_usd: 0.01 });
    expect(s.llm_calls_by_model).toEqual([
      { role: 'auditor', provider: 'openai', model: 'm-1', calls: 1, failed_calls: 0, prompt_tokens: 10, completion_tokens: 5, cost_usd: 0.001, duration_ms: 40 },
      { role: 'builder', provider: 'openai', model: 'm-1', calls: 2, failed_calls: 1, prompt_tokens: 20, completion_tokens: 10, cost_usd: 0.002, duration_ms: 80 },
    ]);
    expect(s.issues.distinct_issues).toBe(1);
    expect(s.tiers.map((t) => [t.tier_id, t.phase_count, t.tokens_used])).toEqual([
      ['t1', 2, 500],
      ['t2', 1, 0],
    ]);
    expect(s.phases.find((p) => p.phase_id === 'p2')).toMatchObject({ state: 'FAILED', last_failure_reason: 'tests failed' });
  });

  describe('GET /runs/{run}/integration_status', () => {
    it('reports the commits executors reported when the repository is not a local path', async () => {
      await twoTierRun('g-remote', { repoUrl: 'https://example.invalid/repo.git' });
      await ctx.factory.makePhase({ runId: 'g-remote', tierId: 't2', phaseId: 'p4', state: 'COMPLETE', commitSha: 'b'.repeat(40) });
      expect(await reports.integrationStatus('g-remote')).toEqual({
        branch: 'autonomous/g-remote',
        exists: true,
        commits_ahead_of_base: 2,
        current_commit: 'b'.repeat(40),
        base_branch: 'main',
        source: 'reported',
      });
    });

    it('reads the integration branch from a local repository', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'autopack-report-repo-'));
      try {
        const author = { name: 'Test', email: 't@example.com', timestamp: 1_700_000_000, timezoneOffset: 0 };
        await git.init({ fs, dir, defaultBranch: 'main' });
        const commit = async (file: string, message: string) => {
          fs.writeFileSync(path.join(dir, file), message);
          await git.add({ fs, dir, filepath: file });
          return git.commit({ fs, dir, message, author });
        };
        await commit('a.txt', 'base');
        await git.branch({ fs, dir, ref: 'autonomous/g-local', checkout: true });
        await commit('b.txt', 'phase one');
        const tip = await commit('c.txt', 'phase two');
        await ctx.factory.makeRun({ runId: 'g-local', repoUrl: dir });
        expect(await reports.integrationStatus('g-local')).toEqual({
          branch: 'autonomous/g-local',
          exists: true,
          commits_ahead_of_base: 2,
          current_commit: tip,
          base_branch: 'main',
          source: 'repository',
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
