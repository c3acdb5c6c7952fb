/**
 * Turning a kept attempt into exactly one commit on the integration branch.
 */
import { gitFs as fs } from './git-fs.js';
import path from 'node:path';
import git from 'isomorphic-git';
import { GitError, toGitError } from './errors.js';
import {
  assertRepository,
  branchRef,
  currentBranchOrNull,
  gitSignature,
  type GitAuthor,
} from './internal.js';
import { assertNoSymlinkParents, assertSafeRepoPath, lstatOrNull, pruneEmptyParents } from './paths.js';
import { removeWorktreePath } from './worktree.js';

/** Inputs of {@link commitChanges}. */
export interface CommitChangesInput {
  /** Must be the checked-out branch. */
  branch: string;
  /** Repo-relative paths the attempt created or modified (they must exist on disk). */
  written: string[];
  /** Repo-relative paths the attempt deleted. */
  deleted: string[];
  message: string;
  author: GitAuthor;
  /** Fixed author/committer time (UTC); defaults to now. */
  date?: Date;
}

/**
 * Stages exactly `written` and `deleted` and commits them on `branch`. Returns the commit id.
 *
 * Only the named paths are touched: the working tree is never scanned (statusMatrix is far
 * slower than git status), and all additions go through one `git.add` call because
 * isomorphic-git rewrites the index once per call. Written paths matching `.gitignore`
 * that are not already tracked are skipped, as `git add` would refuse them. A deleted path
 * still on disk is removed after the commit, so working tree, index and HEAD agree and the
 * next clean check passes. If staging or committing fails, the index entries of the named
 * paths are reset to HEAD and COMMIT_FAILED is thrown; nothing on disk has changed then.
 *
 * Throws NOT_A_REPOSITORY, BRANCH_NOT_CHECKED_OUT, UNSAFE_PATH, INVALID_ARGUMENT or COMMIT_FAILED.
 */
export async function commitChanges(dir: string, input: CommitChangesInput): Promise<string> {
  const { branch, message, author, date } = input;
  await assertRepository(dir);
  if (typeof message !== 'string' || message.trim() === '') {
    throw new GitError('INVALID_ARGUMENT', 'The commit message is empty', {});
  }
  if (!Array.isArray(input.written) || !Array.isArray(input.deleted)) {
    throw new GitError('INVALID_ARGUMENT', '`written` and `deleted` must be arrays of paths', {});
  }
  const written = [...new Set(input.written)];
  const deleted = [...new Set(input.deleted)];
  [...written, ...deleted].forEach(assertSafeRepoPath);
  const both = written.filter((p) => deleted.includes(p));
  if (both.length > 0) {
    throw new GitError('INVALID_ARGUMENT', `Paths listed as both written and deleted: ${both.join(', ')}`, { paths: both });
  }
  const signature = gitSignature(author, date);

  const current = await currentBranchOrNull(dir);
  if (current !== branch) {
    throw new GitError(
      'BRANCH_NOT_CHECKED_OUT',
      `Cannot commit on ${branch}: the checked-out branch is ${current ?? '(detached HEAD)'}`,
      { branch, current },
    );
  }

  for (const p of written) {
    await assertNoSymlinkParents(dir, p);
    const stat = await lstatOrNull(path.join(dir, p));
    if (stat === null || !(stat.isFile() || stat.isSymbolicLink())) {
      throw new GitError('COMMIT_FAILED', `Written path ${p} is ${stat === null ? 'missing' : 'not a file'}`, {
        path: p,
        reason: stat === null ? 'missing' : 'not a file',
      });
    }
  }
  for (const p of deleted) await assertNoSymlinkParents(dir, p);

  const cache = {};
  let sha: string;
  try {
    if (written.length > 0) await git.add({ fs, dir, filepath: written, cache });
    if (deleted.length > 0) await git.remove({ fs, dir, filepath: deleted, cache });
    sha = await git.commit({
      fs,
      dir,
      cache,
      message,
      author: signature,
      committer: signature,
      ref: branchRef(branch),
    });
  } catch (err) {
    await resetIndexEntries(dir, [...written, ...deleted]);
    throw toGitError(err, 'COMMIT_FAILED', `Could not commit on ${branch}`, { branch });
  }

  for (const p of deleted) {
    await removeWorktreePath(dir, p);
    await pruneEmptyParents(dir, p);
  }
  return sha;
}

/**
 * Best-effort rollback of the index for `paths` after a failed commit. isomorphic-git may
 * already have written some staged entries; leaving them would make the next commit
 * include half of a rejected attempt.
 */
async function resetIndexEntries(dir: string, paths: string[]): Promise<void> {
  for (const filepath of paths) {
    try {
      await git.resetIndex({ fs, dir, filepath });
    } catch {
      // Keep going: the original error is the one worth reporting.
    }
  }
}
