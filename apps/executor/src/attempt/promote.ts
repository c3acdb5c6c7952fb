import { failureReason } from '@app/contracts';
import { type GitError, type GitErrorCode, type PromotionKind, TRAILER_RUN, isGitError, redactUrl } from '@app/git';
import type { Logger } from 'pino';
import type { IntegrationBranch } from '../integration-branch.js';
import type { BuildGit } from './ports.js';
import { throwIfStopped } from './stop.js';

const AUTHOR = { name: 'Autopack', email: 'autopack@localhost' };

/**
 * What promoting produced: the base branch now holds the integration branch head (`promotion`
 * says how: `fast_forward`, `merge` commit, `created` in an empty repository, or `up_to_date`
 * for a retried promotion), with where it was before (`previous`, `null` when it did not
 * exist: what a rollback goes back to) and whether the shared repository was pushed; or why
 * it could not be moved (`code` is the git error's; `paths` the conflicting files of a
 * MERGE_CONFLICT).
 */
export type PromoteResult =
  | { kind: 'promoted'; promotion: PromotionKind; previous: string | null; sha: string; pushed: boolean }
  | { kind: 'promotion_failed'; reason: string; code: GitErrorCode; paths: string[] };

/** The merge commit's message when the base branch moved on: the contract's prefix and the run's trailer. */
export function promotionMessage(integration: Pick<IntegrationBranch, 'branch' | 'baseBranch' | 'runId'>): string {
  return `[Autopack] promote ${integration.branch} into ${integration.baseBranch}\n\n${TRAILER_RUN}: ${integration.runId}\n`;
}

/** The paths a MERGE_CONFLICT names (`data.paths`). */
function conflictPaths(err: GitError): string[] {
  const paths = err.data.paths;
  return Array.isArray(paths) ? paths.map(String) : [];
}

/** Why promotion failed, in words an operator can act on. */
function promotionFailure(err: GitError, integration: Pick<IntegrationBranch, 'branch' | 'baseBranch' | 'sharedUrl' | 'workspace'>): string {
  const { branch, baseBranch: base } = integration;
  const where = integration.sharedUrl ? ` in ${redactUrl(integration.sharedUrl)}` : '';
  switch (err.code) {
    case 'MERGE_CONFLICT': {
      const paths = conflictPaths(err);
      const total = typeof err.data.total === 'number' ? err.data.total : paths.length;
      if (err.data.reason === 'unrelated_histories') return `${base}${where} and ${branch} have unrelated histories; promotion needs a common commit`;
      if (err.data.reason === 'unsupported') return `${base}${where} moved on since ${branch} started, and merging them needs a shape isomorphic-git cannot merge (a file against a directory, or several merge bases)`;
      const more = total > paths.length ? ` and ${total - paths.length} more` : '';
      return `${base}${where} moved on since ${branch} started, and the merge conflicts in ${paths.join(', ')}${more}; nothing was promoted`;
    }
    case 'BRANCH_CHECKED_OUT':
      return `${base} is the branch checked out in the workspace ${integration.workspace}; promotion moves it without touching files, so the workspace must have ${branch} checked out (the executor keeps it so)`;
    case 'BRANCH_MOVED':
      return `${base} was moved by someone else while it was being promoted (now at ${String(err.data.actual ?? '(deleted)')}); promote again`;
    case 'PUSH_REJECTED':
      return `${base}${where} moved on while it was being promoted; the push was refused and the local ${base} put back; promote again`;
    default:
      return err.message;
  }
}

/**
 * Step 5, first half: promotes the integration branch head (or `head`, the commit Verify
 * passed) into the base branch with `promoteBranch`: fast-forward, or a merge commit when the
 * base moved on, created when the repository had none, nothing when it already holds head.
 * With a shared repository (`repo_url`) the shared base branch is what is promoted, and the
 * result is pushed there, fast-forward only. Refs only: the workspace keeps the integration
 * branch checked out and no file changes. The signal is honoured before the base branch moves
 * and before the push.
 *
 * Git refusals are results (`promotion_failed`, nothing promoted); a stop ends the attempt.
 */
export async function promoteBuild(
  deps: { git: Pick<BuildGit, 'promote'>; log: Logger },
  integration: IntegrationBranch,
  input: { head?: string; date?: Date; signal: AbortSignal },
): Promise<PromoteResult> {
  const { git, log } = deps;
  const { workspace, baseBranch: base, sharedUrl } = integration;
  throwIfStopped(input.signal);
  const head = input.head ?? integration.branch;
  try {
    const r = await git.promote(workspace, {
      base,
      head,
      author: AUTHOR,
      message: promotionMessage(integration),
      ...(input.date ? { date: input.date } : {}),
      ...(sharedUrl ? { url: sharedUrl } : {}),
      signal: input.signal,
    });
    log.info({ base, head, promotion: r.kind, previous: r.previous, sha: r.sha, pushed: r.pushed }, 'base branch promoted');
    return { kind: 'promoted', promotion: r.kind, previous: r.previous, sha: r.sha, pushed: r.pushed };
  } catch (err) {
    throwIfStopped(input.signal);
    if (!isGitError(err)) throw err;
    const reason = promotionFailure(err, integration);
    log.warn({ base, head, code: err.code, data: err.data }, 'promotion failed');
    return { kind: 'promotion_failed', reason: failureReason(err.code === 'PUSH_REJECTED' ? 'push_rejected' : 'executor_error', `promotion of ${head} into ${base} failed (${err.code}): ${reason}`), code: err.code, paths: err.code === 'MERGE_CONFLICT' ? conflictPaths(err) : [] };
  }
}
