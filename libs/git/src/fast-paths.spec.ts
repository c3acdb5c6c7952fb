/**
 * The paths that cost what native git costs (commit on the parent's tree, stat-based clean
 * check, branch switch as a HEAD update) must give what the slow paths and git give.
 */
import fs from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import {
  checkoutBranch,
  commitChanges,
  createSampleRepository,
  currentBranch,
  ensureIntegrationBranch,
  headCommit,
  resetBranchToRemote,
  worktreeChanges,
} from './index.js';
import { entryFromStats, readIndexFile, writeIndexFile } from './index-file.js';
import { fsck, gitBinary, hasGitBinary, removeTempDirs, tempDir } from '../../../test/support/git-witness.js';

afterEach(removeTempDirs);

const author = { name: 'Autopack Test', email: 'test@autopack.invalid' };
const date = new Date('2024-01-02T03:04:05Z');
const withGit = hasGitBinary ? it : it.skip;

const files: Record<string, string> = {
  'README.md': '# Sample\n',
  '.gitignore': 'dist/\n*.log\n',
  'src/a/one.ts': 'export const one = 1;\n',
  'src/a/two.ts': 'export const two = 2;\n',
  'src/b/deep/three.ts': 'export const three = 3;\n',
  'src/b/four.ts': 'export const four = 4;\n',
  'docs/guide.md': 'guide\n',
  'tools/run.sh': '#!/bin/sh\necho hi\n',
};

async function repo(): Promise<string> {
  const dir = tempDir();
  await createSampleRepository(dir, files, { author, message: 'Initial commit\n', date });
  return dir;
}

function write(dir: string, p: string, content: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
  fs.writeFileSync(path.join(dir, p), content);
}

/** A change touching several levels: modify, add in a new directory, delete (emptying a directory), make executable. */
function applyChange(dir: string): { written: string[]; deleted: string[] } {
  write(dir, 'src/a/one.ts', 'export const one = 11;\n');
  write(dir, 'src/c/new/five.ts', 'export const five = 5;\n');
  write(dir, 'README.md', '# Sample, changed\n');
  fs.chmodSync(path.join(dir, 'tools/run.sh'), 0o755);
  fs.rmSync(path.join(dir, 'docs/guide.md'));
  return { written: ['src/a/one.ts', 'src/c/new/five.ts', 'README.md', 'tools/run.sh'], deleted: ['docs/guide.md'] };
}

async function treeOf(dir: string, ref: string): Promise<string> {
  const oid = await git.resolveRef({ fs, dir, ref });
  return (await git.readCommit({ fs, dir, oid })).commit.tree;
}

