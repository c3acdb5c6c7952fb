import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type ScriptedLlmServer } from '@app/testing';
import { http } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import {
  DEMO_REPO_FILES,
  approveReply,
  builderReply,
  createRepo,
  executorEnv,
  getRun,
  logMessages,
  phase,
  phaseCommits,
  plainLines,
  plan,
  runExecutor,
  startRun,
  useTestbed,
} from './harness.js';
import { runCli } from '../support/processes.js';

/**
 * A crash is no attempt of the model (CONTRACT.md section 3): a killed executor's lease expires
 * uncharged and counts as an abandonment; a phase abandoned `max_abandonments` times ends FAILED
 * `abandoned`. And a phase that did not complete never keeps a commit: whoever holds the
 * workspace next removes it.
 */
let holdAuditorResultOf: string | undefined;
let heldAuditorResult = false;
const bed = useTestbed('abandon', { leaseSeconds: 2 }, {
  // For the second test: the approval report of one run never gets an answer, so its executor
  // can be killed between its commit and its report.
  intercept: (req, _res, next) => {
    if (holdAuditorResultOf && req.method === 'POST' && req.path === `/runs/${holdAuditorResultOf}/phases/docs/auditor_result`) {
      heldAuditorResult = true;
      return; // never answered
    }
    next();
  },
});
let llm: ScriptedLlmServer | undefined;
afterEach(async () => {
  await llm?.close();
  llm = undefined;
});

const args = (runId: string, repo: string) => ['executor', '--run-id', runId, '--workspace', repo, '--api-url', bed.sup.url, '--poll-interval', '1', '--exit-when-idle'];

/** Waits until the phase is no longer leased (its lease expired and the sweeper settled it). */
const settled = (runId: string) =>
  waitFor(
    'the expired lease to be settled',
    async () => {
      const p = (await getRun(bed.sup.url, runId)).phases[0];
      return p.state === 'QUEUED' || p.state === 'FAILED' ? (p.state as string) : undefined;
    },
    { timeoutMs: 30_000, everyMs: 100 },
  );

it('kills the executor each time it holds the phase: abandoned at the cap, FAILED with reason abandoned, no attempt charged, no commit', async () => {
  expect((await http(bed.sup.url, 'PUT', '/projects/default/ruleset', { categories: { docs: { max_abandonments: 3 } } })).status).toBe(200);
  const repo = path.join(bed.tmp, 'repo-kill');
  await createRepo(repo, DEMO_REPO_FILES);
  const runId = 'abandon-kill';
  await startRun(bed.sup.url, plan(runId, [phase('docs', 0, { task_category: 'docs', scope: { paths: ['README.md'] } })]));
  // The builder never answers in time: every executor is killed while it holds the phase.
  llm = await bed.startLlm({
    script: { replies: [builderReply('docs', { edits: [{ path: 'README.md', action: 'replace', content: '# never\n' }] }, { delay_ms: 120_000, times: 10 })] },
  });

  let kills = 0;
  let state = 'QUEUED';
  while (state !== 'FAILED') {
    const before = llm.requests.length;
    const executor = runCli(args(runId, repo), executorEnv(bed.tmp, llm));
    await waitFor('the executor to hold the phase and call the builder', async () => (llm!.requests.length > before ? true : undefined), { timeoutMs: 30_000, everyMs: 50 });
    expect((await getRun(bed.sup.url, runId)).phases[0].state).toBe('EXECUTING');
    executor.child.kill('SIGKILL');
    await executor.done;
    kills++;
    state = await settled(runId);
    expect(kills).toBeLessThanOrEqual(3);
  }
  expect(kills).toBe(3);
  const run = await getRun(bed.sup.url, runId);
  expect(run.phases[0]).toMatchObject({ state: 'FAILED', attempts_used: 0, abandonments: 3, max_abandonments: 3 });
  expect(run.phases[0].last_failure_reason).toMatch(/^abandoned: the lease expired 3 times \(cap 3\)/);
  expect(run.state).toBe('DONE_FAILED_REQUIRES_HUMAN_REVIEW');
  // Every claim was a new attempt number, none of them charged, none of them the model's failure.
  const attempts: { attempt: number; outcome: string }[] = await bed.sup.db.query(`SELECT attempt, outcome FROM phase_attempts WHERE run_id = $1 ORDER BY attempt`, [runId]);
  expect(attempts).toEqual([1, 2, 3].map((attempt) => ({ attempt, outcome: 'lease_expired' })));
  expect(await phaseCommits(repo, runId)).toEqual([]);
});

it('removes the commit of a phase that ended without completing when it next holds the workspace', async () => {
  expect((await http(bed.sup.url, 'PUT', '/projects/default/ruleset', { categories: { docs: { max_abandonments: 1 } } })).status).toBe(200);
  const repo = path.join(bed.tmp, 'repo-commit');
  await createRepo(repo, DEMO_REPO_FILES);
  const readmeBefore = readFileSync(path.join(repo, 'README.md'), 'utf8');
  const runId = 'abandon-after-commit';
  holdAuditorResultOf = runId;
  await startRun(bed.sup.url, plan(runId, [phase('docs', 0, { task_category: 'docs', scope: { paths: ['README.md'] } })]));
  llm = await bed.startLlm({
    script: { replies: [builderReply('docs', { summary: 'Describe the library', edits: [{ path: 'README.md', action: 'replace', content: '# demo-calc\n\nAdds numbers.\n' }] }), approveReply()] },
  });

  // The executor commits, then its approval report goes unanswered: killed right there.
  const first = runCli(args(runId, repo), executorEnv(bed.tmp, llm));
  await waitFor('the approval report', async () => (heldAuditorResult ? true : undefined), { timeoutMs: 60_000, everyMs: 50 });
  first.child.kill('SIGKILL');
  await first.done;
  expect(await phaseCommits(repo, runId)).toEqual([['docs', '1']]);
  // Its lease expires; with a cap of one abandonment the phase ends FAILED, and so does the run.
  expect(await settled(runId)).toBe('FAILED');
  expect((await getRun(bed.sup.url, runId)).state).toBe('DONE_FAILED_REQUIRES_HUMAN_REVIEW');

  // The next executor on the workspace finds the run over and removes the failed phase's commit.
  const next = runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm));
  const result = await next;
  expect(result.code).toBe(3);
  expect(plainLines(result.stderr)).toEqual([expect.stringContaining(`run ${runId} ended DONE_FAILED_REQUIRES_HUMAN_REVIEW`)]);
  expect(logMessages(result.stderr)).toContain('removed commits of phases that ended without completing');
  expect(await phaseCommits(repo, runId)).toEqual([]);
  expect(readFileSync(path.join(repo, 'README.md'), 'utf8')).toBe(readmeBefore);
});
