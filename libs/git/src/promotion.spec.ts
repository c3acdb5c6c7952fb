import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import git from 'isomorphic-git';
import { type GitHttpServer, startGitHttpServer } from '../../../test/support/git-http-server.js';
import { gitFs } from './git-fs.js';
import {
  checkoutBranch,
  checkoutUnbornBranch,
  createSampleRepository,
  currentBranch,
  ensureIntegrationBranch,
  fetchBranch,
  headCommit,
  initRepository,
  isEmptyRepository,
  promoteBranch,
  pushBranch,
  readFileAtRef,
  resetBranchTo,
  resetBranchToRemote,
  resetBranchToUnborn,
  worktreeChanges,
} from './index.js';
import { commitPhaseFiles, fsck, gitBinary, gitErrorOf as errorOf, hasGitBinary, removeTempDirs, tempDir } from '../../../test/support/git-witness.js';

afterEach(removeTempDirs);

const author = { name: 'Autopack Test', email: 'test@autopack.invalid' };
const date = new Date('2024-01-02T03:04:05Z');
const RUN = 'run-1';
const BRANCH = 'autonomous/run-1';
const FILES = { 'README.md': '# Sample\n', 'src/app.ts': 'export const answer = 42;\n' };

/** Writes `files` and commits exactly them on the checked-out `branch`, as the executor does. */
const commitOn = (dir: string, branch: string, files: Record<string, string>, phaseId = 'p1'): Promise<string> =>
  commitPhaseFiles(dir, branch, files, { phaseId, runId: RUN, author, date });

/** A sample repository with the integration branch checked out, as an executor leaves it. */
async function workspace(): Promise<{ dir: string; base: string }> {
  const dir = tempDir();
  const base = await createSampleRepository(dir, FILES, { author, message: 'Initial commit\n', date });
  await ensureIntegrationBranch(dir, { runId: RUN });
  await checkoutBranch(dir, BRANCH);
  return { dir, base };
}

/** Moves `main` on by one commit behind the integration branch's back (someone else's work). */
async function moveMain(dir: string, files: Record<string, string>): Promise<string> {
  await checkoutBranch(dir, 'main');
  const sha = await commitOn(dir, 'main', files, 'elsewhere');
  await checkoutBranch(dir, BRANCH);
  return sha;
}

/** The ids of the repository's loose objects. */
function objectIds(dir: string): string[] {
  const objects = path.join(dir, '.git', 'objects');
  return fs
    .readdirSync(objects, { recursive: true })
    .map(String)
    .filter((p) => /^[0-9a-f]{2}[/\\][0-9a-f]{38}$/.test(p))
    .map((p) => p.replace(/[/\\]/, ''));
}

async function expectWorkspaceUntouched(dir: string, head: string): Promise<void> {
  expect(await currentBranch(dir)).toBe(BRANCH);
  expect(await headCommit(dir)).toBe(head);
  expect(await worktreeChanges(dir)).toEqual({ clean: true, paths: [], total: 0 });
}

