/**
 * Promotion: moving a base branch (`main`) to a run's integration branch head, and moving it
 * back (CONTRACT.md sections 5 and 8: `main` moves only by promotion, by fast-forward or merge
 * commit; a failed deploy puts it back).
 *
 * Both work on refs and objects only, never on the working tree or the index: the executor
 * keeps the integration branch checked out, so the base branch is not, and moving it does not
 * touch a file. A base branch that *is* checked out is refused (BRANCH_CHECKED_OUT) rather
 * than moved behind the working tree's back, which would leave the tree looking dirty.
 */
import { gitFs as fs } from './git-fs.js';
import git from 'isomorphic-git';
import { GitError, isoGitCode, toGitError } from './errors.js';
import {
  assertRepository,
  branchRef,
  currentBranchOrNull,
  gitSignature,
  isNotFound,
  resolveBranch,
  resolveOrNull,
  type GitAuthor,
} from './internal.js';
import { fetchBranch, pushBranch, rewindRemoteBranch } from './remote.js';

/** How many conflicting paths MERGE_CONFLICT lists in `data.paths`. */
const CONFLICT_PATHS_LIMIT = 50;

const FULL_SHA = /^[0-9a-f]{40}$/;

/** Options of {@link promoteBranch}. */
export interface PromoteBranchOptions {
  /** The branch to move, e.g. `main`. Created at `head` when it does not exist. */
  base: string;
  /** What to promote: a branch name (e.g. `autonomous/<run_id>`) or a full commit id. */
  head: string;
  /** Author and committer of a merge commit. */
  author: GitAuthor;
  /** Message of a merge commit; defaults to `[Autopack] promote <head> into <base>`. */
  message?: string;
  /** Fixed merge commit time (UTC); defaults to now. */
  date?: Date;
  /**
   * The run's shared repository (`repo_url`, http(s)). Its base branch is fetched first and is
   * what gets promoted; the result is pushed there, fast-forward only.
   */
  url?: string;
  /** Extra HTTP headers for the shared repository. */
  headers?: Record<string, string>;
  /** Checked before the base branch moves and before the push; aborting throws `signal.reason`. */
  signal?: AbortSignal;
}

/** How {@link promoteBranch} moved the base branch. */
export type PromotionKind =
  /** The base branch was an ancestor of head and now points at it. */
  | 'fast_forward'
  /** The base branch had moved on; a merge commit with parents (base, head) was added. */
  | 'merge'
  /** The base branch did not exist (an empty repository); it was created at head. */
  | 'created'
  /** Head was already in the base branch's history (a retried promotion): nothing moved. */
  | 'up_to_date';

/** Result of {@link promoteBranch}. */
export interface PromotionResult {
  kind: PromotionKind;
  /** Where the base branch was before (the shared repository's when `url` is given), `null` when it did not exist. */
  previous: string | null;
  /** Where the base branch is now. */
  sha: string;
  /** True when the base branch was pushed to `url` by this call. */
  pushed: boolean;
}

/**
 * Moves `base` to `head`: by fast-forward when base is an ancestor of head, else by a merge
 * commit (first parent base, second parent head) when the three-way merge is clean. A base
 * that does not exist yet is created at head; one that already contains head is left alone
 * (`up_to_date`), so a retried promotion succeeds without a second merge commit.
 *
 * A conflict throws MERGE_CONFLICT (`data.paths`: the conflicting files; `data.reason`:
 * `conflict`, `unsupported` for shapes isomorphic-git cannot merge such as a file against a
 * directory or several merge bases, or `unrelated_histories`), having changed nothing: the
 * merge is first computed as a dry run, which writes no tree, commit or ref (only the merged
 * text of each conflicting file, which isomorphic-git stores even then, as an unreferenced
 * blob that git fsck accepts). The working tree and index are never touched.
 *
 * With `url`, the shared base branch is fetched and promoted, the local base branch follows,
 * and the result is pushed as a fast-forward. A refused push throws PUSH_REJECTED (someone
 * moved the shared base meanwhile; promote again) and puts the local base branch back; the
 * merge commit made for it stays only as an unreferenced object, which git fsck accepts.
 *
 * Throws NOT_A_REPOSITORY, BRANCH_NOT_FOUND / REF_NOT_FOUND (head), BRANCH_CHECKED_OUT (base
 * is the checked-out branch), BRANCH_MOVED (the local base moved while promoting),
 * MERGE_CONFLICT, INVALID_ARGUMENT, the remote codes of {@link pushBranch} and
 * {@link fetchBranch}, or GIT_FAILED.
 */
