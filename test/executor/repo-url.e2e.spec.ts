import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { formatCommitMessage, headCommit, parseTrailers, worktreeChanges } from '@app/git';
import { type ScriptReplyInput, type ScriptedLlmServer } from '@app/testing';
import { type GitHttpServer, startGitHttpServer } from '../support/git-http-server.js';
import { type Finished, gitFsck, runCli } from '../support/processes.js';
import { DEMO_REPO_FILES, approveReply, builderPrompts, builderReply, executorEnv, getRun, logMessages, phase, phaseCommits, plan, startRun, useTestbed } from './harness.js';

/**
 * A run with a repo_url (CONTRACT.md section 5): executors fetch the integration branch from it
 * before each attempt and push after each kept commit; a rejected push means another executor
 * won. Real executor processes without git on PATH; the repository is served over smart HTTP.
 */

let git: GitHttpServer;
let llm: ScriptedLlmServer | undefined;

const bed = useTestbed('repo-url');
beforeAll(async () => {
  git = await startGitHttpServer();
});
afterEach(async () => {
  git.intercept = undefined;
  await llm?.close();
  llm = undefined;
});
afterAll(async () => {
  await git?.close();
});

const ids = (n: number) => Array.from({ length: n }, (_, i) => `p${i + 1}`);

/** Phase `id` writes `notes/<id>.md` and nothing else. */
function notePhase(id: string, index: number) {
  return phase(id, index, { scope: { paths: [`notes/${id}.md`] } });
}

/** Builder replies creating each phase's note, enough for rebuilds, and approving reviews. */
function noteReplies(phaseIds: string[], timesEach = 1): ScriptReplyInput[] {
  return [
    ...phaseIds.map((id) => builderReply(id, { summary: `Write the ${id} note`, edits: [{ path: `notes/${id}.md`, action: 'create', content: `# ${id}\n` }] }, { times: timesEach })),
    approveReply(phaseIds.length * timesEach),
  ];
}

function startExecutor(executorId: string, workspace: string, runId: string): Promise<Finished> {
  const args = ['executor', '--run-id', runId, '--workspace', workspace, '--api-url', bed.sup.url, '--poll-interval', '1', '--exit-when-idle', '--executor-id', executorId];
  return runCli(args, executorEnv(bed.tmp, llm!), 150_000).done;
}

function expectClean(result: Finished): void {
  expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });
}

/** Commits of the bare repository's integration branch that are not on main, oldest first. */
function remoteCommits(repo: string, runId: string): { sha: string; subject: string; trailers: Record<string, string> }[] {
  const out = git.git(repo, 'log', '--reverse', '--format=%H%x1f%B%x1e', `main..autonomous/${runId}`);
  return out
    .split('\x1e')
    .map((r) => r.trim())
    .filter(Boolean)
    .map((r) => {
      const [sha, message] = r.split('\x1f');
      return { sha, subject: message.split('\n')[0], trailers: parseTrailers(message) };
    });
}

/** Which executor claimed each phase before it completed, from the run's audit trail. */
async function completedBy(runId: string): Promise<Map<string, string>> {
  const sse = await (await fetch(`${bed.sup.url}/runs/${runId}/events?follow=false`)).text();
  const events = sse
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)) as { type: string; phase_id: string | null; payload: { executor_id?: string; to?: string } });
  const claimedBy = new Map<string, string>();
  const done = new Map<string, string>();
  for (const e of events) {
    if (!e.phase_id) continue;
    if (e.type === 'phase_claimed') claimedBy.set(e.phase_id, e.payload.executor_id!);
    if (e.type === 'phase_state' && e.payload.to === 'COMPLETE') done.set(e.phase_id, claimedBy.get(e.phase_id)!);
  }
  return done;
}

