import { AppLogger, createRootLogger } from '../../../apps/supervisor/src/http/logger.js';
import { DeliveryRepository } from '../../../apps/supervisor/src/repositories/index.js';
import { DeliveryService, type SettledDelivery } from '../../../apps/supervisor/src/services/delivery.service.js';
import { type HookTarget, freePort, startHookTarget } from '../../support/hook-target.js';
import { waitFor } from '../../support/wait.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

/** Fast queue settings: polled every half second, retried after about 1, 2, 4 ... seconds. */
const FAST_QUEUE = { queuePollSeconds: 0.5, deliveryRetryDelaySeconds: 1 };

let ctx: MediumContext;
let sut: DeliveryService;
let target: HookTarget;
/** What the supervisor logged (info and up), as the process would write it. */
const logLines: string[] = [];
/** Answers per path: `/fail-<n>/...` fails n times with 503, `/slow` waits 3 s, `/created` answers 201, `/deploy` gives a URL. */
beforeAll(async () => {
  const logger = new AppLogger(createRootLogger('info', { write: (line: string) => void logLines.push(line) }));
  ctx = await createMediumContext({ init: true, config: FAST_QUEUE, logger });
  sut = ctx.get(DeliveryService);
  target = await startHookTarget((req, nth) => {
    const path = req.url.split('?')[0];
    const fails = /^\/fail-(\d+)\//.exec(path);
    if (fails && nth < Number(fails[1])) return { status: 503, json: { error: 'busy' } };
    if (path.startsWith('/always-500')) return { status: 500 };
    if (path.startsWith('/slow')) return { delayMs: 3000 };
    if (path.startsWith('/created')) return { status: 201, json: { id: 'x' } };
    if (path.startsWith('/deploy')) return { json: { url: 'http://127.0.0.1:5999', extra: true } };
    return {};
  });
});
afterAll(async () => {
  await target?.close();
  await ctx?.close();
});

const key = (step: string, kind = 'deploy') => ({ subjectId: 'b-1', step, kind });
const vars = { build_id: 'b-1', droplet_id: 'shop', commit_sha: 'c0ffee', branch: 'main', deployment_url: null };
const attempts = (k: ReturnType<typeof key>) =>
  ctx.db.query('SELECT attempt, outcome, response_status, error FROM delivery_attempts WHERE subject_id = $1 AND step = $2 AND kind = $3 ORDER BY attempt', [k.subjectId, k.step, k.kind]);

