import { GitError, checkoutBranch, checkoutUnbornBranch, createSampleRepository, currentBranch, ensureIntegrationBranch, headCommit, initRepository, isEmptyRepository, worktreeChanges } from '@app/git';
import { type GitHttpServer, startGitHttpServer } from '../../../../test/support/git-http-server.js';
import { FakeBuildGit, silentLog } from '../../../../test/executor/attempt-fakes.js';
import { commitFiles, fsck, integrationOf, removeTempDirs, tempDir, testAuthor } from '../../../../test/executor/git-workspaces.js';
import { AttemptStoppedError } from '../lease-keeper.js';
import { branchHeadOrNull, workspaceBuildGit, workspaceGit } from './ports.js';
import { promoteBuild } from './promote.js';
import { rollbackPromotion } from './rollback.js';

const BRANCH = 'autonomous/r1';
const live = () => new AbortController().signal;

afterEach(removeTempDirs);

/** A repository whose integration branch is one commit ahead of main and checked out. */
async function workspace(): Promise<{ ws: string; base: string; tip: string }> {
  const ws = tempDir();
  const base = await createSampleRepository(ws, { 'README.md': '# Sample\n' }, { author: testAuthor, message: 'init\n' });
  await ensureIntegrationBranch(ws, { runId: 'r1' });
  await checkoutBranch(ws, BRANCH);
  const tip = await commitFiles(ws, BRANCH, { 'app.js': 'v1\n' });
  return { ws, base, tip };
}

const deps = { git: workspaceGit, buildGit: workspaceBuildGit, log: silentLog };

async function promoted(ws: string, sharedUrl?: string) {
  const r = await promoteBuild({ git: workspaceBuildGit, log: silentLog }, integrationOf(ws, { sharedUrl }), { signal: live() });
  if (r.kind !== 'promoted') throw new Error(`promotion failed: ${r.reason}`);
  return r;
}

