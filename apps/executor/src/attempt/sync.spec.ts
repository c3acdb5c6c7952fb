import { FakeGit, makeClaim, silentLog } from '../../../../test/executor/attempt-fakes.js';
import { syncBranch } from './sync.js';

const workspace = '/nonexistent/workspace';

describe(syncBranch.name, () => {
  it('checks the integration branch out and is ready to build when the phase has no commit there', async () => {
    const git = new FakeGit();
    const result = await syncBranch({ git, workspace, log: silentLog }, makeClaim());
    expect(result).toEqual({
      kind: 'ready',
      integration: { workspace, runId: 'r1', phaseId: 'p1', branch: 'autonomous/r1', baseBranch: 'main', sharedUrl: undefined },
    });
    expect(git.ops).toEqual(['checkOut autonomous/r1', 'findPhaseCommit r1/p1']);
  });

  it('resumes with the commit of this phase already on the branch', async () => {
    const git = new FakeGit();
    git.phaseCommit = { sha: 'feed' };
    expect(await syncBranch({ git, workspace, log: silentLog }, makeClaim())).toEqual({ kind: 'resume', sha: 'feed' });
  });

  it('removes commits of phases that ended without completing before it looks for this phase', async () => {
    const git = new FakeGit();
    await syncBranch({ git, workspace, log: silentLog }, makeClaim({ run: { phase_states: { p0: 'FAILED', p1: 'QUEUED' } } }));
    expect(git.ops).toEqual(['checkOut autonomous/r1', 'dropEndedCommits', 'findPhaseCommit r1/p1']);
    expect(git.dropped).toEqual([{ states: { p0: 'FAILED', p1: 'QUEUED' }, runEnded: false }]);
  });

  it('follows the shared repository of a run with an http(s) repo_url', async () => {
    const git = new FakeGit();
    const result = await syncBranch({ git, workspace, log: silentLog }, makeClaim({ run: { repo_url: 'https://git.example/repo.git' } }));
    expect(result).toMatchObject({ kind: 'ready', integration: { sharedUrl: 'https://git.example/repo.git' } });
  });

  it('refuses a repo_url it cannot fetch, before touching the workspace', async () => {
    const git = new FakeGit();
    await expect(syncBranch({ git, workspace, log: silentLog }, makeClaim({ run: { repo_url: '/some/other/clone' } }))).rejects.toThrow(/neither an http\(s\) URL nor this workspace/);
    expect(git.ops).toEqual([]);
  });
});
