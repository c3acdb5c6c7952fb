import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { branchLog, headCommit } from '@app/git';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import WebSocket from 'ws';
import { DROPLET_INTENT, DROPLET_PHASE_ID, dropletHooks, dropletScript } from '../../apps/cli/src/demo-droplet.js';
import { type DropletTargets, emptyRepository, executorEnv, startBuildExecutor, startDropletTargets, waitForBuild } from '../support/droplet.js';
import { gitFsck } from '../support/processes.js';
import { http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

let sup: TestSupervisor;
let llm: ScriptedLlmServer;
let targets: DropletTargets;
let tmp: string;
let repo: string;
let ws: WebSocket | undefined;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-droplet-'));
  repo = await emptyRepository(path.join(tmp, 'repo'));
  sup = await startTestSupervisor({ leaseSeconds: 20 });
  llm = await startScriptedLlmServer({ script: dropletScript() });
  targets = await startDropletTargets(tmp, [repo]);
});
afterAll(async () => {
  ws?.terminate();
  await targets?.close();
  await llm?.close();
  await sup?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('a droplet build from a sentence to a registered service (auto mode)', () => {
  it('plans, commits SPEC and code, verifies, promotes, deploys, registers, and streams its steps in order', async () => {
    const accepted = await http(sup.url, 'POST', '/executor/build-droplet', { architect_intent: DROPLET_INTENT, droplet_id: 'hello-1', droplet_name: 'hello-service', ...dropletHooks(targets, repo) });
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({ build_id: 'hello-1', status: 'running', stream_url: '/executor/builds/hello-1/stream', status_url: '/executor/builds/hello-1/status' });

    // The stream, from the start: every step message in order.
    const messages: { type: string; phase: string; progress_percent: number }[] = [];
    ws = new WebSocket(`${sup.url.replace('http', 'ws')}/executor/builds/hello-1/stream`);
    const closed = new Promise<void>((resolve) => ws!.on('close', () => resolve()));
    ws.on('message', (data) => messages.push(JSON.parse(String(data))));
    await new Promise((resolve, reject) => ws!.once('open', resolve).once('error', reject));

    const executor = startBuildExecutor('hello-1', repo, sup.url, executorEnv(tmp, llm));
    const done = await waitForBuild(sup.url, 'hello-1', ['completed', 'failed', 'cancelled']);
    const exit = await executor.done;
    expect({ status: done.status, error: done.error ?? null, exit: exit.code, stderr: exit.code === 0 ? '' : exit.stderr.slice(-3000) }).toEqual({ status: 'completed', error: null, exit: 0, stderr: '' });
    expect(done.progress_percent).toBe(100);
    expect(done.phases.map((p: { step: number; status: string }) => [p.step, p.status])).toEqual([
      [1, 'completed'],
      [2, 'completed'],
      [3, 'completed'],
      [4, 'completed'],
      [5, 'completed'],
      [6, 'completed'],
    ]);

    // SPEC first, then the foundation files, then the planned phase; the base branch promoted to that head.
    const log = (await branchLog(repo, 'autonomous/hello-1', { depth: 10 })).reverse();
    expect(log.map((c) => c.trailers['Autopack-Phase'])).toEqual(['spec', 'package', DROPLET_PHASE_ID]);
    const head = await headCommit(repo, 'autonomous/hello-1');
    expect(await headCommit(repo, 'main')).toBe(head);
    const fsck = gitFsck(repo);
    expect(fsck.ok ? '' : fsck.output).toBe('');

    // Deploy and register called once each, with the promoted commit; the service answers.
    const deployments = targets.deployer.deployments();
    expect(deployments.map((d) => [d.build_id, d.commit_sha, d.status])).toEqual([['hello-1', head, 'running']]);
    expect(done.deployment_url).toBe(deployments[0].url);
    const service = await fetch(`${done.deployment_url}/health`);
    expect(service.status).toBe(200);
    expect(targets.registry.entries().map((e) => [e.build_id, e.commit_sha, e.deployment_url])).toEqual([['hello-1', head, done.deployment_url]]);

    // The run behind it succeeded; the planner's plan made its phases.
    const run = (await http(sup.url, 'GET', '/runs/hello-1')).body;
    expect(run.state).toBe('DONE_SUCCESS');
    expect(run.phases.map((p: { phase_id: string; state: string }) => [p.phase_id, p.state])).toEqual(
      expect.arrayContaining([
        ['spec', 'COMPLETE'],
        ['package', 'COMPLETE'],
        [DROPLET_PHASE_ID, 'COMPLETE'],
        ['verify', 'COMPLETE'],
        ['promote', 'COMPLETE'],
        ['deploy', 'COMPLETE'],
      ]),
    );

    await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error(`stream not closed; got ${JSON.stringify(messages)}`)), 10_000))]);
    const stepMessages = messages.filter((m) => m.type === 'phase_start' || m.type === 'phase_complete').map((m) => `${m.type}:${m.phase}`);
    expect(stepMessages).toEqual([
      'phase_start:SPEC Generation',
      'phase_complete:SPEC Generation',
      'phase_start:Package',
      'phase_complete:Package',
      'phase_start:Build',
      'phase_complete:Build',
      'phase_start:Verify',
      'phase_complete:Verify',
      'phase_start:Deploy',
      'phase_complete:Deploy',
      'phase_start:Register',
      'phase_complete:Register',
    ]);
    expect(messages.at(-1)).toMatchObject({ type: 'build_complete', progress_percent: 100 });
    const percents = messages.map((m) => m.progress_percent);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
  }, 240_000);
});
