import WebSocket from 'ws';
import { claimNext, completeNext, flatPlan, http, samplePlan, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { stateSnapshot } from '../support/database.js';

let sup: TestSupervisor;
beforeAll(async () => {
  sup = await startTestSupervisor();
});
afterAll(async () => sup?.close());

const call = (method: string, path: string, body?: unknown) => http(sup.url, method, path, body);
const snapshot = () => stateSnapshot(sup.db);

describe('illegal transitions through routes', () => {
  it('answer 409 and leave the database unchanged', async () => {
    await call('POST', '/runs/start', samplePlan('ill'));
    const c = await claimNext(sup.url, 'ill');
    const P = '/runs/ill/phases';
    const cases: [string, unknown][] = [
      [`${P}/p1/update_status`, { lease_token: c.lease_token, state: 'EXECUTING' }],
      [`${P}/p1/update_status`, { lease_token: c.lease_token, state: 'SKIPPED' }],
      [`${P}/p2/update_status`, { state: 'COMPLETE' }],
      [`${P}/p2/update_status`, { state: 'GATE' }],
      [`${P}/p2/update_status`, { state: 'QUEUED' }],
      [`${P}/p2/auditor_request`, { lease_token: c.lease_token }],
      [`${P}/p2/builder_result`, { lease_token: c.lease_token, status: 'success' }],
      [`${P}/p2/retry`, undefined],
      [`${P}/p1/retry`, undefined],
      ['/runs/ill/approve', { approved: true }],
    ];
    for (const [path, body] of cases) {
      const before = await snapshot();
      const r = await call('POST', path, body);
      expect({ path, status: r.status }).toEqual({ path, status: 409 });
      expect(['INVALID_TRANSITION', 'LEASE_LOST']).toContain(r.body.error.code);
      expect(await snapshot()).toEqual(before);
    }
    // GATE cannot go back to CI.
    await call('POST', `${P}/p1/auditor_request`, { lease_token: c.lease_token });
    const before = await snapshot();
    const back = await call('POST', `${P}/p1/update_status`, { lease_token: c.lease_token, state: 'CI_RUNNING' });
    expect(back.body.error.code).toBe('INVALID_TRANSITION');
    expect(await snapshot()).toEqual(before);
    // Cancelling a finished run is 409 too.
    await call('POST', '/runs/ill/cancel', {});
    const cancelled = await snapshot();
    expect((await call('POST', '/runs/ill/cancel', {})).status).toBe(409);
    expect(await snapshot()).toEqual(cancelled);
  });
});

describe('concurrency', () => {
  it.each(Array.from({ length: 8 }, (_, i) => i))('concurrent completion of the last two phases derives tier and run exactly once (#%i)', async (i) => {
    const runId = `conc-${i}`;
    await call('POST', '/runs/start', flatPlan(runId, 2, { max_parallel_phases: 2 }));
    const a = await claimNext(sup.url, runId, 'ex-a');
    const b = await claimNext(sup.url, runId, 'ex-b');
    expect(new Set([a.phase_id, b.phase_id])).toEqual(new Set(['p1', 'p2']));
    const results = await Promise.all(
      [a, b].map((c) => call('POST', `/runs/${runId}/phases/${c.phase_id}/update_status`, { lease_token: c.lease_token, state: 'COMPLETE', commit_sha: 'f'.repeat(40) })),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200]);
    const run = (await call('GET', `/runs/${runId}`)).body;
    expect(run.state).toBe('DONE_SUCCESS');
    const events: { type: string; payload: { to: string } }[] = await sup.db.query(`SELECT type, payload FROM events WHERE run_id = $1 ORDER BY id`, [runId]);
    expect(events.filter((e) => e.type === 'tier_state' && e.payload.to === 'COMPLETE')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'run_state' && e.payload.to === 'DONE_SUCCESS')).toHaveLength(1);
  });

  it('never hands one phase to two concurrent claimers', async () => {
    await call('POST', '/runs/start', flatPlan('race', 6, { max_parallel_phases: 6 }));
    const claims = await Promise.all(Array.from({ length: 12 }, (_, i) => call('POST', '/phases/claim', { executor_id: `racer-${i}`, run_id: 'race', wait_ms: 2000 })));
    const got = claims.filter((r) => r.status === 200).map((r) => r.body.phase_id);
    expect(got.sort()).toEqual(['p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
  });
});

describe('approval modes and cancel', () => {
  it('final: waits for approval at the end; approve completes, reject fails', async () => {
    await call('POST', '/runs/start', flatPlan('fin-ok', 1, { approval_mode: 'final' }));
    await completeNext(sup.url, 'fin-ok');
    expect((await call('GET', '/runs/fin-ok')).body).toMatchObject({ state: 'AWAITING_APPROVAL', approval_state: 'pending' });
    const ok = (await call('POST', '/runs/fin-ok/approve', { approved: true, notes: 'lgtm' })).body;
    expect(ok).toMatchObject({ state: 'DONE_SUCCESS', approval_state: 'approved', promotion_eligible_to_main: 'true' });
    expect((await call('POST', '/runs/fin-ok/approve', { approved: true })).status).toBe(409);

    await call('POST', '/runs/start', flatPlan('fin-no', 1, { approval_mode: 'final' }));
    await completeNext(sup.url, 'fin-no');
    const no = (await call('POST', '/runs/fin-no/approve', { approved: false, notes: 'not what we wanted' })).body;
    expect(no).toMatchObject({ state: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW', approval_state: 'rejected' });
    expect(no.failure_reason).toContain('not what we wanted');
  });

  it('checkpoints: pauses after each tier until approved', async () => {
    await call('POST', '/runs/start', { ...samplePlan('cp'), run: { run_id: 'cp', approval_mode: 'checkpoints' } });
    await completeNext(sup.url, 'cp');
    await completeNext(sup.url, 'cp');
    expect((await call('GET', '/runs/cp')).body.state).toBe('AWAITING_APPROVAL');
    expect((await call('POST', '/phases/claim', { executor_id: 'x', run_id: 'cp' })).status).toBe(204);
    expect((await call('POST', '/runs/cp/approve', { approved: true })).body.state).toBe('PHASE_EXECUTION');
    await completeNext(sup.url, 'cp');
    expect((await call('GET', '/runs/cp')).body.state).toBe('AWAITING_APPROVAL');
    expect((await call('POST', '/runs/cp/approve', { approved: true })).body.state).toBe('DONE_SUCCESS');
  });

  it('cancel ends the run, skips queued phases and revokes the lease', async () => {
    await call('POST', '/runs/start', samplePlan('cx'));
    const c = await claimNext(sup.url, 'cx');
    const run = (await call('POST', '/runs/cx/cancel', { reason: 'wrong branch' })).body;
    expect(run).toMatchObject({ state: 'CANCELLED', failure_reason: 'cancelled by operator: wrong branch' });
    expect(run.phases.map((p: any) => p.state)).toEqual(['FAILED', 'SKIPPED', 'SKIPPED']);
    expect((await call('POST', '/runs/cx/phases/p1/heartbeat', { lease_token: c.lease_token })).body.error.code).toBe('LEASE_LOST');
    expect((await call('POST', '/phases/claim', { executor_id: 'x', run_id: 'cx' })).status).toBe(204);
  });
});

describe('strategy ruleset per project', () => {
  it('overrides the category table for new runs of the project', async () => {
    const put = await call('PUT', '/projects/proj-r/ruleset', { categories: { docs: { max_builder_attempts: 5, incident_token_cap: 50_000 }, security_auth: { auto_apply: true } } });
    expect(put.status).toBe(200);
    expect(put.body.categories).toEqual({ docs: { max_builder_attempts: 5, incident_token_cap: 50_000 }, security_auth_change: { auto_apply: true } });
    expect((await call('PUT', '/projects/proj-r/ruleset', { categories: { nonsense: {} } })).status).toBe(422);
    await call('POST', '/runs/start', { ...flatPlan('rs', 1, { project_id: 'proj-r' }, 'docs') });
    const c = await claimNext(sup.url, 'rs');
    expect(c).toMatchObject({ max_attempts: 5, strategy: { max_builder_attempts: 5, incident_token_cap: 50_000 } });
    await call('POST', '/runs/start', { ...flatPlan('rs-other', 1, {}, 'docs') });
    expect((await claimNext(sup.url, 'rs-other')).max_attempts).toBe(2);
  });
});

describe('observability', () => {
  it('documents every contract route and every registered route in /openapi.json', async () => {
    const doc = (await call('GET', '/openapi.json')).body;
    const documented = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${p}`)));
    const contract = [
      'POST /runs/start',
      'GET /runs',
      'GET /runs/{run_id}',
      'POST /runs/{run_id}/phases/{phase_id}/builder_result',
      'POST /runs/{run_id}/phases/{phase_id}/auditor_request',
      'POST /runs/{run_id}/phases/{phase_id}/auditor_result',
      'POST /runs/{run_id}/phases/{phase_id}/update_status',
      'POST /runs/{run_id}/phases/{phase_id}/record_issue',
      'GET /runs/{run_id}/issues/index',
      'GET /project/issues/backlog',
      'GET /runs/{run_id}/integration_status',
      'GET /metrics/runs',
      'GET /metrics/tiers/{run_id}',
      'GET /reports/issue_backlog_summary',
      'GET /reports/budget_analysis',
      'GET /reports/run_summary/{run_id}',
      'GET /health',
      'POST /phases/claim',
      'POST /runs/{run_id}/phases/{phase_id}/heartbeat',
      'POST /runs/{run_id}/cancel',
      'POST /runs/{run_id}/approve',
      'POST /runs/{run_id}/phases/{phase_id}/retry',
      'GET /runs/{run_id}/events',
      'GET /runs/{run_id}/stream',
      'GET /metrics',
      'GET /capabilities',
    ];
    expect(contract.filter((r) => !documented.has(r))).toEqual([]);
    // And nothing the app serves is undocumented.
    const router = (sup.app.getHttpAdapter().getInstance() as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router;
    const served = router.stack
      .filter((l) => l.route)
      .flatMap((l) => Object.keys(l.route!.methods).map((m) => `${m.toUpperCase()} ${l.route!.path.replace(/:(\w+)/g, '{$1}')}`))
      .filter((r) => r !== 'GET /docs/init.js');
    expect(served.filter((r) => !documented.has(r))).toEqual([]);
    expect(doc.components.schemas.RunStartRequest.properties.run.required).toContain('run_id');
    // The routes that honour Idempotency-Key say so.
    const withKey = Object.entries(doc.paths as Record<string, { post?: { parameters?: { name: string; in: string }[] } }>)
      .filter(([, ops]) => ops.post?.parameters?.some((p) => p.name === 'Idempotency-Key' && p.in === 'header'))
      .map(([p]) => p)
      .sort();
    expect(withKey).toEqual(['/executor/build-droplet', '/phases/claim', '/runs/start', '/runs/{run_id}/phases/{phase_id}/record_issue', '/runs/{run_id}/phases/{phase_id}/reserve_budget']);
    const docs = await fetch(`${sup.url}/docs`);
    expect(docs.headers.get('content-type')).toContain('text/html');
    expect((await fetch(`${sup.url}/docs/assets/swagger-ui-bundle.js`)).status).toBe(200);
  });

  it('serves Prometheus metrics and capabilities', async () => {
    const text = await (await fetch(`${sup.url}/metrics`)).text();
    expect(text).toMatch(/autopack_runs\{state="DONE_SUCCESS"\} \d+/);
    expect(text).toMatch(/autopack_http_requests_total\{method="POST",route="\/runs\/start",status="201"\} \d+/);
    const caps = (await call('GET', '/capabilities')).body;
    expect(caps.approval_modes).toEqual(['auto', 'checkpoints', 'final']);
    expect(caps.task_categories.aliases.schema_change).toBe('schema_contract_change');
  });

  it('streams run events over SSE and WebSocket', async () => {
    await call('POST', '/runs/start', flatPlan('ev', 1));
    const sse = await (await fetch(`${sup.url}/runs/ev/events?follow=false`)).text();
    expect(sse).toMatch(/^id: \d+\nevent: run_created\ndata: \{/);

    const ws = new WebSocket(`${sup.url.replace('http', 'ws')}/runs/ev/stream`);
    const seen: string[] = [];
    const gotComplete = new Promise<void>((resolve) =>
      ws.on('message', (m) => {
        const e = JSON.parse(String(m));
        seen.push(e.type === 'phase_state' ? `phase_state:${e.payload.to}` : e.type);
        if (e.type === 'run_state' && e.payload.to === 'DONE_SUCCESS') resolve();
      }),
    );
    await new Promise((r) => ws.once('open', r));
    await completeNext(sup.url, 'ev');
    await gotComplete;
    ws.close();
    expect(seen[0]).toBe('run_created');
    expect(seen).toEqual(expect.arrayContaining(['phase_claimed', 'phase_state:COMPLETE', 'tier_state', 'run_state']));
    const bad = new WebSocket(`${sup.url.replace('http', 'ws')}/runs/nope/stream`);
    const status = await new Promise<number>((resolve) => bad.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(404);
  });

  it('reports integration status from reported commits', async () => {
    const s = (await call('GET', '/runs/ev/integration_status')).body;
    expect(s).toEqual({ branch: 'autonomous/ev', exists: true, commits_ahead_of_base: 1, current_commit: 'c'.repeat(40), base_branch: 'main', source: 'reported' });
  });
});
