/**
 * The embedded PostgreSQL as the supervisor starts it: real server binaries, real clusters.
 * (Where the cluster goes is decided without a server: apps/supervisor/src/database/embedded-postgres.spec.ts.)
 */
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { type EmbeddedPostgresHandle, embeddedPostgresPlace, packagedServerDir, startEmbeddedPostgres } from '../../../apps/supervisor/src/database/embedded-postgres.js';

// The fallback only exists for root: PostgreSQL then runs as the unprivileged `postgres` user.
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const rootIt = asRoot ? it : it.skip;

const tmpDirs: string[] = [];
const handles: EmbeddedPostgresHandle[] = [];
const fallbacks: string[] = [];

/** A fresh directory with `mode` (mkdtemp gives 0700: as root, only root can enter it). */
function scratch(mode: number): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'autopack-embedded-pg-'));
  chmodSync(dir, mode);
  tmpDirs.push(dir);
  return dir;
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

afterAll(async () => {
  for (const h of handles) await h.stop().catch(() => undefined);
  for (const d of [...fallbacks, ...tmpDirs]) rmSync(d, { recursive: true, force: true });
});

describe('startEmbeddedPostgres', () => {
  rootIt('runs a cluster for a root-only directory in the fallback, and its data survives a restart', async () => {
    const root = scratch(0o700);
    const dir = path.join(root, '.autopack', 'pg');
    const notices: string[] = [];
    const first = await startEmbeddedPostgres({ dir, database: 'fallback', fast: true, notice: (l) => notices.push(l) });
    handles.push(first);
    const fallback = path.dirname(first.dataDir);
    fallbacks.push(fallback);
    expect(notices).toEqual([embeddedPostgresPlace(dir).notice]);
    expect(fallback).toBe(embeddedPostgresPlace(dir).dir);
    expect(existsSync(dir)).toBe(false); // nothing half-made in the checkout
    await query(first.url, 'CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$survives$$)');
    await first.stop();

    const second = await startEmbeddedPostgres({ dir, database: 'fallback', fast: true, notice: (l) => notices.push(l) });
    handles.push(second);
    expect(second.dataDir).toBe(first.dataDir);
    expect(notices).toHaveLength(2);
    expect(await query(second.url, 'SELECT v FROM kept')).toEqual([{ v: 'survives' }]);
    await second.stop();
  });

  rootIt('runs a copy of server binaries the postgres user cannot reach', async () => {
    const hidden = path.join(scratch(0o700), 'native');
    cpSync(packagedServerDir(), hidden, { recursive: true, verbatimSymlinks: true });
    const dir = path.join(scratch(0o755), 'pg');
    mkdirSync(dir);
    const notices: string[] = [];
    const handle = await startEmbeddedPostgres({ dir, database: 'relocated', fast: true, serverDir: hidden, notice: (l) => notices.push(l) });
    handles.push(handle);
    expect(handle.dataDir).toBe(path.join(dir, 'data'));
    expect(notices).toEqual([
      `embedded PostgreSQL: the server binaries in ${hidden} are not reachable by the "postgres" user; using a copy in ${path.join(dir, 'server')}`,
    ]);
    expect(readdirSync(path.join(dir, 'server', 'bin'))).toEqual(expect.arrayContaining(['initdb', 'postgres']));
    expect(await query(handle.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await handle.stop();
    // Stopped for real: the next start initialises nothing and starts a new server.
    const again = await startEmbeddedPostgres({ dir, database: 'relocated', fast: true, serverDir: hidden, notice: () => undefined });
    handles.push(again);
    expect(again.owned).toBe(true);
    await again.stop();
  });
});
