import { createSupervisorApp } from '../../apps/supervisor/src/bootstrap.js';
import { http, samplePlan, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';

let sup: TestSupervisor;
beforeAll(async () => {
  sup = await startTestSupervisor({ leaseSeconds: 30 });
});
afterAll(async () => sup?.close());

const call = (method: string, path: string, body?: unknown) => http(sup.url, method, path, body);

async function claim(runId: string) {
  const r = await call('POST', '/phases/claim', { executor_id: 'test-exec', run_id: runId });
  expect(r.status).toBe(200);
  return r.body;
}

/** The value of one series on `GET /metrics` (0 when it has not been reported yet). */
async function metric(series: string): Promise<number> {
  const text = (await call('GET', '/metrics')).body as string;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** A run view without the budget fields that move with the clock (elapsed time, time left). */
function withoutClock(run: { budgets: Record<string, unknown> }) {
  const { elapsed_minutes: _elapsed, minutes_left: _left, ...budgets } = run.budgets;
  return { ...run, budgets };
}

describe('runs and leases over HTTP', () => {
  it('starts a run with nested tiers, flat phases and budgets', async () => {
    const r = await call('POST', '/runs/start', samplePlan('run-a'));
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ id: 'run-a', state: 'RUN_CREATED', integration_branch: 'autonomous/run-a', promotion_eligible_to_main: 'false' });
    expect(r.body.tiers.map((t: { tier_id: string; phases: unknown[] }) => [t.tier_id, t.phases.length])).toEqual([
      ['t1', 2],
      ['t2', 1],
    ]);
    expect(r.body.phases).toHaveLength(3);
    expect(r.body.budgets).toMatchObject({ token_cap: 5_000_000, max_phases: 25, max_duration_minutes: 120, max_minor_issues_total: 9 });
    expect((await call('GET', '/runs/run-a')).body.state).toBe('RUN_CREATED');
  });

  it('refuses a duplicate run id with 409 and an unknown tier with 422', async () => {
    const dup = await call('POST', '/runs/start', samplePlan('run-a'));
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('RUN_EXISTS');
    const plan = samplePlan('run-b');
    plan.phases[0].tier_id = 'nope';
    const bad = await call('POST', '/runs/start', plan);
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBe('UNKNOWN_TIER');
    expect((await call('GET', '/runs/run-b')).status).toBe(404);
  });

  it('claims in tier/phase order, one phase per run at a time, with strategy and budget_left', async () => {
    const c = await claim('run-a');
    expect(c).toMatchObject({ run_id: 'run-a', phase_id: 'p1', attempt: 1, max_attempts: 3 });
    expect(c.strategy).toMatchObject({ task_category: 'feature_scaffolding', max_builder_attempts: 3, incident_token_cap: 500_000 });
    expect(c.budget_left.tokens).toBe(5_000_000);
    // p1 is leased: nothing else of run-a is claimable until it is reported.
    const none = await call('POST', '/phases/claim', { executor_id: 'other', run_id: 'run-a', wait_ms: 200 });
    expect(none.status).toBe(204);
    const run = (await call('GET', '/runs/run-a')).body;
    expect(run.state).toBe('PHASE_EXECUTION');
    expect(run.tiers[0].state).toBe('IN_PROGRESS');

    const hb = await call('POST', `/runs/run-a/phases/p1/heartbeat`, { lease_token: c.lease_token });
    expect(hb.status).toBe(200);
    expect(new Date(hb.body.lease_expires_at).getTime()).toBeGreaterThan(Date.now());

    // A failed attempt requeues with its feedback; the next claim is attempt 2 and carries it.
    const fail = await call('POST', `/runs/run-a/phases/p1/builder_result`, {
      lease_token: c.lease_token,
      status: 'failed',
      failure_reason: 'ci_failed',
      feedback: 'CI output tail: expected 3, got 4',
      tokens_used: 1200,
    });
    expect(fail.status).toBe(200);
    expect(fail.body).toMatchObject({ phase_state: 'QUEUED', attempt: 1, attempts_left: 2 });
    const again = await claim('run-a');
    expect(again).toMatchObject({ phase_id: 'p1', attempt: 2 });
    expect(again.previous_attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'builder_failed', feedback: 'CI output tail: expected 3, got 4' })]);
    expect(again.budget_left.tokens).toBe(5_000_000 - 1200);

    // The old token is stale now: 409 LEASE_LOST, and nothing changes.
    const before = withoutClock((await call('GET', '/runs/run-a')).body);
    const stale = await call('POST', `/runs/run-a/phases/p1/update_status`, { lease_token: c.lease_token, state: 'COMPLETE' });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('LEASE_LOST');
    const staleHb = await call('POST', `/runs/run-a/phases/p1/heartbeat`, { lease_token: c.lease_token });
    expect(staleHb.status).toBe(409);
    // Not even the usage a stale report carries is counted.
    const staleUsage = await call('POST', `/runs/run-a/phases/p1/builder_result`, {
      lease_token: c.lease_token,
      status: 'failed',
      tokens_used: 900,
      usage: { prompt_tokens: 800, completion_tokens: 100, report_id: 'stale-attempt-1:builder' },
    });
    expect(staleUsage.status).toBe(409);
    expect(staleUsage.body.error.code).toBe('LEASE_LOST');
    expect(withoutClock((await call('GET', '/runs/run-a')).body)).toEqual(before);

    // CI -> gate -> approve completes the phase.
    const tok = again.lease_token;
    expect((await call('POST', `/runs/run-a/phases/p1/update_status`, { lease_token: tok, state: 'CI_RUNNING' })).body.phase_state).toBe('CI_RUNNING');
    expect((await call('POST', `/runs/run-a/phases/p1/auditor_request`, { lease_token: tok })).body.phase_state).toBe('GATE');
    const sha = 'a'.repeat(40);
    const done = await call('POST', `/runs/run-a/phases/p1/auditor_result`, { lease_token: tok, recommendation: 'approve', commit_sha: sha, tokens_used: 300 });
    expect(done.body).toMatchObject({ phase_state: 'COMPLETE', commit_sha: sha, recommendation: 'approve' });
    // Illegal: a COMPLETE phase cannot go back to CI.
    const illegal = await call('POST', `/runs/run-a/phases/p1/update_status`, { state: 'CI_RUNNING' });
    expect(illegal.status).toBe(409);
    expect(illegal.body.error.code).toBe('INVALID_TRANSITION');
  });

  it('derives tier and run state to DONE_SUCCESS', async () => {
    for (const expected of ['p2', 'p3']) {
      const c = await claim('run-a');
      expect(c.phase_id).toBe(expected);
      const r = await call('POST', `/runs/run-a/phases/${expected}/update_status`, { lease_token: c.lease_token, state: 'COMPLETE', commit_sha: 'b'.repeat(40) });
      expect(r.status).toBe(200);
    }
    const run = (await call('GET', '/runs/run-a')).body;
    expect(run.state).toBe('DONE_SUCCESS');
    expect(run.tiers.map((t: { state: string }) => t.state)).toEqual(['COMPLETE', 'COMPLETE']);
    expect(run.completed_at).not.toBeNull();
    expect(run.tokens_used).toBe(1500);
    expect(run.promotion_eligible_to_main).toBe('true');
    expect((await call('POST', '/phases/claim', { executor_id: 'x', run_id: 'run-a' })).status).toBe(204);
    const list = (await call('GET', '/runs?state=DONE_SUCCESS&limit=5')).body;
    expect(list.runs.map((r: { id: string }) => r.id)).toContain('run-a');
  });

  it('fails a phase after its last attempt and the run needs human review', async () => {
    const plan = samplePlan('run-f');
    plan.phases = [{ phase_id: 'only', phase_index: 0, tier_id: 't1', name: 'Only', task_category: 'bulk_multi_file_operation' }];
    plan.tiers = [plan.tiers[0]];
    expect((await call('POST', '/runs/start', plan)).status).toBe(201);
    const c = await claim('run-f');
    expect(c.max_attempts).toBe(1);
    const r = await call('POST', `/runs/run-f/phases/only/update_status`, { lease_token: c.lease_token, state: 'FAILED', failure_reason: 'ci_failed' });
    expect(r.body.phase_state).toBe('FAILED');
    const run = (await call('GET', '/runs/run-f')).body;
    expect(run.state).toBe('DONE_FAILED_REQUIRES_HUMAN_REVIEW');
    expect(run.failure_reason).toContain('only');
  });

  it('a claim on a run that has ended answers 204 at once, and a waiting one when the run ends', async () => {
    expect((await call('POST', '/runs/start', samplePlan('run-ending'))).status).toBe(201);
    const wakeups = async () => ({ notify: await metric('autopack_claim_wakeups_total{reason="notify"}'), timeout: await metric('autopack_claim_wakeups_total{reason="timeout"}') });
    // Claimed by another executor: nothing is claimable, so this claim waits in its long poll.
    const held = await call('POST', '/phases/claim', { executor_id: 'holder', run_id: 'run-ending' });
    expect(held.status).toBe(200);
    const before = await wakeups();
    const waiting = call('POST', '/phases/claim', { executor_id: 'poller', run_id: 'run-ending', wait_ms: 30_000 });
    await waitFor('a waiting claim', async () => ((await metric('autopack_claims_waiting')) >= 1 ? true : undefined), { everyMs: 50 });
    expect((await call('POST', '/runs/run-ending/cancel', {})).status).toBe(200);
    expect((await waiting).status).toBe(204);
    // Woken by the cancel's NOTIFY, then answered because the run ended: not by the timer.
    const woken = await wakeups();
    expect(woken.notify - before.notify).toBeGreaterThanOrEqual(1);
    expect(woken.timeout - before.timeout).toBe(0);
    // A claim on the ended run does not wait at all: no wake-up of any kind.
    expect((await call('POST', '/phases/claim', { executor_id: 'late', run_id: 'run-ending', wait_ms: 30_000 })).status).toBe(204);
    expect(await wakeups()).toEqual(woken);
  }, 20_000);

  it('a long-poll claim on one replica is woken by NOTIFY when another replica starts a run', async () => {
    // A second supervisor on the same database: only PostgreSQL NOTIFY can tell the first one.
    const replica = await createSupervisorApp(sup.config, sup.db.url);
    await replica.listen(0, '127.0.0.1');
    try {
      const { port } = replica.getHttpServer().address() as { port: number };
      const before = { notify: await metric('autopack_claim_wakeups_total{reason="notify"}'), timeout: await metric('autopack_claim_wakeups_total{reason="timeout"}') };
      const waiting = call('POST', '/phases/claim', { executor_id: 'poller', run_id: 'run-late', wait_ms: 10_000 });
      // Start the run on the replica once the first supervisor's claim is waiting.
      await waitFor('a waiting claim', async () => ((await metric('autopack_claims_waiting')) >= 1 ? true : undefined), { everyMs: 50 });
      expect((await http(`http://127.0.0.1:${port}`, 'POST', '/runs/start', samplePlan('run-late'))).status).toBe(201);
      const got = await waiting;
      expect(got.status).toBe(200);
      expect(got.body.phase_id).toBe('p1');
      // The wait ended on a NOTIFY, not on the safety-net timer.
      const after = { notify: await metric('autopack_claim_wakeups_total{reason="notify"}'), timeout: await metric('autopack_claim_wakeups_total{reason="timeout"}') };
      expect(after.notify - before.notify).toBeGreaterThanOrEqual(1);
      expect(after.timeout - before.timeout).toBe(0);
    } finally {
      await replica.close();
    }
  });

  it('outlives the loss of its LISTEN connection: reconnects, and NOTIFY wakes claims again', async () => {
    const listeners = async () => (await sup.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN %'`))[0]!.n;
    // Only this supervisor listens now (a closed replica leaves no connection behind).
    await waitFor('one LISTEN connection', async () => ((await listeners()) === 1 ? true : undefined), { everyMs: 50 });
    await sup.db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN %'`);
    await waitFor('the LISTEN connection to come back', async () => ((await listeners()) === 1 ? true : undefined), { everyMs: 50, timeoutMs: 15_000 });
    const before = { notify: await metric('autopack_claim_wakeups_total{reason="notify"}'), timeout: await metric('autopack_claim_wakeups_total{reason="timeout"}') };
    const waiting = call('POST', '/phases/claim', { executor_id: 'poller', run_id: 'run-after-reconnect', wait_ms: 10_000 });
    await waitFor('a waiting claim', async () => ((await metric('autopack_claims_waiting')) >= 1 ? true : undefined), { everyMs: 50 });
    expect((await call('POST', '/runs/start', samplePlan('run-after-reconnect'))).status).toBe(201);
    const got = await waiting;
    expect([got.status, got.body.phase_id]).toEqual([200, 'p1']);
    const after = { notify: await metric('autopack_claim_wakeups_total{reason="notify"}'), timeout: await metric('autopack_claim_wakeups_total{reason="timeout"}') };
    expect(after.notify - before.notify).toBeGreaterThanOrEqual(1);
    expect(after.timeout - before.timeout).toBe(0);
  });
});
