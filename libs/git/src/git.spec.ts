import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  GitError,
  branchLog,
  changedFilesBetween,
  checkoutBranch,
  commitChanges,
  createSampleRepository,
  currentBranch,
  discardPaths,
  ensureIntegrationBranch,
  findPhaseCommit,
  formatCommitMessage,
  headCommit,
  integrationStatus,
  isRepository,
  listTrackedFiles,
  readBlobAtRef,
  readFileAtRef,
  worktreeChanges,
} from './index.js';
import { gitBinary, gitErrorOf, hasGitBinary, removeTempDirs, tempDir } from '../../../test/support/git-witness.js';

const codeOf = async (promise: Promise<unknown>): Promise<string> => (await gitErrorOf(promise)).code;
afterEach(removeTempDirs);

const author = { name: 'Autopack Test', email: 'test@autopack.invalid' };
const date = new Date('2024-01-02T03:04:05Z');
const RUN = 'run-1';
const BRANCH = 'autonomous/run-1';

const sampleFiles = {
  'README.md': '# Sample\n',
  'src/app.ts': 'export const answer = 42;\n',
  'src/old.ts': 'export const old = true;\n',
  '.gitignore': 'dist/\n*.log\n',
};

async function sampleRepo(): Promise<string> {
  const dir = tempDir();
  await createSampleRepository(dir, sampleFiles, { author, message: 'Initial commit\n', date });
  return dir;
}

/** The typical executor move: write files on disk, then commit exactly those paths. */
async function commitPhase(dir: string, phaseId: string, attempt: number, writes: Record<string, string>, deleted: string[] = []) {
  for (const [p, content] of Object.entries(writes)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), content);
  }
  for (const p of deleted) fs.rmSync(path.join(dir, p), { force: true });
  return commitChanges(dir, {
    branch: BRANCH,
    written: Object.keys(writes),
    deleted,
    message: formatCommitMessage({ phaseId, summary: `Do ${phaseId}\nmore detail`, runId: RUN, attempt }),
    author,
    date,
  });
}

describe('repositories', () => {
  it('creates a sample repository with one deterministic commit', async () => {
    const dir = await sampleRepo();
    const again = await sampleRepo();
    expect(await isRepository(dir)).toBe(true);
    expect(await currentBranch(dir)).toBe('main');
    const sha = await headCommit(dir);
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(await headCommit(again)).toBe(sha);
    expect(await headCommit(dir, 'main')).toBe(sha);
    expect((await listTrackedFiles(dir, 'main')).sort()).toEqual(Object.keys(sampleFiles).sort());
    expect(await readFileAtRef(dir, 'main', 'src/app.ts')).toBe(sampleFiles['src/app.ts']);
    expect(await readFileAtRef(dir, 'main', 'missing.txt')).toBeNull();
    expect(await readFileAtRef(dir, 'main', 'src')).toBeNull();
    expect(await worktreeChanges(dir)).toEqual({ clean: true, paths: [], total: 0 });
    const log = await branchLog(dir, 'main', { depth: 10 });
    expect(log).toEqual([{ sha, message: 'Initial commit\n', author, timestamp: date.getTime() / 1000, trailers: {} }]);
    if (hasGitBinary) gitBinary(dir, 'fsck', '--strict');
  });

  it('reports NOT_A_REPOSITORY and REF_NOT_FOUND with codes', async () => {
    const plain = tempDir();
    expect(await isRepository(plain)).toBe(false);
    expect(await codeOf(currentBranch(plain))).toBe('NOT_A_REPOSITORY');
    const dir = await sampleRepo();
    expect(await codeOf(headCommit(dir, 'no-such-branch'))).toBe('REF_NOT_FOUND');
    expect(await codeOf(branchLog(dir, 'no-such-branch'))).toBe('BRANCH_NOT_FOUND');
  });
});