/** Asserts the run succeeded with one commit per phase on the remote branch, the contract's trailers, and matching reported shas. */
async function expectOneRemoteCommitPerPhase(repo: string, runId: string, phaseIds: string[]): Promise<void> {
  const run = await getRun(bed.sup.url, runId);
  expect(run.state).toBe('DONE_SUCCESS');
  const commits = remoteCommits(repo, runId).filter((c) => c.trailers['Autopack-Run'] === runId);
  expect(commits.map((c) => c.trailers['Autopack-Phase']).sort()).toEqual([...phaseIds].sort());
  for (const c of commits) {
    const id = c.trailers['Autopack-Phase'];
    expect(c.subject).toBe(`[Autopack] ${id}: Write the ${id} note`);
    expect(c.trailers['Autopack-Attempt']).toMatch(/^\d+$/);
  }
  const reported = Object.fromEntries(run.phases.map((p: any) => [p.phase_id, p.commit_sha]));
  expect(reported).toEqual(Object.fromEntries(commits.map((c) => [c.trailers['Autopack-Phase'], c.sha])));
  git.git(repo, 'fsck', '--strict');
}

describe('executors on different workspaces share a run through repo_url', () => {
  it('two executors serve one run: every phase once on the remote branch, both did work', async () => {
    const repo = 'shared';
    const runId = 'shared-run';
    const phaseIds = ids(6);
    git.createRepository(repo, DEMO_REPO_FILES);
    const [wsA, wsB] = ['a', 'b'].map((n) => path.join(bed.tmp, `shared-${n}`));
    git.clone(repo, wsA);
    git.clone(repo, wsB);
    await startRun(bed.sup.url, plan(runId, phaseIds.map(notePhase), { repo_url: git.url(repo) }));
    llm = await bed.startLlm({ script: { replies: noteReplies(phaseIds, 2) } });

    const [a, b] = await Promise.all([startExecutor('exec-a', wsA, runId), startExecutor('exec-b', wsB, runId)]);
    expectClean(a);
    expectClean(b);

    await expectOneRemoteCommitPerPhase(repo, runId, phaseIds);
    // Each phase built on what the previous one pushed: the branch is a straight line.
    expect(git.git(repo, 'rev-list', '--count', '--merges', `main..autonomous/${runId}`).trim()).toBe('0');
    const by = await completedBy(runId);
    expect([...by.keys()].sort()).toEqual(phaseIds);
    expect(new Set(by.values())).toEqual(new Set(['exec-a', 'exec-b']));
    for (const ws of [wsA, wsB]) {
      expect((await worktreeChanges(ws)).clean).toBe(true);
      const fsck = gitFsck(ws);
      expect(fsck.ok).toBe(true);
    }
    // One phase leased at a time: no push was rejected, so each phase was built once.
    expect(llm.requestsFor('submit_changes')).toHaveLength(phaseIds.length);
  });

  it('parallel phases race for the branch: a rejected push is handed back and rebuilt, never committed twice', async () => {
    const repo = 'racing';
    const runId = 'racing-run';
    const phaseIds = ids(5);
    git.createRepository(repo, DEMO_REPO_FILES);
    const [wsA, wsB] = ['a', 'b'].map((n) => path.join(bed.tmp, `racing-${n}`));
    git.clone(repo, wsA);
    git.clone(repo, wsB);
    await startRun(bed.sup.url, plan(runId, phaseIds.map(notePhase), { repo_url: git.url(repo), max_parallel_phases: 2 }));
    llm = await bed.startLlm({ script: { replies: noteReplies(phaseIds, 6) } });

    const [a, b] = await Promise.all([startExecutor('exec-a', wsA, runId), startExecutor('exec-b', wsB, runId)]);
    expectClean(a);
    expectClean(b);

    await expectOneRemoteCommitPerPhase(repo, runId, phaseIds);
    const handedBack = [...logMessages(a.stderr), ...logMessages(b.stderr)].filter((m) => m.startsWith('push rejected: another executor moved')).length;
    // Every build beyond one per phase is accounted for by a rejected push.
    expect(llm.requestsFor('submit_changes').length).toBe(phaseIds.length + handedBack);
  });
});

