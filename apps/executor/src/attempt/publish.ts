import { type ClaimResponse, TERMINAL_RUN_STATES } from '@app/contracts';
import { formatCommitMessage } from '@app/git';
import type { Logger } from 'pino';
import type { IntegrationBranch } from '../integration-branch.js';
import type { WorkingChange } from './applied-change.js';
import { type AttemptGit, type AttemptSupervisor, branchHeadOrNull } from './ports.js';
import { throwIfStopped } from './stop.js';

const AUTHOR = { name: 'Autopack', email: 'autopack@localhost' };

/**
 * What publishing produced: the commit is final (pushed, or local without a shared repository),
 * or another executor pushed first and the commit was dropped; `phaseCommit` is then this
 * phase's commit on what won, if any.
 */
export type PublishResult = { kind: 'published'; sha: string; parent: string | null } | { kind: 'push_lost'; phaseCommit: string | null };

/**
 * Stage 5: commit and push. Once committed the change is kept (the working copy is the branch
 * head); with a shared repository the push is the commit point, so only a pushed commit is
 * reported.
 */
export async function publish(
  deps: { git: AttemptGit },
  claim: ClaimResponse,
  integration: IntegrationBranch,
  change: { working: WorkingChange; summary: string; written: string[]; deleted: string[]; signal: AbortSignal },
): Promise<PublishResult> {
  const { git } = deps;
  const { workspace, branch } = integration;
  throwIfStopped(change.signal);
  const parent = await branchHeadOrNull(git, workspace, branch);
  const sha = await git.commit(workspace, {
    branch,
    written: change.written,
    deleted: change.deleted,
    message: formatCommitMessage({ phaseId: claim.phase_id, summary: change.summary, runId: claim.run_id, attempt: claim.attempt }),
    author: AUTHOR,
  });
  change.working.keep();
  const published = await git.publish(integration, { commit: sha, parent });
  return published.kept ? { kind: 'published', sha, parent } : { kind: 'push_lost', phaseCommit: published.phaseCommit };
}

/**
 * The lease was lost between the commit and its report. While the phase can still be claimed,
 * the commit stays: the next attempt finds it and reports it. But a phase that ended without
 * it (its last attempt expired, or it was skipped, or the run ended) must not keep a commit
 * on the branch, so it is dropped, as a rejected attempt's change would be. A commit already
 * pushed to a shared repository is not taken back (that would need a forced push), so the
 * caller only asks this without one.
 */
export async function dropCommitOfEndedPhase(
  deps: { git: AttemptGit; supervisor: Pick<AttemptSupervisor, 'getRun'>; workspace: string },
  claim: ClaimResponse,
  { sha, parent }: { sha: string; parent: string | null },
  log: Logger,
): Promise<void> {
  const { git, supervisor, workspace: ws } = deps;
  const branch = claim.run.integration_branch;
  const run = await supervisor.getRun(claim.run_id);
  const phase = run.phases.find((p) => p.phase_id === claim.phase_id);
  const ended = TERMINAL_RUN_STATES.includes(run.state) || phase?.state === 'FAILED' || phase?.state === 'SKIPPED';
  if (!ended) {
    log.warn({ sha, phase_state: phase?.state }, 'lease lost after the commit; the next attempt of the phase reports it');
    return;
  }
  if ((await git.headCommit(ws, branch)) !== sha) return;
  await git.resetBranch(ws, { branch, commit: parent });
  log.warn({ sha, phase_state: phase?.state, run_state: run.state }, 'lease lost after the commit and the phase ended without it; the commit was dropped');
}