describe('integration branch', () => {
  it('is created from base once, then found again', async () => {
    const dir = await sampleRepo();
    const base = await headCommit(dir, 'main');
    expect(await ensureIntegrationBranch(dir, { runId: RUN })).toEqual({ branch: BRANCH, created: true, head: base });
    expect(await ensureIntegrationBranch(dir, { runId: RUN })).toEqual({ branch: BRANCH, created: false, head: base });
    // Creating it does not move HEAD.
    expect(await currentBranch(dir)).toBe('main');
  });

  it('fails with BRANCH_NOT_FOUND for a missing base and INVALID_ARGUMENT for a bad run id', async () => {
    const dir = await sampleRepo();
    expect(await codeOf(ensureIntegrationBranch(dir, { runId: RUN, baseBranch: 'develop' }))).toBe('BRANCH_NOT_FOUND');
    expect(await codeOf(ensureIntegrationBranch(dir, { runId: 'bad id' }))).toBe('INVALID_ARGUMENT');
  });
});

describe('checkoutBranch', () => {
  it('switches the files on disk between branches', async () => {
    const dir = await sampleRepo();
    await ensureIntegrationBranch(dir, { runId: RUN });
    await checkoutBranch(dir, BRANCH);
    expect(await currentBranch(dir)).toBe(BRANCH);
    await commitPhase(dir, 'P1', 1, { 'lib/deep/new.ts': 'new\n', 'src/app.ts': 'export const answer = 43;\n' }, ['src/old.ts']);

    await checkoutBranch(dir, 'main');
    expect(await currentBranch(dir)).toBe('main');
    expect(fs.readFileSync(path.join(dir, 'src/app.ts'), 'utf8')).toBe(sampleFiles['src/app.ts']);
    expect(fs.readFileSync(path.join(dir, 'src/old.ts'), 'utf8')).toBe(sampleFiles['src/old.ts']);
    expect(fs.existsSync(path.join(dir, 'lib'))).toBe(false);
    expect((await worktreeChanges(dir)).clean).toBe(true);

    await checkoutBranch(dir, BRANCH);
    expect(fs.readFileSync(path.join(dir, 'lib/deep/new.ts'), 'utf8')).toBe('new\n');
    expect(fs.existsSync(path.join(dir, 'src/old.ts'))).toBe(false);
    expect((await worktreeChanges(dir)).clean).toBe(true);
    if (hasGitBinary) expect(gitBinary(dir, 'status', '--porcelain')).toBe('');
  });

  it('refuses a dirty working tree with DIRTY_WORKTREE and the offending paths', async () => {
    const dir = await sampleRepo();
    await ensureIntegrationBranch(dir, { runId: RUN });
    fs.writeFileSync(path.join(dir, 'README.md'), 'changed\n');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'untracked\n');
    let caught: unknown;
    try {
      await checkoutBranch(dir, BRANCH);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(GitError);
    const json = (caught as GitError).toJSON();
    expect(json).toMatchObject({ code: 'DIRTY_WORKTREE', data: { paths: ['README.md', 'notes.txt'], total: 2 } });
    expect(await currentBranch(dir)).toBe('main');
    expect(await codeOf(checkoutBranch(dir, 'nope'))).toBe('BRANCH_NOT_FOUND');
  });

  it('ignores ignored files, ignored directories and node_modules', async () => {
    const dir = await sampleRepo();
    await ensureIntegrationBranch(dir, { runId: RUN });
    fs.mkdirSync(path.join(dir, 'dist/nested'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'dist/nested/out.js'), 'built');
    fs.writeFileSync(path.join(dir, 'debug.log'), 'log');
    fs.mkdirSync(path.join(dir, 'node_modules/pkg'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'node_modules/pkg/index.js'), 'module');
    fs.mkdirSync(path.join(dir, 'empty-dir'));
    expect(await worktreeChanges(dir)).toEqual({ clean: true, paths: [], total: 0 });
    await checkoutBranch(dir, BRANCH);
    expect(fs.existsSync(path.join(dir, 'dist/nested/out.js'))).toBe(true);
  });

  it('lists at most 20 paths but counts them all', async () => {
    const dir = await sampleRepo();
    for (let i = 0; i < 25; i++) fs.writeFileSync(path.join(dir, `extra-${String(i).padStart(2, '0')}.txt`), 'x');
    fs.rmSync(path.join(dir, 'src/old.ts'));
    const changes = await worktreeChanges(dir);
    expect(changes.clean).toBe(false);
    expect(changes.total).toBe(26);
    expect(changes.paths).toHaveLength(20);
  });
});