describe('a push that loses the race', () => {
  /** A one-executor run of `phaseIds` whose first push meets a competing commit made by `compete`. */
  async function raceFirstPush(repo: string, runId: string, phaseIds: string[], compete: () => string) {
    git.createRepository(repo, DEMO_REPO_FILES);
    const ws = path.join(bed.tmp, `${repo}-ws`);
    git.clone(repo, ws);
    await startRun(bed.sup.url, plan(runId, phaseIds.map(notePhase), { repo_url: git.url(repo) }));
    llm = await bed.startLlm({ script: { replies: noteReplies(phaseIds, 2) } });
    let competing: string | undefined;
    // Just before the executor's first push lands, another commit reaches the branch.
    git.intercept = (r) => {
      if (r.repo === repo && r.service === 'receive-pack' && r.kind === 'rpc' && !competing) competing = compete();
    };
    const result = await startExecutor('exec-a', ws, runId);
    expectClean(result);
    expect(competing).toBeDefined();
    return { ws, result, competing: competing! };
  }

  it('is discarded and the phase built again on the new head when the winner did other work', async () => {
    const repo = 'race-other';
    const runId = 'race-other';
    const { ws, result, competing } = await raceFirstPush(repo, runId, ['p1', 'p2'], () =>
      git.commit(repo, { branch: `autonomous/${runId}`, from: 'main', files: { 'HUMAN.md': 'pushed by someone else\n' }, message: 'Unrelated change' }),
    );

    expect(logMessages(result.stderr)).toContain('push rejected: another executor moved the integration branch first; handing the phase back');
    await expectOneRemoteCommitPerPhase(repo, runId, ['p1', 'p2']);
    const remote = remoteCommits(repo, runId);
    // The competing commit is kept, and p1 was rebuilt on top of it by a second attempt.
    expect(remote.map((c) => c.sha)[0]).toBe(competing);
    expect(remote.map((c) => [c.trailers['Autopack-Phase'], c.trailers['Autopack-Attempt']])).toEqual([
      [undefined, undefined],
      ['p1', '2'],
      ['p2', '1'],
    ]);
    expect(builderPrompts(llm!, 'p1')).toHaveLength(2);
    // The workspace holds exactly what the remote holds: the discarded commit is gone from the branch.
    expect(await headCommit(ws, `autonomous/${runId}`)).toBe(git.git(repo, 'rev-parse', `autonomous/${runId}`).trim());
    expect(await phaseCommits(ws, runId)).toEqual([
      ['p1', '2'],
      ['p2', '1'],
    ]);
    expect((await worktreeChanges(ws)).clean).toBe(true);
  });

  it('reports the winner\'s commit when the winner finished the same phase', async () => {
    const repo = 'race-same';
    const runId = 'race-same';
    const { ws, result, competing } = await raceFirstPush(repo, runId, ['p1'], () =>
      git.commit(repo, {
        branch: `autonomous/${runId}`,
        from: 'main',
        files: { 'notes/p1.md': '# p1 (theirs)\n' },
        message: formatCommitMessage({ phaseId: 'p1', summary: 'Write the p1 note', runId, attempt: 1 }),
      }),
    );

    expect(logMessages(result.stderr)).toContain('push rejected: the run repository already has a commit of this phase; reporting it');
    await expectOneRemoteCommitPerPhase(repo, runId, ['p1']);
    expect((await getRun(bed.sup.url, runId)).phases[0].commit_sha).toBe(competing);
    expect(builderPrompts(llm!, 'p1')).toHaveLength(1);
    expect(await headCommit(ws, `autonomous/${runId}`)).toBe(competing);
    expect((await worktreeChanges(ws)).clean).toBe(true);
  });
});

