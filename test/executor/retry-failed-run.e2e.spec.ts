import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type ScriptedLlmServer } from '@app/testing';
import { http } from '../support/supervisor.js';
import { DEMO_REPO_FILES, approveReply, builderReply, createRepo, executorEnv, getRun, phase, phaseCommits, runExecutor, startRun, useTestbed, plainLines } from './harness.js';

/**
 * A run whose phase failed for good ends DONE_FAILED_REQUIRES_HUMAN_REVIEW, and the executor
 * that served it exits 3 (CONTRACT.md section 3). Retrying the failed phase through the API
 * reopens the run (section 6); a new executor then runs the phase and the tier it blocked.
 */
const bed = useTestbed('retry-run');
let llm: ScriptedLlmServer | undefined;
afterEach(async () => {
  await llm?.close();
  llm = undefined;
});


it('exits 3 after serving a failed run; a retry through the API reopens it and it finishes DONE_SUCCESS with the later tier run', async () => {
  const repo = path.join(bed.tmp, 'repo');
  await createRepo(repo, DEMO_REPO_FILES);
  const runId = 'retry-run';
  await startRun(bed.sup.url, {
    run: { run_id: runId, token_cap: 5_000_000 },
    tiers: [
      { tier_id: 't1', tier_index: 0, name: 'Docs' },
      { tier_id: 't2', tier_index: 1, name: 'Notes' },
    ],
    phases: [phase('docs', 0, { scope: { paths: ['README.md'] } }), phase('notes', 1, { tier_id: 't2', scope: { paths: ['NOTES.md'] } })],
  });

  // Every builder reply for `docs` is prose instead of the forced tool call: each attempt fails.
  llm = await bed.startLlm({ script: { replies: [{ tool: 'submit_changes', match: '# Phase docs:', text: 'I would rather chat about it.', times: 20 }] } });
  const failed = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm));
  expect(failed.code).toBe(3);
  expect(plainLines(failed.stderr)).toEqual([expect.stringMatching(/^autopack executor: run retry-run ended DONE_FAILED_REQUIRES_HUMAN_REVIEW: phase\(s\) failed: docs /)]);
  const ended = await getRun(bed.sup.url, runId);
  expect(ended.state).toBe('DONE_FAILED_REQUIRES_HUMAN_REVIEW');
  expect(ended.phases.map((p: any) => [p.phase_id, p.state])).toEqual([
    ['docs', 'FAILED'],
    ['notes', 'SKIPPED'],
  ]);
  const spent = ended.phases[0].attempts_used;
  expect(spent).toBe(ended.phases[0].max_attempts);
  expect(await phaseCommits(repo, runId)).toEqual([]);

  const retried = await http(bed.sup.url, 'POST', `/runs/${runId}/phases/docs/retry`);
  expect(retried.status).toBe(200);
  expect((await getRun(bed.sup.url, runId)).state).toBe('PHASE_EXECUTION');

  await llm.close();
  llm = await bed.startLlm({
    script: {
      replies: [
        builderReply('docs', { summary: 'Describe the library', edits: [{ path: 'README.md', action: 'replace', content: '# demo-calc\n\nAdds numbers.\n' }] }),
        builderReply('notes', { summary: 'Add release notes', edits: [{ path: 'NOTES.md', action: 'create', content: '# Notes\n\n- first release\n' }] }),
        approveReply(2),
      ],
    },
  });
  const resumed = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm));
  expect({ code: resumed.code, stderr: resumed.code === 0 ? '' : resumed.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
  const done = await getRun(bed.sup.url, runId);
  expect(done.state).toBe('DONE_SUCCESS');
  expect(done.phases.map((p: any) => [p.phase_id, p.state, p.attempts_used])).toEqual([
    ['docs', 'COMPLETE', 1],
    ['notes', 'COMPLETE', 1],
  ]);
  expect(done.tiers.map((t: any) => t.state)).toEqual(['COMPLETE', 'COMPLETE']);
  // Attempt numbers go on after the failed ones: the retried phase's commit is attempt spent+1.
  expect(await phaseCommits(repo, runId)).toEqual([
    ['docs', String(spent + 1)],
    ['notes', '1'],
  ]);
  expect(readFileSync(path.join(repo, 'NOTES.md'), 'utf8')).toContain('first release');
});
