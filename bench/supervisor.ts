/**
 * The supervisor's hot paths, on real PostgreSQL (DATABASE_URL, else the embedded one) over real
 * HTTP, against baselines taken in the same run.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { INestApplication } from '@nestjs/common';
import pg from 'pg';
import { createSupervisorApp } from '../apps/supervisor/src/bootstrap.js';
import { loadSupervisorConfig } from '../apps/supervisor/src/config.js';
import { scratchDatabase } from './database.js';
import { type BenchOptions, type BenchRow, fmtMs, median, percentile } from './rows.js';

/** Phases per run in the throughput benchmarks. */
const PHASES = 40;
/** Phases of the long run the REST cycle is compared with raw SQL on (the measurement). */
const LONG_RUN_PHASES = 200;
const WAKE_SAMPLES = 15;
const POLL_INTERVAL_MS = 250;
const REJECT_REQUESTS = 600;

async function call(base: string, method: string, route: string, body?: unknown, raw?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(base + route, {
    method,
    headers: { ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  } catch {
    return { status: res.status, body: text };
  }
}

function plan(runId: string, phases: number) {
  return {
    run: { run_id: runId, token_cap: 100_000_000, max_phases: phases + 10 },
    tiers: [{ tier_id: 't1', tier_index: 0, name: 'Only tier' }],
    phases: Array.from({ length: phases }, (_, i) => ({ phase_id: `p${i + 1}`, phase_index: i, tier_id: 't1', name: `Phase ${i + 1}`, task_category: 'feature_scaffolding' })),
  };
}

async function startRun(base: string, runId: string, phases: number): Promise<void> {
  const r = await call(base, 'POST', '/runs/start', plan(runId, phases));
  if (r.status !== 201) throw new Error(`POST /runs/start ${runId}: ${r.status} ${JSON.stringify(r.body)}`);
}

/** What an executor does to the supervisor per phase: claim, report usage, complete. Claim round trips (ms) go to `claimMs`. */
async function drainRun(base: string, runId: string, executorId: string, keyed: boolean, claimMs: number[] = []): Promise<number> {
  let done = 0;
  for (;;) {
    // The executor sends an Idempotency-Key with every claim; its answer is stored in the claim's transaction.
    const key: Record<string, string> = keyed ? { 'idempotency-key': `claim-${randomBytes(8).toString('hex')}` } : {};
    const t0 = performance.now();
    const c = await call(base, 'POST', '/phases/claim', { executor_id: executorId, run_id: runId }, undefined, key);
    if (c.status === 204) return done;
    claimMs.push(performance.now() - t0);
    if (c.status !== 200) throw new Error(`claim: ${c.status} ${JSON.stringify(c.body)}`);
    const claim = c.body as { phase_id: string; lease_token: string };
    const route = `/runs/${runId}/phases/${claim.phase_id}`;
    const b = await call(base, 'POST', `${route}/builder_result`, { lease_token: claim.lease_token, status: 'success', usage: { prompt_tokens: 100, completion_tokens: 10 } });
    if (b.status !== 200) throw new Error(`builder_result: ${b.status} ${JSON.stringify(b.body)}`);
    const u = await call(base, 'POST', `${route}/update_status`, { lease_token: claim.lease_token, state: 'COMPLETE', commit_sha: 'c'.repeat(40) });
    if (u.status !== 200) throw new Error(`update_status: ${u.status} ${JSON.stringify(u.body)}`);
    done++;
  }
}

/** Phases per second when `workers` executors each drain their own run, spread over `bases` (replicas). */
async function lifecycleThroughput(bases: string[], workers: number, tag: string, keyed = true, phases = PHASES, claimMs: number[] = []): Promise<number> {
  const runs = Array.from({ length: workers }, (_, i) => `bench-${tag}-${i}`);
  for (const r of runs) await startRun(bases[0], r, phases);
  const t0 = performance.now();
  const counts = await Promise.all(runs.map((r, i) => drainRun(bases[i % bases.length], r, `bench-exec-${i}`, keyed, claimMs)));
  const seconds = (performance.now() - t0) / 1000;
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== workers * phases) throw new Error(`expected ${workers * phases} phases, completed ${total}`);
  return total / seconds;
}

/**
 * The baseline of the lifecycle: the same cycle as raw SQL on the same database, one statement
 * per step on a connection of its own per client (a `FOR UPDATE SKIP LOCKED` claim, a usage
 * update, a guarded complete). Phases per second; claim round trips (ms) go to `claimMs`.
 */
async function rawSqlThroughput(url: string, workers: number, phases: number, claimMs: number[] = []): Promise<number> {
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query(`DROP TABLE IF EXISTS bench_raw_phases`);
  await setup.query(`CREATE TABLE bench_raw_phases (run_id text NOT NULL, phase_index int NOT NULL, state text NOT NULL DEFAULT 'QUEUED', lease_token text, tokens bigint NOT NULL DEFAULT 0, commit_sha text, PRIMARY KEY (run_id, phase_index))`);
  for (let w = 0; w < workers; w++) {
    await setup.query(`INSERT INTO bench_raw_phases (run_id, phase_index) SELECT $1, g FROM generate_series(1, $2) g`, [`raw-${w}`, phases]);
  }
  const clients = await Promise.all(
    Array.from({ length: workers }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  const t0 = performance.now();
  const counts = await Promise.all(
    clients.map(async (c, w) => {
      let done = 0;
      for (;;) {
        const token = randomBytes(16).toString('hex');
        const c0 = performance.now();
        const claimed = await c.query<{ phase_index: number }>(
          `UPDATE bench_raw_phases SET state = 'EXECUTING', lease_token = $2 WHERE (run_id, phase_index) = (SELECT run_id, phase_index FROM bench_raw_phases WHERE run_id = $1 AND state = 'QUEUED' ORDER BY phase_index LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING phase_index`,
          [`raw-${w}`, token],
        );
        if (claimed.rowCount === 0) return done;
        claimMs.push(performance.now() - c0);
        const idx = claimed.rows[0].phase_index;
        const used = await c.query(`UPDATE bench_raw_phases SET tokens = tokens + 110 WHERE run_id = $1 AND phase_index = $2 AND lease_token = $3`, [`raw-${w}`, idx, token]);
        const completed = await c.query(`UPDATE bench_raw_phases SET state = 'COMPLETE', commit_sha = $4, lease_token = NULL WHERE run_id = $1 AND phase_index = $2 AND state = 'EXECUTING' AND lease_token = $3`, [`raw-${w}`, idx, token, 'c'.repeat(40)]);
        if (used.rowCount !== 1 || completed.rowCount !== 1) throw new Error('raw cycle lost its lease');
        done++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  for (const c of clients) await c.end();
  await setup.query(`DROP TABLE bench_raw_phases`);
  await setup.end();
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== workers * phases) throw new Error(`raw: expected ${workers * phases} phases, completed ${total}`);
  return total / seconds;
}

/** Milliseconds from NOTIFY to a listening connection receiving it (the wake baseline). */
async function rawNotifyWake(url: string, samples: number): Promise<number[]> {
  const listener = new pg.Client({ connectionString: url });
  const sender = new pg.Client({ connectionString: url });
  await listener.connect();
  await sender.connect();
  await listener.query('LISTEN bench_wake');
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const got = new Promise<void>((resolve) => listener.once('notification', () => resolve()));
    const t0 = performance.now();
    await sender.query(`NOTIFY bench_wake, '${i}'`);
    await got;
    out.push(performance.now() - t0);
  }
  await listener.end();
  await sender.end();
  return out;
}

/**
 * Milliseconds from `POST /runs/start` returning to an already-waiting long-poll claim holding
 * the run's first phase (the wake itself plus the claim it triggers), and the whole span from
 * sending the start.
 */
async function notifyWake(base: string, i: number): Promise<{ afterStart: number; fromStart: number }> {
  const runId = `bench-wake-${i}`;
  let answeredAt = Number.NaN;
  const waiting = call(base, 'POST', '/phases/claim', { executor_id: 'bench-waiter', run_id: runId, wait_ms: 10_000 }).then((r) => {
    answeredAt = performance.now();
    return r;
  });
  await sleep(50); // let the claim start waiting
  const t0 = performance.now();
  await startRun(base, runId, 1);
  const started = performance.now();
  const got = await waiting;
  if (got.status !== 200) throw new Error(`long-poll claim: ${got.status}`);
  return { afterStart: Math.max(0, answeredAt - started), fromStart: answeredAt - t0 };
}

/** The same for a client that polls every POLL_INTERVAL_MS without long polling (the baseline). */
async function pollWake(base: string, i: number): Promise<number> {
  const runId = `bench-poll-${i}`;
  let t0 = Number.NaN;
  // Start the run at a random point of the polling cycle, as it would happen.
  const starter = (async () => {
    await sleep(Math.random() * POLL_INTERVAL_MS);
    t0 = performance.now();
    await startRun(base, runId, 1);
  })();
  for (;;) {
    const c = await call(base, 'POST', '/phases/claim', { executor_id: 'bench-poller', run_id: runId });
    if (c.status === 200) {
      await starter;
      return performance.now() - t0;
    }
    await sleep(POLL_INTERVAL_MS);
  }
}

/** Requests per second of `make()` requests sent 8 at a time. */
async function requestRate(n: number, make: (i: number) => Promise<{ status: number }>, expectStatus: (s: number) => boolean): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = next++; i < n; i = next++) {
        const r = await make(i);
        if (!expectStatus(r.status)) throw new Error(`unexpected status ${r.status}`);
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

export async function benchSupervisor(opts: BenchOptions): Promise<BenchRow[]> {
  const phases = opts.quick ? 60 : LONG_RUN_PHASES;
  const wakeSamples = opts.quick ? 7 : WAKE_SAMPLES;
  const db = await scratchDatabase('autopack_bench');
  const config = loadSupervisorConfig({ AUTOPACK_LOG_LEVEL: 'silent', AUTOPACK_RATE_LIMIT_PER_SEC: '0' }, { port: 0 });
  const apps: INestApplication[] = [];
  const listen = async (): Promise<string> => {
    const app = await createSupervisorApp(config, db.url);
    await app.listen(0, '127.0.0.1');
    apps.push(app);
    return `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
  };
  const results: BenchRow[] = [];
  try {
    const a = await listen();
    const b = await listen();
    // Warm-up: connection pools, JIT, prepared plans.
    await lifecycleThroughput([a], 1, 'warm');
    await rawSqlThroughput(db.url, 1, PHASES);

    const restClaims: number[] = [];
    const rawClaims: number[] = [];
    const raw1 = await rawSqlThroughput(db.url, 1, phases, rawClaims);
    const one = await lifecycleThroughput([a], 1, 'one', true, phases, restClaims);
    const raw4 = await rawSqlThroughput(db.url, 4, phases);
    const four = await lifecycleThroughput([a], 4, 'four', true, phases);
    const short = await lifecycleThroughput([a], 1, 'short', true, PHASES);
    const replicas = await lifecycleThroughput([a, b], 4, 'replicas', true, PHASES);
    const fourShort = await lifecycleThroughput([a], 4, 'four-short', true, PHASES);
    const unkeyed = await lifecycleThroughput([a], 1, 'unkeyed', false, PHASES);
    results.push(
      {
        name: `REST cycle (claim + usage + complete), 1 client, run of ${phases} phases`,
        baseline: `raw SQL, same cycle: ${raw1.toFixed(0)} phases/s`,
        measured: `${one.toFixed(1)} phases/s`,
        ratio: one / raw1,
        meaning: 'x raw SQL (target ≥ 0.15)',
      },
      {
        name: `REST cycle, 4 clients on 4 runs of ${phases} phases`,
        baseline: `raw SQL, 4 connections: ${raw4.toFixed(0)} phases/s`,
        measured: `${four.toFixed(1)} phases/s`,
        ratio: four / raw4,
        meaning: 'x raw SQL (target ≥ 0.15)',
      },
      {
        name: 'claim round trip with work queued, p50',
        baseline: `raw SQL claim: ${fmtMs(median(rawClaims))}`,
        measured: `POST /phases/claim: ${fmtMs(median(restClaims))} (p90 ${fmtMs(percentile(restClaims, 90))})`,
        ratio: median(restClaims) / median(rawClaims),
        meaning: 'x raw SQL (target: p50 ≤ 4 ms)',
      },
      {
        name: `REST cycle, 1 client: run of ${phases} phases vs ${PHASES}`,
        baseline: `${PHASES} phases: ${short.toFixed(1)} phases/s`,
        measured: `${phases} phases: ${one.toFixed(1)} phases/s`,
        ratio: one / short,
        meaning: 'how the cost of a write grows with the run (1 = not at all)',
      },
      {
        name: 'phase lifecycle, 4 executors on 2 supervisor replicas',
        baseline: `4 executors on 1 replica: ${fourShort.toFixed(1)} phases/s`,
        measured: `${replicas.toFixed(1)} phases/s`,
        ratio: replicas / fourShort,
        meaning: 'the same spread over two replicas on one database (1 = no loss)',
      },
      {
        name: 'phase lifecycle, 1 executor, Idempotency-Key on every claim',
        baseline: `claims without a key: ${unkeyed.toFixed(1)} phases/s`,
        measured: `with a key (as the executor sends): ${short.toFixed(1)} phases/s`,
        ratio: short / unkeyed,
        meaning: 'what storing each claim answer in its own transaction costs (1 = nothing)',
      },
    );

    const afterStart: number[] = [];
    const fromStart: number[] = [];
    const poll: number[] = [];
    for (let i = 0; i < wakeSamples; i++) {
      const w = await notifyWake(a, i);
      afterStart.push(w.afterStart);
      fromStart.push(w.fromStart);
      poll.push(await pollWake(a, i));
    }
    const rawWake = await rawNotifyWake(db.url, wakeSamples * 3);
    results.push(
      {
        name: 'long-poll wake after POST /runs/start returns, p50',
        baseline: `raw LISTEN/NOTIFY: ${fmtMs(median(rawWake))}`,
        measured: `claim answered ${fmtMs(median(afterStart))} after the start returned`,
        ratio: median(afterStart) / median(rawWake),
        meaning: 'x raw NOTIFY (target: p50 ≤ 5 ms)',
      },
      {
        name: 'claim latency after a run becomes claimable',
        baseline: `polling every ${POLL_INTERVAL_MS} ms: median ${median(poll).toFixed(1)} ms`,
        measured: `long poll woken by NOTIFY: median ${median(fromStart).toFixed(1)} ms (start included)`,
        ratio: median(poll) / median(fromStart),
        meaning: 'how much sooner a waiting executor gets new work than a polling one (x faster)',
      },
    );

    const valid = await requestRate(REJECT_REQUESTS, () => call(a, 'GET', '/runs/bench-one-0'), (s) => s === 200);
    const garbage = [
      () => call(a, 'POST', '/runs/start', undefined, '{"run": {"run_id": '),
      () => call(a, 'POST', '/runs/start', { run: { run_id: 42 }, tiers: 'x' }),
      () => call(a, 'POST', '/phases/claim', { executor_id: { nested: [1, 2, 3] } }),
      () => call(a, 'GET', `/runs/${encodeURIComponent("'; DROP TABLE runs;--")}`),
      () => call(a, 'POST', '/runs/bench-one-0/phases/p1/update_status', { lease_token: 'not-a-token', state: 'COMPLETE' }),
    ];
    const hostile = await requestRate(REJECT_REQUESTS, (i) => garbage[i % garbage.length](), (s) => s >= 400 && s < 500);
    results.push({
      name: 'hostile requests answered with a coded 4xx',
      baseline: `valid GET /runs/{id}: ${valid.toFixed(0)} req/s`,
      measured: `${hostile.toFixed(0)} req/s`,
      ratio: hostile / valid,
      meaning: 'cost of refusing garbage relative to serving a real read (> 1: cheaper)',
    });
  } finally {
    for (const app of apps) await app.close();
    await db.drop();
  }

  return results;
}
