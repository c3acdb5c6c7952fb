import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { DROPLET_INTENT, DROPLET_PHASE_ID, dropletScript } from '../../apps/cli/src/demo-droplet.js';
import { executorEnv, startBuildExecutor, waitForBuild } from '../support/droplet.js';
import { type GitHttpServer, startGitHttpServer } from '../support/git-http-server.js';
import { http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

/*
 * A droplet build on a shared repository (`repo_url`, CONTRACT.md sections 5 and 8): its
 * commits are pushed as any run's are, and promotion moves the shared base branch (pushed,
 * fast-forward), not only the executor's clone.
 */

let sup: TestSupervisor;
let llm: ScriptedLlmServer;
let git: GitHttpServer;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-droplet-shared-'));
  sup = await startTestSupervisor({ leaseSeconds: 20 });
  llm = await startScriptedLlmServer({ script: dropletScript() });
  git = await startGitHttpServer();
});
afterAll(async () => {
  await git?.close();
  await llm?.close();
  await sup?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('a droplet build on a shared repository', () => {
  it('pushes its commits and promotes the shared base branch', async () => {
    git.createRepository('svc', { 'README.md': '# svc\n\nA service.\n' });
    const before = git.git('svc', 'rev-parse', 'main').trim();
    const workspace = path.join(tmp, 'clone');
    git.clone('svc', workspace);

    const accepted = await http(sup.url, 'POST', '/executor/build-droplet', { architect_intent: DROPLET_INTENT, droplet_id: 'shared-1', repo_url: git.url('svc'), auto_deploy: false });
    expect(accepted.status).toBe(202);
    const executor = startBuildExecutor('shared-1', workspace, sup.url, executorEnv(tmp, llm));
    const done = await waitForBuild(sup.url, 'shared-1', ['completed', 'failed']);
    const exit = await executor.done;
    expect({ status: done.status, error: done.error ?? null, exit: exit.code, stderr: exit.code === 0 ? '' : exit.stderr.slice(-2000) }).toEqual({ status: 'completed', error: null, exit: 0, stderr: '' });

    // The shared repository holds the build's commits, and its main is the integration head,
    // moved forward from where it was (a fast-forward: the old main is an ancestor).
    const head = git.git('svc', 'rev-parse', 'autonomous/shared-1').trim();
    expect(git.git('svc', 'rev-parse', 'main').trim()).toBe(head);
    expect(() => git.git('svc', 'merge-base', '--is-ancestor', before, head)).not.toThrow();
    const phases = git
      .git('svc', 'log', '--reverse', '--format=%(trailers:key=Autopack-Phase,valueonly)', `${before}..main`)
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    expect(phases).toEqual(['spec', 'package', DROPLET_PHASE_ID]);
    git.git('svc', 'fsck', '--strict');
  }, 180_000);
});