describe('promoteBranch', () => {
  it('fast-forwards the base branch when it is an ancestor of head, then reports up_to_date', async () => {
    const { dir, base } = await workspace();
    await commitOn(dir, BRANCH, { 'src/a.ts': 'export const a = 1;\n' });
    const tip = await commitOn(dir, BRANCH, { 'src/b.ts': 'export const b = 2;\n' }, 'p2');

    expect(await promoteBranch(dir, { base: 'main', head: BRANCH, author })).toEqual({ kind: 'fast_forward', previous: base, sha: tip, pushed: false });
    expect(await headCommit(dir, 'refs/heads/main')).toBe(tip);
    await expectWorkspaceUntouched(dir, tip);
    // A retried promotion moves nothing and adds no merge commit.
    expect(await promoteBranch(dir, { base: 'main', head: BRANCH, author })).toEqual({ kind: 'up_to_date', previous: tip, sha: tip, pushed: false });
    expect(await headCommit(dir, 'refs/heads/main')).toBe(tip);
    fsck(dir);
  });

  it('adds a merge commit (base, head) when the base moved with a change that merges cleanly', async () => {
    const { dir } = await workspace();
    const tip = await commitOn(dir, BRANCH, { 'src/a.ts': 'export const a = 1;\n', 'src/app.ts': 'export const answer = 43;\n' });
    const moved = await moveMain(dir, { 'docs/notes.md': 'notes\n', 'README.md': '# Sample\n\nMore.\n' });

    const result = await promoteBranch(dir, { base: 'main', head: BRANCH, author, date, message: `[Autopack] promote ${BRANCH} into main\n` });
    expect(result).toMatchObject({ kind: 'merge', previous: moved, pushed: false });
    expect(await headCommit(dir, 'refs/heads/main')).toBe(result.sha);
    const { commit } = await git.readCommit({ fs: gitFs, dir, oid: result.sha });
    expect(commit.parent).toEqual([moved, tip]);
    expect(commit.message).toBe(`[Autopack] promote ${BRANCH} into main\n`);
    expect(commit.author).toMatchObject({ ...author, timestamp: date.getTime() / 1000 });
    // Both sides' changes are in the merged tree.
    expect(await readFileAtRef(dir, 'main', 'src/a.ts')).toBe('export const a = 1;\n');
    expect(await readFileAtRef(dir, 'main', 'src/app.ts')).toBe('export const answer = 43;\n');
    expect(await readFileAtRef(dir, 'main', 'docs/notes.md')).toBe('notes\n');
    expect(await readFileAtRef(dir, 'main', 'README.md')).toBe('# Sample\n\nMore.\n');
    await expectWorkspaceUntouched(dir, tip);
    expect(await promoteBranch(dir, { base: 'main', head: BRANCH, author })).toMatchObject({ kind: 'up_to_date', sha: result.sha });
    fsck(dir);
    if (hasGitBinary) expect(gitBinary(dir, 'log', '-1', '--format=%P', 'main').trim()).toBe(`${moved} ${tip}`);
  });

  it('refuses a conflicting merge with MERGE_CONFLICT naming the paths, changing nothing', async () => {
    const { dir } = await workspace();
    const tip = await commitOn(dir, BRANCH, { 'src/app.ts': 'export const answer = 43;\n', 'src/a.ts': 'export const a = 1;\n' });
    const moved = await moveMain(dir, { 'src/app.ts': 'export const answer = 44;\n' });
    const indexBefore = fs.readFileSync(path.join(dir, '.git', 'index'));

    const objectsBefore = objectIds(dir);
    const err = await errorOf(promoteBranch(dir, { base: 'main', head: BRANCH, author }));
    expect(err.code).toBe('MERGE_CONFLICT');
    expect(err.data).toMatchObject({ base: 'main', head: BRANCH, paths: ['src/app.ts'], reason: 'conflict' });
    expect(err.message).toContain('src/app.ts');
    expect(JSON.parse(JSON.stringify(err))).toMatchObject({ code: 'MERGE_CONFLICT', data: { paths: ['src/app.ts'] } });
    expect(await headCommit(dir, 'refs/heads/main')).toBe(moved);
    // No tree or commit was written. isomorphic-git's merge stores a conflicted file's merged
    // text even on a dry run: that blob is unreferenced (dangling), which git fsck accepts.
    const added = objectIds(dir).filter((oid) => !objectsBefore.includes(oid));
    expect(added.length).toBeLessThanOrEqual(1);
    for (const oid of added) expect((await git.readObject({ fs: gitFs, dir, oid })).type).toBe('blob');
    expect(fs.readFileSync(path.join(dir, '.git', 'index'))).toEqual(indexBefore);
    await expectWorkspaceUntouched(dir, tip);
    fsck(dir);
  });

  it('reports merges isomorphic-git cannot make (a file against a directory) and unrelated histories as MERGE_CONFLICT', async () => {
    const { dir } = await workspace();
    await commitOn(dir, BRANCH, { docs: 'a file\n' });
    const moved = await moveMain(dir, { 'docs/guide.md': 'a directory\n' });
    const unsupported = await errorOf(promoteBranch(dir, { base: 'main', head: BRANCH, author }));
    expect(unsupported.code).toBe('MERGE_CONFLICT');
    expect(unsupported.data).toMatchObject({ reason: 'unsupported' });
    expect(await headCommit(dir, 'refs/heads/main')).toBe(moved);

    // A base branch that does not share any history with head (made apart from it).
    const tree = await git.writeTree({ fs: gitFs, dir, tree: [] });
    const stranger = await git.commit({ fs: gitFs, dir, message: 'unrelated\n', author: { ...author, timestamp: 0 }, tree, parent: [], ref: 'refs/heads/other', noUpdateBranch: true });
    await git.writeRef({ fs: gitFs, dir, ref: 'refs/heads/other', value: stranger });
    const unrelated = await errorOf(promoteBranch(dir, { base: 'other', head: BRANCH, author }));
    expect(unrelated.code).toBe('MERGE_CONFLICT');
    expect(unrelated.data).toMatchObject({ reason: 'unrelated_histories', paths: [] });
    expect(await headCommit(dir, 'refs/heads/other')).toBe(stranger);
    fsck(dir);
  });

  it('refuses to move a base branch that is checked out, and reports a missing head', async () => {
    const { dir, base } = await workspace();
    await commitOn(dir, BRANCH, { 'src/a.ts': 'export const a = 1;\n' });
    await checkoutBranch(dir, 'main');
    expect((await errorOf(promoteBranch(dir, { base: 'main', head: BRANCH, author }))).code).toBe('BRANCH_CHECKED_OUT');
    expect(await headCommit(dir, 'refs/heads/main')).toBe(base);
    expect((await errorOf(promoteBranch(dir, { base: 'release', head: 'autonomous/none', author }))).code).toBe('BRANCH_NOT_FOUND');
    expect((await errorOf(promoteBranch(dir, { base: 'release', head: 'f'.repeat(40), author }))).code).toBe('REF_NOT_FOUND');
  });

  it('stops before moving anything when the signal is aborted', async () => {
    const { dir, base } = await workspace();
    await commitOn(dir, BRANCH, { 'src/a.ts': 'export const a = 1;\n' });
    const stop = new AbortController();
    stop.abort(new Error('lease lost'));
    await expect(promoteBranch(dir, { base: 'main', head: BRANCH, author, signal: stop.signal })).rejects.toThrow('lease lost');
    expect(await headCommit(dir, 'refs/heads/main')).toBe(base);
  });
});