export async function promoteBranch(dir: string, options: PromoteBranchOptions): Promise<PromotionResult> {
  const { base, head, author, date, url, headers, signal } = options;
  await assertRepository(dir);
  if (typeof base !== 'string' || base.trim() === '') throw new GitError('INVALID_ARGUMENT', 'The base branch name is empty', {});
  const signature = gitSignature(author, date);
  const message = options.message ?? `[Autopack] promote ${head} into ${base}\n`;
  if (typeof message !== 'string' || message.trim() === '') throw new GitError('INVALID_ARGUMENT', 'The merge commit message is empty', {});
  await assertNotCheckedOut(dir, base, 'promote');
  const headSha = await resolveCommit(dir, head);

  const localBefore = await resolveOrNull(dir, branchRef(base));
  const remoteBase = url === undefined ? undefined : await fetchBranch(dir, { url, branch: base, headers });
  const previous = remoteBase ?? localBefore;

  const cache = {};
  let kind: PromotionKind;
  let sha: string;
  if (previous === null) {
    kind = 'created';
    sha = headSha;
  } else if (previous === headSha || (await isAncestor(dir, headSha, previous, cache))) {
    kind = 'up_to_date';
    sha = previous;
  } else if (await isAncestor(dir, previous, headSha, cache)) {
    kind = 'fast_forward';
    sha = headSha;
  } else {
    kind = 'merge';
    sha = await mergeCommit(dir, { base, head, ours: previous, theirs: headSha, message, signature, cache });
  }

  signal?.throwIfAborted();
  await moveBranch(dir, base, localBefore, sha);
  let pushed = false;
  if (url !== undefined && remoteBase !== sha) {
    try {
      signal?.throwIfAborted();
      await pushBranch(dir, { url, branch: base, headers });
      pushed = true;
    } catch (err) {
      // The promotion did not happen where it counts: the local base goes back to where it was.
      await moveBranch(dir, base, sha, localBefore);
      throw err;
    }
  }
  return { kind, previous, sha, pushed };
}

/** Options of {@link resetBranchTo}. */
export interface ResetBranchToOptions {
  /** The branch to move, e.g. `main`. */
  branch: string;
  /** Where it goes (a full commit id), or `null` to delete the branch (undoing a `created` promotion). */
  sha: string | null;
  /** Where it must be now (`null`: it must not exist); anything else throws BRANCH_MOVED. */
  expected: string | null;
  /**
   * The run's shared repository (`repo_url`, http(s)): its branch is moved back first, from
   * `expected` only (see {@link rewindRemoteBranch}), then the local one.
   */
  url?: string;
  /** Extra HTTP headers for the shared repository. */
  headers?: Record<string, string>;
}

/** Result of {@link resetBranchTo}. */
export interface ResetBranchToResult {
  branch: string;
  /** Where the branch was (`expected`, or already `sha` when `changed` is false). */
  previous: string | null;
  sha: string | null;
  /** False when the branch already was at `sha` (a retried rollback). */
  changed: boolean;
  /** True when the shared repository's branch was moved back by this call. */
  pushed: boolean;
}

/**
 * Rolls a branch back (or forward) to `sha`, guarded by `expected`: the branch must still be
 * where the caller last saw it, so a promotion or push that happened meanwhile is not
 * silently undone. A branch already at `sha` is left alone (`changed: false`), so a retried
 * rollback succeeds. `sha: null` deletes the branch. The working tree and index are not
 * touched.
 *
 * With `url`, the shared repository's branch goes back first: the one update here that is not
 * a fast-forward, so it is made only from `expected`, which the remote checks atomically. The
 * local check and write are two steps, not one atomic compare-and-swap (isomorphic-git has
 * none); the executor's workspace lock is what keeps other writers out in between.
 *
 * Throws NOT_A_REPOSITORY, INVALID_ARGUMENT, REF_NOT_FOUND (`sha` is not a commit here),
 * BRANCH_CHECKED_OUT, BRANCH_MOVED (`data.expected`, `data.actual`; `data.url` when it is the
 * shared branch that moved), the remote codes of {@link rewindRemoteBranch}, or GIT_FAILED.
 */
export async function resetBranchTo(dir: string, { branch, sha, expected, url, headers }: ResetBranchToOptions): Promise<ResetBranchToResult> {
  await assertRepository(dir);
  for (const [field, value] of [
    ['sha', sha],
    ['expected', expected],
  ] as const) {
    if (value !== null && (typeof value !== 'string' || !FULL_SHA.test(value))) {
      throw new GitError('INVALID_ARGUMENT', `${field} must be a full commit id or null, not ${JSON.stringify(value)}`, { field });
    }
  }
  await assertNotCheckedOut(dir, branch, 'reset');
  const actual = await resolveOrNull(dir, branchRef(branch));
  if (actual !== sha && actual !== expected) {
    throw new GitError('BRANCH_MOVED', `Branch ${branch} is at ${actual ?? '(missing)'}, not at the expected ${expected ?? '(missing)'}`, {
      branch,
      expected,
      actual,
    });
  }
  if (sha !== null) await resolveCommit(dir, sha);
  const pushed = url === undefined ? false : await rewindRemoteBranch(dir, { url, branch, headers, to: sha, expected });
  if (actual === sha) return { branch, previous: actual, sha, changed: false, pushed };
  await moveBranch(dir, branch, actual, sha);
  return { branch, previous: actual, sha, changed: true, pushed };
}

