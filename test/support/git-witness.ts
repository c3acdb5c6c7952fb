/**
 * What every git test needs besides the library under test: scratch directories, the git
 * binary as a witness (`git fsck`, `git log`), used only when installed (the product never
 * needs it), and the GitError a call is expected to throw.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GitError, commitChanges, formatCommitMessage } from '@app/git';

/** Whether a git binary is on PATH. */
export const hasGitBinary = spawnSync('git', ['--version'], { stdio: 'ignore' }).status === 0;

/** Runs the git binary in `dir`, ignoring the machine's git configuration; throws with its stderr on a non-zero exit. */
export function gitBinary(dir: string, ...args: string[]): string {
  const result = spawnSync('git', ['-c', 'safe.directory=*', ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
  });
  if (result.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/** `git fsck --strict` when a git binary exists. */
export function fsck(dir: string): void {
  if (hasGitBinary) gitBinary(dir, 'fsck', '--strict');
}

const tempDirs: string[] = [];

/** A new temporary directory, removed by {@link removeTempDirs}. */
export function tempDir(prefix = 'autopack-git-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Removes every directory {@link tempDir} made; call it in `afterEach`. */
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** The GitError `promise` rejects with; fails the test when it resolves or throws anything else. */
export async function gitErrorOf(promise: Promise<unknown>): Promise<GitError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(GitError);
    return err as GitError;
  }
  throw new Error('expected a GitError');
}

/** Who commits in git tests. */
export const testAuthor = { name: 'Autopack Test', email: 'test@autopack.invalid' };

/**
 * Writes `files` and commits exactly them on the checked-out `branch`, as the executor commits
 * phase `phaseId` (attempt 1) of run `runId`.
 */
export async function commitPhaseFiles(
  dir: string,
  branch: string,
  files: Record<string, string>,
  o: { phaseId?: string; runId: string; author?: { name: string; email: string }; date?: Date },
): Promise<string> {
  for (const [p, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), content);
  }
  const phaseId = o.phaseId ?? 'p1';
  return commitChanges(dir, {
    branch,
    written: Object.keys(files),
    deleted: [],
    message: formatCommitMessage({ phaseId, summary: `Do ${phaseId}`, runId: o.runId, attempt: 1 }),
    author: o.author ?? testAuthor,
    ...(o.date ? { date: o.date } : {}),
  });
}
