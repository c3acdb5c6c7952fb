/**
 * Real temporary git repositories for the build-step specs (apps/executor/src/attempt/*), made
 * with isomorphic-git through @app/git. The git binary is only a witness (`git fsck`), used
 * when installed; the product never needs it.
 */
import type { IntegrationBranch } from '../../apps/executor/src/integration-branch.js';
import { commitPhaseFiles } from '../support/git-witness.js';

export { fsck, gitBinary, hasGitBinary, removeTempDirs, tempDir, testAuthor } from '../support/git-witness.js';


/** The integration branch of run `r1`, phase `phaseId`, in `workspace`. */
export function integrationOf(workspace: string, patch: Partial<IntegrationBranch> = {}): IntegrationBranch {
  return { workspace, runId: 'r1', phaseId: 'p1', branch: 'autonomous/r1', baseBranch: 'main', sharedUrl: undefined, ...patch };
}

/** Writes `files` and commits exactly them on the checked-out `branch` as phase `phaseId` of run r1. */
export function commitFiles(dir: string, branch: string, files: Record<string, string>, phaseId = 'p1'): Promise<string> {
  return commitPhaseFiles(dir, branch, files, { phaseId, runId: 'r1' });
}