/** Throws BRANCH_CHECKED_OUT when HEAD points at `branch` (also an unborn one). */
async function assertNotCheckedOut(dir: string, branch: string, action: string): Promise<void> {
  if ((await currentBranchOrNull(dir)) === branch) {
    throw new GitError('BRANCH_CHECKED_OUT', `Cannot ${action} ${branch}: it is the checked-out branch of the working tree`, { branch });
  }
}

/** The commit a branch name or full commit id names; BRANCH_NOT_FOUND or REF_NOT_FOUND otherwise. */
async function resolveCommit(dir: string, ref: string): Promise<string> {
  if (typeof ref !== 'string' || ref.trim() === '') throw new GitError('INVALID_ARGUMENT', 'The head to promote is empty', {});
  const oid = FULL_SHA.test(ref) ? ref : await resolveBranch(dir, ref);
  try {
    await git.readCommit({ fs, dir, oid });
  } catch (err) {
    if (isNotFound(err) || isoGitCode(err) === 'ObjectTypeError') {
      throw new GitError('REF_NOT_FOUND', `${ref} is not a commit in this repository`, { ref });
    }
    throw toGitError(err, 'GIT_FAILED', `Could not read ${ref}`, { ref });
  }
  return oid;
}

/** True when `ancestor` is in the history of `oid` (and differs from it). */
async function isAncestor(dir: string, ancestor: string, oid: string, cache: object): Promise<boolean> {
  try {
    return await git.isDescendent({ fs, dir, oid, ancestor, depth: -1, cache });
  } catch (err) {
    throw toGitError(err, 'GIT_FAILED', `Could not compare the histories of ${ancestor} and ${oid}`, { oid, ancestor });
  }
}

/**
 * The merge commit of `theirs` into `ours`, written without moving any ref. The merge runs
 * twice: a dry run finds conflicts, then the real one writes the merged trees and the commit,
 * so a refused merge leaves no tree or commit behind (see {@link promoteBranch} on blobs).
 */
async function mergeCommit(
  dir: string,
  args: { base: string; head: string; ours: string; theirs: string; message: string; signature: ReturnType<typeof gitSignature>; cache: object },
): Promise<string> {
  const { base, head, ours, theirs, message, signature, cache } = args;
  const bases = await git.findMergeBase({ fs, dir, oids: [ours, theirs], cache });
  if (bases.length === 0) {
    throw new GitError('MERGE_CONFLICT', `Cannot promote ${head} into ${base}: their histories are unrelated`, {
      base,
      head,
      paths: [],
      reason: 'unrelated_histories',
    });
  }
  const merge = (dryRun: boolean) =>
    git.merge({
      fs,
      dir,
      cache,
      ours,
      theirs,
      fastForward: false,
      dryRun,
      noUpdateBranch: true,
      abortOnConflict: true,
      message,
      author: signature,
      committer: signature,
    });
  try {
    await merge(true);
    const { oid } = await merge(false);
    if (typeof oid !== 'string') throw new Error('the merge returned no commit');
    return oid;
  } catch (err) {
    const code = isoGitCode(err);
    if (code === 'MergeConflictError' || code === 'MergeNotSupportedError') {
      const filepaths = (err as { data?: { filepaths?: unknown } }).data?.filepaths;
      const paths = Array.isArray(filepaths) ? filepaths.map(String).sort() : [];
      throw new GitError(
        'MERGE_CONFLICT',
        code === 'MergeConflictError'
          ? `Cannot promote ${head} into ${base}: conflicting changes in ${paths.slice(0, CONFLICT_PATHS_LIMIT).join(', ')}`
          : `Cannot promote ${head} into ${base}: the merge needs a shape isomorphic-git cannot merge (a file against a directory, or several merge bases)`,
        { base, head, paths: paths.slice(0, CONFLICT_PATHS_LIMIT), total: paths.length, reason: code === 'MergeConflictError' ? 'conflict' : 'unsupported' },
      );
    }
    throw toGitError(err, 'GIT_FAILED', `Could not merge ${head} into ${base}`, { base, head });
  }
}

/**
 * Points `branch` at `to` (deletes it for `null`) after checking it is still at `from`. Works
 * on the ref alone; see {@link resetBranchTo} on why check-then-write is enough here.
 */
async function moveBranch(dir: string, branch: string, from: string | null, to: string | null): Promise<void> {
  const ref = branchRef(branch);
  const actual = await resolveOrNull(dir, ref);
  if (actual === to) return;
  if (actual !== from) {
    throw new GitError('BRANCH_MOVED', `Branch ${branch} moved to ${actual ?? '(deleted)'} meanwhile`, { branch, expected: from, actual });
  }
  try {
    if (to === null) await git.deleteRef({ fs, dir, ref });
    else await git.writeRef({ fs, dir, ref, value: to, force: true });
  } catch (err) {
    throw toGitError(err, 'GIT_FAILED', `Could not move ${branch}`, { branch, to });
  }
}
