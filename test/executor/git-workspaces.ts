/**
 * Real temporary git repositories for the build-step specs (apps/executor/src/attempt/*), made
 * with isomorphic-git through @app/git. The git binary is only a witness (`git fsck`), used
 * when installed; the product never needs it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { commitChanges, formatCommitMessage } from '@app/git';
import type { IntegrationBranch } from '../../apps/executor/src/integration-branch.js';

export { fsck, gitBinary, hasGitBinary, removeTempDirs, tempDir } from '../support/git-witness.js';

export const testAuthor = { name: 'Autopack Test', email: 'test@autopack.invalid' };

/** The integration branch of run `r1`, phase `phaseId`, in `workspace`. */
export function integrationOf(workspace: string, patch: Partial<IntegrationBranch> = {}): IntegrationBranch {
  return { workspace, runId: 'r1', phaseId: 'p1', branch: 'autonomous/r1', baseBranch: 'main', sharedUrl: undefined, ...patch };
}

/** Writes `files` and commits exactly them on the checked-out `branch` as phase `phaseId` of run r1. */
export async function commitFiles(dir: string, branch: string, files: Record<string, string>, phaseId = 'p1'): Promise<string> {
  for (const [p, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), content);
  }
  return commitChanges(dir, {
    branch,
    written: Object.keys(files),
    deleted: [],
    message: formatCommitMessage({ phaseId, summary: `Do ${phaseId}`, runId: 'r1', attempt: 1 }),
    author: testAuthor,
  });
}
