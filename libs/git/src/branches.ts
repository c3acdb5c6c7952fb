/**
 * The run's integration branch: creating it and reporting how far it is ahead of base.
 */
import { gitFs as fs } from './git-fs.js';
import git from 'isomorphic-git';
import { GitError, isoGitCode, toGitError } from './errors.js';
import { assertRepository, branchRef, hasNoBranches, isNotFound, resolveBranch, resolveOrNull } from './internal.js';
import { integrationBranchName } from './messages.js';

/** Which integration branch and base branch an operation is about. */
export interface IntegrationBranchQuery {
  runId: string;
  /** Branch the integration branch starts from (default `main`). */
  baseBranch?: string;
}

/**
 * Makes sure `autonomous/<runId>` exists, creating it at the tip of `baseBranch` if not.
 * Idempotent, also when two executors race to create it. Returns its name, whether this
 * call created it, and its tip.
 *
 * In an empty repository (no branch at all, so no base commit to start from) the branch
 * starts unborn: nothing is created, `head` is `null`, and its first commit, once the branch
 * is checked out with `checkoutUnbornBranch`, is a root commit.
 *
 * Throws BRANCH_NOT_FOUND when it must be created and the base branch is missing from a
 * repository that has other branches, INVALID_ARGUMENT for an unusable run id.
 */
export async function ensureIntegrationBranch(
  dir: string,
  { runId, baseBranch = 'main' }: IntegrationBranchQuery,
): Promise<{ branch: string; created: boolean; head: string | null }> {
  const branch = integrationBranchName(runId);
  await assertRepository(dir);
  const existing = await resolveOrNull(dir, branchRef(branch));
  if (existing !== null) return { branch, created: false, head: existing };
  const base = await resolveOrNull(dir, branchRef(baseBranch));
  if (base === null) {
    if (await hasNoBranches(dir)) return { branch, created: false, head: null };
    throw new GitError('BRANCH_NOT_FOUND', `Branch ${baseBranch} does not exist`, { branch: baseBranch });
  }
  try {
    await git.branch({ fs, dir, ref: branch, object: base });
  } catch (err) {
    if (isoGitCode(err) === 'AlreadyExistsError') {
      return { branch, created: false, head: await resolveBranch(dir, branch) };
    }
    throw toGitError(err, 'GIT_FAILED', `Could not create ${branch}`, { branch, baseBranch });
  }
  return { branch, created: true, head: base };
}

/** The contract's `GET /runs/{run_id}/integration_status` body. */
export interface IntegrationStatus {
  branch: string;
  exists: boolean;
  /** Commits reachable from the integration branch but not from the base branch. */
  commits_ahead_of_base: number;
  /** Tip of the integration branch, `null` when it does not exist. */
  current_commit: string | null;
}

/**
 * Where the run's integration branch stands relative to its base. A missing integration
 * branch is reported (`exists: false`), not thrown; a missing base branch, when the
 * integration branch exists, throws BRANCH_NOT_FOUND.
 */
export async function integrationStatus(
  dir: string,
  { runId, baseBranch = 'main' }: IntegrationBranchQuery,
): Promise<IntegrationStatus> {
  const branch = integrationBranchName(runId);
  await assertRepository(dir);
  const tip = await resolveOrNull(dir, branchRef(branch));
  if (tip === null) return { branch, exists: false, commits_ahead_of_base: 0, current_commit: null };
  const base = await resolveBranch(dir, baseBranch);
  return { branch, exists: true, commits_ahead_of_base: await countCommitsAhead(dir, tip, base), current_commit: tip };
}

const FROM_TIP = 1;
const FROM_BASE = 2;
/** Clock skew tolerated between a commit and its parents before the walk may stop early. */
const SKEW_SLOP_SECONDS = 24 * 60 * 60;

/**
 * Counts the commits reachable from `tip` but not from `base` (`git rev-list --count base..tip`).
 *
 * Walks both histories newest-first by committer time, painting each commit with where it
 * was reached from, and stops once every commit still queued is reachable from base and is
 * older (by a day of slop) than every commit counted so far, so a long shared history is
 * not read to its root. Commits whose paint changes after they were walked are walked
 * again, so equal timestamps (fixed test dates) do not give wrong counts. The count is
 * exact unless some parent's committer time is more than a day after its child's; git's
 * own `rev-list` uses a weaker date heuristic and miscounts such histories too.
 */
export async function countCommitsAhead(dir: string, tip: string, base: string): Promise<number> {
  if (tip === base) return 0;
  const cache = {};
  const flags = new Map<string, number>();
  const info = new Map<string, { time: number; parents: string[] }>();
  const queue: string[] = []; // Sorted by committer time, newest last.
  const queued = new Set<string>();
  let queuedWithoutBase = 0;
  const tipOnly = new Set<string>(); // Walked commits reached from tip only.

  const load = async (oid: string): Promise<{ time: number; parents: string[] }> => {
    let entry = info.get(oid);
    if (entry === undefined) {
      try {
        const { commit } = await git.readCommit({ fs, dir, oid, cache });
        entry = { time: commit.committer.timestamp, parents: commit.parent };
      } catch (err) {
        // A shallow clone lacks old parents; treat them as roots rather than failing the status.
        if (!isNotFound(err)) throw toGitError(err, 'GIT_FAILED', `Could not read commit ${oid}`, { oid });
        entry = { time: 0, parents: [] };
      }
      info.set(oid, entry);
    }
    return entry;
  };

  const mark = async (oid: string, flag: number): Promise<void> => {
    const before = flags.get(oid) ?? 0;
    const after = before | flag;
    if (after === before) return;
    flags.set(oid, after);
    const gainedBase = (after & FROM_BASE) !== 0 && (before & FROM_BASE) === 0;
    if (gainedBase) tipOnly.delete(oid);
    if (queued.has(oid)) {
      if (gainedBase) queuedWithoutBase--;
      return;
    }
    // New, or walked before with less paint: (re)queue it so its parents get the new paint.
    const { time } = await load(oid);
    let lo = 0;
    let hi = queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (info.get(queue[mid])!.time <= time) lo = mid + 1;
      else hi = mid;
    }
    queue.splice(lo, 0, oid);
    queued.add(oid);
    if ((after & FROM_BASE) === 0) queuedWithoutBase++;
  };

  await mark(tip, FROM_TIP);
  await mark(base, FROM_BASE);
  while (queue.length > 0) {
    if (queuedWithoutBase === 0) {
      let oldestCounted = Infinity;
      for (const oid of tipOnly) oldestCounted = Math.min(oldestCounted, info.get(oid)!.time);
      if (info.get(queue[queue.length - 1])!.time < oldestCounted - SKEW_SLOP_SECONDS) break;
    }
    const oid = queue.pop()!;
    queued.delete(oid);
    const paint = flags.get(oid)!;
    if ((paint & FROM_BASE) === 0) {
      queuedWithoutBase--;
      tipOnly.add(oid);
    }
    for (const parent of info.get(oid)!.parents) await mark(parent, paint);
  }
  return tipOnly.size;
}
