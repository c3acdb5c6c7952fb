import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { commitChanges, createSampleRepository } from '@app/git';
import { type DemoDeployer, type DeploymentView, startDemoDeployer } from '../../apps/cli/src/demo-deployer.js';
import { type DemoRegistry, startDemoRegistry } from '../../apps/cli/src/demo-registry.js';
import { DEMO_SERVICE_FILES, DEMO_SERVICE_TEST_COMMAND, demoServiceFiles } from '../../apps/cli/src/demo-service-files.js';
import { waitFor } from '../support/wait.js';

/**
 * The demo's local deployer and registry, in-process, deploying real commits of temporary
 * repositories (made with isomorphic-git, no git binary) as real Node processes.
 */

const author = { name: 'Autopack Test', email: 'test@autopack.invalid' };

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'autopack-deployer-'));
  tempDirs.push(dir);
  return dir;
}

const started: Array<{ close(): Promise<void> }> = [];
async function deployer(options: Partial<Parameters<typeof startDemoDeployer>[0]> = {}): Promise<DemoDeployer> {
  const d = await startDemoDeployer({ root: path.join(tempDir(), 'deployments'), log: () => undefined, ...options });
  started.push(d);
  return d;
}
async function registry(file?: string): Promise<DemoRegistry> {
  const r = await startDemoRegistry({ file, log: () => undefined });
  started.push(r);
  return r;
}

afterEach(async () => {
  for (const s of started.splice(0)) await s.close();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A repository whose first commit holds `files`; returns its path and the commit. */
async function repoWith(files: Record<string, string>): Promise<{ repo: string; sha: string }> {
  const repo = tempDir();
  const sha = await createSampleRepository(repo, files, { author, message: 'Initial commit\n' });
  return { repo, sha };
}

/** Writes `files` over the working tree of `repo` and commits them on main. */
async function commitOnMain(repo: string, files: Record<string, string>, message: string): Promise<string> {
  for (const [p, content] of Object.entries(files)) writeFileSync(path.join(repo, p), content);
  return commitChanges(repo, { branch: 'main', written: Object.keys(files), deleted: [], message, author });
}

async function call(url: string, body?: unknown, method = body === undefined ? 'GET' : 'POST'): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, body: parsed };
}

/** True while `pid` runs; a zombie (dead, not yet reaped by whoever adopted it) counts as gone. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Waits until `pid` is gone (a killed process is reaped by its parent shortly after the signal). */
const gone = (pid: number) => waitFor(`process ${pid} to be gone`, async () => (isAlive(pid) ? undefined : true), { timeoutMs: 15_000 });

/** Process ids a service printed as `pid <n>` lines. */
const printedPids = (text: string) => [...text.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));

