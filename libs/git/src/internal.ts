/**
 * Helpers shared by the façade modules. Only `isRepository` and `GitAuthor` are public
 * (re-exported by repository.ts); the rest stays behind the package index.
 */
import { gitFs as fs } from './git-fs.js';
import git from 'isomorphic-git';
import { GitError, isoGitCode, toGitError } from './errors.js';

/** The author recorded on commits the façade writes. */
export interface GitAuthor {
  name: string;
  email: string;
}

/** `refs/heads/<branch>`; accepts a name that is already fully qualified. */
export function branchRef(branch: string): string {
  return branch.startsWith('refs/') ? branch : `refs/heads/${branch}`;
}

/** True when `err` is isomorphic-git's "could not find" error. */
export function isNotFound(err: unknown): boolean {
  return isoGitCode(err) === 'NotFoundError';
}

/** True when `dir` is the root of a git working tree (it has a readable `.git` with a HEAD). */
export async function isRepository(dir: string): Promise<boolean> {
  try {
    // depth 1 reads HEAD without following it, so a freshly initialised repo counts too.
    await git.resolveRef({ fs, dir, ref: 'HEAD', depth: 1 });
    return true;
  } catch {
    return false;
  }
}

/** Throws NOT_A_REPOSITORY unless {@link isRepository}, so later errors are not misread as missing refs. */
export async function assertRepository(dir: string): Promise<void> {
  if (!(await isRepository(dir))) {
    throw new GitError('NOT_A_REPOSITORY', `Not a git repository: ${dir}`, { dir });
  }
}

/** Resolves `ref` to a commit id, or `null` when it does not exist. */
export async function resolveOrNull(dir: string, ref: string): Promise<string | null> {
  try {
    return await git.resolveRef({ fs, dir, ref });
  } catch (err) {
    if (isNotFound(err)) return null;
    throw toGitError(err, 'GIT_FAILED', `Could not resolve ${ref}`, { ref });
  }
}

/** Resolves a local branch to its tip, or throws BRANCH_NOT_FOUND. */
export async function resolveBranch(dir: string, branch: string): Promise<string> {
  const oid = await resolveOrNull(dir, branchRef(branch));
  if (oid === null) {
    throw new GitError('BRANCH_NOT_FOUND', `Branch ${branch} does not exist`, { branch });
  }
  return oid;
}

/** True for a repository without any branch: freshly initialised, nothing committed yet. */
export async function hasNoBranches(dir: string): Promise<boolean> {
  try {
    return (await git.listBranches({ fs, dir })).length === 0;
  } catch (err) {
    throw toGitError(err, 'GIT_FAILED', 'Could not list the branches', { dir });
  }
}

/** The branch HEAD points at (also when it has no commit yet), or `null` when HEAD is detached. */
export async function currentBranchOrNull(dir: string): Promise<string | null> {
  try {
    const name = await git.currentBranch({ fs, dir, fullname: false });
    return typeof name === 'string' ? name : null;
  } catch (err) {
    throw toGitError(err, 'GIT_FAILED', 'Could not read HEAD', { dir });
  }
}

/**
 * isomorphic-git's author object with an explicit timestamp.
 *
 * A given `date` is written with a UTC offset so the commit id does not depend on the
 * machine's time zone (tests and the demo rely on stable ids).
 */
export function gitSignature(
  author: GitAuthor,
  date?: Date,
): { name: string; email: string; timestamp: number; timezoneOffset?: number } {
  for (const [field, value] of [
    ['name', author?.name],
    ['email', author?.email],
  ] as const) {
    // git fsck rejects identities holding <, > or line breaks; an empty name is refused too.
    if (typeof value !== 'string' || value.trim() === '' || /[<>\n\r\0]/.test(value)) {
      throw new GitError('INVALID_ARGUMENT', `Invalid author ${field} ${JSON.stringify(value)}`, { field });
    }
  }
  if (date !== undefined) {
    if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
      throw new GitError('INVALID_ARGUMENT', 'Invalid commit date', { date: String(date) });
    }
    return { name: author.name.trim(), email: author.email.trim(), timestamp: Math.floor(date.getTime() / 1000), timezoneOffset: 0 };
  }
  return { name: author.name.trim(), email: author.email.trim(), timestamp: Math.floor(Date.now() / 1000) };
}
