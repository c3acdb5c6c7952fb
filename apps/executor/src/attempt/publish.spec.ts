import { GitError } from '@app/git';
import { FakeGit, FakeSupervisor, makeClaim, silentLog } from '../../../../test/executor/attempt-fakes.js';
import type { IntegrationBranch } from '../integration-branch.js';
import { AttemptStoppedError } from '../lease-keeper.js';
import type { WorkingChange } from './applied-change.js';
import { dropCommitOfEndedPhase, publish } from './publish.js';

const claim = makeClaim({ attempt: 2 });
const integration: IntegrationBranch = { workspace: '/ws', runId: 'r1', phaseId: 'p1', branch: 'autonomous/r1', baseBranch: 'main', sharedUrl: undefined };

/** A change that says whether it was kept. */
function change(): WorkingChange & { kept: boolean } {
  const c = { kept: false, keep: () => void (c.kept = true), restore: () => undefined };
  return c;
}

async function run(git: FakeGit, working = change(), signal = new AbortController().signal) {
  const result = await publish({ git }, claim, integration, { working, summary: 'adds hello', written: ['hello.txt'], deleted: ['old.txt'], signal });
  return { result, working };
}

describe(publish.name, () => {
  it('commits the change on the branch head, keeps it, and publishes the commit', async () => {
    const git = new FakeGit();
    const { result, working } = await run(git);
    expect(result).toEqual({ kind: 'published', sha: 'commit1', parent: 'base0000' });
    expect(working.kept).toBe(true);
    expect(git.ops).toEqual(['headCommit autonomous/r1', 'commit hello.txt|old.txt', 'publish commit1 on base0000']);
    expect(git.lastCommitMessage).toMatch(/adds hello/);
    expect(git.lastCommitMessage).toMatch(/Autopack-Run: r1/);
    expect(git.lastCommitMessage).toMatch(/Autopack-Phase: p1/);
  });

  it('reports a lost push with the commit of this phase that won, or none', async () => {
    const git = new FakeGit();
    git.publishAs = { kept: false, phaseCommit: 'theirs' };
    expect((await run(git)).result).toEqual({ kind: 'push_lost', phaseCommit: 'theirs' });
    git.publishAs = { kept: false, phaseCommit: null };
    expect((await run(git)).result).toEqual({ kind: 'push_lost', phaseCommit: null });
  });

  it('commits nothing once the attempt was stopped', async () => {
    const git = new FakeGit();
    const stop = new AbortController();
    stop.abort(new AttemptStoppedError('lease_lost'));
    await expect(run(git, change(), stop.signal)).rejects.toMatchObject({ reason: 'lease_lost' });
    expect(git.ops).toEqual([]);
  });

  it('does not keep a change whose commit failed, so it is restored', async () => {
    const git = new FakeGit();
    git.commitFails = new GitError('COMMIT_FAILED', 'boom', {});
    const working = change();
    await expect(run(git, working)).rejects.toMatchObject({ code: 'COMMIT_FAILED' });
    expect(working.kept).toBe(false);
  });

  it('lets a push failure other than a rejection end the attempt, the change already kept', async () => {
    const git = new FakeGit();
    git.publishAs = new GitError('REMOTE_FAILED', 'unreachable', {});
    const working = change();
    await expect(run(git, working)).rejects.toMatchObject({ code: 'REMOTE_FAILED' });
    expect(working.kept).toBe(true);
  });
});

describe(dropCommitOfEndedPhase.name, () => {
  const setup = (run: FakeSupervisor['run'], head = 'c1') => {
    const git = new FakeGit();
    git.head = head;
    const supervisor = new FakeSupervisor();
    supervisor.run = run;
    return { git, supervisor, deps: { git, supervisor, workspace: '/ws' } };
  };
  const phases = (state: string) => [{ phase_id: 'p1', state }] as unknown as FakeSupervisor['run']['phases'];

  it.each(['FAILED', 'SKIPPED'])('drops the commit of a phase that ended %s without it', async (state) => {
    const { git, deps } = setup({ state: 'PHASE_EXECUTION', phases: phases(state) });
    await dropCommitOfEndedPhase(deps, claim, { sha: 'c1', parent: 'c0' }, silentLog);
    expect(git.ops).toEqual(['headCommit autonomous/r1', 'resetBranch autonomous/r1 c0']);
  });

  it('drops the commit when the run ended', async () => {
    const { git, deps } = setup({ state: 'DONE_FAILED_BUDGET_EXHAUSTED', phases: phases('QUEUED') });
    await dropCommitOfEndedPhase(deps, claim, { sha: 'c1', parent: 'c0' }, silentLog);
    expect(git.head).toBe('c0');
  });

  it('keeps the commit of a phase that can still be claimed: the next attempt reports it', async () => {
    const { git, supervisor, deps } = setup({ state: 'PHASE_EXECUTION', phases: phases('QUEUED') });
    await dropCommitOfEndedPhase(deps, claim, { sha: 'c1', parent: 'c0' }, silentLog);
    expect(supervisor.sequence()).toEqual(['getRun']);
    expect(git.ops).toEqual([]);
  });

  it('leaves a branch that moved past the commit alone', async () => {
    const { git, deps } = setup({ state: 'PHASE_EXECUTION', phases: phases('FAILED') }, 'someone-else');
    await dropCommitOfEndedPhase(deps, claim, { sha: 'c1', parent: 'c0' }, silentLog);
    expect(git.ops).toEqual(['headCommit autonomous/r1']);
  });
});
