import { GitError, branchLog, checkoutBranch, checkoutUnbornBranch, createSampleRepository, currentBranch, ensureIntegrationBranch, headCommit, initRepository, worktreeChanges } from '@app/git';
import { type GitHttpServer, startGitHttpServer } from '../../../../test/support/git-http-server.js';
import { FakeBuildGit, silentLog } from '../../../../test/executor/attempt-fakes.js';
import { commitFiles, fsck, gitBinary, hasGitBinary, integrationOf, removeTempDirs, tempDir, testAuthor } from '../../../../test/executor/git-workspaces.js';
import { AttemptStoppedError } from '../lease-keeper.js';
import { workspaceBuildGit } from './ports.js';
import { promoteBuild, promotionMessage } from './promote.js';

const BRANCH = 'autonomous/r1';
const live = () => new AbortController().signal;
const date = new Date('2026-01-02T03:04:05Z');

afterEach(removeTempDirs);

/** A repository with the integration branch checked out, as an executor leaves it. */
async function workspace(): Promise<{ ws: string; base: string }> {
  const ws = tempDir();
  const base = await createSampleRepository(ws, { 'README.md': '# Sample\n', 'app.js': 'v1\n' }, { author: testAuthor, message: 'init\n' });
  await ensureIntegrationBranch(ws, { runId: 'r1' });
  await checkoutBranch(ws, BRANCH);
  return { ws, base };
}

/** Moves `main` on by one commit behind the integration branch's back. */
async function moveMain(ws: string, files: Record<string, string>): Promise<string> {
  await checkoutBranch(ws, 'main');
  const sha = await commitFiles(ws, 'main', files, 'elsewhere');
  await checkoutBranch(ws, BRANCH);
  return sha;
}

async function expectWorkspaceOnBranch(ws: string, head: string): Promise<void> {
  expect(await currentBranch(ws)).toBe(BRANCH);
  expect(await headCommit(ws)).toBe(head);
  expect(await worktreeChanges(ws)).toMatchObject({ clean: true });
}

const promote = (ws: string, patch: Parameters<typeof integrationOf>[1] = {}) => promoteBuild({ git: workspaceBuildGit, log: silentLog }, integrationOf(ws, { phaseId: 'promote', ...patch }), { date, signal: live() });