describe('DeliveryService: hooks', () => {
  it('fills the templates, calls once, and records the status and the deploy answer url', async () => {
    const k = key('templates');
    const hook = { url: `${target.url}/deploy/{{droplet_id}}?sha={{commit_sha}}`, body: { build: '{{build_id}}', nested: ['{{branch}}', 7], url: '{{deployment_url}}' } };
    expect(await sut.requestHook(ctx.ds.manager, { key: k, hook, vars })).toBe(true);

    const outcome = await sut.waitForOutcome(k, { timeoutMs: 20_000 });
    expect(outcome).toMatchObject({ state: 'delivered', attempts: 1, maxAttempts: 4, responseStatus: 200, responseUrl: 'http://127.0.0.1:5999', lastError: null });
    const calls = target.to('/deploy/shop');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: 'POST', url: '/deploy/shop?sha=c0ffee', body: { build: 'b-1', nested: ['main', 7], url: '' } });
    expect(calls[0].headers['content-type']).toBe('application/json');
    expect(calls[0].headers['idempotency-key']).toBe('b-1/templates/deploy');
    expect(await attempts(k)).toEqual([{ attempt: 1, outcome: 'succeeded', response_status: 200, error: null }]);
  });

  it('stores a key once: repeated and concurrent requests call the hook once', async () => {
    const k = key('twice');
    const hook = { url: `${target.url}/once` };
    const created = await Promise.all([1, 2, 3].map(() => sut.requestHook(ctx.ds.manager, { key: k, hook, vars })));
    expect(created.filter(Boolean)).toHaveLength(1);
    await sut.waitForOutcome(k, { timeoutMs: 20_000 });
    // Asked again after delivery: nothing new is stored or called.
    expect(await ctx.ds.transaction((em) => sut.requestHook(em, { key: k, hook, vars }))).toBe(false);
    await new Promise((r) => setTimeout(r, 1500));
    expect(target.to('/once')).toHaveLength(1);
    expect(await ctx.db.query(`SELECT count(*)::int AS n FROM pgboss.job WHERE data->>'step' = 'twice'`)).toEqual([{ n: 1 }]);
  });

  it('stores nothing and enqueues nothing when the caller rolls back', async () => {
    const k = key('rolled-back');
    await expect(
      ctx.ds.transaction(async (em) => {
        await sut.requestHook(em, { key: k, hook: { url: `${target.url}/rolled-back` }, vars });
        throw new Error('the step failed');
      }),
    ).rejects.toThrow('the step failed');
    expect(await sut.outcomeOf(k)).toBeNull();
    expect(await ctx.db.query(`SELECT count(*)::int AS n FROM pgboss.job WHERE data->>'step' = 'rolled-back'`)).toEqual([{ n: 0 }]);
  });

  it('takes expect_status as the only success: 201 expected and given is delivered; 200 when 201 is expected fails', async () => {
    const ok = key('expect-ok');
    const bad = key('expect-bad');
    await sut.requestHook(ctx.ds.manager, { key: ok, hook: { url: `${target.url}/created`, expect_status: 201, retries: 0 }, vars });
    await sut.requestHook(ctx.ds.manager, { key: bad, hook: { url: `${target.url}/plain-200`, expect_status: 201, retries: 0 }, vars });
    expect(await sut.waitForOutcome(ok, { timeoutMs: 20_000 })).toMatchObject({ state: 'delivered', responseStatus: 201 });
    expect(await sut.waitForOutcome(bad, { timeoutMs: 20_000 })).toMatchObject({ state: 'failed', attempts: 1, responseStatus: 200, lastError: 'unexpected status 200 (expected 201)' });
    expect(await attempts(bad)).toEqual([{ attempt: 1, outcome: 'failed', response_status: 200, error: 'unexpected status 200 (expected 201)' }]);
  });

  it('gives up on a call after timeout_s', async () => {
    const k = key('timeout');
    await sut.requestHook(ctx.ds.manager, { key: k, hook: { url: `${target.url}/slow`, timeout_s: 1, retries: 0 }, vars });
    const outcome = await sut.waitForOutcome(k, { timeoutMs: 20_000 });
    expect(outcome).toMatchObject({ state: 'failed', attempts: 1, lastError: 'timed out after 1s' });
    const [row] = await ctx.db.query<{ duration_ms: number }>(`SELECT duration_ms FROM delivery_attempts WHERE step = 'timeout'`);
    expect(row.duration_ms).toBeGreaterThanOrEqual(950);
    expect(row.duration_ms).toBeLessThan(2900);
  });

  it('retries a failing hook with growing delays and records every attempt, until it is delivered', async () => {
    const k = key('flaky');
    await sut.requestHook(ctx.ds.manager, { key: k, hook: { url: `${target.url}/fail-2/hook`, retries: 3 }, vars });
    const outcome = await sut.waitForOutcome(k, { timeoutMs: 40_000 });
    expect(outcome).toMatchObject({ state: 'delivered', attempts: 3, responseStatus: 200, lastError: null });
    expect(await attempts(k)).toEqual([
      { attempt: 1, outcome: 'failed', response_status: 503, error: 'unexpected status 503 (expected 2xx)' },
      { attempt: 2, outcome: 'failed', response_status: 503, error: 'unexpected status 503 (expected 2xx)' },
      { attempt: 3, outcome: 'succeeded', response_status: 200, error: null },
    ]);
    const at = target.to('/fail-2/hook').map((r) => r.at);
    expect(at).toHaveLength(3);
    // Backoff: about 1-2 s, then 2-4 s (polling adds up to half a second).
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(900);
    expect(at[2] - at[1]).toBeGreaterThanOrEqual(1900);
  });

  it('fails for good when its retries run out, having called 1 + retries times', async () => {
    const k = key('exhausted');
    await sut.requestHook(ctx.ds.manager, { key: k, hook: { url: `${target.url}/always-500`, retries: 1 }, vars });
    expect(await sut.waitForOutcome(k, { timeoutMs: 30_000 })).toMatchObject({ state: 'failed', attempts: 2, maxAttempts: 2, responseStatus: 500 });
    await new Promise((r) => setTimeout(r, 2500));
    expect(target.to('/always-500')).toHaveLength(2);
  });

  it('sends credentials to the target but never stores or reports them', async () => {
    const k = key('secrets');
    const down = await freePort();
    const headers = { Authorization: 'Bearer sup3r-s3cret-value', 'X-API-Key': 'k3y-0123456789', 'X-Deploy-Token': 't0ken-abcdef', 'X-Trace': 'visible-value' };
    await sut.requestHook(ctx.ds.manager, { key: k, hook: { url: `${target.url}/with-secrets`, headers, body: { note: 'plain' } }, vars });
    // A failing one: the credential in the URL's query must not reach the error either.
    const failing = key('secrets-failing');
    await sut.requestHook(ctx.ds.manager, { key: failing, hook: { url: `http://127.0.0.1:${down}/x?token=qu3ry-s3cret`, headers, retries: 0 }, vars });
    await sut.waitForOutcome(k, { timeoutMs: 20_000 });
    const failed = await sut.waitForOutcome(failing, { timeoutMs: 20_000 });
    expect(failed.lastError).toMatch(/ECONNREFUSED/);

    const [call] = target.to('/with-secrets');
    expect(call.headers).toMatchObject({ authorization: 'Bearer sup3r-s3cret-value', 'x-api-key': 'k3y-0123456789', 'x-deploy-token': 't0ken-abcdef', 'x-trace': 'visible-value' });

    const outcome = await sut.outcomeOf(k);
    expect(outcome?.request).toMatchObject({ headers: { Authorization: '[redacted]', 'X-API-Key': '[redacted]', 'X-Deploy-Token': '[redacted]', 'X-Trace': 'visible-value' } });
    expect(failed.request.url).toBe(`http://127.0.0.1:${down}/x?token=[redacted]`);
    const stored = JSON.stringify([
      await ctx.db.query('SELECT * FROM deliveries'),
      await ctx.db.query('SELECT * FROM delivery_attempts'),
      await ctx.db.query('SELECT data, output FROM pgboss.job'),
    ]);
    for (const secret of ['sup3r-s3cret-value', 'k3y-0123456789', 't0ken-abcdef', 'qu3ry-s3cret']) expect(stored).not.toContain(secret);
    expect(stored).toContain('visible-value');
    // The logs speak of both deliveries, without a credential.
    const logs = logLines.join('');
    expect(logs).toContain('b-1/secrets-failing/deploy');
    expect(logs).toMatch(/ECONNREFUSED/);
    for (const secret of ['sup3r-s3cret-value', 'k3y-0123456789', 't0ken-abcdef', 'qu3ry-s3cret']) expect(logs).not.toContain(secret);
  });

  it('keeps the credentials of a pending delivery apart, and drops them when it settles', async () => {
    const k = key('secret-kept');
    const down = await freePort();
    await sut.requestHook(ctx.ds.manager, { key: k, hook: { url: `http://127.0.0.1:${down}/later`, headers: { Authorization: 'Bearer kept-for-later' }, retries: 1 }, vars });
    expect(await ctx.db.query(`SELECT secrets, request->'headers' AS headers FROM deliveries WHERE step = 'secret-kept'`)).toEqual([
      { secrets: { headers: { Authorization: 'Bearer kept-for-later' } }, headers: { Authorization: '[redacted]' } },
    ]);
    await sut.waitForOutcome(k, { timeoutMs: 30_000 });
    expect(await ctx.db.query(`SELECT state, secrets FROM deliveries WHERE step = 'secret-kept'`)).toEqual([{ state: 'failed', secrets: null }]);
  });

  it('tells onSettled listeners of each delivery it settles', async () => {
    const seen: SettledDelivery[] = [];
    const off = sut.onSettled((o) => seen.push(o));
    const k = key('listened');
    await sut.requestHook(ctx.ds.manager, { key: k, hook: { url: `${target.url}/listened` }, vars });
    await waitFor('the settlement event', async () => (seen.some((o) => o.key.step === 'listened') ? true : undefined), { timeoutMs: 20_000 });
    off();
    expect(seen.find((o) => o.key.step === 'listened')).toMatchObject({ state: 'delivered', key: k });
  });

  it('refuses to wait for a delivery never requested', async () => {
    await expect(sut.waitForOutcome(key('never'))).rejects.toThrow('delivery b-1/never/deploy was never requested');
  });
});

