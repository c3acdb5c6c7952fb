import fs, { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import { type ScriptedLlmServer } from '@app/testing';
import { claimNext } from '../support/supervisor.js';
import { DEMO_REPO_FILES, createRepo, executorEnv, logMessages, phase, plan, runExecutor, startRun, useTestbed, plainLines } from './harness.js';

/**
 * Workspace problems are one clear line and exit code 1, before anything is claimed and before
 * the executor says it started.
 */
let claims = 0;
const bed = useTestbed('workspace', {}, {
  intercept: (req, _res, next) => {
    if (req.method === 'POST' && req.path === '/phases/claim') claims++;
    next();
  },
});
let llm: ScriptedLlmServer;
beforeAll(async () => {
  llm = await bed.startLlm({ script: { replies: [] } });
});


async function expectRefused(workspace: string, runId: string, message: RegExp) {
  claims = 0;
  const result = await runExecutor(bed.sup.url, workspace, runId, executorEnv(bed.tmp, llm));
  expect(result.code).toBe(1);
  expect(plainLines(result.stderr)).toEqual([expect.stringMatching(message)]);
  expect(result.stderr).not.toMatch(/^\s+at /m);
  expect(logMessages(result.stderr)).not.toContain('executor started');
  expect(claims).toBe(0);
  expect(llm.requests).toHaveLength(0);
}

describe('workspace problems', () => {
  beforeAll(async () => {
    await startRun(bed.sup.url, plan('ws-run', [phase('docs', 0)]));
  });

  it('a workspace that does not exist', async () => {
    const missing = path.join(bed.tmp, 'no', 'such', 'dir');
    await expectRefused(missing, 'ws-run', new RegExp(`^autopack executor: --workspace ${missing} does not exist$`));
  });

  it('a file instead of a directory', async () => {
    const file = path.join(bed.tmp, 'a-file');
    writeFileSync(file, 'x');
    await expectRefused(file, 'ws-run', /^autopack executor: --workspace .*a-file is not a directory$/);
  });

  it('a directory that is not a git repository', async () => {
    const plain = path.join(bed.tmp, 'plain');
    mkdirSync(plain);
    await expectRefused(plain, 'ws-run', /^autopack executor: --workspace .*plain is not a git repository/);
  });

  it('uncommitted changes', async () => {
    const dirty = path.join(bed.tmp, 'dirty');
    await createRepo(dirty, DEMO_REPO_FILES);
    writeFileSync(path.join(dirty, 'README.md'), 'changed by hand\n');
    await expectRefused(dirty, 'ws-run', /^autopack executor: --workspace .*dirty has uncommitted changes \(README\.md\); commit or stash them first$/);
  });

  it("on the branch of another run that is still going; a finished run's branch is fine", async () => {
    const busy = path.join(bed.tmp, 'busy');
    await createRepo(busy, DEMO_REPO_FILES);
    await startRun(bed.sup.url, plan('other-run', [phase('docs', 0)]));
    await git.branch({ fs, dir: busy, ref: 'autonomous/other-run', checkout: true });
    await expectRefused(busy, 'ws-run', /^autopack executor: --workspace .*busy is on autonomous\/other-run, the branch of run other-run, which is still RUN_CREATED; serve run other-run there, or give run ws-run its own clone$/);

    // Once that run has ended, its branch is simply left behind and the executor goes on.
    const c = await claimNext(bed.sup.url, 'other-run');
    await fetch(`${bed.sup.url}/runs/other-run/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(c.phase_id).toBe('docs');
    claims = 0;
    const result = await runExecutor(bed.sup.url, busy, 'ws-run', executorEnv(bed.tmp, llm, { AUTOPACK_LOG_LEVEL: 'info' }));
    expect(logMessages(result.stderr)).toContain('executor started');
    expect(claims).toBeGreaterThan(0);
  });
});