describe(promoteBuild.name, () => {
  it('fast-forwards the base branch to the integration branch head, leaving the workspace on the integration branch; a retry is up to date', async () => {
    const { ws, base } = await workspace();
    const tip = await commitFiles(ws, BRANCH, { 'app.js': 'v2\n' });

    expect(await promote(ws)).toEqual({ kind: 'promoted', promotion: 'fast_forward', previous: base, sha: tip, pushed: false });
    expect(await headCommit(ws, 'refs/heads/main')).toBe(tip);
    await expectWorkspaceOnBranch(ws, tip);
    expect(await promote(ws)).toEqual({ kind: 'promoted', promotion: 'up_to_date', previous: tip, sha: tip, pushed: false });
    fsck(ws);
  });

  it('merges when the base branch moved on, with the run named in the merge commit', async () => {
    const { ws } = await workspace();
    const tip = await commitFiles(ws, BRANCH, { 'app.js': 'v2\n' });
    const moved = await moveMain(ws, { 'docs/notes.md': 'notes\n' });

    const result = await promote(ws);

    expect(result).toEqual({ kind: 'promoted', promotion: 'merge', previous: moved, sha: expect.stringMatching(/^[0-9a-f]{40}$/), pushed: false });
    const sha = (result as { sha: string }).sha;
    const [merge] = await branchLog(ws, 'main', { depth: 1 });
    expect(merge.message).toBe(promotionMessage(integrationOf(ws)));
    expect(merge.message).toBe('[Autopack] promote autonomous/r1 into main\n\nAutopack-Run: r1\n');
    expect(merge.trailers).toEqual({ 'Autopack-Run': 'r1' });
    if (hasGitBinary) expect(gitBinary(ws, 'rev-list', '--parents', '-n', '1', 'main').trim()).toBe(`${sha} ${moved} ${tip}`);
    expect(await headCommit(ws, 'refs/heads/main')).toBe(sha);
    await expectWorkspaceOnBranch(ws, tip);
    fsck(ws);
  });

  it('creates the base branch of an empty repository at the head', async () => {
    const ws = tempDir();
    await initRepository(ws);
    await checkoutUnbornBranch(ws, BRANCH);
    const root = await commitFiles(ws, BRANCH, { 'SPEC.md': '# SPEC\n' }, 'plan');
    expect(await promote(ws)).toEqual({ kind: 'promoted', promotion: 'created', previous: null, sha: root, pushed: false });
    expect(await headCommit(ws, 'refs/heads/main')).toBe(root);
    fsck(ws);
  });

  it('refuses a conflicting merge, naming the paths, and moves nothing', async () => {
    const { ws } = await workspace();
    const tip = await commitFiles(ws, BRANCH, { 'app.js': 'ours\n', 'README.md': '# Ours\n' });
    const moved = await moveMain(ws, { 'app.js': 'theirs\n', 'README.md': '# Theirs\n' });

    const result = await promote(ws);

    expect(result).toEqual({
      kind: 'promotion_failed',
      code: 'MERGE_CONFLICT',
      paths: ['README.md', 'app.js'],
      reason: 'executor_error: promotion of autonomous/r1 into main failed (MERGE_CONFLICT): main moved on since autonomous/r1 started, and the merge conflicts in README.md, app.js; nothing was promoted',
    });
    expect(await headCommit(ws, 'refs/heads/main')).toBe(moved);
    await expectWorkspaceOnBranch(ws, tip);
    fsck(ws);
  });

  it('explains a base branch that is checked out in the workspace', async () => {
    const { ws, base } = await workspace();
    await commitFiles(ws, BRANCH, { 'app.js': 'v2\n' });
    await checkoutBranch(ws, 'main');
    const result = await promote(ws);
    expect(result).toMatchObject({ kind: 'promotion_failed', code: 'BRANCH_CHECKED_OUT', paths: [] });
    expect((result as { reason: string }).reason).toMatch(/main is the branch checked out in the workspace .*; promotion moves it without touching files, so the workspace must have autonomous\/r1 checked out/);
    expect(await headCommit(ws, 'refs/heads/main')).toBe(base);
  });

  it('promotes the shared base branch of a repo_url run and pushes it there', async () => {
    const server: GitHttpServer = await startGitHttpServer();
    try {
      const first = server.createRepository('svc', { 'README.md': '# Sample\n' });
      const ws = tempDir();
      server.clone('svc', ws);
      await ensureIntegrationBranch(ws, { runId: 'r1' });
      await checkoutBranch(ws, BRANCH);
      const tip = await commitFiles(ws, BRANCH, { 'app.js': 'v1\n' });
      // Someone else moved the shared main since: the shared one is what gets promoted.
      const moved = server.commit('svc', { branch: 'main', files: { 'docs/a.md': 'a\n' }, message: 'docs' });

      const result = await promote(ws, { sharedUrl: server.url('svc') });

      expect(result).toMatchObject({ kind: 'promoted', promotion: 'merge', previous: moved, pushed: true });
      const sha = (result as { sha: string }).sha;
      expect(server.git('svc', 'rev-parse', 'main').trim()).toBe(sha);
      expect(server.git('svc', 'rev-list', '--parents', '-n', '1', 'main').trim()).toBe(`${sha} ${moved} ${tip}`);
      expect(first).not.toBe(moved);
      server.git('svc', 'fsck', '--strict');
      await expectWorkspaceOnBranch(ws, tip);
    } finally {
      await server.close();
    }
  });

  describe('with a fake git', () => {
    it('promotes the commit it is given, passing the signal and the shared repository', async () => {
      const buildGit = new FakeBuildGit();
      const signal = live();
      const result = await promoteBuild({ git: buildGit, log: silentLog }, integrationOf('/ws', { sharedUrl: 'https://git.example/svc.git' }), { head: 'c'.repeat(40), signal });
      expect(result).toEqual({ kind: 'promoted', promotion: 'fast_forward', previous: 'base0000', sha: 'head0000', pushed: false });
      expect(buildGit.promotions).toEqual([
        { base: 'main', head: 'c'.repeat(40), author: { name: 'Autopack', email: 'autopack@localhost' }, message: '[Autopack] promote autonomous/r1 into main\n\nAutopack-Run: r1\n', url: 'https://git.example/svc.git', signal },
      ]);
    });

    it('says a refused push is a lost race, to promote again', async () => {
      const buildGit = new FakeBuildGit();
      buildGit.promoteAs = new GitError('PUSH_REJECTED', 'refused', {});
      const result = await promoteBuild({ git: buildGit, log: silentLog }, integrationOf('/ws', { sharedUrl: 'https://user:secret@git.example/svc.git' }), { signal: live() });
      expect(result).toMatchObject({ kind: 'promotion_failed', code: 'PUSH_REJECTED' });
      expect((result as { reason: string }).reason).toMatch(/^push_rejected: .*main in https:\/\/.*git\.example\/svc\.git moved on while it was being promoted/);
      expect((result as { reason: string }).reason).not.toContain('secret');
    });

    it('ends the attempt when stopped, before or during the promotion, and lets other errors through', async () => {
      const stopped = new AbortController();
      stopped.abort(new AttemptStoppedError('lease_lost'));
      const buildGit = new FakeBuildGit();
      await expect(promoteBuild({ git: buildGit, log: silentLog }, integrationOf('/ws'), { signal: stopped.signal })).rejects.toMatchObject({ reason: 'lease_lost' });
      expect(buildGit.ops).toEqual([]);

      const stop = new AbortController();
      buildGit.onPromote = () => stop.abort(new AttemptStoppedError('shutdown'));
      buildGit.promoteAs = new GitError('REMOTE_FAILED', 'cut short', {});
      await expect(promoteBuild({ git: buildGit, log: silentLog }, integrationOf('/ws'), { signal: stop.signal })).rejects.toMatchObject({ reason: 'shutdown' });

      buildGit.onPromote = undefined;
      buildGit.promoteAs = new TypeError('bug');
      await expect(promoteBuild({ git: buildGit, log: silentLog }, integrationOf('/ws'), { signal: live() })).rejects.toThrow('bug');
    });
  });
});
