import fs from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import { gitFs } from './git-fs.js';
import { createSampleRepository, currentBranch, exportTree, headCommit, worktreeChanges } from './index.js';
import { gitErrorOf as errorOf, removeTempDirs, tempDir } from '../../../test/support/git-witness.js';

afterEach(removeTempDirs);

const author = { name: 'Autopack Test', email: 'test@autopack.invalid' };
const date = new Date('2024-01-02T03:04:05Z');
const signature = { ...author, timestamp: Math.floor(date.getTime() / 1000), timezoneOffset: 0 };

/** Commits `tree` (entries made with writeBlob/writeTree) on main without touching the working tree. */
async function commitTree(dir: string, tree: Array<{ mode: string; path: string; oid: string; type: 'blob' | 'tree' }>, parent: string): Promise<string> {
  const treeOid = await git.writeTree({ fs: gitFs, dir, tree });
  return git.commit({ fs: gitFs, dir, message: 'Crafted tree\n', author: signature, committer: signature, tree: treeOid, parent: [parent], noUpdateBranch: true });
}

const blob = (dir: string, text: string) => git.writeBlob({ fs: gitFs, dir, blob: new TextEncoder().encode(text) });

describe('exportTree', () => {
  it('writes the files of an older commit, keeps the executable bit, skips symlinks, and leaves the repository alone', async () => {
    const dir = tempDir();
    const first = await createSampleRepository(dir, { 'server.js': 'v1\n', 'lib/util.js': 'util\n', 'README.md': '# one\n' }, { author, message: 'one\n', date });
    // A second commit on main with other content, an executable script and a symlink.
    fs.writeFileSync(path.join(dir, 'server.js'), 'v2\n');
    fs.writeFileSync(path.join(dir, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    fs.symlinkSync('/etc/passwd', path.join(dir, 'passwd'));
    await git.add({ fs: gitFs, dir, filepath: ['server.js', 'run.sh', 'passwd'] });
    const second = await git.commit({ fs: gitFs, dir, message: 'two\n', author: signature, committer: signature });

    const oldTarget = path.join(tempDir(), 'deploy', 'one');
    const one = await exportTree(dir, first, oldTarget);
    expect(one).toEqual({ commit: first, files: ['README.md', 'lib/util.js', 'server.js'], skipped: [] });
    expect(fs.readFileSync(path.join(oldTarget, 'server.js'), 'utf8')).toBe('v1\n');
    expect(fs.readFileSync(path.join(oldTarget, 'lib', 'util.js'), 'utf8')).toBe('util\n');

    const newTarget = path.join(tempDir(), 'two');
    const two = await exportTree(dir, 'main', newTarget);
    expect(two).toEqual({ commit: second, files: ['README.md', 'lib/util.js', 'run.sh', 'server.js'], skipped: ['passwd'] });
    expect(fs.readFileSync(path.join(newTarget, 'server.js'), 'utf8')).toBe('v2\n');
    expect(fs.statSync(path.join(newTarget, 'run.sh')).mode & 0o111).not.toBe(0);
    expect(fs.statSync(path.join(newTarget, 'server.js')).mode & 0o111).toBe(0);
    expect(fs.existsSync(path.join(newTarget, 'passwd'))).toBe(false);
    expect(fs.existsSync(path.join(newTarget, '.git'))).toBe(false);

    expect(await currentBranch(dir)).toBe('main');
    expect(await headCommit(dir)).toBe(second);
    expect((await worktreeChanges(dir)).clean).toBe(true);
  });

  it('refuses unknown refs, missing commits and objects that are no commit with REF_NOT_FOUND', async () => {
    const dir = tempDir();
    const sha = await createSampleRepository(dir, { 'a.txt': 'a\n' }, { author, message: 'one\n', date });
    const target = path.join(tempDir(), 'out');
    expect((await errorOf(exportTree(dir, 'no-such-branch', target))).code).toBe('REF_NOT_FOUND');
    expect((await errorOf(exportTree(dir, 'f'.repeat(40), target))).code).toBe('REF_NOT_FOUND');
    expect((await errorOf(exportTree(dir, await blob(dir, 'a\n'), target))).code).toBe('REF_NOT_FOUND');
    expect(fs.existsSync(target)).toBe(false);
    expect((await exportTree(dir, sha, target)).files).toEqual(['a.txt']);
  });

  it('refuses a target that exists and a directory that is no repository', async () => {
    const dir = tempDir();
    const sha = await createSampleRepository(dir, { 'a.txt': 'a\n' }, { author, message: 'one\n', date });
    const target = tempDir();
    fs.writeFileSync(path.join(target, 'keep.txt'), 'mine\n');
    expect((await errorOf(exportTree(dir, sha, target))).code).toBe('INVALID_ARGUMENT');
    expect(fs.readFileSync(path.join(target, 'keep.txt'), 'utf8')).toBe('mine\n');
    expect((await errorOf(exportTree(tempDir(), sha, path.join(tempDir(), 'out')))).code).toBe('NOT_A_REPOSITORY');
  });

  it('refuses a crafted tree naming .git, and removes what it had written', async () => {
    const dir = tempDir();
    const base = await createSampleRepository(dir, { 'a.txt': 'a\n' }, { author, message: 'one\n', date });
    const hooks = await git.writeTree({ fs: gitFs, dir, tree: [{ mode: '100755', path: 'post-checkout', oid: await blob(dir, '#!/bin/sh\n'), type: 'blob' }] });
    const crafted = await commitTree(
      dir,
      [
        { mode: '100644', path: 'a.txt', oid: await blob(dir, 'a\n'), type: 'blob' },
        { mode: '040000', path: '.GIT', oid: hooks, type: 'tree' },
      ],
      base,
    );
    const target = path.join(tempDir(), 'out');
    const err = await errorOf(exportTree(dir, crafted, target));
    expect(err.code).toBe('UNSAFE_PATH');
    expect(fs.existsSync(target)).toBe(false);
  });
});
