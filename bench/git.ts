/**
 * The git paths the executor takes, through the same `@app/git` functions it calls, beside
 * native git doing the same in the same run (when a `git` binary exists): a commit of 3
 * changed files, the clean-worktree check, and creating and checking out the integration
 * branch, on repositories with 10k and 30k tracked files (generated once per size in the
 * temporary directory, one copy for us and one for native git, removed afterwards).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { checkoutBranch, commitChanges, createSampleRepository, ensureIntegrationBranch, worktreeChanges } from '@app/git';
import { type BenchOptions, type BenchRow, fmtMs, median } from './rows.js';

const AUTHOR = { name: 'Bench', email: 'bench@example.com' };
const SIZES = [10_000, 30_000];

function hasGitBinary(): boolean {
  try {
    return spawnSync('git', ['--version'], { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  }
}

/** Native git with no user or system configuration in the way. */
function nativeGit(dir: string, home: string, args: string[]): void {
  execFileSync('git', ['-c', 'user.name=Bench', '-c', 'user.email=bench@example.com', '-c', 'commit.gpgsign=false', ...args], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: '1' },
  });
}

/** `src/m<k>/d<j>/f<i>.ts`: 100 files per directory, 10 directories per module. */
function filePath(i: number): string {
  return `src/m${Math.floor(i / 1000)}/d${Math.floor(i / 100) % 10}/f${i}.ts`;
}

function repositoryFiles(count: number): Record<string, string> {
  const files: Record<string, string> = { '.gitignore': 'dist/\nnode_modules/\n' };
  for (let i = 0; i < count; i++) files[filePath(i)] = `export const value${i} = ${i};\n// ${'x'.repeat(i % 200)}\n`;
  return files;
}

/** A repository with `count` tracked files committed on main (by native git when there is one: much faster). */
async function makeRepository(dir: string, count: number, home: string, native: boolean): Promise<void> {
  const files = repositoryFiles(count);
  if (!native) {
    await createSampleRepository(dir, files, { author: AUTHOR, message: 'initial' });
    return;
  }
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), content);
  }
  nativeGit(dir, home, ['init', '-q', '-b', 'main']);
  nativeGit(dir, home, ['add', '-A']);
  nativeGit(dir, home, ['commit', '-q', '-m', 'initial']);
}

async function time(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function benchGit(opts: BenchOptions): Promise<BenchRow[]> {
  const reps = opts.quick ? 3 : 7;
  const native = hasGitBinary();
  const rows: BenchRow[] = [];
  const root = mkdtempSync(path.join(os.tmpdir(), 'autopack-bench-git-'));
  const home = path.join(root, 'home');
  mkdirSync(home);
  try {
    for (const size of SIZES) {
      const label = `${size / 1000}k tracked files`;
      const ours = path.join(root, `ours-${size}`);
      const theirs = path.join(root, `native-${size}`);
      await makeRepository(ours, size, home, native);
      if (native) await makeRepository(theirs, size, home, true);
      const changed = [filePath(1), filePath(Math.floor(size / 2) + 7), filePath(size - 3)];
      const change = (dir: string, rep: number): void => {
        for (const p of changed) writeFileSync(path.join(dir, p), `export const changed = ${rep};\n`);
      };

      const ourTimes = { commit: [] as number[], clean: [] as number[], branch: [] as number[] };
      const nativeTimes = { commit: [] as number[], clean: [] as number[], branch: [] as number[] };
      // Rep 0 warms up (JIT, file system caches) and is not counted.
      for (let rep = 0; rep <= reps; rep++) {
        const keep = (list: number[], ms: number): void => {
          if (rep > 0) list.push(ms);
        };
        change(ours, rep);
        keep(ourTimes.commit, await time(() => commitChanges(ours, { branch: 'main', written: changed, deleted: [], message: `change ${rep}`, author: AUTHOR })));
        keep(ourTimes.clean, await time(() => worktreeChanges(ours)));
        const runId = `bench-${size}-${rep}`;
        keep(
          ourTimes.branch,
          await time(async () => {
            const { branch } = await ensureIntegrationBranch(ours, { runId, baseBranch: 'main' });
            await checkoutBranch(ours, branch, { requireClean: true });
          }),
        );
        await checkoutBranch(ours, 'main', { requireClean: false });
        if (!native) continue;
        change(theirs, rep);
        keep(
          nativeTimes.commit,
          await time(() => {
            nativeGit(theirs, home, ['add', '--', ...changed]);
            nativeGit(theirs, home, ['commit', '-q', '-m', `change ${rep}`]);
          }),
        );
        keep(nativeTimes.clean, await time(() => nativeGit(theirs, home, ['status', '--porcelain'])));
        keep(
          nativeTimes.branch,
          await time(() => {
            nativeGit(theirs, home, ['branch', `autonomous/${runId}`, 'main']);
            nativeGit(theirs, home, ['checkout', '-q', `autonomous/${runId}`]);
          }),
        );
        nativeGit(theirs, home, ['checkout', '-q', 'main']);
      }
      const ops = [
        { key: 'commit', name: 'commit of 3 changed files', what: 'native git add + commit', target: 1.0 },
        { key: 'clean', name: 'clean-worktree check', what: 'native git status --porcelain', target: 5 },
        { key: 'branch', name: 'create and check out the integration branch', what: 'native git branch + checkout', target: 5 },
      ] as const;
      for (const op of ops) {
        const measured = median(ourTimes[op.key]);
        const baseline = native ? median(nativeTimes[op.key]) : NaN;
        rows.push({
          name: `${op.name}, ${label}`,
          baseline: native ? `${op.what}: ${fmtMs(baseline)}` : 'no git binary',
          measured: fmtMs(measured),
          ratio: measured / baseline,
          meaning: `x native (target ≤ ${op.target.toFixed(1)})`,
        });
      }
      rmSync(ours, { recursive: true, force: true });
      rmSync(theirs, { recursive: true, force: true });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return rows;
}
