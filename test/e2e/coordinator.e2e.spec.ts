import os from 'node:os';
import path from 'node:path';
import { CoordinatorCycleTimesResponseSchema, CoordinatorServicesResponseSchema, ExecutorListResponseSchema, RunListResponseSchema, RunResponseSchema } from '@app/contracts';
import fs, { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { listBranches } from 'isomorphic-git';
import { createSampleRepository, readFileAtRef } from '@app/git';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { dropletScript } from '../../apps/cli/src/demo-droplet.js';
import { type Finished, gitFsck, pathWithoutGit, runCli } from '../support/processes.js';
import { SERVICE_FILES, createService } from '../support/services.js';
import { http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';

/*
 * Issue 15's assembly line, end to end: a services directory with three services at different
 * stages (no SPEC; code without tests; failing tests), two executor processes with different
 * capabilities (builder; tester) serving whatever they can claim, in place in each service's
 * repository, and `autopack coordinate --once` passes (two of them started together).
 */

const FIXED_ADD = 'export function add(a, b) {\n  return a + b;\n}\n';
const NEW_TEST = "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { add } from '../src/index.js';\n\ntest('add adds', () => assert.equal(add(1, 2), 3));\n";

let sup: TestSupervisor;
let llm: ScriptedLlmServer;
let tmp: string;
let services: string;
const executors: ReturnType<typeof runCli>[] = [];

/** PATH with node and npm but no git: the executors prove they need no git binary, and can still run `npm test`. */
function pathWithNpm(): string {
  const dir = pathWithoutGit();
  symlinkSync('/usr/bin/npm', path.join(dir, 'npm'));
  return dir;
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-coordinator-'));
  services = path.join(tmp, 'services');
  await createService(services, 'quotes', SERVICE_FILES.noSpec);
  await createService(services, 'adder', SERVICE_FILES.noTests);
  await createService(services, 'broken', SERVICE_FILES.failing);
  sup = await startTestSupervisor({ leaseSeconds: 20 });
  const droplet = dropletScript();
  llm = await startScriptedLlmServer({
    script: {
      replies: [
        ...droplet.replies,
        { tool: 'submit_changes', match: '# Phase write-tests:', arguments: { summary: 'Test add', edits: [{ path: 'test/add.test.js', action: 'create', content: NEW_TEST }] }, times: 3 },
        { tool: 'submit_changes', match: '# Phase fix-tests:', arguments: { summary: 'Fix add', edits: [{ path: 'src/index.js', action: 'replace', content: FIXED_ADD }] }, times: 3 },
        { tool: 'submit_review', match: '# Phase write-tests:', arguments: { approved: true, summary: 'Tests added.', confidence: 'high', issues: [] }, times: 6 },
        { tool: 'submit_review', match: '# Phase fix-tests:', arguments: { approved: true, summary: 'Fixed.', confidence: 'high', issues: [] }, times: 6 },
      ],
    },
  });
  const env = {
    PATH: pathWithNpm(),
    HOME: tmp,
    OPENAI_API_KEY: 'sk-coord-openai-0001',
    ANTHROPIC_API_KEY: 'sk-ant-coord-0001',
    OPENAI_BASE_URL: llm.openaiBaseUrl,
    ANTHROPIC_BASE_URL: llm.anthropicBaseUrl,
    AUTOPACK_LOG_LEVEL: 'warn',
    NPM_CONFIG_UPDATE_NOTIFIER: 'false',
  };
  for (const cap of ['builder', 'tester']) {
    const ws = path.join(tmp, `ws-${cap}`);
    await createSampleRepository(ws, { 'README.md': `# ${cap} scratch\n` }, { author: { name: 'T', email: 't@localhost' }, message: 'scratch' });
    executors.push(runCli(['executor', '--capabilities', cap, '--workspace', ws, '--api-url', sup.url, '--poll-interval', '1', '--executor-id', `exec-${cap}`], env, 400_000));
  }
});
afterAll(async () => {
  for (const e of executors) e.child.kill('SIGTERM');
  await Promise.all(executors.map((e) => e.done));
  await llm?.close();
  await sup?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const coordinate = () => runCli(['coordinate', '--services', services, '--once', '--api-url', sup.url], { PATH: process.env.PATH, HOME: tmp }, 120_000).done;
const list = async () => CoordinatorServicesResponseSchema.parse((await http(sup.url, 'GET', '/coordinator/services')).body);
const ok = (r: Finished) => expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.not.stringMatching(/could not|error/i) });

describe('the assembly line', () => {
  it('moves each service to its next stage, each phase by an executor able to, one run per service at a time, with cycle times', async () => {
    // Two coordinators at once: each service's work is started exactly once.
    const [a, b] = await Promise.all([coordinate(), coordinate()]);
    ok(a);
    ok(b);
    const started = [...a.stdout.split('\n'), ...b.stdout.split('\n')].filter((l) => l.endsWith(' started')).map((l) => l.split(' ')[0]);
    expect(started.sort()).toEqual(['adder', 'broken', 'quotes']);
    const first = Object.fromEntries((await list()).map((s) => [s.service, s]));
    expect(Object.fromEntries(Object.entries(first).map(([k, s]) => [k, s.stage]))).toEqual({ quotes: 'needs_spec', adder: 'needs_tests', broken: 'tests_failing' });

    // More passes until every service has moved on.
    const done = await waitFor(
      'every service at ready_for_deploy, with no run active',
      async () => {
        const r = await coordinate();
        ok(r);
        const now = await list();
        // A build promotes main before its last step ends: the stage can move before its run does.
        return now.every((s) => s.stage === 'ready_for_deploy' && s.active_run_id === null) ? now : undefined;
      },
      { timeoutMs: 300_000, everyMs: 1000 },
    );
    const byName = Object.fromEntries(done.map((s) => [s.service, s]));
    for (const s of done) {
      expect(s.active_run_id).toBeNull();
      // The service's main holds the work and stays a sound repository.
      expect(gitFsck(s.path).ok).toBe(true);
    }
    expect(Object.keys(byName.quotes.cycle_times)).toEqual(['needs_spec']);
    expect(Object.keys(byName.adder.cycle_times)).toEqual(['needs_tests']);
    expect(Object.keys(byName.broken.cycle_times)).toEqual(['tests_failing']);
    for (const s of done) expect(Object.values(s.cycle_times)[0]).toBeGreaterThan(0);
    const stats = CoordinatorCycleTimesResponseSchema.parse((await http(sup.url, 'GET', '/coordinator/cycle_times')).body);
    expect(Object.keys(stats).sort()).toEqual(['needs_spec', 'needs_tests', 'tests_failing']);

    // One run per service, ever (the coordinators never started a second one), each succeeded.
    const runs = RunListResponseSchema.parse((await http(sup.url, 'GET', '/runs?limit=100')).body).runs;
    const full = await Promise.all(runs.map(async (r) => RunResponseSchema.parse((await http(sup.url, 'GET', `/runs/${r.run_id}`)).body)));
    const perService = Object.fromEntries(done.map((s) => [s.service, full.filter((r) => r.repo_url === s.path).map((r) => r.state)]));
    expect(perService).toEqual({ quotes: ['DONE_SUCCESS'], adder: ['DONE_SUCCESS'], broken: ['DONE_SUCCESS'] });

    // Every attempt was claimed by an executor whose capabilities cover the phase's requires.
    const caps = Object.fromEntries(ExecutorListResponseSchema.parse((await http(sup.url, 'GET', '/executors')).body).map((e) => [e.executor_id, e.capabilities]));
    expect(caps).toEqual({ 'exec-builder': ['builder'], 'exec-tester': ['tester'] });
    const claimedBy: Record<string, string[]> = {};
    for (const run of full) {
      const sse = await (await fetch(`${sup.url}/runs/${run.run_id}/events?follow=false`)).text();
      const claims = sse
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6)) as { type: string; phase_id: string | null; payload: { executor_id?: string } })
        .filter((e) => e.type === 'phase_claimed');
      for (const c of claims) {
        const phase = run.phases.find((p) => p.phase_id === c.phase_id)!;
        for (const need of phase.requires) expect({ phase: phase.phase_id, executor: c.payload.executor_id, has: caps[c.payload.executor_id!].includes(need) }).toMatchObject({ has: true });
        (claimedBy[phase.phase_id] ??= []).push(c.payload.executor_id!);
      }
    }
    expect([...new Set(claimedBy['write-tests'])]).toEqual(['exec-tester']);
    expect([...new Set(claimedBy['fix-tests'])]).toEqual(['exec-builder']);

    // The runs were worked in place: each service's main holds the work; the scratch workspaces got no branch.
    expect(await readFileAtRef(byName.quotes.path, 'main', 'SPEC.md')).toContain('hello-service');
    expect(await readFileAtRef(byName.adder.path, 'main', 'test/add.test.js')).toBe(NEW_TEST);
    expect(await readFileAtRef(byName.broken.path, 'main', 'src/index.js')).toBe(FIXED_ADD);
    for (const cap of ['builder', 'tester']) expect(await listBranches({ fs, dir: path.join(tmp, `ws-${cap}`) })).toEqual(['main']);
  }, 400_000);
});