describe('demo deployer', () => {
  it('deploys a commit, redeploys a second one, and rolls back to the first', async () => {
    const { repo, sha: first } = await repoWith(demoServiceFiles('Hello v1'));
    const second = await commitOnMain(repo, demoServiceFiles('Hello v2'), 'v2\n');
    const dep = await deployer({ repos: [repo] });

    const one = await call(`${dep.url}/deploy`, { build_id: 'b1', droplet_id: 'drop-1', commit_sha: first, repo, branch: 'main' });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ build_id: 'b1', droplet_id: 'drop-1', commit_sha: first, branch: 'main', status: 'running', current: true });
    expect(one.body.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(typeof one.body.deployment_id).toBe('string');
    expect(await call(`${one.body.url}/health`)).toEqual({ status: 200, body: { status: 'ok' } });
    expect((await call(`${one.body.url}/`)).body).toMatchObject({ message: 'Hello v1', commit: first });
    // The health check can be pointed at the deployer before the service's port is known.
    expect(await call(`${dep.url}/builds/b1/health`)).toEqual({ status: 200, body: { status: 'ok' } });
    expect(await call(`${dep.url}/droplets/drop-1/health`)).toEqual({ status: 200, body: { status: 'ok' } });

    // The same commit again (a retried hook delivery): the same deployment, not restarted.
    const again = await call(`${dep.url}/deploy`, { build_id: 'b1', droplet_id: 'drop-1', commit_sha: first, repo, branch: 'main' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ deployment_id: one.body.deployment_id, url: one.body.url, pid: one.body.pid });

    const two = await call(`${dep.url}/deploy`, { build_id: 'b1', droplet_id: 'drop-1', commit_sha: second, repo, branch: 'main' });
    expect(two.status).toBe(200);
    expect(two.body).toMatchObject({ commit_sha: second, status: 'running', current: true });
    expect(two.body.deployment_id).not.toBe(one.body.deployment_id);
    expect((await call(`${two.body.url}/`)).body).toMatchObject({ message: 'Hello v2', commit: second });
    await gone(one.body.pid);
    const listed = (await call(`${dep.url}/deployments?build_id=b1`)).body.deployments as DeploymentView[];
    expect(listed.map((d) => [d.deployment_id, d.status, d.current])).toEqual([
      [one.body.deployment_id, 'stopped', false],
      [two.body.deployment_id, 'running', true],
    ]);

    const back = await call(`${dep.url}/rollback`, { build_id: 'b1', commit_sha: second });
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ rolled_back: true, stopped: { deployment_id: two.body.deployment_id, status: 'stopped' } });
    expect(back.body.current).toMatchObject({ deployment_id: one.body.deployment_id, commit_sha: first, status: 'running', current: true });
    expect(back.body.url).toBe(back.body.current.url);
    expect((await call(`${back.body.url}/`)).body).toMatchObject({ message: 'Hello v1', commit: first });
    await gone(two.body.pid);

    // A retried rollback of the same commit changes nothing.
    const retried = await call(`${dep.url}/rollback`, { build_id: 'b1', commit_sha: second });
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ rolled_back: false, current: { deployment_id: one.body.deployment_id, status: 'running' } });
    expect((await call(`${back.body.url}/health`)).status).toBe(200);

    // Rolling back the first deployment leaves nothing running.
    const none = await call(`${dep.url}/rollback`, { build_id: 'b1' });
    expect(none.status).toBe(200);
    expect(none.body).toMatchObject({ rolled_back: true, current: null, url: null, stopped: { deployment_id: one.body.deployment_id } });
    await gone(back.body.current.pid);
    expect((await call(`${dep.url}/builds/b1/health`)).body.error.code).toBe('NO_DEPLOYMENT');
    expect(dep.deployments().filter((d) => d.status === 'running')).toEqual([]);
  });

  it('handles concurrent deploys of one build one after the other', async () => {
    const { repo, sha: first } = await repoWith(demoServiceFiles('Hello v1'));
    const second = await commitOnMain(repo, demoServiceFiles('Hello v2'), 'v2\n');
    const third = await commitOnMain(repo, demoServiceFiles('Hello v3'), 'v3\n');
    const dep = await deployer();
    // Two deliveries of the same commit at once: one deployment.
    const same = await Promise.all([1, 2].map(() => call(`${dep.url}/deploy`, { build_id: 'cc', commit_sha: first, repo })));
    expect(same.map((r) => r.status)).toEqual([200, 200]);
    expect(same[1].body.deployment_id).toBe(same[0].body.deployment_id);
    // Two commits at once: each replaces the one before, whichever came first, and only the
    // last one handled is left running.
    const both = await Promise.all([second, third].map((sha) => call(`${dep.url}/deploy`, { build_id: 'cc', commit_sha: sha, repo })));
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    const ids = both.map((r) => r.body.deployment_id as string);
    expect(ids).not.toContain(same[0].body.deployment_id);
    const last = dep.deployments().at(-1)!;
    expect(ids).toContain(last.deployment_id);
    const running = dep.deployments().filter((d) => d.status === 'running');
    expect(running.map((d) => [d.deployment_id, d.current])).toEqual([[last.deployment_id, true]]);
    for (const r of [same[0], ...both.filter((x) => x.body.deployment_id !== last.deployment_id)]) await gone(r.body.pid);
  });

  it('runs the service with a minimal environment and the fixture passes its own tests', async () => {
    process.env.AUTOPACK_TEST_SECRET = 'do-not-leak';
    try {
      const envService = {
        'package.json': JSON.stringify({ name: 'env-service', type: 'module', main: './src/main.js' }),
        'src/main.js':
          "import { createServer } from 'node:http';\ncreateServer((req, res) => res.end(JSON.stringify(Object.keys(process.env).sort()))).listen(Number(process.env.PORT), '127.0.0.1');\n",
      };
      const { repo, sha } = await repoWith(envService);
      const dep = await deployer({ serviceEnv: { GREETING_STYLE: 'plain' } });
      const deployed = await call(`${dep.url}/deploy`, { build_id: 'env', commit_sha: sha, repo, droplet_id: '', branch: '' });
      expect(deployed.status).toBe(200);
      expect(deployed.body).toMatchObject({ droplet_id: null, branch: null });
      const keys = (await call(`${deployed.body.url}/`)).body as string[];
      expect(keys).toEqual(['AUTOPACK_BUILD_ID', 'AUTOPACK_COMMIT_SHA', 'AUTOPACK_DEPLOYMENT_ID', 'GREETING_STYLE', 'HOST', 'NODE_ENV', 'PATH', 'PORT']);
    } finally {
      delete process.env.AUTOPACK_TEST_SECRET;
    }

    // The bundled service fixture, exported by the deployer, passes its test command.
    const { repo, sha } = await repoWith(DEMO_SERVICE_FILES);
    const dep = await deployer();
    const deployed = await call(`${dep.url}/deploy`, { build_id: 'fixture', commit_sha: sha, repo });
    expect(deployed.status).toBe(200);
    const [cmd, ...args] = DEMO_SERVICE_TEST_COMMAND.split(' ');
    expect(cmd).toBe('node');
    // TAP on every Node version (Node 24's default reporter is `spec` even when piped).
    const run = spawnSync(process.execPath, [...args, '--test-reporter=tap'], { cwd: deployed.body.dir, encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(`${run.stdout}${run.stderr}`).toMatch(/# pass 3/);
    expect(run.status).toBe(0);
  });

  it('answers 502 with the output of a service that exits at once, and keeps the running one', async () => {
    const { repo, sha: good } = await repoWith(DEMO_SERVICE_FILES);
    const broken = await commitOnMain(repo, { 'server.js': "console.log('pid', process.pid);\nconsole.error('boom: no configuration');\nprocess.exit(3);\n" }, 'break it\n');
    const dep = await deployer();
    const ok = await call(`${dep.url}/deploy`, { build_id: 'b2', commit_sha: good, repo });
    expect(ok.status).toBe(200);

    const failed = await call(`${dep.url}/deploy`, { build_id: 'b2', commit_sha: broken, repo });
    expect(failed.status).toBe(502);
    expect(failed.body.error).toMatchObject({ code: 'SERVICE_DID_NOT_START', details: { exit: '3' } });
    expect(failed.body.error.details.output_tail).toContain('boom: no configuration');
    for (const pid of printedPids(failed.body.error.details.output_tail)) await gone(pid);

    const listed = (await call(`${dep.url}/deployments`)).body.deployments as DeploymentView[];
    expect(listed.map((d) => [d.commit_sha, d.status, d.current])).toEqual([
      [good, 'running', true],
      [broken, 'failed', false],
    ]);
    expect((await call(`${ok.body.url}/health`)).status).toBe(200);
  });

  it('kills a service (and what it spawned) that does not listen before the start timeout', async () => {
    const hang = {
      'index.js':
        "import { spawn } from 'node:child_process';\nconst child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });\nconsole.log('pid', process.pid);\nconsole.log('pid', child.pid);\nsetInterval(() => {}, 1000);\n",
      'package.json': JSON.stringify({ type: 'module' }),
    };
    const { repo, sha } = await repoWith(hang);
    const dep = await deployer({ startTimeoutMs: 5000, outputTailChars: 200 });
    const failed = await call(`${dep.url}/deploy`, { build_id: 'hang', commit_sha: sha, repo });
    expect(failed.status).toBe(502);
    expect(failed.body.error.code).toBe('SERVICE_DID_NOT_START');
    expect(failed.body.error.message).toMatch(/did not accept connections/);
    const pids = printedPids(failed.body.error.details.output_tail);
    expect(pids).toHaveLength(2);
    for (const pid of pids) await gone(pid);
    expect(dep.deployments().map((d) => d.status)).toEqual(['failed']);
  });

  it('bounds the output a failed start reports', async () => {
    const noisy = { 'server.js': "process.stdout.write('x'.repeat(50000) + 'END');\nprocess.exit(1);\n" };
    const { repo, sha } = await repoWith(noisy);
    const dep = await deployer({ outputTailChars: 100 });
    const failed = await call(`${dep.url}/deploy`, { build_id: 'noisy', commit_sha: sha, repo });
    expect(failed.status).toBe(502);
    expect(failed.body.error.details.output_tail).toHaveLength(100);
    expect(failed.body.error.details.output_tail.endsWith('END')).toBe(true);
  });

  it('refuses bad requests with a coded 4xx and goes on serving', async () => {
    const { repo, sha } = await repoWith(DEMO_SERVICE_FILES);
    const { repo: noEntryRepo, sha: noEntry } = await repoWith({ 'README.md': '# nothing to run\n' });
    const { repo: badMainRepo, sha: badMain } = await repoWith({ 'package.json': JSON.stringify({ main: '../outside.js' }), 'server.js': '' });
    const dep = await deployer({ repos: [repo, noEntryRepo, badMainRepo] });
    const deploy = (body: unknown) => call(`${dep.url}/deploy`, body);
    const codeOf = async (p: Promise<{ status: number; body: any }>) => {
      const r = await p;
      return [r.status, r.body?.error?.code];
    };

    expect(await codeOf(deploy('{"build_id": '))).toEqual([400, 'INVALID_JSON']);
    expect(await codeOf(call(`${dep.url}/deploy`, undefined, 'POST'))).toEqual([422, 'VALIDATION_FAILED']);
    const missing = await deploy({ build_id: 'x', repo });
    expect(missing.status).toBe(422);
    expect(missing.body.error.message).toContain('commit_sha');
    expect(await codeOf(deploy({ build_id: 'x', repo, commit_sha: 'abc' }))).toEqual([422, 'VALIDATION_FAILED']);
    expect(await codeOf(deploy({ build_id: '', repo, commit_sha: sha }))).toEqual([422, 'VALIDATION_FAILED']);
    expect(await codeOf(deploy({ build_id: 'x', repo: 'relative/path', commit_sha: sha }))).toEqual([422, 'VALIDATION_FAILED']);
    expect(await codeOf(deploy([1, 2]))).toEqual([422, 'VALIDATION_FAILED']);
    expect(await codeOf(deploy({ build_id: 'x', repo: tempDir(), commit_sha: sha }))).toEqual([403, 'REPO_NOT_ALLOWED']);
    expect(await codeOf(deploy({ build_id: 'x', repo, commit_sha: 'f'.repeat(40) }))).toEqual([422, 'COMMIT_NOT_FOUND']);
    expect(await codeOf(deploy({ build_id: 'x', repo: noEntryRepo, commit_sha: noEntry }))).toEqual([422, 'NO_ENTRY_POINT']);
    expect(await codeOf(deploy({ build_id: 'x', repo: badMainRepo, commit_sha: badMain }))).toEqual([422, 'BAD_PACKAGE_JSON']);
    expect(await codeOf(call(`${dep.url}/rollback`, { commit_sha: sha }))).toEqual([422, 'VALIDATION_FAILED']);
    expect(await codeOf(call(`${dep.url}/nowhere`))).toEqual([404, 'ROUTE_NOT_FOUND']);
    expect(await codeOf(call(`${dep.url}/builds/x/health`))).toEqual([404, 'NO_DEPLOYMENT']);
    const unknownRollback = await call(`${dep.url}/rollback`, { build_id: 'never-deployed' });
    expect(unknownRollback).toMatchObject({ status: 200, body: { rolled_back: false, current: null } });

    // Not a repository at all (any path is allowed without `repos`).
    const open = await deployer();
    expect(await codeOf(call(`${open.url}/deploy`, { build_id: 'x', repo: tempDir(), commit_sha: sha }))).toEqual([422, 'NOT_A_REPOSITORY']);

    expect(dep.deployments()).toEqual([]);
    const fine = await deploy({ build_id: 'x', repo, commit_sha: sha });
    expect(fine.status).toBe(200);
    expect((await call(`${fine.body.url}/health`)).status).toBe(200);
  });

  it('stops every service when it is closed', async () => {
    const { repo, sha } = await repoWith(DEMO_SERVICE_FILES);
    const dep = await startDemoDeployer({ root: path.join(tempDir(), 'deployments'), log: () => undefined });
    const pids: number[] = [];
    for (const build of ['c1', 'c2', 'c3']) {
      const r = await call(`${dep.url}/deploy`, { build_id: build, commit_sha: sha, repo });
      expect(r.status).toBe(200);
      pids.push(r.body.pid);
    }
    expect(pids.every(isAlive)).toBe(true);
    await dep.close();
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(dep.deployments().map((d) => d.status)).toEqual(['stopped', 'stopped', 'stopped']);
  });
});

describe('demo registry', () => {
  const sha1 = 'a'.repeat(40);
  const sha2 = 'b'.repeat(40);

  it('registers once per build and commit, and lists the entries', async () => {
    const reg = await registry();
    const body = { build_id: 'b1', droplet_id: 'drop-1', droplet_name: 'Hello', deployment_url: 'http://127.0.0.1:4000', commit_sha: sha1 };
    const first = await call(`${reg.url}/register`, body);
    expect(first.status).toBe(201);
    expect(first.body.entry).toMatchObject({ ...body });
    expect(typeof first.body.entry.entry_id).toBe('string');
    expect(Number.isNaN(Date.parse(first.body.entry.registered_at))).toBe(false);

    const again = await call(`${reg.url}/register`, body);
    expect(again).toEqual({ status: 200, body: first.body });

    const other = await call(`${reg.url}/register`, { build_id: 'b1', droplet_id: '', droplet_name: '', deployment_url: 'http://127.0.0.1:4001', commit_sha: sha2.toUpperCase() });
    expect(other.status).toBe(201);
    expect(other.body.entry).toMatchObject({ droplet_id: null, droplet_name: null, commit_sha: sha2 });

    const listed = await call(`${reg.url}/registry`);
    expect(listed.status).toBe(200);
    expect(listed.body.entries).toEqual([first.body.entry, other.body.entry]);
    expect(reg.entries()).toEqual(listed.body.entries);
  });

  it('refuses bad bodies with a coded 4xx', async () => {
    const reg = await registry();
    const good = { build_id: 'b1', deployment_url: 'http://127.0.0.1:4000', commit_sha: sha1 };
    const codeOf = async (body: unknown) => {
      const r = await call(`${reg.url}/register`, body);
      return [r.status, r.body?.error?.code];
    };
    expect(await codeOf('not json')).toEqual([400, 'INVALID_JSON']);
    expect(await codeOf({ ...good, deployment_url: 'file:///etc/passwd' })).toEqual([422, 'VALIDATION_FAILED']);
    expect(await codeOf({ ...good, deployment_url: '' })).toEqual([422, 'VALIDATION_FAILED']);
    expect(await codeOf({ ...good, commit_sha: '{{commit_sha}}' })).toEqual([422, 'VALIDATION_FAILED']);
    expect(await codeOf({ ...good, build_id: undefined })).toEqual([422, 'VALIDATION_FAILED']);
    expect(await codeOf([good])).toEqual([422, 'VALIDATION_FAILED']);
    expect((await call(`${reg.url}/registry`)).body.entries).toEqual([]);
    expect((await call(`${reg.url}/register`, good)).status).toBe(201);
  });

  it('keeps its entries in a file across restarts', async () => {
    const file = path.join(tempDir(), 'state', 'registry.json');
    const first = await registry(file);
    const entry = (await call(`${first.url}/register`, { build_id: 'b1', deployment_url: 'http://127.0.0.1:4000', commit_sha: sha1 })).body.entry;
    await first.close();

    const second = await registry(file);
    expect((await call(`${second.url}/registry`)).body.entries).toEqual([entry]);
    expect(await call(`${second.url}/register`, { build_id: 'b1', deployment_url: 'http://127.0.0.1:4000', commit_sha: sha1 })).toEqual({ status: 200, body: { entry } });

    const broken = path.join(tempDir(), 'broken.json');
    writeFileSync(broken, JSON.stringify({ entries: [{ build_id: 1 }] }));
    await expect(startDemoRegistry({ file: broken })).rejects.toThrow(/not a registry file/);
  });
});