describe('commitChanges', () => {
  it('makes exactly one commit with the contract message and leaves a clean tree', async () => {
    const dir = await sampleRepo();
    await ensureIntegrationBranch(dir, { runId: RUN });
    await checkoutBranch(dir, BRANCH);
    const before = await headCommit(dir);

    const sha = await commitPhase(
      dir,
      'P1',
      2,
      { 'src/app.ts': 'export const answer = 43;\n', 'pkg/a/b/c.ts': 'export {};\n' },
      ['src/old.ts'],
    );

    expect(await headCommit(dir)).toBe(sha);
    expect(await headCommit(dir, BRANCH)).toBe(sha);
    expect(await headCommit(dir, 'main')).toBe(before);
    const log = await branchLog(dir, BRANCH, { depth: 5 });
    expect(log.map((c) => c.sha)).toEqual([sha, before]);
    expect(log[0].message).toBe('[Autopack] P1: Do P1\n\nAutopack-Run: run-1\nAutopack-Phase: P1\nAutopack-Attempt: 2\n');
    expect(log[0].trailers).toEqual({ 'Autopack-Run': RUN, 'Autopack-Phase': 'P1', 'Autopack-Attempt': '2' });
    expect((await listTrackedFiles(dir, sha)).sort()).toEqual(['.gitignore', 'README.md', 'pkg/a/b/c.ts', 'src/app.ts']);
    expect(await readFileAtRef(dir, sha, 'src/app.ts')).toBe('export const answer = 43;\n');
    expect([...(await changedFilesBetween(dir, 'main', BRANCH))].sort()).toEqual([
      ['pkg/a/b/c.ts', 'added'],
      ['src/app.ts', 'modified'],
      ['src/old.ts', 'removed'],
    ]);
    expect(await changedFilesBetween(dir, 'main', 'main')).toEqual(new Map());
    expect(await codeOf(changedFilesBetween(dir, 'no-such-branch'))).toBe('REF_NOT_FOUND');
    expect(await worktreeChanges(dir)).toEqual({ clean: true, paths: [], total: 0 });

    if (hasGitBinary) {
      gitBinary(dir, 'fsck', '--strict');
      expect(gitBinary(dir, 'log', '-1', '--format=%H%n%an <%ae>%n%B', BRANCH)).toBe(
        `${sha}\n${author.name} <${author.email}>\n${log[0].message}\n`,
      );
      expect(gitBinary(dir, 'rev-list', '--count', `main..${BRANCH}`).trim()).toBe('1');
      expect(gitBinary(dir, 'status', '--porcelain')).toBe('');
    }
  });

  it('removes a deleted file that is still on disk, so the tree stays clean', async () => {
    const dir = await sampleRepo();
    await ensureIntegrationBranch(dir, { runId: RUN });
    await checkoutBranch(dir, BRANCH);
    await commitChanges(dir, { branch: BRANCH, written: [], deleted: ['src/old.ts'], message: 'rm\n', author, date });
    expect(fs.existsSync(path.join(dir, 'src/old.ts'))).toBe(false);
    expect((await worktreeChanges(dir)).clean).toBe(true);
  });

  it('refuses a branch that is not checked out, and creates no commit', async () => {
    const dir = await sampleRepo();
    await ensureIntegrationBranch(dir, { runId: RUN });
    const before = await headCommit(dir, BRANCH);
    fs.writeFileSync(path.join(dir, 'src/app.ts'), 'changed\n');
    const code = await codeOf(
      commitChanges(dir, { branch: BRANCH, written: ['src/app.ts'], deleted: [], message: 'x\n', author, date }),
    );
    expect(code).toBe('BRANCH_NOT_CHECKED_OUT');
    expect(await headCommit(dir, BRANCH)).toBe(before);
    expect(await headCommit(dir, 'main')).toBe(before);
  });

  it('refuses unsafe paths and missing written files without touching the index', async () => {
    const dir = await sampleRepo();
    const commit = (written: string[], deleted: string[] = []) =>
      commitChanges(dir, { branch: 'main', written, deleted, message: 'x\n', author, date });
    expect(await codeOf(commit(['../escape.txt']))).toBe('UNSAFE_PATH');
    expect(await codeOf(commit(['.git/config']))).toBe('UNSAFE_PATH');
    expect(await codeOf(commit([], ['/etc/passwd']))).toBe('UNSAFE_PATH');
    expect(await codeOf(commit(['README.md'], ['README.md']))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(commit(['missing.txt']))).toBe('COMMIT_FAILED');
    fs.symlinkSync(os.tmpdir(), path.join(dir, 'linked'));
    expect(await codeOf(commit(['linked/file.txt']))).toBe('UNSAFE_PATH');
    fs.rmSync(path.join(dir, 'linked'));
    expect(await worktreeChanges(dir)).toEqual({ clean: true, paths: [], total: 0 });
  });
});

