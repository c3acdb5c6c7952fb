/**
 * Creating repositories and asking where HEAD is.
 */
import { gitFs as fs } from './git-fs.js';
import path from 'node:path';
import git from 'isomorphic-git';
import { GitError, toGitError } from './errors.js';
import {
  assertRepository,
  currentBranchOrNull,
  gitSignature,
  hasNoBranches,
  resolveOrNull,
  type GitAuthor,
} from './internal.js';
import { assertNoSymlinkParents, assertSafeRepoPath } from './paths.js';

export { isRepository, type GitAuthor } from './internal.js';

/** Options of {@link initRepository}. */
export interface InitRepositoryOptions {
  /** Branch HEAD points at; isomorphic-git would otherwise pick `master`. */
  defaultBranch?: string;
}

/** Creates `dir` if needed and initialises a repository there. A no-op on an existing repository. */
export async function initRepository(dir: string, { defaultBranch = 'main' }: InitRepositoryOptions = {}): Promise<void> {
  try {
    await fs.promises.mkdir(dir, { recursive: true });
    await git.init({ fs, dir, defaultBranch });
  } catch (err) {
    throw toGitError(err, 'GIT_FAILED', `Could not initialise a repository in ${dir}`, { dir });
  }
}

/** Options of {@link createSampleRepository}. */
export interface SampleRepositoryOptions {
  author: GitAuthor;
  message: string;
  /** Fixed author/committer time, so the demo and tests get the same commit ids on every run. */
  date?: Date;
  defaultBranch?: string;
}

/**
 * Initialises `dir` and commits `files` (repo-relative path -> UTF-8 content) as the first
 * commit on the default branch. Returns the commit id. Meant for the demo and tests.
 */
export async function createSampleRepository(
  dir: string,
  files: Record<string, string>,
  { author, message, date, defaultBranch = 'main' }: SampleRepositoryOptions,
): Promise<string> {
  const paths = Object.keys(files).sort();
  paths.forEach(assertSafeRepoPath);
  const signature = gitSignature(author, date);
  await initRepository(dir, { defaultBranch });
  try {
    for (const p of paths) {
      await assertNoSymlinkParents(dir, p);
      const target = path.join(dir, p);
      await fs.promises.mkdir(path.dirname(target), { recursive: true });
      await fs.promises.writeFile(target, files[p]);
    }
    // One add call for all paths: isomorphic-git rewrites the index once per call.
    if (paths.length > 0) await git.add({ fs, dir, filepath: paths, force: true });
    return await git.commit({ fs, dir, message, author: signature, committer: signature });
  } catch (err) {
    throw toGitError(err, 'COMMIT_FAILED', `Could not create the sample repository in ${dir}`, { dir });
  }
}

/** True when the repository has no branch yet (freshly initialised, nothing committed). */
export async function isEmptyRepository(dir: string): Promise<boolean> {
  await assertRepository(dir);
  return hasNoBranches(dir);
}

/** The checked-out branch name (e.g. `main`), or `null` when HEAD is detached. */
export async function currentBranch(dir: string): Promise<string | null> {
  await assertRepository(dir);
  return currentBranchOrNull(dir);
}

/**
 * The commit id `ref` points at (default `HEAD`). Accepts branch names, full ref names and
 * full commit ids. Throws REF_NOT_FOUND when it resolves to nothing (for example an unborn HEAD).
 */
export async function headCommit(dir: string, ref = 'HEAD'): Promise<string> {
  await assertRepository(dir);
  const oid = await resolveOrNull(dir, ref);
  if (oid === null) throw new GitError('REF_NOT_FOUND', `Cannot resolve ${ref}`, { ref });
  return oid;
}
