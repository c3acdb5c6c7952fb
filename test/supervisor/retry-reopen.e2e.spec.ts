import { LeaseService } from '../../apps/supervisor/src/services/lease.service.js';
import { stateSnapshot } from '../support/database.js';
import { claimNext, completeNext, http, samplePlan, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

/**
 * CONTRACT.md section 6: retrying a FAILED phase of a run that ended
 * DONE_FAILED_REQUIRES_HUMAN_REVIEW reopens the run; section 3: a lease handed back uncharged
 * leaves the phase's attempts as they were.
 */
let sup: TestSupervisor;
beforeAll(async () => {
  sup = await startTestSupervisor();
});
afterAll(async () => sup?.close());

const call = (method: string, path: string, body?: unknown) => http(sup.url, method, path, body);
const getRun = async (runId: string) => (await call('GET', `/runs/${runId}`)).body;

/** Fails the next claimable phase of `runId` for good: every attempt reports a failed build. */
async function failForGood(runId: string): Promise<string> {
  for (;;) {
    const c = await claimNext(sup.url, runId);
    const r = await call('POST', `/runs/${runId}/phases/${c.phase_id}/update_status`, { lease_token: c.lease_token, state: 'FAILED', failure_reason: `attempt ${c.attempt} broke` });
    expect(r.status).toBe(200);
    if (r.body.phase_state === 'FAILED') return c.phase_id;
  }
}

describe('retrying a failed phase', () => {
  it('reopens a run that ended for review, requeues the phases skipped because of it, and ends DONE_SUCCESS', async () => {
    const runId = 'reopen-1';
    expect((await call('POST', '/runs/start', samplePlan(runId, { token_cap: 1_000_000 }))).status).toBe(201);
    const failed = await failForGood(runId);
    expect(failed).toBe('p1');
    await completeNext(sup.url, runId); // p2 (same tier) still runs
    const ended = await getRun(runId);
    expect(ended.state).toBe('DONE_FAILED_REQUIRES_HUMAN_REVIEW');
    expect(ended.completed_at).not.toBeNull();
    expect(ended.phases.map((p: any) => [p.phase_id, p.state])).toEqual([
      ['p1', 'FAILED'],
      ['p2', 'COMPLETE'],
      ['p3', 'SKIPPED'],
    ]);
    const maxAttempts = ended.phases[0].max_attempts;
    expect(ended.phases[0].attempts_used).toBe(maxAttempts);

    const retried = await call('POST', `/runs/${runId}/phases/p1/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ phase_state: 'QUEUED', run_state: 'PHASE_EXECUTION', attempts_left: maxAttempts });
    const reopened = await getRun(runId);
    expect(reopened).toMatchObject({ state: 'PHASE_EXECUTION', completed_at: null, failure_reason: null });
    expect(reopened.phases.map((p: any) => [p.phase_id, p.state, p.attempts_used])).toEqual([
      ['p1', 'QUEUED', 0],
      ['p2', 'COMPLETE', 1],
      ['p3', 'QUEUED', 0],
    ]);
    expect(reopened.tiers.map((t: any) => [t.tier_id, t.state])).toEqual([
      ['t1', 'IN_PROGRESS'],
      ['t2', 'PENDING'],
    ]);
    // The retry is in the run's events, with the run it reopened and the phases queued again.
    const events: { type: string; phase_id: string | null; payload: any }[] = await sup.db.query(
      `SELECT type, phase_id, payload FROM events WHERE run_id = $1 AND id > (SELECT max(id) FROM events WHERE run_id = $1 AND type = 'run_state' AND payload->>'to' = 'DONE_FAILED_REQUIRES_HUMAN_REVIEW') ORDER BY id`,
      [runId],
    );
    expect(events.find((e) => e.type === 'phase_retry')).toMatchObject({
      phase_id: 'p1',
      payload: { reopened_run: true, run_state_before: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW', requeued_phases: ['p3'], attempts_used_before: maxAttempts },
    });
    expect(events.filter((e) => e.type === 'run_state').map((e) => [e.payload.from, e.payload.to])).toEqual([['DONE_FAILED_REQUIRES_HUMAN_REVIEW', 'PHASE_EXECUTION']]);

    // The retried phase gets a new attempt number (never reused), and the later tier runs.
    const next = await completeNext(sup.url, runId);
    expect(next.claim).toMatchObject({ phase_id: 'p1', attempt: maxAttempts + 1 });
    expect(next.claim.previous_attempts).toHaveLength(maxAttempts);
    const last = await completeNext(sup.url, runId);
    expect(last.claim.phase_id).toBe('p3');
    const done = await getRun(runId);
    expect(done.state).toBe('DONE_SUCCESS');
    expect(done.phases.map((p: any) => p.state)).toEqual(['COMPLETE', 'COMPLETE', 'COMPLETE']);
    expect(done.tiers.map((t: any) => t.state)).toEqual(['COMPLETE', 'COMPLETE']);
  });

  it('still fails the run when another failure blocks the later tiers', async () => {
    const runId = 'reopen-2';
    const plan = samplePlan(runId);
    expect((await call('POST', '/runs/start', plan)).status).toBe(201);
    await failForGood(runId); // p1
    await failForGood(runId); // p2
    expect((await getRun(runId)).state).toBe('DONE_FAILED_REQUIRES_HUMAN_REVIEW');
    expect((await call('POST', `/runs/${runId}/phases/p1/retry`)).status).toBe(200);
    await completeNext(sup.url, runId); // p1 now completes, p2 is still failed
    const again = await getRun(runId);
    expect(again.state).toBe('DONE_FAILED_REQUIRES_HUMAN_REVIEW');
    expect(again.phases.map((p: any) => [p.phase_id, p.state])).toEqual([
      ['p1', 'COMPLETE'],
      ['p2', 'FAILED'],
      ['p3', 'SKIPPED'],
    ]);
    // Retrying the other failure too finishes the run.
    expect((await call('POST', `/runs/${runId}/phases/p2/retry`)).status).toBe(200);
    await completeNext(sup.url, runId);
    await completeNext(sup.url, runId);
    expect((await getRun(runId)).state).toBe('DONE_SUCCESS');
  });

  it('answers 409 and changes nothing for runs that ended another way, and for phases that did not fail', async () => {
    const snapshot = () => stateSnapshot(sup.db);
    // Cancelled with a failed phase.
    await call('POST', '/runs/start', samplePlan('reopen-cancelled'));
    await failForGood('reopen-cancelled');
    expect((await call('POST', '/runs/reopen-cancelled/cancel', {})).status).toBe(200);
    // Budget exhausted with a failed phase: the failure used up the run's tokens.
    await call('POST', '/runs/start', samplePlan('reopen-budget', { token_cap: 1000 }));
    const c = await claimNext(sup.url, 'reopen-budget');
    await call('POST', `/runs/reopen-budget/phases/${c.phase_id}/update_status`, {
      lease_token: c.lease_token,
      state: 'FAILED',
      usage: { prompt_tokens: 1000, completion_tokens: 0 },
    });
    expect((await getRun('reopen-budget')).state).toBe('DONE_FAILED_BUDGET_EXHAUSTED');
    // A phase that is not FAILED (queued, complete) cannot be retried.
    await call('POST', '/runs/start', samplePlan('reopen-active'));
    await completeNext(sup.url, 'reopen-active');

    const cases: [string, string][] = [
      ['reopen-cancelled', 'p1'],
      ['reopen-budget', 'p1'],
      ['reopen-active', 'p1'],
      ['reopen-active', 'p2'],
    ];
    for (const [runId, phaseId] of cases) {
      const before = await snapshot();
      const r = await call('POST', `/runs/${runId}/phases/${phaseId}/retry`);
      expect({ runId, phaseId, status: r.status, code: r.body.error?.code }).toEqual({ runId, phaseId, status: 409, code: 'INVALID_TRANSITION' });
      expect(await snapshot()).toEqual(before);
    }
  });
});

describe('a lease handed back uncharged', () => {
  it('leaves attempts_used as it was before the claim, while attempt numbers keep counting', async () => {
    const runId = 'refund-1';
    await call('POST', '/runs/start', samplePlan(runId));
    const before = (await getRun(runId)).phases[0];
    expect(before.attempts_used).toBe(0);
    const first = await claimNext(sup.url, runId);
    expect(first).toMatchObject({ phase_id: 'p1', attempt: 1 });
    expect((await getRun(runId)).phases[0].attempts_used).toBe(1);
    const back = await call('POST', `/runs/${runId}/phases/p1/update_status`, { lease_token: first.lease_token, state: 'QUEUED', failure_reason: 'provider_error: openai refused the API key' });
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ phase_state: 'QUEUED', attempts_left: before.max_attempts });
    const after = (await getRun(runId)).phases[0];
    expect(after).toMatchObject({ state: 'QUEUED', attempts_used: 0, max_attempts: before.max_attempts });
    // The next claim is attempt 2: its reports and commit trailer never collide with attempt 1's.
    const second = await claimNext(sup.url, runId);
    expect(second).toMatchObject({ phase_id: 'p1', attempt: 2 });
    expect(second.previous_attempts.map((a: any) => [a.attempt, a.outcome])).toEqual([[1, 'released']]);
  });
});

describe('an expired lease (CONTRACT.md section 3)', () => {
  /** Claims the phase and lets its lease run out, as a killed executor would; returns the sweep's count. */
  async function claimAndAbandon(runId: string): Promise<number> {
    await claimNext(sup.url, runId, 'doomed');
    await sup.db.query(`UPDATE phases SET lease_expires_at = now() - interval '1 second' WHERE run_id = $1 AND lease_token IS NOT NULL`, [runId]);
    return sup.app.get(LeaseService).expireLeases();
  }

  it('costs no attempt, and the default cap of 10 abandonments ends the phase FAILED abandoned', async () => {
    const runId = 'abandon-1';
    await call('POST', '/runs/start', samplePlan(runId));
    const fresh = (await getRun(runId)).phases[0];
    expect(fresh).toMatchObject({ attempts_used: 0, abandonments: 0, max_abandonments: 10 });
    for (let i = 1; i <= 9; i++) {
      expect(await claimAndAbandon(runId)).toBe(1);
      expect((await getRun(runId)).phases[0]).toMatchObject({ state: 'QUEUED', attempts_used: 0, abandonments: i });
    }
    expect(await claimAndAbandon(runId)).toBe(1);
    const run = await getRun(runId);
    expect(run.phases[0]).toMatchObject({ state: 'FAILED', attempts_used: 0, abandonments: 10, max_abandonments: 10 });
    expect(run.phases[0].last_failure_reason).toMatch(/^abandoned: the lease expired 10 times \(cap 10\); lease of doomed expired/);
    // The figures are in the run summary too, and no executor crash became an issue of the phase.
    const summary = (await call('GET', `/reports/run_summary/${runId}`)).body;
    expect(summary.phases[0]).toMatchObject({ phase_id: 'p1', attempts: 0, abandonments: 10, max_abandonments: 10 });
    expect(await sup.db.query(`SELECT issue_key FROM phase_issues WHERE run_id = $1`, [runId])).toEqual([]);
    // A retry gives the phase fresh attempts and a fresh abandonment count.
    expect((await call('POST', `/runs/${runId}/phases/p1/retry`)).status).toBe(200);
    expect((await getRun(runId)).phases[0]).toMatchObject({ state: 'QUEUED', attempts_used: 0, abandonments: 0 });
  });

  it('takes its cap from the project ruleset', async () => {
    expect((await call('PUT', '/projects/abandon-proj/ruleset', { categories: { feature_scaffolding: { max_abandonments: 2 } } })).status).toBe(200);
    const runId = 'abandon-2';
    await call('POST', '/runs/start', samplePlan(runId, { project_id: 'abandon-proj' }));
    expect((await getRun(runId)).phases[0].max_abandonments).toBe(2);
    await claimAndAbandon(runId);
    await claimAndAbandon(runId);
    expect((await getRun(runId)).phases[0]).toMatchObject({ state: 'FAILED', abandonments: 2 });
  });
});
