import { RunListResponseSchema, RunResponseSchema, RunSummaryResponseSchema } from '@app/contracts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type Finished, runCli } from '../support/processes.js';
import { claimNext, flatPlan, http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';

/**
 * The admin command line of CONTRACT.md section 10 on runs (`start`, `runs`, `status
 * [--watch]`, `cancel`, `retry`, `report`): the built CLI (`node bin/autopack.js ...`)
 * spawned against a real supervisor on a real database, the run driven over HTTP from here.
 */

let sup: TestSupervisor;
let dir: string;

beforeAll(async () => {
  sup = await startTestSupervisor();
  dir = mkdtempSync(path.join(os.tmpdir(), 'autopack-admin-cli-'));
});
afterAll(async () => {
  await sup?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const lines = (text: string) => text.split('\n').filter((l) => l.trim());
const cli = (args: string[], env: NodeJS.ProcessEnv = { AUTOPACK_API_URL: sup.url }) => runCli(args, { PATH: process.env.PATH, ...env }, 25_000);
const autopack = (args: string[], env?: NodeJS.ProcessEnv): Promise<Finished> => cli(args, env).done;

/** A YAML plan: one tier, three phases (the run id is replaced with --run-id). */
const YAML_PLAN = `# the body of POST /runs/start, as YAML
run:
  run_id: from-the-file
  approval_mode: auto
tiers:
  - { tier_id: t1, tier_index: 0, name: Only tier }
phases:
  - phase_id: p1
    phase_index: 0
    tier_id: t1
    name: One
    task_category: feature_scaffolding
  - { phase_id: p2, phase_index: 1, tier_id: t1, name: Two, task_category: docs }
  - { phase_id: p3, phase_index: 2, tier_id: t1, name: Three, task_category: tests }
`;

/** Drives one claimed phase to COMPLETE as an executor would. */
async function complete(runId: string, phaseId: string, leaseToken: string) {
  const p = `/runs/${runId}/phases/${phaseId}`;
  expect((await http(sup.url, 'POST', `${p}/builder_result`, { lease_token: leaseToken, status: 'success', usage: { prompt_tokens: 100, completion_tokens: 0 } })).status).toBe(200);
  expect((await http(sup.url, 'POST', `${p}/update_status`, { lease_token: leaseToken, state: 'COMPLETE', commit_sha: 'c'.repeat(40) })).status).toBe(200);
}

describe('start and status --watch', () => {
  it('starts a run from a YAML plan (--run-id wins) and follows it to DONE_SUCCESS, one line per change, exit 0', async () => {
    const plan = path.join(dir, 'plan.yaml');
    writeFileSync(plan, YAML_PLAN);
    const started = await autopack(['start', plan, '--run-id', 'cli-watch']);
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    expect(lines(started.stdout)).toEqual([expect.stringMatching(/^run cli-watch started: [A-Z_]+, 1 tiers, 3 phases$/), 'follow it: autopack status cli-watch --watch']);
    expect((await http(sup.url, 'GET', '/runs/from-the-file')).status).toBe(404);

    const watch = cli(['status', 'cli-watch', '--watch']);
    let out = '';
    watch.child.stdout!.on('data', (d) => (out += d));
    const seen = (text: string) => waitFor(`"${text}" in the watch output`, async () => (out.includes(text) ? true : undefined), { timeoutMs: 10_000 });
    await seen('run cli-watch: ');
    for (const [phaseId, name, n] of [['p1', 'One', 1], ['p2', 'Two', 2], ['p3', 'Three', 3]] as const) {
      const c = await claimNext(sup.url, 'cli-watch');
      expect(c.phase_id).toBe(phaseId);
      await seen(`phase ${phaseId} (${name}): QUEUED -> EXECUTING`);
      await complete('cli-watch', phaseId, c.lease_token);
      await seen(`phase ${phaseId} (${name}): EXECUTING -> COMPLETE (${n}/3 complete)`);
    }
    const r = await watch.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual([
      'run cli-watch: RUN_CREATED, 0/3 phases complete',
      expect.stringMatching(/^phase p1 \(One\): QUEUED -> EXECUTING \(attempt 1\/\d+\)$/),
      // The first claim starts the run.
      'run cli-watch: RUN_CREATED -> PHASE_EXECUTION, 0/3 phases complete',
      'phase p1 (One): EXECUTING -> COMPLETE (1/3 complete)',
      expect.stringMatching(/^phase p2 \(Two\): QUEUED -> EXECUTING \(attempt 1\/\d+\)$/),
      'phase p2 (Two): EXECUTING -> COMPLETE (2/3 complete)',
      expect.stringMatching(/^phase p3 \(Three\): QUEUED -> EXECUTING \(attempt 1\/\d+\)$/),
      'phase p3 (Three): EXECUTING -> COMPLETE (3/3 complete)',
      'run cli-watch: PHASE_EXECUTION -> DONE_SUCCESS, 3/3 phases complete',
    ]);
  });

  it('status --json and runs --json parse as the API answers; report prints the summary', async () => {
    const [status, runs, table, human, report, reportJson] = await Promise.all([
      autopack(['status', 'cli-watch', '--json']),
      autopack(['runs', '--state', 'DONE_SUCCESS', '--json']),
      autopack(['runs']),
      autopack(['status', 'cli-watch']),
      autopack(['report', 'cli-watch']),
      autopack(['report', 'cli-watch', '--json']),
    ]);
    expect(status.code).toBe(0);
    const run = RunResponseSchema.parse(JSON.parse(status.stdout));
    expect(run).toMatchObject({ run_id: 'cli-watch', state: 'DONE_SUCCESS', approval_mode: 'auto' });
    expect(run.phases.map((p) => [p.phase_id, p.state])).toEqual([['p1', 'COMPLETE'], ['p2', 'COMPLETE'], ['p3', 'COMPLETE']]);

    expect(runs.code).toBe(0);
    const list = RunListResponseSchema.parse(JSON.parse(runs.stdout));
    expect(list.runs.map((r) => [r.run_id, r.state, r.phases_completed, r.phases_total])).toEqual([['cli-watch', 'DONE_SUCCESS', 3, 3]]);

    expect(table.code).toBe(0);
    const [head, ...rows] = lines(table.stdout);
    expect(head.split(/\s{2,}/)).toEqual(['RUN ID', 'STATE', 'PHASES', 'CURRENT PHASE', 'TOKENS', 'CREATED']);
    expect(rows.map((row) => row.split(/\s{2,}/).slice(0, 3))).toContainEqual(['cli-watch', 'DONE_SUCCESS', '3/3']);

    expect(human.code).toBe(0);
    expect(lines(human.stdout)).toEqual(expect.arrayContaining(['run cli-watch: DONE_SUCCESS, 3/3 phases complete', 'tier t1 (Only tier): COMPLETE']));

    expect(report.code).toBe(0);
    expect(lines(report.stdout)[0]).toBe('run cli-watch: DONE_SUCCESS (approval auto, not_required)');
    expect(lines(report.stdout)).toContainEqual(expect.stringMatching(/^ {2}p3 \(Three\): COMPLETE, attempts 1\/\d+, 100 tokens, commit cccccccccccc$/));
    expect(reportJson.code).toBe(0);
    expect(RunSummaryResponseSchema.parse(JSON.parse(reportJson.stdout))).toMatchObject({ run_id: 'cli-watch', state: 'DONE_SUCCESS' });
  });

  it('status --watch --json prints one run per change and exits 3 when the run is cancelled; cancel prints the new state', async () => {
    writeFileSync(path.join(dir, 'cancel.json'), JSON.stringify(flatPlan('cli-cancel', 2)));
    expect((await autopack(['start', path.join(dir, 'cancel.json')])).code).toBe(0);
    const watch = cli(['status', 'cli-cancel', '--watch', '--json']);
    let out = '';
    watch.child.stdout!.on('data', (d) => (out += d));
    await waitFor('the first JSON line', async () => (out.includes('\n') ? true : undefined), { timeoutMs: 10_000 });

    const cancelled = await autopack(['cancel', 'cli-cancel']);
    expect(cancelled.stderr).toBe('');
    expect(cancelled.code).toBe(0);
    expect(lines(cancelled.stdout)).toEqual(['run cli-cancel cancelled', 'run cli-cancel: CANCELLED, 0/0 phases complete, 2 skipped']);

    const r = await watch.done;
    expect(r.code).toBe(3);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^autopack status: run cli-cancel ended CANCELLED/)]);
    const states = lines(r.stdout).map((l) => RunResponseSchema.parse(JSON.parse(l)).state);
    expect(states[states.length - 1]).toBe('CANCELLED');
    expect(states.length).toBe(2);

    // Cancelling it again is a 409: its code and message, exit 1.
    const again = await autopack(['cancel', 'cli-cancel']);
    expect(again.code).toBe(1);
    expect(lines(again.stderr)).toEqual([expect.stringMatching(/^autopack cancel: [A-Z_]+: .+ \(HTTP 409\)$/)]);
  });
});