describe('a push whose answer is lost', () => {
  it('counts when the shared branch shows it landed: reported once, not built again', async () => {
    const repo = 'lost-answer';
    const runId = 'lost-answer';
    git.createRepository(repo, DEMO_REPO_FILES);
    const ws = path.join(bed.tmp, 'lost-answer');
    git.clone(repo, ws);
    await startRun(bed.sup.url, plan(runId, [notePhase('p1', 0)], { repo_url: git.url(repo) }));
    llm = await bed.startLlm({ script: { replies: noteReplies(['p1'], 2) } });
    let cut = false;
    git.intercept = (r) => {
      if (r.service !== 'receive-pack' || r.kind !== 'rpc' || cut) return;
      cut = true;
      return { dropResponse: true };
    };
    expectClean(await startExecutor('exec-a', ws, runId));

    expect(cut).toBe(true);
    await expectOneRemoteCommitPerPhase(repo, runId, ['p1']);
    // Completed by the attempt that pushed, not by a later attempt finding the commit.
    expect((await getRun(bed.sup.url, runId)).phases[0]).toMatchObject({ state: 'COMPLETE', attempts_used: 1 });
    expect(remoteCommits(repo, runId)[0].trailers['Autopack-Attempt']).toBe('1');
    expect(builderPrompts(llm!, 'p1')).toHaveLength(1);
  });
});

describe('repo_url forms and credentials', () => {
  it('credentials in repo_url reach the server but no log line, message or workspace file', async () => {
    const auth = { username: 'robot', password: 'pw-5ecret-token-81f3' };
    const secured = await startGitHttpServer({ auth });
    try {
      const repo = 'private';
      secured.createRepository(repo, DEMO_REPO_FILES);
      const ws = path.join(bed.tmp, 'private');
      secured.clone(repo, ws);
      await startRun(bed.sup.url, plan('private-ok', [notePhase('p1', 0)], { repo_url: secured.url(repo, auth) }));
      llm = await bed.startLlm({ script: { replies: noteReplies(['p1']) } });
      const ok = await startExecutor('exec-a', ws, 'private-ok');
      expectClean(ok);
      expect(secured.git(repo, 'log', '-1', '--format=%s', 'autonomous/private-ok').trim()).toBe('[Autopack] p1: Write the p1 note');
      expect(ok.stderr).toContain(secured.url(repo));

      await startRun(bed.sup.url, plan('private-bad', [notePhase('p1', 0)], { repo_url: secured.url(repo, { ...auth, password: 'wrong-pw-77c1e0' }) }));
      const bad = await startExecutor('exec-a', ws, 'private-bad');
      expect(bad.code).toBe(3); // the run it served failed
      const failed = (await getRun(bed.sup.url, 'private-bad')).phases[0];
      expect(failed.state).toBe('FAILED');
      expect(failed.last_failure_reason).toContain(`Could not fetch autonomous/private-bad from ${secured.url(repo)}: HTTP Error: 401`);

      const config = readFileSync(path.join(ws, '.git', 'config'), 'utf8');
      for (const shown of [ok.stdout, ok.stderr, bad.stdout, bad.stderr, failed.last_failure_reason, config]) {
        expect(shown).not.toContain(auth.password);
        expect(shown).not.toContain('wrong-pw-77c1e0');
      }
    } finally {
      await secured.close();
    }
  });

  it('a repo_url naming the workspace itself needs no syncing; another local path fails the attempt with the reason', async () => {
    const ws = path.join(bed.tmp, 'local-url');
    git.createRepository('local-url', DEMO_REPO_FILES);
    git.clone('local-url', ws);
    llm = await bed.startLlm({ script: { replies: noteReplies(['p1'], 2) } });
    await startRun(bed.sup.url, plan('local-self', [notePhase('p1', 0)], { repo_url: ws }));
    expectClean(await startExecutor('exec-a', ws, 'local-self'));
    expect((await getRun(bed.sup.url, 'local-self')).state).toBe('DONE_SUCCESS');
    expect(await phaseCommits(ws, 'local-self')).toEqual([['p1', '1']]);

    await startRun(bed.sup.url, plan('local-other', [notePhase('p1', 0)], { repo_url: path.join(bed.tmp, 'elsewhere') }));
    expect((await startExecutor('exec-a', ws, 'local-other')).code).toBe(3); // the run it served failed
    const failed = (await getRun(bed.sup.url, 'local-other')).phases[0];
    expect(failed.state).toBe('FAILED');
    expect(failed.last_failure_reason).toContain('is neither an http(s) URL nor this workspace');
  });

  it('a repo_url that is another local git repository is worked in place there, under that repository\'s own lock', async () => {
    const ws = path.join(bed.tmp, 'home-ws');
    const service = path.join(bed.tmp, 'service-repo');
    git.createRepository('home-ws', DEMO_REPO_FILES);
    git.clone('home-ws', ws);
    git.createRepository('service-repo', DEMO_REPO_FILES);
    git.clone('service-repo', service);
    llm = await bed.startLlm({ script: { replies: noteReplies(['p1']) } });
    await startRun(bed.sup.url, plan('in-place', [notePhase('p1', 0)], { repo_url: service }));
    expectClean(await startExecutor('exec-a', ws, 'in-place'));
    expect((await getRun(bed.sup.url, 'in-place')).state).toBe('DONE_SUCCESS');
    // The commit is in the service repository, its files on its working tree; --workspace is untouched.
    expect(await phaseCommits(service, 'in-place')).toEqual([['p1', '1']]);
    expect(readFileSync(path.join(service, 'notes', 'p1.md'), 'utf8')).toBe('# p1\n');
    expect(existsSync(path.join(ws, 'notes'))).toBe(false);
    await expect(headCommit(ws, 'autonomous/in-place')).rejects.toThrow();
    expect((await worktreeChanges(service)).clean).toBe(true);
    expect(existsSync(path.join(service, '.git', 'autopack', 'workspace.lock'))).toBe(false);
    expect(gitFsck(service).ok).toBe(true);
  });
});

