import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { branchLog, headCommit } from '@app/git';
import { type LlmScriptInput, type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { DROPLET_INTENT, DROPLET_PHASE_ID, dropletPlan, dropletScript } from '../../apps/cli/src/demo-droplet.js';
import { type DropletTargets, dropletHooks, emptyRepository, executorEnv, startBuildExecutor, startDropletTargets, waitForBuild } from '../support/droplet.js';
import { type HookTarget, startHookTarget } from '../support/hook-target.js';
import { http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

/*
 * Droplet builds under an operator's control (CONTRACT.md section 8): approval checkpoints
 * and rejections, a failed health check rolled back, a failed build retried from a step, and
 * the cap on concurrent builds. Real supervisor and executor processes, scripted LLM server,
 * the demo's local deployer and registry.
 */

let sup: TestSupervisor;
let targets: DropletTargets;
let tmp: string;
const servers: ScriptedLlmServer[] = [];
const repos: Record<string, string> = {};
const REPO_NAMES = ['checkpoints', 'final', 'unhealthy', 'retried', 'nodeploy'];

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-droplet-control-'));
  for (const name of REPO_NAMES) repos[name] = await emptyRepository(path.join(tmp, name));
  sup = await startTestSupervisor({ leaseSeconds: 20, deliveryRetryDelaySeconds: 1 });
  targets = await startDropletTargets(tmp, Object.values(repos));
});
afterAll(async () => {
  await targets?.close();
  for (const s of servers) await s.close();
  await sup?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function llmServer(script: LlmScriptInput): Promise<ScriptedLlmServer> {
  const s = await startScriptedLlmServer({ script });
  servers.push(s);
  return s;
}

async function startBuild(id: string, body: Record<string, unknown>): Promise<void> {
  const r = await http(sup.url, 'POST', '/executor/build-droplet', { architect_intent: DROPLET_INTENT, droplet_id: id, ...body });
  expect(r.status).toBe(202);
}

const approve = (id: string, body: Record<string, unknown>) => http(sup.url, 'POST', `/executor/builds/${id}/approve`, body);
const stepStatuses = (b: { phases: { step: number; status: string }[] }) => b.phases.map((p) => p.status);

describe('droplet builds under control', () => {
  it('in checkpoints mode waits at spec_generated and at built; an approval that does not match is 409', async () => {
    const llm = await llmServer(dropletScript());
    await startBuild('cp-1', { approval_mode: 'checkpoints', ...dropletHooks(targets, repos.checkpoints) });
    const executor = startBuildExecutor('cp-1', repos.checkpoints, sup.url, executorEnv(tmp, llm));

    const atSpec = await waitForBuild(sup.url, 'cp-1', ['awaiting_approval', 'failed', 'completed']);
    expect({ status: atSpec.status, checkpoint: atSpec.checkpoint, current: atSpec.current_phase, steps: stepStatuses(atSpec) }).toEqual({
      status: 'awaiting_approval',
      checkpoint: 'spec_generated',
      current: 'SPEC Generation',
      steps: ['completed', 'pending', 'pending', 'pending', 'pending', 'pending'],
    });
    // Waiting means waiting: nothing but the SPEC is on the branch, and no executor claims.
    expect((await branchLog(repos.checkpoints, 'autonomous/cp-1', { depth: 5 })).map((c) => c.trailers['Autopack-Phase'])).toEqual(['spec']);

    // The run behind the build is approved through the build only.
    expect((await http(sup.url, 'POST', '/runs/cp-1/approve', { approved: true })).status).toBe(409);
    const wrong = await approve('cp-1', { approved: true, checkpoint: 'built' });
    expect({ status: wrong.status, code: wrong.body.error?.code }).toEqual({ status: 409, code: 'INVALID_TRANSITION' });
    expect((await approve('cp-1', { approved: true, checkpoint: 'spec_generated', notes: 'SPEC reads well' })).status).toBe(200);
    const second = await approve('cp-1', { approved: true, checkpoint: 'spec_generated' });
    expect(second.status).toBe(409);

    const atBuilt = await waitForBuild(sup.url, 'cp-1', ['awaiting_approval', 'failed', 'completed']);
    expect({ status: atBuilt.status, checkpoint: atBuilt.checkpoint, steps: stepStatuses(atBuilt) }).toEqual({
      status: 'awaiting_approval',
      checkpoint: 'built',
      steps: ['completed', 'completed', 'completed', 'completed', 'pending', 'pending'],
    });
    // Nothing promoted or deployed before the approval.
    await expect(headCommit(repos.checkpoints, 'main')).rejects.toThrow();
    expect(targets.deployer.deployments().filter((d) => d.build_id === 'cp-1')).toEqual([]);

    expect((await approve('cp-1', { approved: true })).status).toBe(200);
    const done = await waitForBuild(sup.url, 'cp-1', ['completed', 'failed']);
    expect({ status: done.status, error: done.error ?? null }).toEqual({ status: 'completed', error: null });
    expect((await approve('cp-1', { approved: true })).status).toBe(409);
    expect((await executor.done).code).toBe(0);
    expect(targets.registry.entries().filter((e) => e.build_id === 'cp-1')).toHaveLength(1);
  }, 180_000);

  it('in final mode waits only at built, and a rejection fails the build with nothing promoted, deployed or registered', async () => {
    const llm = await llmServer(dropletScript());
    await startBuild('final-1', { approval_mode: 'final', ...dropletHooks(targets, repos.final) });
    const executor = startBuildExecutor('final-1', repos.final, sup.url, executorEnv(tmp, llm));

    const waiting = await waitForBuild(sup.url, 'final-1', ['awaiting_approval', 'failed', 'completed']);
    expect({ status: waiting.status, checkpoint: waiting.checkpoint, steps: stepStatuses(waiting) }).toEqual({
      status: 'awaiting_approval',
      checkpoint: 'built',
      steps: ['completed', 'completed', 'completed', 'completed', 'pending', 'pending'],
    });
    // It never waited at spec_generated: the build's events say so.
    const events = (await http(sup.url, 'GET', '/runs/final-1/events?follow=false')).body as string;
    expect(String(events)).not.toContain('"checkpoint":"spec_generated"');

    const rejected = await approve('final-1', { approved: false, notes: 'not this one' });
    expect(rejected.status).toBe(200);
    expect(rejected.body).toMatchObject({ status: 'failed' });
    expect(rejected.body.error).toContain('not this one');
    expect((await executor.done).code).toBe(3);

    await expect(headCommit(repos.final, 'main')).rejects.toThrow();
    expect(targets.deployer.deployments().filter((d) => d.build_id === 'final-1')).toEqual([]);
    expect(targets.registry.entries().filter((e) => e.build_id === 'final-1')).toEqual([]);
    expect((await http(sup.url, 'GET', '/runs/final-1')).body.state).toBe('DONE_FAILED_REQUIRES_HUMAN_REVIEW');
  }, 180_000);

  it('a failing health check calls the rollback hook and puts the base branch back, failing the build at Deploy', async () => {
    const llm = await llmServer(dropletScript());
    const sick: HookTarget = await startHookTarget(() => ({ status: 503, body: { status: 'down' } }));
    const rollbacks: HookTarget = await startHookTarget(() => ({ status: 200, body: { ok: true } }));
    try {
      const hooks = dropletHooks(targets, repos.unhealthy);
      await startBuild('sick-1', { ...hooks, health_check: { url: `${sick.url}/health`, timeout_s: 2 }, rollback: { url: `${rollbacks.url}/rollback`, body: { build_id: '{{build_id}}', commit_sha: '{{commit_sha}}' } } });
      const executor = startBuildExecutor('sick-1', repos.unhealthy, sup.url, executorEnv(tmp, llm));
      const done = await waitForBuild(sup.url, 'sick-1', ['completed', 'failed']);
      expect({ status: done.status, steps: stepStatuses(done) }).toEqual({ status: 'failed', steps: ['completed', 'completed', 'completed', 'completed', 'failed', 'pending'] });
      expect(done.error).toMatch(/health check failed/);
      expect((await executor.done).code).toBe(3);

      // The health check was tried (with retries), the rollback hook called once with the promoted commit.
      expect(sick.to('/health').length).toBeGreaterThan(1);
      const promoted = await headCommit(repos.unhealthy, 'autonomous/sick-1');
      expect(rollbacks.to('/rollback').map((r) => r.body)).toEqual([{ build_id: 'sick-1', commit_sha: promoted }]);
      // The base branch was created by the promotion, so putting it back removes it.
      await expect(headCommit(repos.unhealthy, 'main')).rejects.toThrow();
      const run = (await http(sup.url, 'GET', '/runs/sick-1')).body;
      expect(run.phases.find((p: { phase_id: string }) => p.phase_id === 'rollback')).toMatchObject({ state: 'COMPLETE' });
      expect(targets.registry.entries().filter((e) => e.build_id === 'sick-1')).toEqual([]);
    } finally {
      await sick.close();
      await rollbacks.close();
    }
  }, 180_000);

  it('a build failed at Build is retried from_step 3 and completes', async () => {
    const plan = dropletPlan();
    const attempts = 3; // feature_scaffolding's builder attempts
    const failingTest = { path: 'test/always.test.js', action: 'create', content: "import test from 'node:test';\nimport assert from 'node:assert/strict';\n\ntest('is wrong', () => assert.equal(1, 2));\n" };
    const good = dropletScript();
    const llm = await llmServer({
      replies: [
        good.replies[0],
        ...Array.from({ length: attempts }, (_, i) => ({
          tool: 'submit_changes',
          match: `# Phase ${DROPLET_PHASE_ID}:`,
          arguments: { summary: `A broken first try (${i + 1})`, edits: [{ ...failingTest, content: `${failingTest.content}// try ${i + 1}\n` }] },
        })),
        ...good.replies.slice(1),
      ],
    });
    expect(plan.phases[0].task_category).toBe('feature_scaffolding');
    await startBuild('retry-1', dropletHooks(targets, repos.retried));
    const first = startBuildExecutor('retry-1', repos.retried, sup.url, executorEnv(tmp, llm));
    const failed = await waitForBuild(sup.url, 'retry-1', ['completed', 'failed']);
    expect({ status: failed.status, steps: stepStatuses(failed) }).toEqual({ status: 'failed', steps: ['completed', 'completed', 'failed', 'pending', 'pending', 'pending'] });
    expect((await first.done).code).toBe(3);

    const bad = await http(sup.url, 'POST', '/executor/builds/retry-1/retry', { from_step: 9 });
    expect(bad.status).toBe(422);
    const retried = await http(sup.url, 'POST', '/executor/builds/retry-1/retry', { from_step: 3 });
    expect(retried.status).toBe(200);
    expect(retried.body.status).toMatch(/^(queued|running)$/);
    expect(stepStatuses(retried.body).slice(0, 3)).toEqual(['completed', 'completed', expect.stringMatching(/^(pending|running)$/)]);

    const second = startBuildExecutor('retry-1', repos.retried, sup.url, executorEnv(tmp, llm), 'exec-retry-1b');
    const done = await waitForBuild(sup.url, 'retry-1', ['completed', 'failed']);
    expect({ status: done.status, error: done.error ?? null }).toEqual({ status: 'completed', error: null });
    expect((await second.done).code).toBe(0);
    // The SPEC and package were not redone: one commit each, then the planned phase's.
    const log = (await branchLog(repos.retried, 'autonomous/retry-1', { depth: 10 })).reverse();
    expect(log.map((c) => c.trailers['Autopack-Phase'])).toEqual(['spec', 'package', DROPLET_PHASE_ID]);
    expect(targets.registry.entries().filter((e) => e.build_id === 'retry-1')).toHaveLength(1);
  }, 180_000);

  it('without a deploy hook (or with auto_deploy false) promotion alone is Deploy, and Register is skipped', async () => {
    const llm = await llmServer(dropletScript());
    const hooks = dropletHooks(targets, repos.nodeploy);
    await startBuild('nodeploy-1', { auto_deploy: false, ...hooks });
    const executor = startBuildExecutor('nodeploy-1', repos.nodeploy, sup.url, executorEnv(tmp, llm));
    const done = await waitForBuild(sup.url, 'nodeploy-1', ['completed', 'failed']);
    expect({ status: done.status, steps: stepStatuses(done), url: done.deployment_url ?? null }).toEqual({
      status: 'completed',
      steps: ['completed', 'completed', 'completed', 'completed', 'completed', 'skipped'],
      url: null,
    });
    expect((await executor.done).code).toBe(0);
    expect(await headCommit(repos.nodeploy, 'main')).toBe(await headCommit(repos.nodeploy, 'autonomous/nodeploy-1'));
    expect(targets.deployer.deployments().filter((d) => d.build_id === 'nodeploy-1')).toEqual([]);
    expect(targets.registry.entries().filter((e) => e.build_id === 'nodeploy-1')).toEqual([]);
  }, 180_000);

  it('runs at most AUTOPACK_MAX_CONCURRENT_BUILDS builds; the fourth waits queued and starts first come first served', async () => {
    expect(sup.config.maxConcurrentBuilds).toBe(3);
    const ids = ['cap-1', 'cap-2', 'cap-3', 'cap-4'];
    const answers = await Promise.all(ids.map((id) => http(sup.url, 'POST', '/executor/build-droplet', { architect_intent: DROPLET_INTENT, droplet_id: id })));
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202]);
    const statuses = async () => Object.fromEntries(await Promise.all(ids.map(async (id) => [id, (await http(sup.url, 'GET', `/executor/builds/${id}/status`)).body.status])));
    const first = await statuses();
    expect(Object.values(first).filter((s) => s === 'running')).toHaveLength(3);
    expect(Object.values(first).filter((s) => s === 'queued')).toHaveLength(1);
    const queued = ids.find((id) => first[id] === 'queued')!;
    // A queued build's run gives no work to an executor.
    const claim = await http(sup.url, 'POST', '/phases/claim', { executor_id: 'probe', run_id: queued });
    expect(claim.status).toBe(204);
    const health = (await http(sup.url, 'GET', '/executor/health')).body;
    expect(health).toMatchObject({ active_builds: 3, queued_builds: 1, max_concurrent_builds: 3 });

    // One running build cancelled: the queued one starts.
    const running = ids.find((id) => first[id] === 'running')!;
    expect((await http(sup.url, 'POST', `/executor/builds/${running}/cancel`)).body.status).toBe('cancelled');
    expect((await http(sup.url, 'DELETE', `/executor/builds/${running}`)).status).toBe(409);
    expect((await http(sup.url, 'GET', `/executor/builds/${queued}/status`)).body.status).toBe('running');
    const listed = (await http(sup.url, 'GET', '/executor/builds?status=running')).body.builds.map((b: { build_id: string }) => b.build_id);
    expect(listed).toEqual(expect.arrayContaining(ids.filter((id) => id !== running)));
    // A droplet is built again: a new build with an id of its own, in the queue's tail.
    const again = await http(sup.url, 'POST', '/executor/build-droplet', { architect_intent: DROPLET_INTENT, droplet_id: 'cap-1' });
    expect(again.status).toBe(202);
    expect(again.body.build_id).toMatch(/^cap-1-[0-9a-f]{6}$/);
    expect(again.body.status).toBe('queued');
    expect((await http(sup.url, 'GET', `/executor/builds/${again.body.build_id}/status`)).body).toMatchObject({ droplet_id: 'cap-1', status: 'queued' });
    for (const id of [...ids, again.body.build_id]) if (id !== running) await http(sup.url, 'DELETE', `/executor/builds/${id}`);
  }, 60_000);
});
