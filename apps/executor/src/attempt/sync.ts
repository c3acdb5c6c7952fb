import type { ClaimResponse } from '@app/contracts';
import { redactUrl } from '@app/git';
import type { Logger } from 'pino';
import { type IntegrationBranch, integrationBranchOf } from '../integration-branch.js';
import type { AttemptGit } from './ports.js';

/** What syncing the branch found: a commit of this phase to report (resume), or a branch to build on. */
export type SyncResult = { kind: 'resume'; sha: string } | { kind: 'ready'; integration: IntegrationBranch };

/** Applies the no-commit-without-COMPLETE invariant (see `commitsOfEndedPhases`) and says what it did. */
export async function dropEndedCommits(
  git: Pick<AttemptGit, 'dropEndedCommits'>,
  integration: Pick<IntegrationBranch, 'workspace' | 'branch' | 'runId' | 'sharedUrl'>,
  states: Record<string, string>,
  runEnded: boolean,
  log: Logger,
): Promise<void> {
  const r = await git.dropEndedCommits(integration, states, runEnded);
  const describe = (cs: { sha: string; phaseId?: string }[]) => cs.map((c) => `${c.phaseId}@${c.sha.slice(0, 12)}`);
  if (r.shared) log.warn({ commits: describe(r.dropped) }, 'the shared branch holds commits of phases that ended without completing; removing them needs a forced push, left as they are');
  else if (r.dropped.length) log.warn({ commits: describe(r.dropped), head: r.resetTo }, 'removed commits of phases that ended without completing');
  if (r.buried.length) log.warn({ commits: describe(r.buried) }, 'commits of phases that ended without completing lie under commits that stay; left as they are');
}

/**
 * Stage 1: the workspace follows the run's integration branch, the shared one when the run has
 * a repo_url (so commits pushed by other executors are here), else the local one.
 */
export async function syncBranch(deps: { git: AttemptGit; workspace: string; log: Logger }, claim: ClaimResponse): Promise<SyncResult> {
  const { git, workspace, log } = deps;
  const integration = integrationBranchOf(claim, workspace);
  const head = await git.checkOut(integration);
  if (integration.sharedUrl) log.info({ repo: redactUrl(integration.sharedUrl), head }, 'integration branch synced from the run repository');
  // Whoever holds the workspace next removes commits of phases that ended without completing.
  if (claim.run.phase_states) await dropEndedCommits(git, integration, claim.run.phase_states, false, log);

  // Resume: a commit of this phase already on the branch means an earlier attempt died
  // between commit and report, or another executor finished the phase. Report it instead of
  // building again (one commit per phase).
  const existing = await git.findPhaseCommit(workspace, { branch: claim.run.integration_branch, runId: claim.run_id, phaseId: claim.phase_id });
  if (existing) {
    log.info({ sha: existing.sha }, 'phase commit already on the branch; reporting it');
    return { kind: 'resume', sha: existing.sha };
  }
  return { kind: 'ready', integration };
}