describe('retry', () => {
  it('queues a FAILED phase again and reopens the run it ended', async () => {
    expect((await http(sup.url, 'POST', '/runs/start', flatPlan('cli-retry', 1))).status).toBe(201);
    // Fail every attempt until the phase is out of attempts.
    let last: { phase_state: string; run_state: string } | undefined;
    for (let i = 0; i < 20 && last?.phase_state !== 'FAILED'; i++) {
      const c = await claimNext(sup.url, 'cli-retry');
      const r = await http(sup.url, 'POST', `/runs/cli-retry/phases/${c.phase_id}/update_status`, { lease_token: c.lease_token, state: 'FAILED', ci_passed: false, failure_reason: 'ci_failed: exit 1' });
      expect(r.status).toBe(200);
      last = r.body;
    }
    expect(last?.phase_state).toBe('FAILED');

    const r = await autopack(['retry', 'cli-retry', 'p1']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual([expect.stringMatching(/^phase p1 of run cli-retry retried: QUEUED, \d+ attempts left; run [A-Z_]+$/)]);
    expect((await http(sup.url, 'GET', '/runs/cli-retry')).body.phases[0].state).toBe('QUEUED');

    // p1 is QUEUED now: a second retry is refused (409, exit 1).
    const again = await autopack(['retry', 'cli-retry', 'p1']);
    expect(again.code).toBe(1);
    expect(lines(again.stderr)).toEqual([expect.stringMatching(/^autopack retry: [A-Z_]+: .+ \(HTTP 409\)$/)]);
  });
});

describe('errors', () => {
  it('bad usage exits 1 with one line on stderr, and sends nothing', async () => {
    writeFileSync(path.join(dir, 'broken.yaml'), 'run: [\n');
    writeFileSync(path.join(dir, 'invalid.json'), JSON.stringify({ run: { run_id: 'x' }, tiers: [], phases: [] }));
    writeFileSync(path.join(dir, 'ok.json'), JSON.stringify(flatPlan('never-sent', 1)));
    const cases: Array<[string[], RegExp]> = [
      [['status'], /^autopack status: missing <id>$/],
      [['retry', 'r1'], /^autopack retry: missing <run_id> <phase_id>$/],
      [['status', 'x', '--wach'], /^autopack status: --wach: unknown flag \(did you mean --watch\?\)$/],
      [['runs', '--state', 'RUNNING'], /^autopack runs: --state: must be one of /],
      [['start', path.join(dir, 'missing.yaml')], /^autopack start: .*missing\.yaml: cannot read \(ENOENT\)$/],
      [['start', path.join(dir, 'broken.yaml')], /^autopack start: .*broken\.yaml: not valid YAML \(.+\)$/],
      [['start', path.join(dir, 'invalid.json')], /^autopack start: .*invalid\.json: tiers: .+$/],
      [['start', path.join(dir, 'ok.json'), '--run-id', 'bad id!'], /^autopack start: --run-id: /],
    ];
    const results = await Promise.all(cases.map(([args]) => autopack(args)));
    results.forEach((r, i) => {
      const [args, line] = cases[i];
      expect({ args, code: r.code, stderr: lines(r.stderr), stdout: r.stdout }).toEqual({ args, code: 1, stderr: [expect.stringMatching(line)], stdout: '' });
    });
    expect((await http(sup.url, 'GET', '/runs/never-sent')).status).toBe(404);
    expect((await http(sup.url, 'GET', '/runs/x')).status).toBe(404);
  });

  it('a 404 exits 1 with the code and message printed', async () => {
    const cases = [['status', 'no-such-run'], ['cancel', 'no-such-run'], ['report', 'no-such-run'], ['retry', 'cli-watch', 'no-such-phase']];
    const results = await Promise.all(cases.map((args) => autopack(args)));
    results.forEach((r, i) => {
      const args = cases[i];
      expect({ args, code: r.code, stderr: lines(r.stderr) }).toEqual({ args, code: 1, stderr: [expect.stringMatching(new RegExp(`^autopack ${args[0]}: [A-Z_]+: .+ \\(HTTP 404\\)$`))] });
    });
  });

  it('an unreachable supervisor exits 2', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const dead = `http://127.0.0.1:${port}`;
    const cases = [['runs'], ['status', 'r1', '--watch'], ['start', path.join(dir, 'ok.json')]];
    const results = await Promise.all(cases.map((args) => autopack([...args, '--api-url', dead], {})));
    results.forEach((r, i) => {
      const args = cases[i];
      expect({ args, code: r.code, stderr: lines(r.stderr) }).toEqual({ args, code: 2, stderr: [`autopack ${args[0]}: supervisor unreachable at ${dead} (ECONNREFUSED)`] });
    });
  });
});
