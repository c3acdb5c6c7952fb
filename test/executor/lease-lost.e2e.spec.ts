import { readFileSync } from 'node:fs';
import path from 'node:path';
import { worktreeChanges } from '@app/git';
import { type ScriptedLlmServer } from '@app/testing';
import { claimNext, http } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { DEMO_REPO_FILES, approveReply, builderReply, createRepo, executorEnv, getRun, logMessages, phase, phaseCommits, plan, runExecutor, startRun, useTestbed } from './harness.js';

/**
 * The lease can be lost between an attempt's commit and its report (the supervisor was out of
 * reach longer than a lease). When the phase then ends without that commit, the commit must not
 * stay on the branch: a phase that did not complete has no commit.
 */
let llm: ScriptedLlmServer | undefined;
const runId = 'lost-after-commit';
/** Set once the executor's approval report has been held until the phase failed. */
let heldReport = false;
let failedWhileHeld: string | undefined;

/** Polls the run until its phase is no longer leased. */
function phaseStateOnceLeaseExpired(): Promise<string> {
  return waitFor(
    'the lease to expire',
    async () => {
      const state = (await getRun(bed.sup.url, runId)).phases[0].state as string;
      return state === 'FAILED' || state === 'QUEUED' ? state : undefined;
    },
    { timeoutMs: 20_000, everyMs: 200 },
  );
}

const bed = useTestbed('lease-lost', { leaseSeconds: 2 }, {
  // The supervisor goes out of the executor's reach right after the commit: heartbeats and
  // the approval report hang until the lease has expired; then they get their answers.
  intercept: (req, _res, next) => {
    const afterCommit = heldReport || (req.method === 'POST' && req.path.endsWith('/auditor_result'));
    if (!afterCommit || !(req.path.endsWith('/auditor_result') || req.path.endsWith('/heartbeat'))) return next();
    heldReport = true;
    void phaseStateOnceLeaseExpired().then((state) => {
      failedWhileHeld ??= state;
      next();
    });
  },
});

it('drops the commit of an attempt whose lease expired as the phase was abandoned for good', async () => {
  const repo = path.join(bed.tmp, 'repo');
  await createRepo(repo, DEMO_REPO_FILES);
  // Two expired leases abandon a docs phase here; the first is taken by an executor that
  // vanishes, so the executor's own expiry is the last one the phase survives.
  expect((await http(bed.sup.url, 'PUT', '/projects/default/ruleset', { categories: { docs: { max_abandonments: 2 } } })).status).toBe(200);
  await startRun(bed.sup.url, plan(runId, [phase('docs', 0, { task_category: 'docs', scope: { paths: ['README.md'] } })]));
  await claimNext(bed.sup.url, runId, 'ghost');
  const readmeBefore = readFileSync(path.join(repo, 'README.md'), 'utf8');

  llm = await bed.startLlm({
    script: { replies: [builderReply('docs', { summary: 'Describe the library', edits: [{ path: 'README.md', action: 'replace', content: '# demo-calc\n\nAdds numbers.\n' }] }), approveReply()] },
  });
  const result = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm));
  // The phase failed (its last attempt's lease expired), so the run it served failed: exit 3.
  expect({ code: result.code, line: result.stderr.split('\n').filter((l) => l.startsWith('autopack executor:')) }).toEqual({
    code: 3,
    line: [expect.stringContaining(`run ${runId} ended DONE_FAILED_REQUIRES_HUMAN_REVIEW`)],
  });
  expect(heldReport).toBe(true);
  expect(failedWhileHeld).toBe('FAILED');
  expect(logMessages(result.stderr)).toContain('lease lost after the commit and the phase ended without it; the commit was dropped');

  const run = await getRun(bed.sup.url, runId);
  // Expired leases are no attempts of the model: both were refunded, and counted as abandonments.
  expect(run.phases[0]).toMatchObject({ state: 'FAILED', attempts_used: 0, abandonments: 2, max_abandonments: 2 });
  expect(run.phases[0].last_failure_reason).toMatch(/^abandoned: the lease expired 2 times \(cap 2\)/);
  // The events explain the phase's state: two expiries, the second one ending it.
  const expiries: { payload: any }[] = await bed.sup.db.query(`SELECT payload FROM events WHERE run_id = $1 AND type = 'phase_state' AND payload->>'event' = 'expireLease' ORDER BY id`, [runId]);
  expect(expiries.map((e) => [e.payload.to, e.payload.abandonments, e.payload.attempt_charged])).toEqual([
    ['QUEUED', 1, false],
    ['FAILED', 2, false],
  ]);
  expect(expiries[1].payload.reason).toMatch(/^abandoned: /);
  // The late approval report had a stale token, so it changed nothing (CONTRACT.md section 6):
  // only the builder report, made while the lease was live, counted its call's tokens.
  expect(llm.requests).toHaveLength(2);
  expect(run.tokens_used).toBe(1100);
  expect(await phaseCommits(repo, runId)).toEqual([]);
  expect(readFileSync(path.join(repo, 'README.md'), 'utf8')).toBe(readmeBefore);
  expect((await worktreeChanges(repo)).paths).toEqual([]);
});
