import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A scratch database for one test file. */
export interface TestDatabase {
  url: string;
  name: string;
  query<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

/** The server's maintenance database, where test databases are created and dropped. */
export function adminUrl(): string {
  const url = process.env.AUTOPACK_TEST_ADMIN_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('no test database: global setup did not run');
  return url;
}

/** The URL of database `name` on the test server. */
export function databaseUrl(name: string): string {
  const u = new URL(adminUrl());
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * Creates a database on the test server: empty (the supervisor's migrations build the
 * schema), or a copy of `create(admin, name)`'s making (the medium tier clones a template).
 */
export async function createTestDatabase(
  create: (admin: pg.Client, name: string) => Promise<void> = async (admin, name) => void (await admin.query(`CREATE DATABASE ${name}`)),
): Promise<TestDatabase> {
  const name = `autopack_t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await create(admin, name);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(name);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  // An idle connection the server ends (a restart, a forced drop) is replaced on the next
  // query; unhandled, pg-pool would throw it as an uncaught exception into the test file.
  pool.on('error', () => undefined);
  return {
    url,
    name,
    query: async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => (await pool.query<T>(sql, params)).rows,
    drop: async () => {
      await pool.end();
      const c = new pg.Client({ connectionString: adminUrl() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * Everything a client request could have changed, as one comparable value: a request that is
 * refused must leave it equal (events are counted, since their ids and times always differ).
 */
export async function stateSnapshot(db: TestDatabase): Promise<unknown> {
  const all = (table: string) => db.query(`SELECT * FROM ${table} ORDER BY 1`);
  return {
    runs: await all('runs'),
    tiers: await all('tiers'),
    phases: await all('phases'),
    attempts: await all('phase_attempts'),
    events: await db.query('SELECT count(*)::int AS n FROM events'),
    issues: await all('phase_issues'),
    backlog: await all('project_backlog'),
    rulesets: await all('project_rulesets'),
    reservations: await all('budget_reservations'),
    usage: await all('usage_reports'),
    idempotency: await all('idempotency_keys'),
    builds: await all('builds'),
    buildSteps: await db.query('SELECT * FROM build_steps ORDER BY run_id, step'),
  };
}