describe('commitChanges on the parent tree', () => {
  it('gives the tree, index and commit that isomorphic-git add + commit give', async () => {
    const ours = await repo();
    const theirs = tempDir();
    fs.cpSync(ours, theirs, { recursive: true });
    const change = applyChange(ours);
    applyChange(theirs);

    const sha = await commitChanges(ours, { branch: 'main', ...change, message: 'Change\n', author, date });
    await git.add({ fs, dir: theirs, filepath: change.written });
    await git.remove({ fs, dir: theirs, filepath: change.deleted[0] });
    const expected = await git.commit({ fs, dir: theirs, message: 'Change\n', author: { ...author, timestamp: date.getTime() / 1000, timezoneOffset: 0 } });

    expect(sha).toBe(expected);
    expect(await treeOf(ours, 'HEAD')).toBe(await treeOf(theirs, 'HEAD'));
    const index = async (dir: string) => (await git.listFiles({ fs, dir })).join('\n');
    expect(await index(ours)).toBe(await index(theirs));
    expect(await worktreeChanges(ours)).toEqual({ clean: true, paths: [], total: 0 });
    fsck(ours);
  });

  withGit('gives the tree git write-tree gives, and git sees a clean index', async () => {
    const ours = await repo();
    const native = tempDir();
    fs.cpSync(ours, native, { recursive: true });
    const change = applyChange(ours);
    applyChange(native);
    await commitChanges(ours, { branch: 'main', ...change, message: 'Change\n', author, date });
    // isomorphic-git writes core.filemode=false, yet stages modes from disk as git does with it true.
    gitBinary(native, '-c', 'core.filemode=true', 'add', '-A');
    expect(gitBinary(ours, 'rev-parse', 'HEAD^{tree}').trim()).toBe(gitBinary(native, 'write-tree').trim());
    expect(gitBinary(ours, 'status', '--porcelain')).toBe('');
    expect(gitBinary(ours, 'ls-files', '-s', 'tools/run.sh')).toMatch(/^100755 /);
    expect(gitBinary(ours, 'ls-files')).not.toContain('docs/guide.md');
    fsck(ours);
  });

  withGit('works on packed objects and packed refs (after git gc)', async () => {
    const ours = await repo();
    gitBinary(ours, 'gc', '-q');
    expect(fs.existsSync(path.join(ours, '.git/refs/heads/main'))).toBe(false);
    const theirs = tempDir();
    fs.cpSync(ours, theirs, { recursive: true });
    const change = applyChange(ours);
    applyChange(theirs);
    const sha = await commitChanges(ours, { branch: 'main', ...change, message: 'Change\n', author, date });
    await git.add({ fs, dir: theirs, filepath: change.written });
    await git.remove({ fs, dir: theirs, filepath: change.deleted[0] });
    const expected = await git.commit({ fs, dir: theirs, message: 'Change\n', author: { ...author, timestamp: date.getTime() / 1000, timezoneOffset: 0 } });
    expect(sha).toBe(expected);
    expect(await headCommit(ours, 'main')).toBe(sha);
    expect(await worktreeChanges(ours)).toEqual({ clean: true, paths: [], total: 0 });
    fsck(ours);
  });

  it('rewrites only the trees on the changed paths', async () => {
    const dir = await repo();
    const before = await treeOf(dir, 'HEAD');
    write(dir, 'src/a/two.ts', 'export const two = 22;\n');
    await commitChanges(dir, { branch: 'main', written: ['src/a/two.ts'], deleted: [], message: 'Two\n', author, date });
    const after = await treeOf(dir, 'HEAD');
    const entries = async (oid: string, filepath?: string) =>
      Object.fromEntries((await git.readTree({ fs, dir, oid, filepath })).tree.map((e) => [e.path, e.oid]));
    const [rootBefore, rootAfter] = [await entries(before), await entries(after)];
    expect(rootAfter.docs).toBe(rootBefore.docs);
    expect(rootAfter.tools).toBe(rootBefore.tools);
    expect(rootAfter.src).not.toBe(rootBefore.src);
    const [srcBefore, srcAfter] = [await entries(before, 'src'), await entries(after, 'src')];
    expect(srcAfter.b).toBe(srcBefore.b);
    expect(srcAfter.a).not.toBe(srcBefore.a);
    fsck(dir);
  });

  it('replaces a file by a directory and a directory by a file, in the tree and the index', async () => {
    const dir = await repo();
    fs.rmSync(path.join(dir, 'docs'), { recursive: true });
    write(dir, 'docs', 'now a file\n');
    fs.rmSync(path.join(dir, 'src/b/four.ts'));
    write(dir, 'src/b/four.ts/inner.ts', 'inner\n');
    await commitChanges(dir, { branch: 'main', written: ['docs', 'src/b/four.ts/inner.ts'], deleted: [], message: 'Swap\n', author, date });
    const tracked = await git.listFiles({ fs, dir, ref: 'HEAD' });
    expect(tracked).toContain('docs');
    expect(tracked).toContain('src/b/four.ts/inner.ts');
    expect(tracked).not.toContain('docs/guide.md');
    expect(tracked).not.toContain('src/b/four.ts');
    expect(await git.listFiles({ fs, dir })).toEqual(tracked);
    expect((await worktreeChanges(dir)).clean).toBe(true);
    fsck(dir);
  });

  it('deletes a whole directory named in deleted and prunes it from disk', async () => {
    const dir = await repo();
    const sha = await commitChanges(dir, { branch: 'main', written: [], deleted: ['src/b'], message: 'Drop b\n', author, date });
    expect(await headCommit(dir)).toBe(sha);
    expect((await git.listFiles({ fs, dir, ref: 'HEAD' })).filter((p) => p.startsWith('src/b/'))).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'src/b'))).toBe(false);
    expect((await worktreeChanges(dir)).clean).toBe(true);
    fsck(dir);
  });
});

