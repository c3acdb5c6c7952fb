/**
 * Real temporary git repositories for the build-step specs (apps/executor/src/attempt/*), made
 * with isomorphic-git through @app/git. The git binary is only a witness (`git fsck`), used
 * when installed; the product never needs it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { commitChanges, formatCommitMessage } from '@app/git';
import type { IntegrationBranch } from '../../apps/executor/src/integration-branch.js';

export const testAuthor = { name: 'Autopack Test', email: 'test@autopack.invalid' };

export const hasGitBinary = spawnSync('git', ['--version'], { stdio: 'ignore' }).status === 0;

/** Runs the git binary in `dir`; throws with its stderr on a non-zero exit. */
export function gitBinary(dir: string, ...args: string[]): string {
  const result = spawnSync('git', ['-c', 'safe.directory=*', ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
  });
  if (result.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/** `git fsck --strict` when a git binary exists. */
export function fsck(dir: string): void {
  if (hasGitBinary) gitBinary(dir, 'fsck', '--strict');
}

/** Temporary directories, removed by {@link removeTempDirs} (call it in `afterEach`). */
const tempDirs: string[] = [];
export function tempDir(prefix = 'autopack-steps-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

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
