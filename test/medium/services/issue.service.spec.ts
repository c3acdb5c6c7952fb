import type { SuggestedIssue } from '@app/contracts';
import { type PhaseEntity, RunEntity } from '../../../apps/supervisor/src/entities/index.js';
import { IssueService } from '../../../apps/supervisor/src/services/issue.service.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let issues: IssueService;
beforeAll(async () => {
  ctx = await createMediumContext();
  issues = ctx.get(IssueService);
});
afterAll(() => ctx?.close());

let seq = 0;
/** A run of project `projectId` with one leased phase at its `claims`-th claim. */
async function leasedPhase(projectId: string, claims = 1): Promise<{ run: RunEntity; phase: PhaseEntity }> {
  const run = await ctx.factory.makeRun({ runId: `issue-run-${++seq}`, projectId });
  const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING', claimsCount: claims, attemptsUsed: claims });
  // Read again: adding the phase recompiled the run's strategy.
  return { run: await ctx.ds.getRepository(RunEntity).findOneByOrFail({ runId: run.runId }), phase };
}

const lint: SuggestedIssue = { issue_key: 'lint-unused-var', severity: 'minor', category: 'style', description: 'x is unused', location: 'a.ts:3' };

const phaseRow = (p: PhaseEntity) =>
  ctx.db.query<{ minor_issues_count: number; major_issues_count: number }>('SELECT minor_issues_count, major_issues_count FROM phases WHERE id = $1', [p.id]).then((r) => r[0]);
const phaseIssues = (p: PhaseEntity) =>
  ctx.db.query('SELECT issue_key, severity, effective_severity, source, occurrence_count, last_seen_attempt, status FROM phase_issues WHERE run_id = $1 AND phase_id = $2 ORDER BY issue_key', [
    p.runId,
    p.phaseId,
  ]);
const backlog = (projectId: string, key: string) =>
  ctx.db.query('SELECT effective_severity, age_in_runs, age_in_tiers, occurrence_count, seen_in_runs, status, resolved_by_run_id FROM project_backlog WHERE project_id = $1 AND issue_key = $2', [
    projectId,
    key,
  ]).then((r) => r[0]);

describe('IssueService.record', () => {
  it('records a first sighting in the phase, the project backlog, the phase counters and the audit trail', async () => {
    const { run, phase } = await leasedPhase('proj-a', 2);
    await ctx.ds.transaction((em) => issues.record(em, run, phase, lint, 'builder'));
    expect(await phaseIssues(phase)).toEqual([
      { issue_key: 'lint-unused-var', severity: 'minor', effective_severity: 'minor', source: 'builder', occurrence_count: 1, last_seen_attempt: 2, status: 'open' },
    ]);
    expect(await phaseRow(phase)).toEqual({ minor_issues_count: 1, major_issues_count: 0 });
    expect(await backlog('proj-a', lint.issue_key)).toMatchObject({ age_in_runs: 1, age_in_tiers: 1, occurrence_count: 1, seen_in_runs: [run.runId], status: 'open' });
    expect(await ctx.db.query(`SELECT type, payload FROM events WHERE run_id = $1`, [run.runId])).toEqual([
      { type: 'issue_recorded', payload: { issue_key: 'lint-unused-var', severity: 'minor', effective_severity: 'minor', source: 'builder' } },
    ]);
  });

  it('counts a repeat in the same phase as one more occurrence, aging the backlog once per run', async () => {
    const { run, phase } = await leasedPhase('proj-b');
    await ctx.ds.transaction((em) => issues.recordAll(em, run, phase, [lint, { ...lint, severity: 'major', source: 'auditor' }], 'builder'));
    expect(await phaseIssues(phase)).toEqual([
      // The worst severity sticks; the source is the first one's.
      { issue_key: 'lint-unused-var', severity: 'major', effective_severity: 'major', source: 'builder', occurrence_count: 2, last_seen_attempt: 1, status: 'open' },
    ]);
    expect(await phaseRow(phase)).toEqual({ minor_issues_count: 0, major_issues_count: 1 });
    expect(await backlog('proj-b', lint.issue_key)).toMatchObject({ age_in_runs: 1, occurrence_count: 2 });
  });

  it('makes a minor issue effectively major once it has aged over enough runs', async () => {
    // Seen in two earlier runs; the normal profile's threshold is three runs.
    await ctx.factory.makeBacklogEntry({ projectId: 'proj-c', issueKey: lint.issue_key, ageInRuns: 2, ageInTiers: 2, seenInRuns: ['r-1', 'r-2'], seenInTiers: ['r-1/t', 'r-2/t'] });
    const { run, phase } = await leasedPhase('proj-c');
    await ctx.ds.transaction((em) => issues.record(em, run, phase, lint, 'auditor'));
    expect(await backlog('proj-c', lint.issue_key)).toMatchObject({ effective_severity: 'major', age_in_runs: 3, status: 'needs_cleanup' });
    expect(await phaseIssues(phase)).toEqual([expect.objectContaining({ severity: 'minor', effective_severity: 'major' })]);
    expect(await phaseRow(phase)).toEqual({ minor_issues_count: 0, major_issues_count: 1 });
  });

  it('leaves the backlog alone when asked to', async () => {
    const { run, phase } = await leasedPhase('proj-d');
    await ctx.ds.transaction((em) => issues.record(em, run, phase, lint, 'supervisor', { backlog: false }));
    expect(await backlog('proj-d', lint.issue_key)).toBeUndefined();
    expect(await phaseIssues(phase)).toHaveLength(1);
  });

  it("writes nothing when the caller's transaction rolls back", async () => {
    const { run, phase } = await leasedPhase('proj-e');
    await expect(
      ctx.ds.transaction(async (em) => {
        await issues.record(em, run, phase, lint, 'builder');
        throw new Error('the fenced write failed');
      }),
    ).rejects.toThrow('the fenced write failed');
    expect(await phaseIssues(phase)).toEqual([]);
    expect(await backlog('proj-e', lint.issue_key)).toBeUndefined();
    expect(await ctx.db.query('SELECT 1 FROM events WHERE run_id = $1', [run.runId])).toEqual([]);
  });
});

