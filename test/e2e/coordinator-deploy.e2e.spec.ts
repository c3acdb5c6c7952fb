import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoordinatorServicesResponseSchema, ObserveServiceResponseSchema } from '@app/contracts';
import { createSampleRepository, headCommit } from '@app/git';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { dropletHooks } from '../../apps/cli/src/demo-droplet.js';
import { demoServiceFiles } from '../../apps/cli/src/demo-service-files.js';
import { type DropletTargets, emptyRepository, executorEnv, startDropletTargets, waitForBuild } from '../support/droplet.js';
import { runCli } from '../support/processes.js';
import { http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

/*
 * The coordinator's `ready_for_deploy` (CONTRACT.md section 9): a service whose code on main
 * passes its tests gets the Deploy and Register steps (a deploy-only build with the configured
 * hooks), an executor works it in the service's own repository, and the next observation finds
 * the service in production.
 */

let sup: TestSupervisor;
let llm: ScriptedLlmServer;
let targets: DropletTargets;
let tmp: string;
let service: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-coordinator-deploy-'));
  service = path.join(tmp, 'services', 'hello');
  await createSampleRepository(service, demoServiceFiles(), { author: { name: 'T', email: 't@example.com' }, message: 'the hello service' });
  targets = await startDropletTargets(tmp, [service]);
  sup = await startTestSupervisor({ leaseSeconds: 20, hooks: dropletHooks(targets, service) });
  // No LLM call is made by a deploy-only build; the executor still needs provider settings.
  llm = await startScriptedLlmServer({ script: { replies: [] } });
});
afterAll(async () => {
  await targets?.close();
  await llm?.close();
  await sup?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('ready_for_deploy through the coordinator', () => {
  it('deploys and registers a ready service, worked in its own repository, and the service reaches production', async () => {
    const observe = async (stage: string) =>
      ObserveServiceResponseSchema.parse((await http(sup.url, 'POST', '/coordinator/services/hello/observe', { path: service, stage, test_command: 'node --test' })).body);
    const first = await observe('ready_for_deploy');
    expect(first).toMatchObject({ stage: 'ready_for_deploy', started: true });
    const buildId = first.active_run_id!;

    const workspace = await emptyRepository(path.join(tmp, 'scratch'));
    const executor = runCli(['executor', '--workspace', workspace, '--api-url', sup.url, '--poll-interval', '1', '--exit-when-idle', '--executor-id', 'deployer-1'], executorEnv(tmp, llm), 120_000);
    const done = await waitForBuild(sup.url, buildId, ['completed', 'failed']);
    expect({ status: done.status, error: done.error ?? null }).toEqual({ status: 'completed', error: null });
    expect(done.phases.map((p: { status: string }) => p.status)).toEqual(['skipped', 'skipped', 'skipped', 'skipped', 'completed', 'completed']);
    await executor.done;

    // The commit on main is what runs and what was registered.
    const main = await headCommit(service, 'main');
    expect(targets.deployer.deployments().map((d) => [d.build_id, d.commit_sha, d.status])).toEqual([[buildId, main, 'running']]);
    expect(targets.registry.entries().map((e) => [e.build_id, e.commit_sha])).toEqual([[buildId, main]]);
    expect((await fetch(`${done.deployment_url}/health`)).status).toBe(200);

    expect(await observe('ready_for_deploy')).toMatchObject({ stage: 'production', active_run_id: null, started: false });
    const line = CoordinatorServicesResponseSchema.parse((await http(sup.url, 'GET', '/coordinator/services')).body);
    expect(line.find((s) => s.service === 'hello')).toMatchObject({ stage: 'production' });
    expect(line.find((s) => s.service === 'hello')!.cycle_times).toHaveProperty('ready_for_deploy');
  }, 180_000);
});