describe('worktreeChanges by stat data', () => {
  it('finds a same-size content change with the mtime put back (by ctime)', async () => {
    const dir = await repo();
    const file = path.join(dir, 'src/a/one.ts');
    const round = new Date('2020-01-01T00:00:00Z');
    fs.utimesSync(file, round, round);
    // Recorded in the index with the round mtime.
    await commitChanges(dir, { branch: 'main', written: ['src/a/one.ts'], deleted: [], message: 'Touch\n', author, date });
    expect((await worktreeChanges(dir)).clean).toBe(true);
    fs.writeFileSync(file, 'export const one = 9;\n');
    fs.utimesSync(file, round, round);
    expect(fs.statSync(file).size).toBe(Buffer.byteLength(files['src/a/one.ts']));
    expect((await worktreeChanges(dir)).paths).toEqual(['src/a/one.ts']);
  });

  it('hashes racily clean entries, and keeps them found after the index is rewritten', async () => {
    const dir = await repo();
    const p = 'src/a/two.ts';
    const file = path.join(dir, p);
    // As if the file changed in the clock tick the index was written in: its entry holds the
    // new stat data (with the old blob) and the index file is no newer than the file.
    fs.writeFileSync(file, 'export const two = 6;\n');
    const stats = fs.lstatSync(file);
    const index = readIndexFile(dir)!;
    const i = index.entries.findIndex((e) => e.path === p);
    index.entries[i] = entryFromStats(p, stats, index.entries[i].oid);
    writeIndexFile(dir, index, index.entries);
    const indexTime = (stats.mtimeMs - 1) / 1000;
    fs.utimesSync(path.join(dir, '.git/index'), indexTime, indexTime);
    expect((await worktreeChanges(dir)).paths).toEqual([p]);

    // Another commit rewrites the index later: the racy entry must have been smudged.
    write(dir, 'src/b/four.ts', 'export const four = 44;\n');
    await commitChanges(dir, { branch: 'main', written: ['src/b/four.ts'], deleted: [], message: 'Four\n', author, date });
    expect((await worktreeChanges(dir)).paths).toEqual([p]);
  });

  it('ignores a touched file and a mode change, and finds deleted, untracked and staged files', async () => {
    const dir = await repo();
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(path.join(dir, 'README.md'), later, later);
    fs.chmodSync(path.join(dir, 'src/b/four.ts'), 0o755);
    expect(await worktreeChanges(dir)).toEqual({ clean: true, paths: [], total: 0 });

    fs.rmSync(path.join(dir, 'src/b/deep/three.ts'));
    write(dir, 'src/a/extra.ts', 'extra\n');
    write(dir, 'dist/out.js', 'ignored\n');
    write(dir, 'debug.log', 'ignored\n');
    write(dir, 'node_modules/x/index.js', 'skipped\n');
    write(dir, 'docs/guide.md', 'staged\n');
    await git.add({ fs, dir, filepath: 'docs/guide.md' });
    fs.writeFileSync(path.join(dir, 'docs/guide.md'), files['docs/guide.md']);
    expect((await worktreeChanges(dir)).paths).toEqual(['docs/guide.md', 'src/a/extra.ts', 'src/b/deep/three.ts']);
  });

  it('finds a symlink standing where a tracked directory was', async () => {
    const dir = await repo();
    const outside = tempDir();
    fs.cpSync(path.join(dir, 'src/b'), outside, { recursive: true });
    fs.rmSync(path.join(dir, 'src/b'), { recursive: true });
    fs.symlinkSync(outside, path.join(dir, 'src/b'));
    expect((await worktreeChanges(dir)).paths).toEqual(['src/b', 'src/b/deep/three.ts', 'src/b/four.ts']);
  });

  withGit('agrees with git status on a repository git wrote', async () => {
    const dir = await repo();
    gitBinary(dir, 'update-index', '--refresh');
    expect((await worktreeChanges(dir)).clean).toBe(true);
    write(dir, 'src/a/one.ts', 'export const one = 7;\n');
    write(dir, 'new.txt', 'new\n');
    expect((await worktreeChanges(dir)).paths).toEqual(['new.txt', 'src/a/one.ts']);
  });
});