describe('two executor processes on one workspace', () => {
  it('take turns through the workspace lock: one commit per phase and a clean worktree', async () => {
    const runId = 'one-ws';
    const phaseIds = ids(4);
    const repo = 'one-ws';
    git.createRepository(repo, DEMO_REPO_FILES);
    const ws = path.join(bed.tmp, 'one-ws');
    git.clone(repo, ws);
    // Two phases leased at once, so the second executor has to wait for the first one's attempt.
    await startRun(bed.sup.url, plan(runId, phaseIds.map(notePhase), { max_parallel_phases: 2 }));
    llm = await bed.startLlm({ script: { replies: noteReplies(phaseIds) } });

    const [a, b] = await Promise.all([startExecutor('exec-a', ws, runId), startExecutor('exec-b', ws, runId)]);
    expectClean(a);
    expectClean(b);

    expect((await getRun(bed.sup.url, runId)).state).toBe('DONE_SUCCESS');
    expect((await phaseCommits(ws, runId)).sort()).toEqual(phaseIds.map((id) => [id, '1']));
    expect((await worktreeChanges(ws)).clean).toBe(true);
    const waited = [...logMessages(a.stderr), ...logMessages(b.stderr)].filter((m) => m === 'waiting for another executor to release the workspace');
    expect(waited.length).toBeGreaterThan(0);
    expect(new Set((await completedBy(runId)).values())).toEqual(new Set(['exec-a', 'exec-b']));
    // The lock is gone, and nothing else was left in .git/autopack.
    expect(existsSync(path.join(ws, '.git', 'autopack', 'workspace.lock'))).toBe(false);
    expect(readdirSync(path.join(ws, '.git', 'autopack'))).toEqual([]);
  });
});
