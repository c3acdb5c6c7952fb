import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The built CLI (npm test builds before running Jest). */
export const AUTOPACK_BIN = path.resolve('bin/autopack.js');

/** A PATH holding only `node`, so a child provably has no `git` binary. */
export function pathWithoutGit(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'autopack-nogit-'));
  symlinkSync(process.execPath, path.join(dir, 'node'));
  const probe = spawnSync('git', ['--version'], { env: { PATH: dir } });
  if (!probe.error) throw new Error('git is still reachable on the stripped PATH');
  return dir;
}

/** A finished child process. */
export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as a child process and collects its output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): { child: ChildProcess; done: Promise<Finished> } {
  const child = spawn(process.execPath, [AUTOPACK_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Finished>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, done };
}

/**
 * `git fsck --strict` on a repository (verification only). Tests need a git binary for it
 * and fail loudly without one rather than pass vacuously; the product's no-git guarantee is
 * shown by stripping git from the executor's PATH (`pathWithoutGit`), not from the test's.
 */
export function gitFsck(repo: string): { ok: boolean; output: string } {
  const r = spawnSync('git', ['-C', repo, 'fsck', '--strict'], { encoding: 'utf8' });
  if (r.error) {
    throw new Error(`gitFsck: cannot run \`git\` (${r.error.message}); the tests verify repositories with a git binary, so install git where the tests run`);
  }
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}
