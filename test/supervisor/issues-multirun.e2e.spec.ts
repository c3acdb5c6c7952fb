import { claimNext, http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

let sup: TestSupervisor;
beforeAll(async () => {
  sup = await startTestSupervisor();
});
afterAll(async () => sup?.close());

const call = (method: string, path: string, body?: unknown) => http(sup.url, method, path, body);
const PROJECT = 'acme';

const plan = (runId: string) => ({
  run: { run_id: runId, project_id: PROJECT },
  tiers: [
    { tier_id: 't1', tier_index: 0, name: 'One' },
    { tier_id: 't2', tier_index: 1, name: 'Two' },
  ],
  phases: [
    { phase_id: 'a', phase_index: 0, tier_id: 't1', name: 'A', task_category: 'feature_scaffolding' },
    { phase_id: 'b', phase_index: 1, tier_id: 't2', name: 'B', task_category: 'tests' },
  ],
});
const minor = (issue_key: string, category = 'quality') => ({ issue_key, severity: 'minor', category, description: issue_key });

/** Works through every claimable phase of a run, reporting the given issues per phase. */
async function drive(runId: string, issuesByPhase: Record<string, unknown[]>) {
  for (;;) {
    const r = await call('POST', '/phases/claim', { executor_id: 'e', run_id: runId });
    if (r.status === 204) break;
    const c = r.body;
    const p = `/runs/${runId}/phases/${c.phase_id}`;
    await call('POST', `${p}/builder_result`, { lease_token: c.lease_token, status: 'success', suggested_issues: issuesByPhase[c.phase_id] ?? [], usage: { prompt_tokens: 1000, completion_tokens: 0 } });
    // Reporting the same issue again in the same run and tier must not age it again.
    for (const issue of issuesByPhase[c.phase_id] ?? []) await call('POST', `${p}/record_issue`, { lease_token: c.lease_token, ...(issue as object), source: 'builder' });
    const done = await call('POST', `${p}/update_status`, { lease_token: c.lease_token, state: 'COMPLETE', commit_sha: 'd'.repeat(40) });
    expect(done.status).toBe(200);
  }
  return (await call('GET', `/runs/${runId}`)).body;
}

const backlog = async () => (await call('GET', `/project/issues/backlog?project_id=${PROJECT}`)).body.issues_by_key;

describe('three-level issue tracking across runs', () => {
  it('ages per run and per tier, upgrades severity, schedules debt cleanup and resolves', async () => {
    // Run 1: flaky_test in both tiers (2 tiers -> aged), missing_docs in one.
    expect((await call('POST', '/runs/start', plan('r1'))).status).toBe(201);
    const r1 = await drive('r1', { a: [minor('flaky_test')], b: [minor('flaky_test'), minor('missing_docs', 'docs')] });
    expect(r1.state).toBe('DONE_SUCCESS');
    let b = await backlog();
    expect(b.flaky_test).toMatchObject({ age_in_runs: 1, age_in_tiers: 2, occurrence_count: 4, base_severity: 'minor', effective_severity: 'major', status: 'needs_cleanup', seen_in_tiers: ['r1/t1', 'r1/t2'] });
    expect(b.missing_docs).toMatchObject({ age_in_runs: 1, age_in_tiers: 1, occurrence_count: 2, effective_severity: 'minor', status: 'open' });
    // Phase b saw flaky_test after it aged: major there; the tier is not clean and the run cannot be promoted.
    expect(r1.phases.map((p: any) => [p.phase_id, p.minor_issues_count, p.major_issues_count])).toEqual([
      ['a', 1, 0],
      ['b', 1, 1],
    ]);
    expect(r1.tiers.map((t: any) => t.cleanliness)).toEqual(['clean', 'not_clean']);
    expect(r1).toMatchObject({ minor_issues_count: 2, major_issues_count: 1, promotion_eligible_to_main: 'false' });
    const index = (await call('GET', '/runs/r1/issues/index')).body.issues_by_key;
    expect(index.flaky_test).toMatchObject({ first_phase_index: 0, last_phase_index: 1, occurrence_count: 4, seen_in_tiers: ['t1', 't2'], seen_in_phases: ['a', 'b'], severity: 'minor', effective_severity: 'major' });
    expect(index.missing_docs).toMatchObject({ occurrence_count: 2, seen_in_phases: ['b'] });
    let summary = (await call('GET', `/reports/issue_backlog_summary?project_id=${PROJECT}`)).body;
    expect(summary).toMatchObject({ total_issues: 2, open_count: 1, needs_cleanup_count: 1, resolved_count: 0, effectively_major_count: 1 });
    expect(summary.needs_cleanup.map((e: any) => e.issue_key)).toEqual(['flaky_test']);
    expect((await call('GET', '/reports/run_summary/r1')).body.issues).toEqual({ minor_count: 2, major_count: 1, max_min_total: 6, distinct_issues: 2 });

    // Run 2: a debt-cleanup phase is scheduled for flaky_test; missing_docs comes back in tier t1.
    const started = (await call('POST', '/runs/start', plan('r2'))).body;
    expect(started.tiers.map((t: any) => t.tier_id)).toEqual(['t1', 't2', 'debt-cleanup']);
    const debt = started.phases.find((p: any) => p.phase_id === 'debt-cleanup');
    expect(debt).toMatchObject({ task_category: 'debt_cleanup', tier_id: 'debt-cleanup' });
    expect(debt.description).toContain('flaky_test (quality; seen in 1 runs, 2 tiers)');
    expect(started.debt_status).toBe('debt cleanup scheduled: 1 phase(s) for aged issues');
    // debt_cleanup has auto_apply off: promotion waits for an approval.
    expect(started.approval_state).toBe('pending');
    const r2 = await drive('r2', { a: [minor('missing_docs', 'docs')] });
    expect(r2.state).toBe('DONE_SUCCESS');
    expect(r2.promotion_eligible_to_main).toBe('false');
    b = await backlog();
    expect(b.flaky_test).toMatchObject({ status: 'resolved', resolved_by_run_id: 'r2', age_in_runs: 1 });
    expect(b.missing_docs).toMatchObject({ age_in_runs: 2, age_in_tiers: 2, status: 'needs_cleanup', effective_severity: 'major', seen_in_runs: ['r1', 'r2'] });
    const approved = (await call('POST', '/runs/r2/approve', { approved: true, notes: 'reviewed' })).body;
    expect(approved).toMatchObject({ approval_state: 'approved', state: 'DONE_SUCCESS' });
    // r2 saw missing_docs as effectively major, so it still is not promotable.
    expect(approved.promotion_eligible_to_main).toBe('false');

    // Run 3: cleanup for missing_docs; nothing comes back; everything resolves.
    const r3start = (await call('POST', '/runs/start', plan('r3'))).body;
    expect(r3start.phases.find((p: any) => p.phase_id === 'debt-cleanup').description).toContain('missing_docs (docs; seen in 2 runs, 2 tiers)');
    const r3 = await drive('r3', {});
    expect(r3.state).toBe('DONE_SUCCESS');
    expect(r3).toMatchObject({ minor_issues_count: 0, major_issues_count: 0 });
    await call('POST', '/runs/r3/approve', { approved: true });
    expect((await call('GET', '/runs/r3')).body.promotion_eligible_to_main).toBe('true');
    summary = (await call('GET', `/reports/issue_backlog_summary?project_id=${PROJECT}`)).body;
    expect(summary).toMatchObject({ total_issues: 2, open_count: 0, needs_cleanup_count: 0, resolved_count: 2, effectively_major_count: 0 });
    expect((await backlog()).missing_docs).toMatchObject({ status: 'resolved', resolved_by_run_id: 'r3' });

    // Run 4: no aged issues left, no cleanup phase scheduled.
    expect((await call('POST', '/runs/start', plan('r4'))).body.tiers.map((t: any) => t.tier_id)).toEqual(['t1', 't2']);
  });

  it('records failed attempts as phase issues that the kept attempt fixes', async () => {
    expect((await call('POST', '/runs/start', { ...plan('r-fail'), run: { run_id: 'r-fail', project_id: 'other' } })).status).toBe(201);
    let c = await claimNext(sup.url, 'r-fail');
    await call('POST', '/runs/r-fail/phases/a/update_status', { lease_token: c.lease_token, state: 'CI_RUNNING' });
    await call('POST', '/runs/r-fail/phases/a/update_status', { lease_token: c.lease_token, state: 'FAILED', ci_passed: false, failure_reason: 'ci_failed: exit 1' });
    c = await claimNext(sup.url, 'r-fail');
    await call('POST', '/runs/r-fail/phases/a/auditor_request', { lease_token: c.lease_token });
    await call('POST', '/runs/r-fail/phases/a/auditor_result', {
      lease_token: c.lease_token,
      recommendation: 'revise',
      issues_found: [{ issue_key: 'sql_injection', severity: 'major', category: 'security', description: 'raw SQL' }],
    });
    let index = (await call('GET', '/runs/r-fail/issues/index')).body.issues_by_key;
    expect(Object.keys(index).sort()).toEqual(['auditor_rejection', 'ci_failure', 'sql_injection']);
    expect((await call('GET', '/runs/r-fail')).body.phases[0]).toMatchObject({ major_issues_count: 1, minor_issues_count: 2 });
    // The third attempt passes: what earlier attempts raised is fixed in the phase.
    c = await claimNext(sup.url, 'r-fail');
    await call('POST', '/runs/r-fail/phases/a/update_status', { lease_token: c.lease_token, state: 'COMPLETE', commit_sha: 'e'.repeat(40) });
    index = (await call('GET', '/runs/r-fail/issues/index')).body.issues_by_key;
    expect(Object.values(index).map((i: any) => i.status)).toEqual(['fixed_in_phase', 'fixed_in_phase', 'fixed_in_phase']);
    expect((await call('GET', '/runs/r-fail')).body.phases[0]).toMatchObject({ major_issues_count: 0, minor_issues_count: 0 });
    // Process issues stay out of the project backlog; the auditor's finding is there.
    const other = (await call('GET', '/project/issues/backlog?project_id=other')).body.issues_by_key;
    expect(Object.keys(other)).toEqual(['sql_injection']);
  });
});
