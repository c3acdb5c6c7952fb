import { LeaseSweeperService } from '../../apps/supervisor/src/services/lease-sweeper.service.js';
import { claimNext, completeNext, flatPlan, http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

let sup: TestSupervisor;
beforeAll(async () => {
  sup = await startTestSupervisor();
});
afterAll(async () => sup?.close());

const call = (method: string, path: string, body?: unknown) => http(sup.url, method, path, body);
const start = async (plan: unknown) => expect((await call('POST', '/runs/start', plan)).status).toBe(201);

async function expectExhausted(runId: string, cap: RegExp) {
  const run = (await call('GET', `/runs/${runId}`)).body;
  expect(run.state).toBe('DONE_FAILED_BUDGET_EXHAUSTED');
  expect(run.failure_reason).toMatch(cap);
  expect(run.completed_at).not.toBeNull();
  // No further claim succeeds, for this run or any claimer.
  expect((await call('POST', '/phases/claim', { executor_id: 'late', run_id: runId })).status).toBe(204);
  expect(run.phases.every((p: { state: string }) => ['COMPLETE', 'FAILED', 'SKIPPED'].includes(p.state))).toBe(true);
  expect(run.phases.every((p: { lease_owner: string | null }) => p.lease_owner === null)).toBe(true);
  return run;
}

describe('budgets that stop work', () => {
  it('run token cap: crossing it ends the run and revokes the lease', async () => {
    await start(flatPlan('b-tokens', 2, { token_cap: 1000 }));
    const c = await claimNext(sup.url, 'b-tokens');
    const r = await call('POST', `/runs/b-tokens/phases/${c.phase_id}/builder_result`, { lease_token: c.lease_token, status: 'success', usage: { prompt_tokens: 900, completion_tokens: 200 } });
    expect(r.body.run_state).toBe('DONE_FAILED_BUDGET_EXHAUSTED');
    const run = await expectExhausted('b-tokens', /^token_cap exhausted: 1100 of 1000/);
    expect(run.phases.map((p: { state: string }) => p.state)).toEqual(['FAILED', 'SKIPPED']);
    expect((await call('POST', `/runs/b-tokens/phases/${c.phase_id}/heartbeat`, { lease_token: c.lease_token })).status).toBe(409);
  });

  it('USD cost cap', async () => {
    await start(flatPlan('b-cost', 2, { cost_cap_usd: 0.5 }));
    const c = await claimNext(sup.url, 'b-cost');
    await call('POST', `/runs/b-cost/phases/${c.phase_id}/builder_result`, { lease_token: c.lease_token, status: 'failed', usage: { prompt_tokens: 10, completion_tokens: 10, cost_usd: 0.6 } });
    await expectExhausted('b-cost', /^cost_cap_usd exhausted/);
  });

  it('max phases: the phase beyond the cap is never started', async () => {
    await start(flatPlan('b-phases', 3, { max_phases: 2 }));
    await completeNext(sup.url, 'b-phases');
    await completeNext(sup.url, 'b-phases');
    expect((await call('POST', '/phases/claim', { executor_id: 'x', run_id: 'b-phases' })).status).toBe(204);
    const run = await expectExhausted('b-phases', /^max_phases exhausted: 2 of 2/);
    expect(run.phases.map((p: { state: string }) => p.state)).toEqual(['COMPLETE', 'COMPLETE', 'SKIPPED']);
  });

  it('wall time', async () => {
    await start(flatPlan('b-time', 1, { max_duration_minutes: 5 }));
    await sup.db.query(`UPDATE runs SET started_at = now() - interval '6 minutes' WHERE run_id = 'b-time'`);
    expect((await call('POST', '/phases/claim', { executor_id: 'x', run_id: 'b-time' })).status).toBe(204);
    await expectExhausted('b-time', /^max_duration_minutes exhausted/);
  });

  it('wall time ends a run mid-phase through the sweeper, revoking the lease', async () => {
    await start(flatPlan('b-time-sweep', 1, { max_duration_minutes: 5 }));
    const c = await claimNext(sup.url, 'b-time-sweep');
    await sup.db.query(`UPDATE runs SET started_at = now() - interval '6 minutes' WHERE run_id = 'b-time-sweep'`);
    const sweeper = sup.app.get(LeaseSweeperService);
    expect(await sweeper.sweep()).toBe(1);
    await expectExhausted('b-time-sweep', /^max_duration_minutes exhausted: 6\.0 of 5/);
    expect((await call('POST', '/runs/b-time-sweep/phases/p1/heartbeat', { lease_token: c.lease_token })).body.error.code).toBe('LEASE_LOST');
  });

  it('max minor issues (3 x phases)', async () => {
    await start(flatPlan('b-minor', 1));
    for (let i = 0; i < 4; i++) {
      const r = await call('POST', '/runs/b-minor/phases/p1/record_issue', { issue_key: `nit_${i}`, severity: 'minor', category: 'style', source: 'operator' });
      expect(r.status).toBe(200);
    }
    expect((await call('POST', '/phases/claim', { executor_id: 'x', run_id: 'b-minor' })).status).toBe(204);
    await expectExhausted('b-minor', /^max_minor_issues_total exceeded: 4 of 3/);
  });

  it('tier token cap (3 x the incident caps of its phases)', async () => {
    // docs: incident cap 200,000 -> tier cap 600,000 while the run cap stays 5,000,000.
    await start(flatPlan('b-tier', 1, {}, 'docs'));
    const c = await claimNext(sup.url, 'b-tier');
    expect(c.budget_left).toMatchObject({ tokens: 5_000_000, phase_tokens: 200_000, tier_tokens: 600_000 });
    await call('POST', `/runs/b-tier/phases/p1/builder_result`, { lease_token: c.lease_token, status: 'success', usage: { prompt_tokens: 600_000, completion_tokens: 1 } });
    await expectExhausted('b-tier', /^tier t1 token_cap exhausted: 600001 of 600000/);
  });

  it('tier CI runs (2 x phases)', async () => {
    await start(flatPlan('b-ci', 1));
    for (let attempt = 1; attempt <= 2; attempt++) {
      const c = await claimNext(sup.url, 'b-ci');
      expect((await call('POST', '/runs/b-ci/phases/p1/update_status', { lease_token: c.lease_token, state: 'CI_RUNNING' })).body.phase_state).toBe('CI_RUNNING');
      await call('POST', '/runs/b-ci/phases/p1/update_status', { lease_token: c.lease_token, state: 'FAILED', ci_passed: false, failure_reason: 'ci_failed' });
    }
    const c = await claimNext(sup.url, 'b-ci');
    const third = await call('POST', '/runs/b-ci/phases/p1/update_status', { lease_token: c.lease_token, state: 'CI_RUNNING' });
    expect(third.body.run_state).toBe('DONE_FAILED_BUDGET_EXHAUSTED');
    const run = await expectExhausted('b-ci', /^tier t1 ci_run_cap exhausted: 2 of 2/);
    expect(run.ci_runs_used).toBe(2);
  });

  it('a builder result with start_ci starts CI in the same write, counted against the same tier CI runs', async () => {
    await start(flatPlan('b-ci-merged', 1));
    const builderStartingCi = (token: string) =>
      call('POST', '/runs/b-ci-merged/phases/p1/builder_result', { lease_token: token, status: 'success', start_ci: true, usage: { prompt_tokens: 10, completion_tokens: 1 } });
    for (let attempt = 1; attempt <= 2; attempt++) {
      const c = await claimNext(sup.url, 'b-ci-merged');
      const started = await builderStartingCi(c.lease_token);
      expect(started.body).toMatchObject({ phase_state: 'CI_RUNNING', run_state: expect.not.stringMatching(/^DONE/) });
      await call('POST', '/runs/b-ci-merged/phases/p1/update_status', { lease_token: c.lease_token, state: 'FAILED', ci_passed: false, failure_reason: 'ci_failed' });
    }
    const c = await claimNext(sup.url, 'b-ci-merged');
    const third = await builderStartingCi(c.lease_token);
    expect(third.body).toMatchObject({ phase_state: 'FAILED', run_state: 'DONE_FAILED_BUDGET_EXHAUSTED' });
    const run = await expectExhausted('b-ci-merged', /^tier t1 ci_run_cap exhausted: 2 of 2/);
    expect(run.ci_runs_used).toBe(2);
    // The usage of the refused write still counts (it is the builder's real spend): 3 x 11.
    expect(run.tokens_used).toBe(33);
  });

  it('phase incident token cap fails the phase even with attempts left', async () => {
    await start(flatPlan('b-incident', 1));
    const c = await claimNext(sup.url, 'b-incident');
    const r = await call('POST', '/runs/b-incident/phases/p1/builder_result', { lease_token: c.lease_token, status: 'failed', failure_reason: 'ci_failed', usage: { prompt_tokens: 500_000, completion_tokens: 0 } });
    expect(r.body).toMatchObject({ phase_state: 'FAILED', attempts_left: 2 });
    const run = (await call('GET', '/runs/b-incident')).body;
    expect(run.phases[0].last_failure_reason).toMatch(/incident_token_cap exhausted: 500000 of 500000/);
    expect(run.state).toBe('DONE_FAILED_REQUIRES_HUMAN_REVIEW');
  });

  it('reserves the worst case before a call, so two calls cannot share what is left', async () => {
    await start(flatPlan('b-reserve', 1, { token_cap: 10_000, cost_cap_usd: 1 }));
    const c = await claimNext(sup.url, 'b-reserve');
    const reserve = (tokens: number, cost_usd?: number) => call('POST', '/runs/b-reserve/phases/p1/reserve_budget', { lease_token: c.lease_token, tokens, ...(cost_usd !== undefined ? { cost_usd } : {}) });
    const first = await reserve(6000, 0.25);
    expect(first.status).toBe(200);
    expect(first.body.budget_left).toMatchObject({ tokens: 4000, cost_usd: 0.75 });
    const second = await reserve(6000);
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: 'BUDGET_EXHAUSTED', details: { cap: 'token_cap', left: 4000 } });
    expect((await reserve(100, 0.8)).body.error.details.cap).toBe('cost_cap_usd');
    // The call used less than reserved: settling frees the rest.
    await call('POST', '/runs/b-reserve/phases/p1/builder_result', {
      lease_token: c.lease_token,
      status: 'success',
      usage: { prompt_tokens: 1000, completion_tokens: 500, cost_usd: 0.1, reservation_id: first.body.reservation_id },
    });
    const third = await reserve(8000);
    expect(third.status).toBe(200);
    expect(third.body.budget_left.tokens).toBe(10_000 - 1500 - 8000);
    // A stale lease cannot reserve.
    expect((await call('POST', '/runs/b-reserve/phases/p1/reserve_budget', { lease_token: '00000000-0000-4000-8000-000000000000', tokens: 1 })).status).toBe(409);
  });

  it('counts a retried usage report once (report_id)', async () => {
    await start(flatPlan('b-idem', 1));
    const c = await claimNext(sup.url, 'b-idem');
    const body = { lease_token: c.lease_token, status: 'success', usage: { prompt_tokens: 700, completion_tokens: 300, report_id: 'attempt-1:builder:1' } };
    expect((await call('POST', '/runs/b-idem/phases/p1/builder_result', body)).status).toBe(200);
    expect((await call('POST', '/runs/b-idem/phases/p1/builder_result', body)).status).toBe(200);
    expect((await call('GET', '/runs/b-idem')).body.tokens_used).toBe(1000);
    await call('POST', '/runs/b-idem/phases/p1/builder_result', {
      lease_token: c.lease_token,
      status: 'success',
      usage: { prompt_tokens: 3000, completion_tokens: 100, cached_tokens: 1500, calls: 2, cost_usd: 0.01, report_id: 'attempt-1:auditor' },
    });
    expect((await call('GET', '/reports/run_summary/b-idem')).body.llm).toEqual({
      calls: 3,
      prompt_tokens: 3700,
      completion_tokens: 400,
      cached_tokens: 1500,
      cache_hit_share: 0.4054,
      cost_usd: 0.01,
    });
  });

  it('reports budget-exhausted runs by cap', async () => {
    const report = (await call('GET', '/reports/budget_analysis')).body;
    expect(report.budget_exhausted_by_cap).toEqual({
      token_cap: 2,
      cost_cap_usd: 1,
      max_phases: 1,
      max_duration_minutes: 2,
      max_minor_issues_total: 1,
      // b-ci and b-ci-merged
      ci_run_cap: 2,
    });
    expect(report.budget_exhausted_count).toBe(9);
  });
});
