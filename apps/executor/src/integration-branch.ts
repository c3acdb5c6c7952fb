import { realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClaimResponse } from '@app/contracts';
import {
  branchLog,
  checkoutBranch,
  checkoutUnbornBranch,
  currentBranch,
  ensureIntegrationBranch,
  fetchBranch,
  findPhaseCommit,
  headCommit,
  isGitError,
  isEmptyRepository,
  isHttpUrl,
  pushBranch,
  redactUrl,
  resetBranchTo,
  resetBranchToRemote,
  resetBranchToUnborn,
} from '@app/git';

/**
 * A run's integration branch as one executor sees it (CONTRACT.md section 5): the branch in
 * its workspace and, when the run names a `repo_url`, the shared repository that holds the
 * branch's truth. With a shared repository a commit counts only once it is pushed there.
 */
export interface IntegrationBranch {
  workspace: string;
  runId: string;
  phaseId: string;
  branch: string;
  baseBranch: string;
  /** The run's repository over http(s), or undefined when the workspace is the only copy. */
  sharedUrl: string | undefined;
}

/** The path a non-http `repo_url` names (a plain path or a `file://` URL). */
export function localPathOf(repoUrl: string): string {
  return path.resolve(/^file:\/\//i.test(repoUrl) ? fileURLToPath(repoUrl) : repoUrl);
}

function sameDirectory(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * The integration branch of a claim's run in `workspace`. A `repo_url` naming this workspace
 * itself needs no syncing; any other non-http(s) `repo_url` cannot be fetched without a git
 * binary, so the attempt fails with that reason.
 */
export function integrationBranchOf(claim: ClaimResponse, workspace: string): IntegrationBranch {
  const repoUrl = claim.run.repo_url;
  const base = { workspace, runId: claim.run_id, phaseId: claim.phase_id, branch: claim.run.integration_branch, baseBranch: claim.run.base_branch };
  if (!repoUrl || (!isHttpUrl(repoUrl) && sameDirectory(localPathOf(repoUrl), workspace))) return { ...base, sharedUrl: undefined };
  if (!isHttpUrl(repoUrl)) {
    throw new Error(`repo_url ${redactUrl(repoUrl)} is neither an http(s) URL nor this workspace nor a local git repository; executors share a run's branch over smart HTTP only`);
  }
  return { ...base, sharedUrl: repoUrl };
}

/**
 * Checks the integration branch out in the workspace and returns its head. With a shared
 * repository, the branch is first reset to the shared one (or, before the run's first push, to
 * the shared base branch; for a repository that has neither, to the local base), dropping
 * whatever this workspace has that was never pushed. Without one, the branch is created from
 * the local base when missing. In an empty workspace repository (no branch yet, and nothing
 * shared) the branch is checked out unborn and the head is `null`: the run's first commit is
 * a root commit.
 */
export async function checkOutIntegrationBranch(b: IntegrationBranch): Promise<string | null> {
  const { workspace, branch, baseBranch, sharedUrl } = b;
  if (sharedUrl) {
    const shared = (await fetchBranch(workspace, { url: sharedUrl, branch })) ?? (await fetchBranch(workspace, { url: sharedUrl, branch: baseBranch }));
    if (shared === null && (await isEmptyRepository(workspace))) return startUnborn(workspace, branch);
    const { head } = await resetBranchToRemote(workspace, { branch, commit: shared ?? (await headCommit(workspace, `refs/heads/${baseBranch}`)) });
    return head;
  }
  const { head } = await ensureIntegrationBranch(workspace, { runId: b.runId, baseBranch });
  if (head === null) return startUnborn(workspace, branch);
  if ((await currentBranch(workspace)) !== branch) await checkoutBranch(workspace, branch, { requireClean: true });
  return head;
}

async function startUnborn(workspace: string, branch: string): Promise<null> {
  await checkoutUnbornBranch(workspace, branch);
  return null;
}

/** Whether a kept commit stays: `phaseCommit` is the commit of the phase that won instead, if any. */
export type PublishResult = { kept: true } | { kept: false; phaseCommit: string | null };

/**
 * Makes the phase's new commit (`commit`, the branch head, on top of `parent`) final. Without
 * a shared repository it already is. With one, the push is the commit point: if it fails, the
 * local commit is dropped. A rejected push means another executor moved the branch first; the
 * workspace then follows the shared branch, and the result names the commit of this phase it
 * holds (another executor finished the phase), or null. Other push failures (unreachable,
 * credentials) are thrown, unless the shared branch shows the push landed after all (only
 * its answer was lost).
 */
export async function publishCommit(b: IntegrationBranch, { commit, parent }: { commit: string; parent: string | null }): Promise<PublishResult> {
  const { workspace, branch, sharedUrl } = b;
  if (!sharedUrl) return { kept: true };
  try {
    await pushBranch(workspace, { url: sharedUrl, branch });
    return { kept: true };
  } catch (err) {
    const rejected = isGitError(err, 'PUSH_REJECTED');
    // A push whose answer was lost may have landed all the same: only the shared branch knows.
    if (!rejected && (await sharedHead(workspace, sharedUrl, branch)) === commit) return { kept: true };
    if (parent === null) await resetBranchToUnborn(workspace, branch);
    else await resetBranchToRemote(workspace, { branch, commit: parent });
    if (!rejected) throw err;
  }
  await checkOutIntegrationBranch(b);
  const phaseCommit = await findPhaseCommit(workspace, { branch, runId: b.runId, phaseId: b.phaseId });
  return { kept: false, phaseCommit: phaseCommit?.sha ?? null };
}

/** The shared branch's head, or undefined when the shared repository cannot tell right now. */
async function sharedHead(workspace: string, url: string, branch: string): Promise<string | null | undefined> {
  try {
    return await fetchBranch(workspace, { url, branch });
  } catch {
    return undefined;
  }
}

/** A commit near the branch head, newest first, as {@link commitsOfEndedPhases} reads it. */
export interface TipCommit {
  sha: string;
  /** The run and phase its trailers name; undefined for a commit that is not a phase commit. */
  runId?: string;
  phaseId?: string;
}

/** What {@link commitsOfEndedPhases} decided. */
export interface EndedPhaseCommits {
  /** Where the branch must go: the parent of the deepest commit to drop; null when nothing goes. */
  resetTo: string | null;
  /** The commits removed by that reset, newest first. */
  dropped: TipCommit[];
  /** Commits of ended phases under a commit that stays; they cannot go without rewriting it. */
  buried: TipCommit[];
}

/**
 * THE INVARIANT: a commit of a phase stays on the integration branch only while the phase may
 * still complete with it (QUEUED, leased: its report may be in flight, or the next attempt
 * finds it and reports it) or has completed with it. A commit of a phase the supervisor ended
 * without COMPLETE (FAILED, SKIPPED, or any unfinished phase of a run that ended) must go.
 *
 * Decides it from the supervisor's phase states, never from local guesses: walks the run's
 * commits down from the head (`log`, newest first, linear) and drops the run of commits of
 * ended phases at the tip. It stops at the first commit that stays; everything below it was
 * checked when its phase was built, since every attempt starts with this check.
 */
export function commitsOfEndedPhases(log: readonly TipCommit[], runId: string, phaseStates: Readonly<Record<string, string>>, runEnded: boolean): EndedPhaseCommits {
  const ended = (c: TipCommit) => {
    if (c.runId !== runId || c.phaseId === undefined) return false;
    const state = phaseStates[c.phaseId];
    if (state === undefined) return false; // not a phase this supervisor knows: leave it alone
    return state === 'FAILED' || state === 'SKIPPED' || (runEnded && state !== 'COMPLETE');
  };
  let i = 0;
  while (i < log.length && ended(log[i])) i++;
  const dropped = log.slice(0, i);
  const rest = log.slice(i);
  const stays = rest.findIndex((c) => c.runId === runId && !ended(c));
  const buried = (stays === -1 ? [] : rest.slice(stays + 1)).filter(ended);
  // The commit under the deepest dropped one is its parent (the branch is linear).
  const resetTo = dropped.length === 0 ? null : (log[i]?.sha ?? null);
  return { resetTo, dropped, buried };
}

/** How many commits down from the head {@link dropCommitsOfEndedPhases} reads. */
const LOG_DEPTH = 200;

/**
 * Applies {@link commitsOfEndedPhases} to the workspace's integration branch: whoever holds the
 * workspace next removes the commits of phases that ended without completing (a lost report
 * followed by the phase failing, or an executor killed between commit and report). Only the
 * local branch is rewritten: a commit already pushed to a shared repository would need a
 * forced push, so it is reported instead (`shared`), and pushes stay fast-forward only.
 */
export async function dropCommitsOfEndedPhases(
  b: Pick<IntegrationBranch, 'workspace' | 'branch' | 'runId' | 'sharedUrl'>,
  phaseStates: Readonly<Record<string, string>>,
  runEnded: boolean,
): Promise<EndedPhaseCommits & { shared: boolean }> {
  const { workspace, branch, runId } = b;
  const none = { resetTo: null, dropped: [], buried: [], shared: false };
  const head = await resolveBranchOrNull(workspace, branch);
  if (head === null) return none;
  const log = (await branchLog(workspace, branch, { depth: LOG_DEPTH })).map((c) => ({ sha: c.sha, runId: c.trailers['Autopack-Run'], phaseId: c.trailers['Autopack-Phase'] }));
  const decision = commitsOfEndedPhases(log, runId, phaseStates, runEnded);
  // Every commit goes, down to the branch's root commit (a run that started in an empty
  // repository): the branch goes back to unborn. A log cut at its depth has no root in it.
  const toUnborn = decision.resetTo === null && decision.dropped.length > 0 && log.length < LOG_DEPTH;
  if (decision.resetTo === null && !toUnborn) return { ...decision, shared: false };
  if (b.sharedUrl) return { ...decision, resetTo: null, shared: true };
  if (decision.resetTo !== null) await resetBranchToRemote(workspace, { branch, commit: decision.resetTo });
  else if ((await currentBranch(workspace)) === branch) await resetBranchToUnborn(workspace, branch);
  else await resetBranchTo(workspace, { branch, sha: null, expected: head });
  return { ...decision, shared: false };
}

async function resolveBranchOrNull(workspace: string, branch: string): Promise<string | null> {
  try {
    return await headCommit(workspace, `refs/heads/${branch}`);
  } catch {
    return null;
  }
}