describe(rollbackPromotion.name, () => {
  it('puts the base branch back where the promotion found it, and a retry changes nothing', async () => {
    const { ws, base, tip } = await workspace();
    const p = await promoted(ws);
    expect(p.sha).toBe(tip);

    expect(await rollbackPromotion(deps, integrationOf(ws), { previous: p.previous, promoted: p.sha, signal: live() })).toEqual({ kind: 'rolled_back', sha: base, changed: true, pushed: false });
    expect(await headCommit(ws, 'refs/heads/main')).toBe(base);
    expect(await rollbackPromotion(deps, integrationOf(ws), { previous: p.previous, promoted: p.sha, signal: live() })).toEqual({ kind: 'rolled_back', sha: base, changed: false, pushed: false });
    // The workspace keeps the integration branch and its commits.
    expect(await currentBranch(ws)).toBe(BRANCH);
    expect(await headCommit(ws)).toBe(tip);
    expect(await worktreeChanges(ws)).toMatchObject({ clean: true });
    fsck(ws);
  });

  it('deletes a base branch the promotion created (an empty repository)', async () => {
    const ws = tempDir();
    await initRepository(ws);
    await checkoutUnbornBranch(ws, BRANCH);
    await commitFiles(ws, BRANCH, { 'SPEC.md': '# SPEC\n' }, 'plan');
    const p = await promoted(ws);
    expect(p.previous).toBeNull();

    expect(await rollbackPromotion(deps, integrationOf(ws), { previous: null, promoted: p.sha, signal: live() })).toEqual({ kind: 'rolled_back', sha: null, changed: true, pushed: false });
    expect(await branchHeadOrNull(workspaceGit, ws, 'main')).toBeNull();
    expect(await isEmptyRepository(ws)).toBe(false);
    fsck(ws);
  });

  it('leaves a base branch someone moved after the promotion where it is, and says so', async () => {
    const { ws, base } = await workspace();
    const p = await promoted(ws);
    await checkoutBranch(ws, 'main');
    const theirs = await commitFiles(ws, 'main', { 'docs/x.md': 'x\n' }, 'elsewhere');
    await checkoutBranch(ws, BRANCH);

    const result = await rollbackPromotion(deps, integrationOf(ws), { previous: base, promoted: p.sha, signal: live() });

    expect(result).toMatchObject({ kind: 'rollback_failed', code: 'BRANCH_MOVED' });
    expect((result as { reason: string }).reason).toBe(
      `executor_error: rollback of main to ${base.slice(0, 12)} failed (BRANCH_MOVED): main in the workspace is at ${theirs.slice(0, 12)}, not at the promoted ${p.sha.slice(0, 12)}: someone moved it after the promotion (a push, or another promotion), so it was left there rather than undo their work`,
    );
    expect(await headCommit(ws, 'refs/heads/main')).toBe(theirs);
  });

  describe('with a shared repository', () => {
    let server: GitHttpServer;
    beforeEach(async () => {
      server = await startGitHttpServer();
    });
    afterEach(() => server.close());

    /** Two clones of one shared repository; the first promotes its integration branch there. */
    async function promotedElsewhere() {
      const first = server.createRepository('svc', { 'README.md': '# Sample\n' });
      // A bare repository refuses non-fast-forward updates by default; a rollback is one.
      server.git('svc', 'config', 'receive.denyNonFastForwards', 'false');
      const a = tempDir();
      server.clone('svc', a);
      await ensureIntegrationBranch(a, { runId: 'r1' });
      await checkoutBranch(a, BRANCH);
      await commitFiles(a, BRANCH, { 'app.js': 'v1\n' });
      // The second workspace cloned before another commit landed on the shared main.
      const b = tempDir();
      server.clone('svc', b);
      await ensureIntegrationBranch(b, { runId: 'r1' });
      await checkoutBranch(b, BRANCH);
      const previous = server.commit('svc', { branch: 'main', files: { 'docs/a.md': 'a\n' }, message: 'docs' });
      const p = await promoted(a, server.url('svc'));
      expect(p).toMatchObject({ promotion: 'merge', previous, pushed: true });
      return { a, b, first, previous, p };
    }

    it('moves the shared base branch back from a workspace whose own base branch lags behind', async () => {
      const { b, first, previous, p } = await promotedElsewhere();
      expect(await headCommit(b, 'refs/heads/main')).toBe(first);

      const result = await rollbackPromotion(deps, integrationOf(b, { sharedUrl: server.url('svc') }), { previous, promoted: p.sha, signal: live() });

      expect(result).toEqual({ kind: 'rolled_back', sha: previous, changed: true, pushed: true });
      expect(server.git('svc', 'rev-parse', 'main').trim()).toBe(previous);
      expect(await headCommit(b, 'refs/heads/main')).toBe(previous);
      expect(await currentBranch(b)).toBe(BRANCH);
      server.git('svc', 'fsck', '--strict');
      fsck(b);
      // Retried: already there.
      expect(await rollbackPromotion(deps, integrationOf(b, { sharedUrl: server.url('svc') }), { previous, promoted: p.sha, signal: live() })).toEqual({ kind: 'rolled_back', sha: previous, changed: false, pushed: false });
    });

    it('leaves a shared base branch someone pushed to after the promotion, naming the shared repository', async () => {
      const { a, previous, p } = await promotedElsewhere();
      const theirs = server.commit('svc', { branch: 'main', files: { 'docs/b.md': 'b\n' }, message: 'more docs' });

      const result = await rollbackPromotion(deps, integrationOf(a, { sharedUrl: server.url('svc') }), { previous, promoted: p.sha, signal: live() });

      expect(result).toMatchObject({ kind: 'rollback_failed', code: 'BRANCH_MOVED' });
      expect((result as { reason: string }).reason).toContain(`main in the shared repository ${server.url('svc')} is at ${theirs.slice(0, 12)}, not at the promoted ${p.sha.slice(0, 12)}`);
      expect(server.git('svc', 'rev-parse', 'main').trim()).toBe(theirs);
      expect(await headCommit(a, 'refs/heads/main')).toBe(p.sha);
    });
  });

  describe('with a fake git', () => {
    it('resets guarded by the promoted commit; a refused push is reported, a stop ends the attempt', async () => {
      const buildGit = new FakeBuildGit();
      const fakeDeps = { git: workspaceGit, buildGit, log: silentLog };
      const undo = { previous: 'a'.repeat(40), promoted: 'b'.repeat(40) };
      buildGit.resetAs = new GitError('PUSH_REJECTED', 'refused', {});
      const result = await rollbackPromotion(fakeDeps, integrationOf('/ws'), { ...undo, signal: live() });
      expect(result).toMatchObject({ kind: 'rollback_failed', code: 'PUSH_REJECTED', reason: expect.stringMatching(/^push_rejected: rollback of main to a{12} failed/) });
      expect(buildGit.ops).toEqual([`resetBranchTo main ${'a'.repeat(40)} from ${'b'.repeat(40)}`]);

      const stop = new AbortController();
      stop.abort(new AttemptStoppedError('lease_lost'));
      await expect(rollbackPromotion(fakeDeps, integrationOf('/ws'), { ...undo, signal: stop.signal })).rejects.toMatchObject({ reason: 'lease_lost' });
      expect(buildGit.ops).toHaveLength(1);
    });
  });
});
