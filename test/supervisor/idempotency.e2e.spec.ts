import { flatPlan, http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

let sup: TestSupervisor;
beforeAll(async () => {
  sup = await startTestSupervisor();
});
afterAll(async () => sup?.close());

const post = (path: string, body: unknown, key?: string) => http(sup.url, 'POST', path, body, key ? { 'idempotency-key': key } : {});

describe('Idempotency-Key', () => {
  it('replays the first answer of POST /runs/start and changes nothing', async () => {
    const first = await post('/runs/start', flatPlan('idem-1', 2), 'start-idem-1');
    expect(first.status).toBe(201);
    const again = await post('/runs/start', flatPlan('idem-1', 2), 'start-idem-1');
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    const events = await sup.db.query(`SELECT count(*)::int AS n FROM events WHERE run_id = 'idem-1' AND type = 'run_created'`);
    expect(events[0].n).toBe(1);
    // Without the key, the duplicate is the usual 409.
    expect((await post('/runs/start', flatPlan('idem-1', 2))).status).toBe(409);
  });

  it('refuses the same key with another body (422) and replays stored errors', async () => {
    const other = await post('/runs/start', flatPlan('idem-2', 1), 'start-idem-1');
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await http(sup.url, 'GET', '/runs/idem-2')).status).toBe(404);
    const bad = { run: { run_id: 'idem-3' }, tiers: [{ tier_id: 't', tier_index: 0, name: 'T' }], phases: [{ phase_id: 'p', phase_index: 0, tier_id: 'x', name: 'P' }] };
    const e1 = await post('/runs/start', bad, 'bad-plan');
    const e2 = await post('/runs/start', bad, 'bad-plan');
    expect([e1.status, e2.status]).toEqual([422, 422]);
    expect(e2.body).toEqual(e1.body);
  });

  it('gives a retried claim the same lease instead of a second phase', async () => {
    await post('/runs/start', flatPlan('idem-claim', 3, { max_parallel_phases: 3 }));
    const body = { executor_id: 'ex', run_id: 'idem-claim' };
    const a = await post('/phases/claim', body, 'claim-attempt-1');
    const b = await post('/phases/claim', body, 'claim-attempt-1');
    expect(a.status).toBe(200);
    expect(b.body).toEqual(a.body);
    const leased = await sup.db.query(`SELECT count(*)::int AS n FROM phases WHERE run_id = 'idem-claim' AND lease_token IS NOT NULL`);
    expect(leased[0].n).toBe(1);
    expect((await post('/phases/claim', body, 'claim-attempt-2')).body.phase_id).not.toBe(a.body.phase_id);
  });

  it('a retried reservation is the same reservation, and a retried issue counts once', async () => {
    await post('/runs/start', flatPlan('idem-reserve', 1));
    const lease = (await post('/phases/claim', { executor_id: 'ex', run_id: 'idem-reserve' })).body.lease_token;
    const reserve = { lease_token: lease, tokens: 4000, cost_usd: 0.1 };
    const a = await post('/runs/idem-reserve/phases/p1/reserve_budget', reserve, 'reserve-1');
    const b = await post('/runs/idem-reserve/phases/p1/reserve_budget', reserve, 'reserve-1');
    expect(a.status).toBe(200);
    expect(b.body).toEqual(a.body);
    const open = await sup.db.query(`SELECT count(*)::int AS n, sum(tokens)::int AS tokens FROM budget_reservations WHERE run_id = 'idem-reserve'`);
    expect(open[0]).toEqual({ n: 1, tokens: 4000 });
    // The same key on another phase's path is another request.
    expect((await post('/runs/idem-reserve/phases/p2/reserve_budget', reserve, 'reserve-1')).status).toBe(404);

    const issue = { lease_token: lease, issue_key: 'flaky_test', severity: 'minor', category: 'tests', description: 'retried' };
    expect((await post('/runs/idem-reserve/phases/p1/record_issue', issue, 'issue-1')).status).toBe(200);
    expect((await post('/runs/idem-reserve/phases/p1/record_issue', issue, 'issue-1')).status).toBe(200);
    const rows = await sup.db.query(`SELECT occurrence_count FROM phase_issues WHERE run_id = 'idem-reserve' AND issue_key = 'flaky_test'`);
    expect(rows).toEqual([{ occurrence_count: 1 }]);
    // A new key is a new occurrence.
    await post('/runs/idem-reserve/phases/p1/record_issue', issue, 'issue-2');
    expect(await sup.db.query(`SELECT occurrence_count FROM phase_issues WHERE run_id = 'idem-reserve' AND issue_key = 'flaky_test'`)).toEqual([{ occurrence_count: 2 }]);
  });

  it('a long-polling claim holds no reservation: its retry waits with it instead of being refused', async () => {
    await post('/runs/start', flatPlan('idem-wait', 1));
    expect((await post('/phases/claim', { executor_id: 'holder', run_id: 'idem-wait' })).status).toBe(200);
    const body = { executor_id: 'ex', run_id: 'idem-wait', wait_ms: 1500 };
    const first = post('/phases/claim', body, 'claim-wait-1');
    await new Promise((r) => setTimeout(r, 200));
    const retry = await post('/phases/claim', body, 'claim-wait-1');
    expect([(await first).status, retry.status]).toEqual([204, 204]);
  });

  it('two concurrent claims with one key take one phase and get the same answer', async () => {
    expect((await post('/runs/start', flatPlan('idem-race', 3, { max_parallel_phases: 3 }))).status).toBe(201);
    const body = { executor_id: 'ex', run_id: 'idem-race' };
    const answers = await Promise.all([1, 2, 3].map(() => post('/phases/claim', body, 'claim-race-1')));
    // A try that found the run locked by its twin may answer 204 (it changed nothing); every
    // try that got a phase got the same one.
    const leases = answers.filter((a) => a.status === 200).map((a) => a.body);
    expect(leases.length).toBeGreaterThan(0);
    for (const lease of leases) expect(lease).toEqual(leases[0]);
    expect(answers.every((a) => a.status === 200 || a.status === 204)).toBe(true);
    // A later retry with the key replays the lease.
    expect((await post('/phases/claim', body, 'claim-race-1')).body).toEqual(leases[0]);
    const leased = await sup.db.query(`SELECT count(*)::int AS n FROM phases WHERE run_id = 'idem-race' AND lease_token IS NOT NULL`);
    expect(leased[0].n).toBe(1);
    const claimedEvents = await sup.db.query(`SELECT count(*)::int AS n FROM events WHERE run_id = 'idem-race' AND type = 'phase_claimed'`);
    expect(claimedEvents[0].n).toBe(1);
  });

  it('concurrent tries of one reservation reserve once and all get its answer', async () => {
    await post('/runs/start', flatPlan('idem-twins', 1));
    const lease = (await post('/phases/claim', { executor_id: 'ex', run_id: 'idem-twins' })).body.lease_token as string;
    const tries = await Promise.all([1, 2, 3].map(() => post('/runs/idem-twins/phases/p1/reserve_budget', { lease_token: lease, tokens: 100 }, 'twins-1')));
    expect(tries.map((t) => t.status)).toEqual([200, 200, 200]);
    for (const t of tries) expect(t.body).toEqual(tries[0]!.body);
    const open = await sup.db.query(`SELECT count(*)::int AS n FROM budget_reservations WHERE run_id = 'idem-twins'`);
    expect(open[0].n).toBe(1);
  });

  it('concurrent tries of one run start create it once and all get the 201', async () => {
    const tries = await Promise.all([1, 2, 3].map(() => post('/runs/start', flatPlan('idem-start-twins', 2), 'start-twins-1')));
    expect(tries.map((t) => t.status)).toEqual([201, 201, 201]);
    for (const t of tries) expect(t.body).toEqual(tries[0]!.body);
    const events = await sup.db.query(`SELECT count(*)::int AS n FROM events WHERE run_id = 'idem-start-twins' AND type = 'run_created'`);
    expect(events[0].n).toBe(1);
  });
});

describe('write rate limit', () => {
  let limited: TestSupervisor;
  beforeAll(async () => {
    limited = await startTestSupervisor({ rateLimitPerSecond: 0.5, rateLimitBurst: 3 });
  });
  afterAll(async () => limited?.close());

  it('answers 429 with Retry-After beyond the burst, and never limits reads', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await http(limited.url, 'POST', '/phases/claim', { executor_id: 'e' })).status);
    expect(statuses).toEqual([204, 204, 204, 429, 429]);
    const res = await fetch(`${limited.url}/phases/claim`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"executor_id":"e"}' });
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await res.json()) as any).error.code).toBe('RATE_LIMITED');
    for (let i = 0; i < 10; i++) expect((await http(limited.url, 'GET', '/runs')).status).toBe(200);
  });
});
