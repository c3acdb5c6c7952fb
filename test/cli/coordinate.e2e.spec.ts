import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoordinatorServicesResponseSchema, RunResponseSchema } from '@app/contracts';
import { worktreeChanges } from '@app/git';
import { observeService, serviceRepositories } from '../../apps/cli/src/coordinate.js';
import { runCli } from '../support/processes.js';
import { SERVICE_FILES, createService } from '../support/services.js';
import { http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

/*
 * `autopack coordinate` (CONTRACT.md section 9): stage detection from each service's main
 * branch (read with isomorphic-git, tests run in an exported copy), and passes that report
 * to the supervisor, which starts at most one build or run per service.
 */

let sup: TestSupervisor;
let dir: string;
beforeAll(async () => {
  sup = await startTestSupervisor();
  dir = mkdtempSync(path.join(os.tmpdir(), 'autopack-coordinate-'));
  await createService(dir, 'quotes', SERVICE_FILES.noSpec);
  await createService(dir, 'planned', SERVICE_FILES.specOnly);
  await createService(dir, 'adder', SERVICE_FILES.noTests);
  await createService(dir, 'broken', SERVICE_FILES.failing);
  await createService(dir, 'green', SERVICE_FILES.passing);
  mkdirSync(path.join(dir, 'not-a-repo'));
  writeFileSync(path.join(dir, 'a-file.txt'), 'x');
});
afterAll(async () => {
  await sup?.close();
  rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ PATH: process.env.PATH, HOME: dir, AUTOPACK_API_URL: sup.url });

describe('stage detection', () => {
  it('tells each stage apart from the main branch, leaving every working tree untouched', async () => {
    const repos = await serviceRepositories(dir, () => undefined);
    expect(repos.map((r) => r.service)).toEqual(['adder', 'broken', 'green', 'planned', 'quotes']);
    const seen = Object.fromEntries(await Promise.all(repos.map(async (r) => [r.service, await observeService(r, process.env)] as const)));
    expect(Object.fromEntries(Object.entries(seen).map(([k, v]) => [k, v.stage]))).toEqual({
      quotes: 'needs_spec',
      planned: 'ready_for_build',
      adder: 'needs_tests',
      broken: 'tests_failing',
      green: 'ready_for_deploy',
    });
    expect(seen.quotes.intent).toBe('A tiny HTTP service that serves a random quote.');
    expect(seen.planned.intent).toBe('Build the planned service.');
    expect(seen.adder.test_command).toBe('npm test');
    for (const r of repos) {
      expect((await worktreeChanges(r.path)).clean).toBe(true);
      expect(readdirSync(r.path)).not.toContain('node_modules');
    }
  });
});

describe('autopack coordinate', () => {
  it('bad usage exits 1 with one line; an unreachable supervisor exits 2', async () => {
    const noDir = await runCli(['coordinate', '--once'], env()).done;
    expect(noDir.code).toBe(1);
    expect(noDir.stderr.trim().split('\n')).toEqual(['autopack coordinate: --services: name the directory of service repositories']);
    const badInterval = await runCli(['coordinate', '--services', dir, '--interval', '0'], env()).done;
    expect(badInterval.code).toBe(1);
    expect(badInterval.stderr.trim().split('\n')).toHaveLength(1);
    const down = await runCli(['coordinate', '--services', dir, '--once', '--api-url', 'http://127.0.0.1:9'], env()).done;
    expect(down.code).toBe(2);
    expect(down.stderr).toContain('supervisor unreachable');
  });

  it('two passes started together start one run per service, printed one line per service', async () => {
    const [a, b] = await Promise.all([runCli(['coordinate', '--services', dir, '--once'], env()).done, runCli(['coordinate', '--services', dir, '--once'], env()).done]);
    for (const r of [a, b]) {
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout.trim().split('\n')).toHaveLength(5);
    }
    const started = [...a.stdout.split('\n'), ...b.stdout.split('\n')].filter((l) => l.endsWith(' started'));
    // green (ready_for_deploy) needs no work; each of the other four was started once.
    expect(started.map((l) => l.split(' ')[0]).sort()).toEqual(['adder', 'broken', 'planned', 'quotes']);

    const services = CoordinatorServicesResponseSchema.parse((await http(sup.url, 'GET', '/coordinator/services')).body);
    const byName = Object.fromEntries(services.map((s) => [s.service, s]));
    expect(byName.green).toMatchObject({ stage: 'ready_for_deploy', active_run_id: null });
    expect(byName.quotes.active_run_id).toBe('quotes'); // a build: its id is the droplet's
    expect(byName.planned.active_run_id).toBe('planned');
    const tests = RunResponseSchema.parse((await http(sup.url, 'GET', `/runs/${byName.adder.active_run_id}`)).body);
    expect(tests.repo_url).toBe(byName.adder.path);
    expect(tests.phases.map((p) => [p.phase_id, p.requires, p.ci?.command])).toEqual([['write-tests', ['tester'], 'npm test']]);
    const fix = RunResponseSchema.parse((await http(sup.url, 'GET', `/runs/${byName.broken.active_run_id}`)).body);
    expect(fix.phases.map((p) => [p.phase_id, p.requires])).toEqual([['fix-tests', ['builder']]]);

    // Another pass: everything is still going, nothing new starts.
    const again = await runCli(['coordinate', '--services', dir, '--once'], env()).done;
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain(' started');
  });

  it('without --once repeats every --interval until SIGTERM, then exits 0', async () => {
    const proc = runCli(['coordinate', '--services', dir, '--interval', '0.5'], env());
    let out = '';
    proc.child.stdout!.on('data', (d) => (out += d));
    const deadline = Date.now() + 60_000;
    while (out.split('\n').filter((l) => l.startsWith('green ')).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    proc.child.kill('SIGTERM');
    const r = await proc.done;
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout.split('\n').filter((l) => l.startsWith('green ')).length).toBeGreaterThanOrEqual(2);
  });

  it('makes a pass at once when one is requested ("assign now"), not after its interval', async () => {
    const proc = runCli(['coordinate', '--services', dir, '--interval', '600'], env());
    let out = '';
    proc.child.stdout!.on('data', (d) => (out += d));
    const passes = () => out.split('\n').filter((l) => l.startsWith('green ')).length;
    const until = async (n: number) => {
      for (const deadline = Date.now() + 30_000; passes() < n && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
    };
    await until(1);
    expect(passes()).toBe(1);
    const asked = await http(sup.url, 'POST', '/coordinator/pass');
    expect(asked.status).toBe(202);
    await until(2);
    proc.child.kill('SIGTERM');
    const r = await proc.done;
    expect({ code: r.code, passes: passes() }).toEqual({ code: 0, passes: 2 });
    expect(r.stderr).toContain(`pass requested (#${asked.body.request_id})`);
  });
});
