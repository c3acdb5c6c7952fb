/**
 * `@app/git`: the git façade of Autopack, built on isomorphic-git so the executor and
 * supervisor work with no `git` binary installed (CONTRACT.md section 5).
 *
 * Every failure is a {@link GitError} with a stable `code` and JSON-safe `data`.
 */
export { GitError, isGitError, type GitErrorCode, type GitErrorJSON } from './errors.js';
export { assertSafeRepoPath, repoPathProblem } from './paths.js';
export {
  DEFAULT_SUMMARY,
  MAX_SUMMARY_LENGTH,
  TRAILER_ATTEMPT,
  TRAILER_PHASE,
  TRAILER_RUN,
  formatCommitMessage,
  integrationBranchName,
  parseTrailers,
  summaryLine,
  type CommitMessageInput,
} from './messages.js';
export {
  createSampleRepository,
  currentBranch,
  headCommit,
  initRepository,
  isEmptyRepository,
  isRepository,
  type GitAuthor,
  type InitRepositoryOptions,
  type SampleRepositoryOptions,
} from './repository.js';
export {
  DIRTY_PATHS_LIMIT,
  assertCleanWorktree,
  checkoutBranch,
  checkoutUnbornBranch,
  discardPaths,
  resetBranchToRemote,
  resetBranchToUnborn,
  worktreeChanges,
  type CheckoutBranchOptions,
  type DiscardResult,
  type ResetBranchOptions,
  type WorktreeChanges,
} from './worktree.js';
export {
  SYNC_REMOTE,
  fetchBranch,
  isHttpUrl,
  pushBranch,
  redactUrl,
  rewindRemoteBranch,
  type RemoteBranchOptions,
  type RewindRemoteBranchOptions,
} from './remote.js';
export { commitChanges, type CommitChangesInput } from './commit.js';
export {
  countCommitsAhead,
  ensureIntegrationBranch,
  integrationStatus,
  type IntegrationBranchQuery,
  type IntegrationStatus,
} from './branches.js';
export {
  branchLog,
  changedFilesBetween,
  findPhaseCommit,
  listTrackedFiles,
  readBlobAtRef,
  readFileAtRef,
  type BranchLogEntry,
  type FileChange,
  type FindPhaseCommitQuery,
} from './history.js';
export {
  promoteBranch,
  resetBranchTo,
  type PromoteBranchOptions,
  type PromotionKind,
  type PromotionResult,
  type ResetBranchToOptions,
  type ResetBranchToResult,
} from './promotion.js';
export { exportTree, type ExportTreeResult } from './export.js';
export { removeStrayTempFiles } from './git-fs.js';
