/**
 * The git paths the executor takes, through the same `@app/git` functions it calls, beside
 * native git doing the same in the same run (when a `git` binary exists): a commit of 3
 * changed files, the clean-worktree check, and creating and checking out the integration
 * branch, on repositories with 10k and 30k tracked files (generated once per size in the
 * temporary directory, removed afterwards). Native git works on the same working tree with
 * its own repository: both commit the same changes, so their trees stay the same.
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

/**
 * A working tree with `count` tracked files committed on main, in `.git` (ours) and, with a
 * git binary, also in `nativeGitDir` (native git's own repository of the same working tree,
 * outside it, so neither sees the other's files and the files are written only once). With
 * a git binary the commit is made by `git fast-import` (one pack, not a loose object per
 * file: much faster to write and remove) and `git reset` builds each index from the files.
 */
async function makeRepository(dir: string, count: number, home: string, nativeGitDir: string | null): Promise<void> {
  const files = repositoryFiles(count);
  if (nativeGitDir === null) {
    await createSampleRepository(dir, files, { author: AUTHOR, message: 'initial' });
    return;
  }
  const stream: string[] = ['commit refs/heads/main\ncommitter Bench <bench@example.com> 1700000000 +0000\ndata 8\ninitial\n'];
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), content);
    stream.push(`M 100644 inline ${p}\ndata ${Buffer.byteLength(content)}\n${content}\n`);
  }
  for (const gitDir of [path.join(dir, '.git'), nativeGitDir]) {
    const at = ['--git-dir', gitDir, '--work-tree', dir];
    nativeGit(dir, home, ['--git-dir', gitDir, 'init', '-q', '-b', 'main']);
    execFileSync('git', [...at, 'fast-import', '--quiet'], { cwd: dir, input: stream.join(''), stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: '1' } });
    nativeGit(dir, home, [...at, 'reset', '-q']);
  }
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
      const nativeGitDir = path.join(root, `native-${size}.git`);
      const t0 = performance.now();
      await makeRepository(ours, size, home, native ? nativeGitDir : null);
      const t1 = performance.now();
      const theirs = (args: string[]): void => nativeGit(ours, home, ['--git-dir', nativeGitDir, '--work-tree', ours, ...args]);
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
        keep(
          nativeTimes.commit,
          await time(() => {
            theirs(['add', '--', ...changed]);
            theirs(['commit', '-q', '-m', `change ${rep}`]);
          }),
        );
        keep(nativeTimes.clean, await time(() => theirs(['status', '--porcelain'])));
        keep(
          nativeTimes.branch,
          await time(() => {
            theirs(['branch', `autonomous/${runId}`, 'main']);
            theirs(['checkout', '-q', `autonomous/${runId}`]);
          }),
        );
        theirs(['checkout', '-q', 'main']);
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
      rmSync(nativeGitDir, { recursive: true, force: true });
      console.error(`bench: git ${label}: repository made in ${((t1 - t0) / 1000).toFixed(1)} s, measured in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return rows;
}
