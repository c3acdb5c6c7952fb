/**
 * The supervisor's hot paths, on real PostgreSQL (DATABASE_URL, else the embedded one) over real
 * HTTP, against baselines taken in the same run.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { INestApplication } from '@nestjs/common';
import pg from 'pg';
import { createSupervisorApp } from '../apps/supervisor/src/bootstrap.js';
import { loadSupervisorConfig } from '../apps/supervisor/src/config.js';
import { startEmbeddedPostgres } from '../apps/supervisor/src/database/embedded-postgres.js';
import { type BenchOptions, type BenchRow, median } from './rows.js';

/** Phases per run in the throughput benchmarks. */
const PHASES = 40;
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

/** What an executor does to the supervisor per phase: claim, report usage, complete. */
async function drainRun(base: string, runId: string, executorId: string, keyed: boolean): Promise<number> {
  let done = 0;
  for (;;) {
    // The executor sends an Idempotency-Key with every claim; its answer is stored in the claim's transaction.
    const key: Record<string, string> = keyed ? { 'idempotency-key': `claim-${randomBytes(8).toString('hex')}` } : {};
    const c = await call(base, 'POST', '/phases/claim', { executor_id: executorId, run_id: runId }, undefined, key);
    if (c.status === 204) return done;
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
async function lifecycleThroughput(bases: string[], workers: number, tag: string, keyed = true): Promise<number> {
  const runs = Array.from({ length: workers }, (_, i) => `bench-${tag}-${i}`);
  for (const r of runs) await startRun(bases[0], r, PHASES);
  const t0 = performance.now();
  const counts = await Promise.all(runs.map((r, i) => drainRun(bases[i % bases.length], r, `bench-exec-${i}`, keyed)));
  const seconds = (performance.now() - t0) / 1000;
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== workers * PHASES) throw new Error(`expected ${workers * PHASES} phases, completed ${total}`);
  return total / seconds;
}

/** Milliseconds from starting a run to an already-waiting long-poll claim holding its first phase. */
async function notifyWake(base: string, i: number): Promise<number> {
  const runId = `bench-wake-${i}`;
  const waiting = call(base, 'POST', '/phases/claim', { executor_id: 'bench-waiter', run_id: runId, wait_ms: 10_000 });
  await sleep(50); // let the claim start waiting
  const t0 = performance.now();
  await startRun(base, runId, 1);
  const got = await waiting;
  const ms = performance.now() - t0;
  if (got.status !== 200) throw new Error(`long-poll claim: ${got.status}`);
  return ms;
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

async function adminDatabase(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: async () => undefined };
  const handle = await startEmbeddedPostgres({ dir: path.resolve('.autopack/bench-pg'), database: 'postgres', fast: true });
  return { url: handle.url, stop: () => handle.stop() };
}

export async function benchSupervisor(_opts: BenchOptions): Promise<BenchRow[]> {
  const admin = await adminDatabase();
  const name = `autopack_bench_${randomBytes(4).toString('hex')}`;
  const adminClient = new pg.Client({ connectionString: admin.url });
  await adminClient.connect();
  await adminClient.query(`CREATE DATABASE ${name}`);
  const u = new URL(admin.url);
  u.pathname = `/${name}`;
  const config = loadSupervisorConfig({ AUTOPACK_LOG_LEVEL: 'silent', AUTOPACK_RATE_LIMIT_PER_SEC: '0' }, { port: 0 });
  const apps: INestApplication[] = [];
  const listen = async (): Promise<string> => {
    const app = await createSupervisorApp(config, u.toString());
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

    const one = await lifecycleThroughput([a], 1, 'one');
    const four = await lifecycleThroughput([a], 4, 'four');
    const replicas = await lifecycleThroughput([a, b], 4, 'replicas');
    const unkeyed = await lifecycleThroughput([a], 1, 'unkeyed', false);
    results.push(
      {
        name: 'phase lifecycle, 4 executors on 4 runs (1 replica)',
        baseline: `1 executor: ${one.toFixed(1)} phases/s`,
        measured: `${four.toFixed(1)} phases/s`,
        ratio: four / one,
        meaning: 'throughput gained by concurrent executors (claim + usage + complete, each a locked transaction)',
      },
      {
        name: 'phase lifecycle, 4 executors on 2 supervisor replicas',
        baseline: `1 executor: ${one.toFixed(1)} phases/s`,
        measured: `${replicas.toFixed(1)} phases/s`,
        ratio: replicas / one,
        meaning: 'the same spread over two replicas on one database',
      },
      {
        name: 'phase lifecycle, 1 executor, Idempotency-Key on every claim',
        baseline: `claims without a key: ${unkeyed.toFixed(1)} phases/s`,
        measured: `with a key (as the executor sends): ${one.toFixed(1)} phases/s`,
        ratio: one / unkeyed,
        meaning: 'what storing each claim answer in its own transaction costs (1 = nothing)',
      },
    );

    const notify: number[] = [];
    const poll: number[] = [];
    for (let i = 0; i < WAKE_SAMPLES; i++) {
      notify.push(await notifyWake(a, i));
      poll.push(await pollWake(a, i));
    }
    results.push({
      name: 'claim latency after a run becomes claimable',
      baseline: `polling every ${POLL_INTERVAL_MS} ms: median ${median(poll).toFixed(1)} ms`,
      measured: `long poll woken by NOTIFY: median ${median(notify).toFixed(1)} ms`,
      ratio: median(poll) / median(notify),
      meaning: 'how much sooner a waiting executor gets new work than a polling one (x faster)',
    });

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
    await adminClient.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await adminClient.end();
    await admin.stop();
  }

  return results;
}
