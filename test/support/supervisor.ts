import type { INestApplication } from '@nestjs/common';
import { createSupervisorApp } from '../../apps/supervisor/src/bootstrap.js';
import { type SupervisorConfig, loadSupervisorConfig } from '../../apps/supervisor/src/config.js';
import { type TestDatabase, createTestDatabase } from './database.js';

/** A supervisor on a scratch database, listening on a free loopback port. */
export interface TestSupervisor {
  app: INestApplication;
  url: string;
  db: TestDatabase;
  config: SupervisorConfig;
  close(): Promise<void>;
}

/** Starts a supervisor for a test file (real HTTP, real Postgres). */
export async function startTestSupervisor(
  overrides: Partial<SupervisorConfig> = {},
  opts: Parameters<typeof createSupervisorApp>[3] = {},
): Promise<TestSupervisor> {
  const db = await createTestDatabase();
  const config = loadSupervisorConfig({ AUTOPACK_LOG_LEVEL: 'silent' }, { port: 0, ...overrides });
  const app = await createSupervisorApp(config, db.url, undefined, opts);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    db,
    config,
    close: async () => {
      await app.close();
      await db.drop();
    },
  };
}

/** Minimal JSON HTTP client for tests. */
export async function http(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // leave as text
  }
  return { status: res.status, body: parsed };
}

/** A small valid plan: 2 tiers, 3 phases. */
export function samplePlan(runId: string, extra: Record<string, unknown> = {}) {
  return {
    run: { run_id: runId, ...extra },
    tiers: [
      { tier_id: 't1', tier_index: 0, name: 'Foundation' },
      { tier_id: 't2', tier_index: 1, name: 'Features' },
    ],
    phases: [
      { phase_id: 'p1', phase_index: 0, tier_id: 't1', name: 'One', task_category: 'feature_scaffolding' },
      { phase_id: 'p2', phase_index: 1, tier_id: 't1', name: 'Two', task_category: 'docs' },
      { phase_id: 'p3', phase_index: 2, tier_id: 't2', name: 'Three', task_category: 'tests' },
    ],
  };
}

/** Claims the next phase of a run (asserting one is claimable) and returns the claim body. */
export async function claimNext(base: string, runId: string, executorId = 'tester'): Promise<any> {
  const r = await http(base, 'POST', '/phases/claim', { executor_id: executorId, run_id: runId });
  if (r.status !== 200) throw new Error(`expected a claimable phase in ${runId}, got ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Claims the next phase and completes it, optionally reporting issues and usage on the way. */
export async function completeNext(base: string, runId: string, opts: { issues?: unknown[]; tokens?: number } = {}): Promise<any> {
  const c = await claimNext(base, runId);
  const p = `/runs/${runId}/phases/${c.phase_id}`;
  const b = await http(base, 'POST', `${p}/builder_result`, {
    lease_token: c.lease_token,
    status: 'success',
    suggested_issues: opts.issues ?? [],
    usage: { prompt_tokens: opts.tokens ?? 100, completion_tokens: 0 },
  });
  if (b.status !== 200) throw new Error(`builder_result: ${b.status} ${JSON.stringify(b.body)}`);
  const done = await http(base, 'POST', `${p}/update_status`, { lease_token: c.lease_token, state: 'COMPLETE', commit_sha: 'c'.repeat(40) });
  if (done.status !== 200) throw new Error(`update_status: ${done.status} ${JSON.stringify(done.body)}`);
  return { claim: c, result: done.body };
}

/** A one-tier plan with `n` phases of a category. */
export function flatPlan(runId: string, n: number, run: Record<string, unknown> = {}, category = 'feature_scaffolding') {
  return {
    run: { run_id: runId, ...run },
    tiers: [{ tier_id: 't1', tier_index: 0, name: 'Only tier' }],
    phases: Array.from({ length: n }, (_, i) => ({ phase_id: `p${i + 1}`, phase_index: i, tier_id: 't1', name: `Phase ${i + 1}`, task_category: category })),
  };
}
