import path from 'node:path';
import { type ScriptedLlmServer } from '@app/testing';
import { claimNext, http } from '../support/supervisor.js';
import { DEMO_REPO_FILES, approveReply, builderReply, createRepo, executorEnv, getRun, logMessages, phase, phaseCommits, plan, runExecutor, startRun, useTestbed } from './harness.js';

/**
 * `--exit-when-idle` means nothing is left to claim, now or later: a phase another executor
 * holds may still come back (its lease expires, or it hands the phase back), so an idle
 * executor waits for it instead of leaving the run with nobody to finish it.
 */
let llm: ScriptedLlmServer | undefined;
/** Claim requests that found nothing to claim (only the real executor's can: the ghost's succeeds). */
let emptyPolls = 0;
const bed = useTestbed('idle', { leaseSeconds: 2 }, {
  intercept: (req, res, next) => {
    if (req.method === 'POST' && req.path === '/phases/claim') {
      res.on('finish', () => {
        if (res.statusCode === 204) emptyPolls++;
      });
    }
    next();
  },
});

it('waits while another executor holds a phase, and finishes it once that lease expires', async () => {
  const repo = path.join(bed.tmp, 'repo');
  await createRepo(repo, DEMO_REPO_FILES);
  const runId = 'idle-wait';
  await startRun(bed.sup.url, plan(runId, [phase('docs', 0, { scope: { paths: ['README.md'] } })]));
  // Another executor claims the only phase and keeps its lease alive until the real executor
  // has polled and found nothing three times; then it vanishes without a word.
  const ghost = await claimNext(bed.sup.url, runId, 'ghost');
  expect(ghost.phase_id).toBe('docs');
  let heartbeats = 0;
  const keepAlive = setInterval(() => {
    if (emptyPolls >= 3) return clearInterval(keepAlive);
    heartbeats++;
    void http(bed.sup.url, 'POST', `/runs/${runId}/phases/docs/heartbeat`, { lease_token: ghost.lease_token });
  }, 500);

  llm = await bed.startLlm({
    script: { replies: [builderReply('docs', { summary: 'Describe the library', edits: [{ path: 'README.md', action: 'replace', content: '# demo-calc\n\nAdds numbers.\n' }] }), approveReply()] },
  });
  const result = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm));
  clearInterval(keepAlive);
  expect(emptyPolls).toBeGreaterThanOrEqual(3);
  expect(heartbeats).toBeGreaterThan(0);
  expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
  expect(logMessages(result.stderr)).toContain('attempt finished');

  const run = await getRun(bed.sup.url, runId);
  expect(run.state).toBe('DONE_SUCCESS');
  // The ghost's expired lease cost no attempt: it is an abandonment, and the phase's attempt number went on.
  expect(run.phases[0]).toMatchObject({ state: 'COMPLETE', attempts_used: 1, abandonments: 1 });
  expect(await phaseCommits(repo, runId)).toEqual([['docs', '2']]);
});
