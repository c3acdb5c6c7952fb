import path from 'node:path';
import { branchLog, initRepository, worktreeChanges } from '@app/git';
import { type ScriptedLlmServer } from '@app/testing';
import { type GitHttpServer, startGitHttpServer } from '../support/git-http-server.js';
import { gitFsck, runCli } from '../support/processes.js';
import { approveReply, builderReply, executorEnv, getRun, phase, plan, runExecutor, startRun, useTestbed } from './harness.js';

/**
 * CONTRACT.md section 8: the workspace may be an empty repository (no commit yet). The
 * integration branch then starts unborn and the run's first commit is a root commit; with a
 * repo_url the shared repository may be empty too. Real executor processes, no git on PATH.
 */

const bed = useTestbed('empty-repo');
let llm: ScriptedLlmServer | undefined;
let git: GitHttpServer;
beforeAll(async () => {
  git = await startGitHttpServer();
});
afterEach(async () => {
  await llm?.close();
  llm = undefined;
});
afterAll(async () => {
  await git?.close();
});

const PHASES = ['p1', 'p2'];
const notePhase = (id: string, i: number) => phase(id, i, { scope: { paths: [`notes/${id}.md`] } });
const replies = () => [...PHASES.map((id) => builderReply(id, { summary: `Write the ${id} note`, edits: [{ path: `notes/${id}.md`, action: 'create', content: `# ${id}\n` }] })), approveReply(PHASES.length)];

async function expectRootedBranch(ws: string, runId: string): Promise<void> {
  const run = await getRun(bed.sup.url, runId);
  expect(run.state).toBe('DONE_SUCCESS');
  const log = await branchLog(ws, `autonomous/${runId}`);
  expect(log.map((c) => c.trailers['Autopack-Phase'])).toEqual(['p2', 'p1']);
  expect(Object.fromEntries(run.phases.map((p: { phase_id: string; commit_sha: string }) => [p.phase_id, p.commit_sha]))).toEqual({ p1: log[1].sha, p2: log[0].sha });
  expect((await worktreeChanges(ws)).clean).toBe(true);
  expect(gitFsck(ws).ok).toBe(true);
}

it('serves a run in a freshly initialised repository: the first phase commit is a root commit', async () => {
  const ws = path.join(bed.tmp, 'fresh');
  await initRepository(ws);
  await startRun(bed.sup.url, plan('empty-run', PHASES.map(notePhase)));
  llm = await bed.startLlm({ script: { replies: replies() } });
  const result = await runExecutor(bed.sup.url, ws, 'empty-run', executorEnv(bed.tmp, llm));
  expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });
  await expectRootedBranch(ws, 'empty-run');
  const [root] = (await branchLog(ws, 'autonomous/empty-run')).slice(-1);
  expect(root.trailers['Autopack-Phase']).toBe('p1');
});

it('serves a run whose workspace and shared repository are both empty, pushing the root commit', async () => {
  const repo = 'empty-shared';
  git.createRepository(repo, {});
  git.git(repo, 'update-ref', '-d', 'refs/heads/main');
  const ws = path.join(bed.tmp, 'fresh-shared');
  await initRepository(ws);
  await startRun(bed.sup.url, plan('empty-shared-run', PHASES.map(notePhase), { repo_url: git.url(repo) }));
  llm = await bed.startLlm({ script: { replies: replies() } });
  const args = ['executor', '--run-id', 'empty-shared-run', '--workspace', ws, '--api-url', bed.sup.url, '--poll-interval', '1', '--exit-when-idle', '--executor-id', 'exec-a'];
  const result = await runCli(args, executorEnv(bed.tmp, llm), 150_000).done;
  expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });
  await expectRootedBranch(ws, 'empty-shared-run');
  expect(git.git(repo, 'rev-parse', 'autonomous/empty-shared-run').trim()).toBe((await branchLog(ws, 'autonomous/empty-shared-run'))[0].sha);
  expect(git.git(repo, 'rev-list', '--max-parents=0', 'autonomous/empty-shared-run').trim()).toBe((await branchLog(ws, 'autonomous/empty-shared-run'))[1].sha);
  git.git(repo, 'fsck', '--strict');
});