describe('DeliveryService across a supervisor restart', () => {
  it('delivers a delivery left pending by a stopped supervisor exactly once, when the target comes back', async () => {
    const first = await createMediumContext({ init: true, config: FAST_QUEUE });
    let second: MediumContext | undefined;
    let back: HookTarget | undefined;
    try {
      const port = await freePort();
      const k = { subjectId: 'b-restart', step: 'deploy', kind: 'deploy' };
      await first.get(DeliveryService).requestHook(first.ds.manager, { key: k, hook: { url: `http://127.0.0.1:${port}/deploy/{{build_id}}`, retries: 6 }, vars: { build_id: 'b-restart' } });
      // The target is down: the first attempt fails and the delivery waits for its retry.
      await waitFor('a failed first attempt', async () => ((await first.get(DeliveryService).attemptsOf(k)).some((a) => a.outcome === 'failed') ? true : undefined), { timeoutMs: 20_000 });
      await first.module.close();

      expect(await first.db.query(`SELECT state FROM deliveries`)).toEqual([{ state: 'pending' }]);
      back = await startHookTarget(() => ({ json: { url: 'http://127.0.0.1:7000' } }), port);
      second = await createMediumContext({ init: true, config: FAST_QUEUE, database: first.db });
      const outcome = await second.get(DeliveryService).waitForOutcome(k, { timeoutMs: 30_000 });
      expect(outcome).toMatchObject({ state: 'delivered', responseUrl: 'http://127.0.0.1:7000' });
      await new Promise((r) => setTimeout(r, 2000));
      expect(back.to('/deploy/b-restart')).toHaveLength(1);
      const rows = await second.get(DeliveryService).attemptsOf(k);
      expect(rows.map((a) => a.outcome).slice(-1)).toEqual(['succeeded']);
      expect(rows.filter((a) => a.outcome === 'succeeded')).toHaveLength(1);
    } finally {
      await back?.close();
      await second?.close();
      await first.db.drop();
    }
  });

  it('repeats an attempt cut off by a crash once the job expires, and records the cut-off attempt', async () => {
    const first = await createMediumContext({ config: FAST_QUEUE });
    let second: MediumContext | undefined;
    try {
      const k = { subjectId: 'b-crash', step: 'deploy', kind: 'deploy' };
      await first.get(DeliveryService).requestHook(first.ds.manager, { key: k, hook: { url: `${target.url}/crashed-during` }, vars: {} });
      // What a supervisor killed during the call leaves: attempt 1 started, its job active.
      const [{ job_id: jobId }] = await first.db.query<{ job_id: string }>(`SELECT job_id FROM deliveries WHERE subject_id = 'b-crash'`);
      expect(await first.get(DeliveryRepository).startAttempt(k, jobId)).toMatchObject({ attempt: 1 });
      await first.db.query(`UPDATE pgboss.job SET state = 'active', started_on = now() - interval '1 minute', expire_in = interval '1 second' WHERE id = $1`, [jobId]);
      await first.module.close();

      second = await createMediumContext({ init: true, config: { ...FAST_QUEUE, queueMaintenanceSeconds: 1 }, database: first.db });
      expect(await second.get(DeliveryService).waitForOutcome(k, { timeoutMs: 30_000 })).toMatchObject({ state: 'delivered', attempts: 2 });
      expect((await second.get(DeliveryService).attemptsOf(k)).map((a) => [a.attempt, a.outcome])).toEqual([
        [1, null],
        [2, 'succeeded'],
      ]);
      expect(target.to('/crashed-during')).toHaveLength(1);
    } finally {
      await second?.close();
      await first.db.drop();
    }
  });

  it('re-enqueues, at boot, a pending delivery whose job is gone', async () => {
    const first = await createMediumContext({ config: FAST_QUEUE });
    let second: MediumContext | undefined;
    try {
      const k = { subjectId: 'b-orphan', step: 'register', kind: 'register' };
      await first.get(DeliveryService).requestHook(first.ds.manager, { key: k, hook: { url: `${target.url}/orphan` }, vars: {} });
      await first.db.query(`DELETE FROM pgboss.job`);
      await first.module.close();

      second = await createMediumContext({ init: true, config: FAST_QUEUE, database: first.db });
      expect(await second.get(DeliveryService).waitForOutcome(k, { timeoutMs: 20_000 })).toMatchObject({ state: 'delivered', attempts: 1 });
      expect(target.to('/orphan')).toHaveLength(1);
    } finally {
      await second?.close();
      await first.db.drop();
    }
  });
});