describe('findPhaseCommit and integrationStatus', () => {
  it('finds the phase commit by trailers and counts commits ahead of base', async () => {
    const dir = await sampleRepo();
    expect(await integrationStatus(dir, { runId: RUN })).toEqual({
      branch: BRANCH,
      exists: false,
      commits_ahead_of_base: 0,
      current_commit: null,
    });
    expect(await findPhaseCommit(dir, { branch: BRANCH, runId: RUN, phaseId: 'P1' })).toBeNull();

    await ensureIntegrationBranch(dir, { runId: RUN });
    expect(await integrationStatus(dir, { runId: RUN })).toMatchObject({ exists: true, commits_ahead_of_base: 0 });
    await checkoutBranch(dir, BRANCH);
    const p1 = await commitPhase(dir, 'P1', 3, { 'a.txt': 'a\n' });
    const p2 = await commitPhase(dir, 'P2', 1, { 'b.txt': 'b\n' });

    expect(await findPhaseCommit(dir, { branch: BRANCH, runId: RUN, phaseId: 'P1' })).toEqual({ sha: p1, attempt: 3 });
    expect(await findPhaseCommit(dir, { branch: BRANCH, runId: RUN, phaseId: 'P2' })).toEqual({ sha: p2, attempt: 1 });
    expect(await findPhaseCommit(dir, { branch: BRANCH, runId: RUN, phaseId: 'P3' })).toBeNull();
    expect(await findPhaseCommit(dir, { branch: BRANCH, runId: 'other-run', phaseId: 'P1' })).toBeNull();
    expect(await findPhaseCommit(dir, { branch: BRANCH, runId: RUN, phaseId: 'P1', depth: 1 })).toBeNull();
    expect(await integrationStatus(dir, { runId: RUN })).toEqual({
      branch: BRANCH,
      exists: true,
      commits_ahead_of_base: 2,
      current_commit: p2,
    });

    // Base moves on with the same (fixed) timestamp: its new commit is not "ahead", and
    // the shared root must not be counted even though every commit has the same time.
    await checkoutBranch(dir, 'main');
    fs.writeFileSync(path.join(dir, 'main-only.txt'), 'm\n');
    await commitChanges(dir, { branch: 'main', written: ['main-only.txt'], deleted: [], message: 'main moves\n', author, date });
    expect((await integrationStatus(dir, { runId: RUN })).commits_ahead_of_base).toBe(2);
    if (hasGitBinary) expect(gitBinary(dir, 'rev-list', '--count', `main..${BRANCH}`).trim()).toBe('2');
    expect(await codeOf(integrationStatus(dir, { runId: RUN, baseBranch: 'gone' }))).toBe('BRANCH_NOT_FOUND');
  });
});