describe('empty repository', () => {
  it('starts the integration branch unborn, makes its first commit a root commit, and promotion creates the base branch', async () => {
    const dir = tempDir();
    await initRepository(dir);
    expect(await isEmptyRepository(dir)).toBe(true);
    expect(await ensureIntegrationBranch(dir, { runId: RUN })).toEqual({ branch: BRANCH, created: false, head: null });
    expect(await checkoutUnbornBranch(dir, BRANCH)).toEqual({ branch: BRANCH, head: null });
    expect(await checkoutUnbornBranch(dir, BRANCH)).toEqual({ branch: BRANCH, head: null });
    expect(await currentBranch(dir)).toBe(BRANCH);

    const root = await commitOn(dir, BRANCH, { 'SPEC.md': '# Spec\n' }, 'spec');
    expect((await git.readCommit({ fs: gitFs, dir, oid: root })).commit.parent).toEqual([]);
    expect(await isEmptyRepository(dir)).toBe(false);
    expect(await ensureIntegrationBranch(dir, { runId: RUN })).toEqual({ branch: BRANCH, created: false, head: root });
    const tip = await commitOn(dir, BRANCH, { 'src/app.ts': 'export {};\n' }, 'p1');

    expect(await promoteBranch(dir, { base: 'main', head: BRANCH, author })).toEqual({ kind: 'created', previous: null, sha: tip, pushed: false });
    expect(await headCommit(dir, 'refs/heads/main')).toBe(tip);
    await expectWorkspaceUntouched(dir, tip);
    fsck(dir);
  });

  it('takes a root commit back to unborn (an attempt undone in an empty repository), keeping untracked files', async () => {
    const dir = tempDir();
    await initRepository(dir);
    await checkoutUnbornBranch(dir, BRANCH);
    await commitOn(dir, BRANCH, { 'SPEC.md': '# Spec\n', 'src/deep/app.ts': 'export {};\n' }, 'spec');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine\n');
    expect((await errorOf(resetBranchToUnborn(dir, 'main'))).code).toBe('BRANCH_NOT_CHECKED_OUT');

    expect(await resetBranchToUnborn(dir, BRANCH)).toEqual({ branch: BRANCH, head: null });
    expect(await currentBranch(dir)).toBe(BRANCH);
    expect(await isEmptyRepository(dir)).toBe(true);
    expect(fs.existsSync(path.join(dir, 'SPEC.md'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'src'))).toBe(false);
    expect(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine\n');
    expect(await worktreeChanges(dir)).toEqual({ clean: false, paths: ['notes.txt'], total: 1 });
    expect(await resetBranchToUnborn(dir, BRANCH)).toEqual({ branch: BRANCH, head: null });
    // The next first commit is a root commit again.
    fs.rmSync(path.join(dir, 'notes.txt'));
    const root = await commitOn(dir, BRANCH, { 'SPEC.md': '# Spec 2\n' }, 'spec');
    expect((await git.readCommit({ fs: gitFs, dir, oid: root })).commit.parent).toEqual([]);
    fsck(dir);
  });

  it('refuses an unborn start where it does not fit: a base missing among other branches, an existing branch, a dirty tree', async () => {
    const { dir } = await workspace();
    expect((await errorOf(ensureIntegrationBranch(dir, { runId: 'run-2', baseBranch: 'develop' }))).code).toBe('BRANCH_NOT_FOUND');
    expect((await errorOf(checkoutUnbornBranch(dir, 'autonomous/run-2'))).code).toBe('INVALID_ARGUMENT');
    expect((await errorOf(checkoutUnbornBranch(dir, BRANCH))).code).toBe('INVALID_ARGUMENT');

    const empty = tempDir();
    await initRepository(empty);
    fs.writeFileSync(path.join(empty, 'stray.txt'), 'x\n');
    expect((await errorOf(checkoutUnbornBranch(empty, BRANCH))).code).toBe('DIRTY_WORKTREE');
    expect(await currentBranch(empty)).toBe('main');
  });
});

describe('resetBranchTo', () => {
  it('puts a promoted base branch back, guarded by the expected sha, and is idempotent', async () => {
    const { dir, base } = await workspace();
    const tip = await commitOn(dir, BRANCH, { 'src/a.ts': 'export const a = 1;\n' });
    const promoted = await promoteBranch(dir, { base: 'main', head: BRANCH, author });

    const stale = await errorOf(resetBranchTo(dir, { branch: 'main', sha: base, expected: 'a'.repeat(40) }));
    expect(stale.code).toBe('BRANCH_MOVED');
    expect(stale.data).toEqual({ branch: 'main', expected: 'a'.repeat(40), actual: tip });
    expect(await headCommit(dir, 'refs/heads/main')).toBe(tip);

    expect(await resetBranchTo(dir, { branch: 'main', sha: promoted.previous, expected: promoted.sha })).toEqual({ branch: 'main', previous: tip, sha: base, changed: true, pushed: false });
    expect(await headCommit(dir, 'refs/heads/main')).toBe(base);
    expect(await resetBranchTo(dir, { branch: 'main', sha: base, expected: tip })).toEqual({ branch: 'main', previous: base, sha: base, changed: false, pushed: false });
    await expectWorkspaceUntouched(dir, tip);
    fsck(dir);
  });

  it('removes a base branch that the promotion created, and refuses bad input', async () => {
    const dir = tempDir();
    await initRepository(dir);
    await checkoutUnbornBranch(dir, BRANCH);
    const root = await commitOn(dir, BRANCH, { 'SPEC.md': '# Spec\n' }, 'spec');
    const promoted = await promoteBranch(dir, { base: 'main', head: BRANCH, author });
    expect(promoted.kind).toBe('created');

    expect(await resetBranchTo(dir, { branch: 'main', sha: null, expected: root })).toEqual({ branch: 'main', previous: root, sha: null, changed: true, pushed: false });
    expect(await errorOf(headCommit(dir, 'refs/heads/main'))).toMatchObject({ code: 'REF_NOT_FOUND' });
    expect(await resetBranchTo(dir, { branch: 'main', sha: null, expected: root })).toMatchObject({ changed: false });
    expect((await errorOf(resetBranchTo(dir, { branch: 'main', sha: 'nope', expected: null }))).code).toBe('INVALID_ARGUMENT');
    expect((await errorOf(resetBranchTo(dir, { branch: 'main', sha: 'f'.repeat(40), expected: null }))).code).toBe('REF_NOT_FOUND');
    expect((await errorOf(resetBranchTo(dir, { branch: BRANCH, sha: null, expected: root }))).code).toBe('BRANCH_CHECKED_OUT');
    fsck(dir);
  });
});

describe('promotion with a shared repository', () => {
  let server: GitHttpServer;
  let tmp: string;
  let seq = 0;
  beforeAll(async () => {
    server = await startGitHttpServer();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'autopack-promote-remote-'));
  });
  afterAll(async () => {
    await server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  afterEach(() => {
    server.intercept = undefined;
  });

  /** A shared repository and a workspace whose integration branch holds one pushed phase commit. */
  async function shared(): Promise<{ repo: string; ws: string; url: string; base: string; tip: string }> {
    const repo = `repo${++seq}`;
    const base = server.createRepository(repo, FILES);
    const ws = path.join(tmp, `ws${seq}`);
    server.clone(repo, ws);
    const url = server.url(repo);
    await resetBranchToRemote(ws, { branch: BRANCH, commit: base });
    const tip = await commitOn(ws, BRANCH, { 'src/a.ts': 'export const a = 1;\n' });
    await pushBranch(ws, { url, branch: BRANCH });
    return { repo, ws, url, base, tip };
  }

  it('promotes the shared base branch (merge when it moved there) and pushes it; the bare repository passes git fsck', async () => {
    const { repo, ws, url, tip } = await shared();
    const moved = server.commit(repo, { branch: 'main', files: { 'docs/notes.md': 'notes\n' }, message: 'elsewhere' });

    const result = await promoteBranch(ws, { base: 'main', head: BRANCH, author, url });
    expect(result).toMatchObject({ kind: 'merge', previous: moved, pushed: true });
    expect(server.git(repo, 'rev-parse', 'main').trim()).toBe(result.sha);
    expect(server.git(repo, 'log', '-1', '--format=%P', 'main').trim()).toBe(`${moved} ${tip}`);
    expect(await headCommit(ws, 'refs/heads/main')).toBe(result.sha);
    server.git(repo, 'fsck', '--strict');
    await expectWorkspaceUntouched(ws, tip);
    // Retried after the push landed: nothing more to do.
    expect(await promoteBranch(ws, { base: 'main', head: BRANCH, author, url })).toEqual({ kind: 'up_to_date', previous: result.sha, sha: result.sha, pushed: false });
  });

  it('rolls the shared base branch back from the promoted commit only, then the local one; retried, it changes nothing', async () => {
    const { repo, ws, url, tip } = await shared();
    const moved = server.commit(repo, { branch: 'main', files: { 'docs/notes.md': 'notes\n' }, message: 'elsewhere' });
    const promoted = await promoteBranch(ws, { base: 'main', head: BRANCH, author, url });
    expect(promoted.kind).toBe('merge');
    // A repository that refuses every non-fast-forward update refuses the rollback too.
    const refused = await errorOf(resetBranchTo(ws, { branch: 'main', sha: promoted.previous, expected: promoted.sha, url }));
    expect(refused.code).toBe('PUSH_REJECTED');
    expect(server.git(repo, 'rev-parse', 'main').trim()).toBe(promoted.sha);
    expect(await headCommit(ws, 'refs/heads/main')).toBe(promoted.sha);
    server.git(repo, 'config', 'receive.denyNonFastForwards', 'false');

    const back = { branch: 'main', sha: promoted.previous, expected: promoted.sha, url };
    expect(await resetBranchTo(ws, back)).toEqual({ branch: 'main', previous: promoted.sha, sha: moved, changed: true, pushed: true });
    expect(server.git(repo, 'rev-parse', 'main').trim()).toBe(moved);
    expect(await headCommit(ws, 'refs/heads/main')).toBe(moved);
    expect(await resetBranchTo(ws, back)).toEqual({ branch: 'main', previous: moved, sha: moved, changed: false, pushed: false });
    server.git(repo, 'fsck', '--strict');
    await expectWorkspaceUntouched(ws, tip);
  });

  it('refuses to roll the shared base back when it moved on after the promotion, and deletes a base the promotion created', async () => {
    const { repo, ws, url } = await shared();
    const promoted = await promoteBranch(ws, { base: 'main', head: BRANCH, author, url });
    const later = server.commit(repo, { branch: 'main', files: { 'later.txt': 'later\n' }, message: 'later' });
    const err = await errorOf(resetBranchTo(ws, { branch: 'main', sha: promoted.previous, expected: promoted.sha, url }));
    expect(err.code).toBe('BRANCH_MOVED');
    expect(err.data).toMatchObject({ branch: 'main', expected: promoted.sha, actual: later });
    expect(server.git(repo, 'rev-parse', 'main').trim()).toBe(later);
    expect(await headCommit(ws, 'refs/heads/main')).toBe(promoted.sha);

    // A base the promotion created in an empty shared repository goes away again.
    const empty = `empty${++seq}`;
    server.createRepository(empty, {});
    server.git(empty, 'update-ref', '-d', 'refs/heads/main');
    const emptyUrl = server.url(empty);
    await pushBranch(ws, { url: emptyUrl, branch: BRANCH });
    await resetBranchTo(ws, { branch: 'main', sha: null, expected: promoted.sha });
    const created = await promoteBranch(ws, { base: 'main', head: BRANCH, author, url: emptyUrl });
    expect(created).toMatchObject({ kind: 'created', previous: null, pushed: true });
    // git refuses to delete a repository's current branch (HEAD) unless configured to allow it.
    const refused = await errorOf(resetBranchTo(ws, { branch: 'main', sha: null, expected: created.sha, url: emptyUrl }));
    expect(refused.code).toBe('PUSH_REJECTED');
    expect(await headCommit(ws, 'refs/heads/main')).toBe(created.sha);
    server.git(empty, 'config', 'receive.denyDeleteCurrent', 'ignore');
    expect(await resetBranchTo(ws, { branch: 'main', sha: null, expected: created.sha, url: emptyUrl })).toMatchObject({ changed: true, pushed: true });
    expect(await errorOf(headCommit(ws, 'refs/heads/main'))).toMatchObject({ code: 'REF_NOT_FOUND' });
    expect(server.git(empty, 'for-each-ref', '--format=%(refname)', 'refs/heads/main').trim()).toBe('');
    expect(await fetchBranch(ws, { url: emptyUrl, branch: 'main' })).toBeNull();
  });

  it('does not overwrite a shared base that moves between the check and the rollback (the remote compares atomically)', async () => {
    const { repo, ws, url } = await shared();
    server.git(repo, 'config', 'receive.denyNonFastForwards', 'false');
    const promoted = await promoteBranch(ws, { base: 'main', head: BRANCH, author, url });
    let theirs: string | undefined;
    server.intercept = (r) => {
      if (r.service === 'receive-pack' && r.kind === 'rpc' && !theirs) theirs = server.commit(repo, { branch: 'main', files: { 'z.txt': 'theirs\n' }, message: 'theirs' });
    };
    const err = await errorOf(resetBranchTo(ws, { branch: 'main', sha: promoted.previous, expected: promoted.sha, url }));
    expect(err.code).toBe('PUSH_REJECTED');
    expect(server.git(repo, 'rev-parse', 'main').trim()).toBe(theirs);
    expect(await headCommit(ws, 'refs/heads/main')).toBe(promoted.sha);
  });

  it('fast-forwards the shared base branch', async () => {
    const { repo, ws, url, base, tip } = await shared();
    expect(await promoteBranch(ws, { base: 'main', head: BRANCH, author, url })).toEqual({ kind: 'fast_forward', previous: base, sha: tip, pushed: true });
    expect(server.git(repo, 'rev-parse', 'main').trim()).toBe(tip);
  });

  it('reports PUSH_REJECTED when the shared base moves during the push, forcing nothing and putting the local base back', async () => {
    const { repo, ws, url, base } = await shared();
    let theirs: string | undefined;
    server.intercept = (r) => {
      if (r.service === 'receive-pack' && r.kind === 'rpc' && !theirs) theirs = server.commit(repo, { branch: 'main', files: { 'y.txt': 'theirs\n' }, message: 'theirs' });
    };
    const err = await errorOf(promoteBranch(ws, { base: 'main', head: BRANCH, author, url }));
    expect(err.code).toBe('PUSH_REJECTED');
    expect(server.git(repo, 'rev-parse', 'main').trim()).toBe(theirs);
    expect(await headCommit(ws, 'refs/heads/main')).toBe(base);
    server.git(repo, 'fsck', '--strict');
    fsck(ws);
    // Promoting again merges onto what the shared base became.
    server.intercept = undefined;
    const again = await promoteBranch(ws, { base: 'main', head: BRANCH, author, url });
    expect(again).toMatchObject({ kind: 'merge', previous: theirs, pushed: true });
    expect(await fetchBranch(ws, { url, branch: 'main' })).toBe(again.sha);
  });
});
