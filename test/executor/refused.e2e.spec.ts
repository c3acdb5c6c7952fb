import path from 'node:path';
import { type ScriptedLlmServer } from '@app/testing';
import { DEMO_REPO_FILES, createRepo, executorEnv, plan, phase, runExecutor, startRun, useTestbed } from './harness.js';

/**
 * A refusal the executor cannot act on (here a wrong API key) ends it with exit code 1 and one
 * clear line (CONTRACT.md section 3), not an uncaught exception and its stack trace.
 */
let llm: ScriptedLlmServer;
const bed = useTestbed('refused', { apiKey: 'the-right-key-5b1f' });
beforeAll(async () => {
  llm = await bed.startLlm({ script: { replies: [] } });
});

it('exits 1 with a one-line reason when the supervisor refuses its API key', async () => {
  const repo = path.join(bed.tmp, 'repo');
  await createRepo(repo, DEMO_REPO_FILES);
  await startRun(bed.sup.url, plan('refused', [phase('docs', 0)]), 'the-right-key-5b1f');
  const result = await runExecutor(bed.sup.url, repo, 'refused', executorEnv(bed.tmp, llm, { AUTOPACK_API_KEY: 'a-wrong-key-77c2' }));
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('the supervisor refused the executor');
  expect(result.stderr).toContain('UNAUTHORIZED');
  expect(result.stderr).not.toMatch(/^\s+at /m);
  expect(result.stderr).not.toContain('a-wrong-key-77c2');
});