describe('discardPaths', () => {
  it('restores tracked files byte for byte and deletes untracked ones', async () => {
    const dir = tempDir();
    const binary = Buffer.from([0, 1, 2, 255, 254, 13, 10, 0, 128, 10]);
    await createSampleRepository(dir, { 'crlf.txt': 'line one\r\nline two\r\n', 'keep.md': 'keep\n' }, { author, message: 'init\n', date });
    fs.writeFileSync(path.join(dir, 'data.bin'), binary);
    fs.mkdirSync(path.join(dir, 'tools'));
    fs.writeFileSync(path.join(dir, 'tools/run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    await commitChanges(dir, { branch: 'main', written: ['data.bin', 'tools/run.sh'], deleted: [], message: 'more\n', author, date });
    const clean = Object.fromEntries(['crlf.txt', 'data.bin', 'keep.md', 'tools/run.sh'].map((p) => [p, fs.readFileSync(path.join(dir, p))]));

    // A rejected attempt: rewrites, a deletion, a file replaced by a directory, new files in a new directory.
    fs.writeFileSync(path.join(dir, 'crlf.txt'), 'line one\nline two\n');
    fs.writeFileSync(path.join(dir, 'data.bin'), Buffer.from([1, 2, 3]));
    fs.rmSync(path.join(dir, 'keep.md'));
    fs.rmSync(path.join(dir, 'tools/run.sh'));
    fs.mkdirSync(path.join(dir, 'tools/run.sh'));
    fs.mkdirSync(path.join(dir, 'new/deeper'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'new/deeper/file.ts'), 'x');
    expect((await worktreeChanges(dir)).clean).toBe(false);

    const result = await discardPaths(dir, ['crlf.txt', 'data.bin', 'keep.md', 'tools/run.sh', 'new/deeper/file.ts', 'never-existed.txt']);
    expect(result.restored.sort()).toEqual(['crlf.txt', 'data.bin', 'keep.md', 'tools/run.sh']);
    expect(result.deleted.sort()).toEqual(['never-existed.txt', 'new/deeper/file.ts']);
    for (const [p, bytes] of Object.entries(clean)) expect(fs.readFileSync(path.join(dir, p)).equals(bytes)).toBe(true);
    expect(Buffer.from((await readBlobAtRef(dir, 'HEAD', 'data.bin'))!).equals(binary)).toBe(true);
    expect(fs.statSync(path.join(dir, 'tools/run.sh')).mode & 0o111).not.toBe(0);
    expect(fs.existsSync(path.join(dir, 'new'))).toBe(false);
    expect(await worktreeChanges(dir)).toEqual({ clean: true, paths: [], total: 0 });
    if (hasGitBinary) expect(gitBinary(dir, 'status', '--porcelain')).toBe('');
    expect(await codeOf(discardPaths(dir, ['../x']))).toBe('UNSAFE_PATH');
  });
});

describe('without a git binary', () => {
  it('runs the whole executor flow with an empty PATH', async () => {
    const savedPath = process.env.PATH;
    process.env.PATH = '';
    try {
      const dir = await sampleRepo();
      await ensureIntegrationBranch(dir, { runId: RUN });
      await checkoutBranch(dir, BRANCH);
      const sha = await commitPhase(dir, 'P1', 1, { 'x.txt': 'x\n' });
      expect(await findPhaseCommit(dir, { branch: BRANCH, runId: RUN, phaseId: 'P1' })).toEqual({ sha, attempt: 1 });
      expect((await integrationStatus(dir, { runId: RUN })).commits_ahead_of_base).toBe(1);
    } finally {
      process.env.PATH = savedPath;
    }
  });
});
