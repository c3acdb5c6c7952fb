import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { DEMO_REPO_FILES, createRepo, executorEnv, plan, phase, runExecutor, startRun } from './harness.js';

/**
 * A refusal the executor cannot act on (here a wrong API key) ends it with exit code 1 and one
 * clear line (CONTRACT.md section 3), not an uncaught exception and its stack trace.
 */
let tmp: string;
let sup: TestSupervisor;
let llm: ScriptedLlmServer;
beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-refused-'));
  sup = await startTestSupervisor({ apiKey: 'the-right-key-5b1f' });
  llm = await startScriptedLlmServer({ script: { replies: [] } });
});
afterAll(async () => {
  await llm?.close();
  await sup?.close();
  rmSync(tmp, { recursive: true, force: true });
});

it('exits 1 with a one-line reason when the supervisor refuses its API key', async () => {
  const repo = path.join(tmp, 'repo');
  await createRepo(repo, DEMO_REPO_FILES);
  await startRun(sup.url, plan('refused', [phase('docs', 0)]), 'the-right-key-5b1f');
  const result = await runExecutor(sup.url, repo, 'refused', executorEnv(tmp, llm, { AUTOPACK_API_KEY: 'a-wrong-key-77c2' }));
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('the supervisor refused the executor');
  expect(result.stderr).toContain('UNAUTHORIZED');
  expect(result.stderr).not.toMatch(/^\s+at /m);
  expect(result.stderr).not.toContain('a-wrong-key-77c2');
});