describe('checkoutBranch to a branch at the same commit', () => {
  it('moves HEAD only: index bytes and files untouched, tree clean', async () => {
    const dir = await repo();
    const head = await headCommit(dir);
    const indexBefore = fs.readFileSync(path.join(dir, '.git/index'));
    const { branch } = await ensureIntegrationBranch(dir, { runId: 'run-1', baseBranch: 'main' });
    expect(await checkoutBranch(dir, branch)).toEqual({ branch, head });
    expect(await currentBranch(dir)).toBe(branch);
    expect(fs.readFileSync(path.join(dir, '.git/HEAD'), 'utf8')).toBe(`ref: refs/heads/${branch}\n`);
    expect(await headCommit(dir)).toBe(head);
    expect(fs.readFileSync(path.join(dir, '.git/index')).equals(indexBefore)).toBe(true);
    expect((await worktreeChanges(dir)).clean).toBe(true);
    if (hasGitBinary) expect(gitBinary(dir, 'status', '--porcelain')).toBe('');

    write(dir, 'src/a/one.ts', 'on the branch\n');
    await commitChanges(dir, { branch, written: ['src/a/one.ts'], deleted: [], message: 'On branch\n', author, date });
    expect(await headCommit(dir, 'main')).toBe(head);
    expect(await checkoutBranch(dir, 'main')).toEqual({ branch: 'main', head });
    expect(fs.readFileSync(path.join(dir, 'src/a/one.ts'), 'utf8')).toBe(files['src/a/one.ts']);
    fsck(dir);
  });

  it('still refuses a dirty working tree', async () => {
    const dir = await repo();
    const { branch } = await ensureIntegrationBranch(dir, { runId: 'run-2', baseBranch: 'main' });
    write(dir, 'stray.txt', 'x\n');
    await expect(checkoutBranch(dir, branch)).rejects.toMatchObject({ code: 'DIRTY_WORKTREE' });
    expect(await currentBranch(dir)).toBe('main');
  });

  it('resetBranchToRemote at HEAD\'s commit moves the refs only when clean, and still overwrites changes otherwise', async () => {
    const dir = await repo();
    const head = await headCommit(dir);
    const indexBefore = fs.readFileSync(path.join(dir, '.git/index'));
    expect(await resetBranchToRemote(dir, { branch: 'autonomous/r1', commit: head })).toEqual({ branch: 'autonomous/r1', head });
    expect(await currentBranch(dir)).toBe('autonomous/r1');
    expect(fs.readFileSync(path.join(dir, '.git/index')).equals(indexBefore)).toBe(true);

    fs.writeFileSync(path.join(dir, 'src/a/one.ts'), 'local change\n');
    expect(await resetBranchToRemote(dir, { branch: 'autonomous/r2', commit: head })).toEqual({ branch: 'autonomous/r2', head });
    expect(await currentBranch(dir)).toBe('autonomous/r2');
    expect(fs.readFileSync(path.join(dir, 'src/a/one.ts'), 'utf8')).toBe(files['src/a/one.ts']);
    expect((await worktreeChanges(dir)).clean).toBe(true);
    fsck(dir);
  });
});
