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
export async function startTestSupervisor(overrides: Partial<SupervisorConfig> = {}): Promise<TestSupervisor> {
  const db = await createTestDatabase();
  const config = loadSupervisorConfig({ AUTOPACK_LOG_LEVEL: 'silent' }, { port: 0, ...overrides });
  const app = await createSupervisorApp(config, db.url);
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
