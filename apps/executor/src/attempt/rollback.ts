import { failureReason } from '@app/contracts';
import { GitError, type GitErrorCode, isGitError, redactUrl } from '@app/git';
import type { Logger } from 'pino';
import type { IntegrationBranch } from '../integration-branch.js';
import { type AttemptGit, type BuildGit, branchHeadOrNull } from './ports.js';
import { throwIfStopped } from './stop.js';

/**
 * What rolling back produced: the base branch is back at `sha` (`null`: it was deleted again,
 * undoing a promotion that created it); `changed` is false when it already was there (a
 * retried rollback), `pushed` true when the shared repository's branch was moved back by this
 * call (`changed` counts either branch). Or why it stays where it is (`code` is the git
 * error's).
 */
export type RollbackResult =
  | { kind: 'rolled_back'; sha: string | null; changed: boolean; pushed: boolean }
  | { kind: 'rollback_failed'; reason: string; code: GitErrorCode };

/** Where a promotion moved the base branch from and to (`PromoteResult`'s `previous` and `sha`). */
export interface PromotionToUndo {
  /** Where the base branch was before the promotion; `null` when the promotion created it. */
  previous: string | null;
  /** Where the promotion put it: the rollback happens only from there. */
  promoted: string;
}

const short = (sha: unknown) => (typeof sha === 'string' ? sha.slice(0, 12) : '(missing)');

/** Why the rollback failed, in words an operator can act on. */
function rollbackFailure(err: GitError, base: string, sharedUrl: string | undefined): string {
  switch (err.code) {
    case 'BRANCH_MOVED': {
      const where = typeof err.data.url === 'string' ? `the shared repository ${redactUrl(err.data.url)}` : 'the workspace';
      return `${base} in ${where} is at ${short(err.data.actual)}, not at the promoted ${short(err.data.expected)}: someone moved it after the promotion (a push, or another promotion), so it was left there rather than undo their work`;
    }
    case 'BRANCH_CHECKED_OUT':
      return `${base} is the branch checked out in the workspace; rollback moves it without touching files, so the workspace must have the integration branch checked out`;
    case 'PUSH_REJECTED':
      return `the shared repository${sharedUrl ? ` ${redactUrl(sharedUrl)}` : ''} refused to move ${base} back (it moved meanwhile, or refuses non-fast-forward updates or deleting a branch)`;
    default:
      return err.message;
  }
}

/**
 * Step 5's rollback: puts the base branch back where the promotion found it, with
 * `resetBranchTo(base, previous, expected = promoted)`, so a base branch someone moved after
 * the promotion is not silently rewound. Idempotent: a base branch already back at `previous`
 * is `rolled_back` with `changed: false`.
 *
 * With a shared repository its base branch is the truth: it must be at `promoted` (or already
 * back at `previous`), and it moves back first; the workspace's base branch follows. A
 * workspace whose local base branch is elsewhere (another executor promoted) is first aligned
 * with the shared one, as promotion does, so only the shared branch's position decides. Refs
 * only: the working tree is not touched.
 */
export async function rollbackPromotion(
  deps: { git: Pick<AttemptGit, 'headCommit'>; buildGit: Pick<BuildGit, 'resetBranchTo' | 'fetchBranch'>; log: Logger },
  integration: Pick<IntegrationBranch, 'workspace' | 'baseBranch' | 'sharedUrl'>,
  undo: PromotionToUndo & { signal: AbortSignal },
): Promise<RollbackResult> {
  const { git, buildGit, log } = deps;
  const { workspace, baseBranch: base, sharedUrl } = integration;
  const { previous, promoted } = undo;
  throwIfStopped(undo.signal);
  try {
    if (sharedUrl) {
      const shared = await buildGit.fetchBranch(workspace, { url: sharedUrl, branch: base });
      if (shared !== promoted && shared !== previous) {
        throw new GitError('BRANCH_MOVED', `The branch ${base} of ${redactUrl(sharedUrl)} is at ${shared ?? '(missing)'}`, { url: redactUrl(sharedUrl), branch: base, expected: promoted, actual: shared });
      }
      const local = await branchHeadOrNull(git, workspace, base);
      if (local !== previous && local !== promoted) {
        await buildGit.resetBranchTo(workspace, { branch: base, sha: shared, expected: local });
        log.info({ base, from: local, to: shared }, 'local base branch aligned with the shared one before the rollback');
      }
      throwIfStopped(undo.signal);
    }
    const r = await buildGit.resetBranchTo(workspace, { branch: base, sha: previous, expected: promoted, ...(sharedUrl ? { url: sharedUrl } : {}) });
    log.info({ base, sha: previous, promoted, changed: r.changed, pushed: r.pushed }, r.changed || r.pushed ? 'base branch rolled back' : 'base branch already rolled back');
    return { kind: 'rolled_back', sha: r.sha, changed: r.changed || r.pushed, pushed: r.pushed };
  } catch (err) {
    throwIfStopped(undo.signal);
    if (!isGitError(err)) throw err;
    log.warn({ base, previous, promoted, code: err.code, data: err.data }, 'rollback failed');
    return {
      kind: 'rollback_failed',
      reason: failureReason(err.code === 'PUSH_REJECTED' ? 'push_rejected' : 'executor_error', `rollback of ${base} to ${previous === null ? '(deleted)' : short(previous)} failed (${err.code}): ${rollbackFailure(err, base, sharedUrl)}`),
      code: err.code,
    };
  }
}