describe('IssueService.phaseCompleted', () => {
  it('marks fixed what earlier attempts raised and the kept attempt did not, and recounts the phase', async () => {
    const { phase } = await leasedPhase('proj-f', 3);
    await ctx.factory.makeIssue({ runId: phase.runId, phaseId: phase.phaseId, issueKey: 'fixed-later', lastSeenAttempt: 1 });
    await ctx.factory.makeIssue({ runId: phase.runId, phaseId: phase.phaseId, issueKey: 'still-there', lastSeenAttempt: 3, severity: 'major', effectiveSeverity: 'major' });
    await ctx.ds.transaction((em) => issues.phaseCompleted(em, phase));
    expect((await phaseIssues(phase)).map((i: any) => [i.issue_key, i.status])).toEqual([
      ['fixed-later', 'fixed_in_phase'],
      ['still-there', 'open'],
    ]);
    expect(await phaseRow(phase)).toEqual({ minor_issues_count: 0, major_issues_count: 1 });
  });
});

describe('IssueService.runSucceeded', () => {
  it("resolves the project's backlog issues the run did not see, and only those", async () => {
    const run = await ctx.factory.makeRun({ runId: 'succeeded', projectId: 'proj-g' });
    await ctx.factory.makeBacklogEntry({ projectId: 'proj-g', issueKey: 'gone', seenInRuns: ['r-old'] });
    await ctx.factory.makeBacklogEntry({ projectId: 'proj-g', issueKey: 'seen-now', seenInRuns: ['r-old', 'succeeded'] });
    await ctx.factory.makeBacklogEntry({ projectId: 'other', issueKey: 'other-project', seenInRuns: ['r-old'] });
    const resolved = await ctx.ds.transaction((em) => issues.runSucceeded(em, run));
    expect(resolved).toEqual(['gone']);
    expect(await backlog('proj-g', 'gone')).toMatchObject({ status: 'resolved', resolved_by_run_id: 'succeeded' });
    expect(await backlog('proj-g', 'seen-now')).toMatchObject({ status: 'open', resolved_by_run_id: null });
    expect(await backlog('other', 'other-project')).toMatchObject({ status: 'open' });
    expect(await ctx.db.query('SELECT type, payload FROM events WHERE run_id = $1', [run.runId])).toEqual([{ type: 'issues_resolved', payload: { issue_keys: ['gone'] } }]);
  });
});
