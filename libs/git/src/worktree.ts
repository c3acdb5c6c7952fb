/**
 * The working tree: is it clean, switching it to a branch, and undoing an attempt.
 */
import { gitFs as fs } from './git-fs.js';
import nodeFs from 'node:fs';
import path from 'node:path';
import git, { type WalkerEntry } from 'isomorphic-git';
import { GitError, isoGitCode, toGitError } from './errors.js';
import {
  assertRepository,
  branchRef,
  currentBranchOrNull,
  isNotFound,
  resolveBranch,
  resolveOrNull,
} from './internal.js';
import { assertSafeRepoPath, lstatOrNull, pruneEmptyParents } from './paths.js';
import {
  ENTRY_INTENT_TO_ADD,
  ENTRY_SKIP_WORKTREE,
  hashWorktreeFile,
  isRacy,
  readIndexFile,
  statMatches,
} from './index-file.js';
import { commitTree } from './objects.js';
import { hashIndexDirs, indexDirs, isDir, stagedChanges, type IndexDir } from './index-tree.js';

/** How many offending paths DIRTY_WORKTREE lists in `data.paths`. */
export const DIRTY_PATHS_LIMIT = 20;

/**
 * Untracked directories the clean check never enters, even when `.gitignore` forgets them:
 * CI installs dependencies into the workspace, and walking them would be slow and would
 * make every later start refuse.
 */
const SKIPPED_UNTRACKED_DIRS = new Set(['node_modules', '.git']);

/** Result of {@link worktreeChanges}. */
export interface WorktreeChanges {
  clean: boolean;
  /** Changed, deleted or untracked paths, sorted, at most `limit` of them. */
  paths: string[];
  /** Number of such paths in total. */
  total: number;
}

/**
 * Lists what keeps the working tree from matching HEAD: tracked files that differ in the
 * index or on disk, and untracked files that are not ignored.
 *
 * Ignored and `node_modules` directories are pruned as a whole. File modes are not compared
 * (a file whose mode alone changed is hashed and found unchanged), as in statusMatrix. Costs
 * what `git status` costs: one lstat per tracked file and one listing per directory, with
 * content read only for files whose stat data changed (see changesByStat). The lstat calls
 * are synchronous, so the event loop is held for that time (about 0.1 s per 10k files).
 */
export async function worktreeChanges(dir: string, { limit = DIRTY_PATHS_LIMIT }: { limit?: number } = {}): Promise<WorktreeChanges> {
  await assertRepository(dir);
  const headOid = await resolveOrNull(dir, 'HEAD');
  let dirty: string[];
  try {
    dirty = (headOid === null ? null : await changesByStat(dir, headOid)) ?? (await changesByWalk(dir, headOid));
  } catch (err) {
    throw toGitError(err, 'GIT_FAILED', 'Could not compare the working tree with HEAD', { dir });
  }
  dirty = [...new Set(dirty)].sort();
  return { clean: dirty.length === 0, paths: dirty.slice(0, Math.max(0, limit)), total: dirty.length };
}

/**
 * The clean check as git does it: the index against HEAD by tree id (the index's trees are
 * hashed in memory; only subtrees whose ids differ are read from HEAD), and the working tree
 * against the index by stat data (mtime, ctime, size, inode, type and executable bit), so
 * only files whose stat data changed, or that changed in the clock tick of the last index
 * write (racy git), are read and hashed. Directories are listed once each; untracked ones
 * that are ignored or named in SKIPPED_UNTRACKED_DIRS are not entered. Returns null when
 * the index is one {@link readIndexFile} leaves to isomorphic-git.
 */
async function changesByStat(dir: string, headOid: string): Promise<string[] | null> {
  const index = readIndexFile(dir);
  if (index === null) return null;
  const cache = {};
  const headTree = await commitTree(dir, headOid, cache);
  const root = indexDirs(index.entries);
  const dirty: string[] = [];
  if (hashIndexDirs(root, index.buffer) !== headTree) dirty.push(...(await stagedChanges(dir, root, headTree, cache)));
  for (const e of index.entries) if (e.extFlags & ENTRY_INTENT_TO_ADD) dirty.push(e.path);

  const root0 = path.resolve(dir);
  const walkDir = async (node: IndexDir, rel: string): Promise<void> => {
    const abs = rel === '' ? root0 : `${root0}/${rel}`;
    let dirents: nodeFs.Dirent[];
    try {
      dirents = nodeFs.readdirSync(abs, { withFileTypes: true });
    } catch {
      listIndexPaths(node, rel, dirty);
      return;
    }
    let seen = 0;
    for (const d of dirents) {
      const name = d.name;
      const p = rel === '' ? name : `${rel}/${name}`;
      const child = node.children.get(name);
      if (child === undefined) {
        // Untracked.
        if (d.isDirectory()) {
          if (SKIPPED_UNTRACKED_DIRS.has(name)) continue;
          // The trailing slash lets `dist/`-style patterns match the directory itself.
          if (await git.isIgnored({ fs, dir, filepath: `${p}/` })) continue;
          await walkDir(NO_ENTRIES, p);
        } else if ((d.isFile() || d.isSymbolicLink()) && !(await git.isIgnored({ fs, dir, filepath: p }))) {
          dirty.push(p);
        }
        continue;
      }
      seen++;
      if (isDir(child)) {
        if (d.isDirectory()) await walkDir(child, p);
        else {
          // A file (or a symlink) standing where a tracked directory was.
          dirty.push(p);
          listIndexPaths(child, p, dirty);
        }
        continue;
      }
      // Submodules are someone else's working tree; skip-worktree entries are not on disk by design.
      if (child.mode === 0o160000 || child.extFlags & ENTRY_SKIP_WORKTREE) continue;
      if (d.isDirectory()) {
        dirty.push(p);
        continue;
      }
      const filePath = `${abs}/${name}`;
      const stats = nodeFs.lstatSync(filePath, { throwIfNoEntry: false });
      if (stats === undefined || !(stats.isFile() || stats.isSymbolicLink())) dirty.push(p);
      else if (!statMatches(child, stats) || isRacy(child, index.stat)) {
        if (hashWorktreeFile(filePath) !== child.oid) dirty.push(p);
      }
    }
    if (seen < node.children.size) {
      const present = new Set(dirents.map((d) => d.name));
      for (const [name, child] of node.children) {
        if (present.has(name)) continue;
        const p = rel === '' ? name : `${rel}/${name}`;
        if (isDir(child)) listIndexPaths(child, p, dirty);
        else if (child.mode !== 0o160000 && !(child.extFlags & ENTRY_SKIP_WORKTREE)) dirty.push(p);
      }
    }
  };
  await walkDir(root, '');
  return dirty;
}

const NO_ENTRIES: IndexDir = { children: new Map() };

/** Every tracked file under `node` (at `rel`), as missing from the working tree. */
function listIndexPaths(node: IndexDir, rel: string, out: string[]): void {
  for (const [name, child] of node.children) {
    const p = rel === '' ? name : `${rel}/${name}`;
    if (isDir(child)) listIndexPaths(child, p, out);
    else if (child.mode !== 0o160000 && !(child.extFlags & ENTRY_SKIP_WORKTREE)) out.push(p);
  }
}

/**
 * The general clean check: a `walk` over HEAD, the working tree and the index, as
 * `statusMatrix` would do but pruning ignored and `node_modules` directories as a whole.
 * Used for an unborn HEAD and for indexes {@link readIndexFile} does not handle.
 */
async function changesByWalk(dir: string, headOid: string | null): Promise<string[]> {
  const dirty: string[] = [];
  const trees = headOid ? [git.TREE({ ref: headOid }), git.WORKDIR(), git.STAGE()] : [git.WORKDIR(), git.STAGE()];
  await git.walk({
    fs,
    dir,
    cache: {},
    trees,
    map: async (filepath: string, entries: Array<WalkerEntry | null>) => {
      if (filepath === '.') return undefined;
      const [head, workdir, stage] = headOid ? entries : [null, ...entries];
      const [headType, workdirType, stageType] = await Promise.all([head?.type(), workdir?.type(), stage?.type()]);
      // Submodules are someone else's working tree.
      if (headType === 'commit' || stageType === 'commit') return null;

      if (!head && !stage) {
        if (!workdir || workdirType === 'special') return null;
        if (workdirType === 'tree') {
          if (SKIPPED_UNTRACKED_DIRS.has(path.posix.basename(filepath))) return null;
          // The trailing slash lets `dist/`-style patterns match the directory itself.
          if (await git.isIgnored({ fs, dir, filepath: `${filepath}/` })) return null;
          return undefined;
        }
        if (!(await git.isIgnored({ fs, dir, filepath }))) dirty.push(filepath);
        return null;
      }

      if (headType !== 'blob' && stageType !== 'blob') {
        // A tracked directory; a file standing in its place is a change.
        if (workdirType === 'blob') dirty.push(filepath);
        return undefined;
      }
      const [headId, stageId, workId] = await Promise.all([
        headType === 'blob' ? head!.oid() : undefined,
        stageType === 'blob' ? stage!.oid() : undefined,
        workdirType === 'blob' ? workdir!.oid() : undefined,
      ]);
      if (headId !== stageId || stageId !== workId) dirty.push(filepath);
      return undefined;
    },
  });
  return dirty;
}

/** Throws DIRTY_WORKTREE (with `data.paths`, `data.total`) unless {@link worktreeChanges} finds nothing. */
export async function assertCleanWorktree(dir: string): Promise<void> {
  const changes = await worktreeChanges(dir);
  if (!changes.clean) {
    throw new GitError(
      'DIRTY_WORKTREE',
      `The working tree has ${changes.total} uncommitted change(s): ${changes.paths.join(', ')}${
        changes.total > changes.paths.length ? ', ...' : ''
      }`,
      { dir, paths: changes.paths, total: changes.total },
    );
  }
}

/** Options of {@link checkoutBranch}. */
export interface CheckoutBranchOptions {
  /** Refuse with DIRTY_WORKTREE when {@link worktreeChanges} is not clean (default true). */
  requireClean?: boolean;
}

/**
 * Checks `branch` out so HEAD points at it and the files on disk are its files.
 * Throws BRANCH_NOT_FOUND, DIRTY_WORKTREE or CHECKOUT_FAILED. Returns the new HEAD commit.
 */
export async function checkoutBranch(
  dir: string,
  branch: string,
  { requireClean = true }: CheckoutBranchOptions = {},
): Promise<{ branch: string; head: string }> {
  await assertRepository(dir);
  const target = await resolveBranch(dir, branch);
  if (requireClean) await assertCleanWorktree(dir);
  const before = await resolveOrNull(dir, 'HEAD');
  // Same branch, same commit: git would not touch the tree either, so neither do we.
  if ((await currentBranchOrNull(dir)) === branch && before === target) return { branch, head: target };
  if (before === target) {
    // Another branch at the same commit (a new integration branch): the trees are the same,
    // so, as git does, only HEAD moves; the index and the files stay as they are.
    try {
      await git.writeRef({ fs, dir, ref: 'HEAD', value: branchRef(branch), symbolic: true, force: true });
    } catch (err) {
      throw toGitError(err, 'CHECKOUT_FAILED', `Could not check out ${branch}`, { branch });
    }
    return { branch, head: target };
  }
  const cache = {};
  try {
    // The full ref name keeps a tag of the same name from being picked.
    await git.checkout({ fs, dir, ref: branchRef(branch), cache });
  } catch (err) {
    throw toGitError(err, 'CHECKOUT_FAILED', `Could not check out ${branch}`, { branch });
  }
  if (before !== null && before !== target) await pruneDirectoriesLeftBehind(dir, before, target, cache);
  return { branch, head: target };
}

/**
 * Points HEAD at `branch` in a repository with no commit on HEAD yet (a freshly initialised
 * one), so the branch is checked out unborn and the next commit on it is a root commit. The
 * working tree must be clean (no untracked or staged files), as for {@link checkoutBranch}.
 * A no-op when HEAD already points at it. Throws INVALID_ARGUMENT when `branch` exists (use
 * {@link checkoutBranch}) or HEAD already has a commit, DIRTY_WORKTREE, or CHECKOUT_FAILED.
 */
export async function checkoutUnbornBranch(dir: string, branch: string): Promise<{ branch: string; head: null }> {
  await assertRepository(dir);
  if ((await resolveOrNull(dir, branchRef(branch))) !== null) {
    throw new GitError('INVALID_ARGUMENT', `Branch ${branch} already exists; check it out instead`, { branch });
  }
  if ((await resolveOrNull(dir, 'HEAD')) !== null) {
    throw new GitError('INVALID_ARGUMENT', `Cannot start ${branch} unborn: HEAD already has a commit`, { branch });
  }
  if ((await currentBranchOrNull(dir)) === branch) return { branch, head: null };
  await assertCleanWorktree(dir);
  try {
    await git.writeRef({ fs, dir, ref: 'HEAD', value: branchRef(branch), symbolic: true, force: true });
  } catch (err) {
    throw toGitError(err, 'CHECKOUT_FAILED', `Could not check out the unborn branch ${branch}`, { branch });
  }
  return { branch, head: null };
}

/**
 * Takes the checked-out `branch` back to unborn: the undo of a run's root commit in what was
 * an empty repository (a root commit has no parent to reset to). The files its head commit
 * tracks leave the index and the working tree (untracked files stay), then the branch ref is
 * deleted, so HEAD, index and tree are as right after {@link checkoutUnbornBranch}. A no-op
 * when the branch is already unborn. Throws BRANCH_NOT_CHECKED_OUT or CHECKOUT_FAILED.
 */
export async function resetBranchToUnborn(dir: string, branch: string): Promise<{ branch: string; head: null }> {
  await assertRepository(dir);
  const current = await currentBranchOrNull(dir);
  if (current !== branch) {
    throw new GitError('BRANCH_NOT_CHECKED_OUT', `Cannot reset ${branch} to unborn: the checked-out branch is ${current ?? '(detached HEAD)'}`, { branch, current });
  }
  const head = await resolveOrNull(dir, branchRef(branch));
  if (head === null) return { branch, head: null };
  const cache = {};
  try {
    const files = await git.listFiles({ fs, dir, ref: head, cache });
    if (files.length > 0) await git.remove({ fs, dir, filepath: files, cache });
    for (const p of files) {
      await removeWorktreePath(dir, p);
      await pruneEmptyParents(dir, p);
    }
    await git.deleteRef({ fs, dir, ref: branchRef(branch) });
  } catch (err) {
    throw toGitError(err, 'CHECKOUT_FAILED', `Could not reset ${branch} to unborn`, { branch });
  }
  return { branch, head: null };
}

/** Options of {@link resetBranchToRemote}. */
export interface ResetBranchOptions {
  /** The local branch to move (created when missing). */
  branch: string;
  /** Where it goes: a commit id, or a ref such as `refs/remotes/autopack/<branch>`; the commit must be in the repository (fetched). */
  commit: string;
}

/**
 * Moves `branch` to `commit` and checks it out, so HEAD, index and tracked files are that
 * commit's: local commits on the branch that are not in `commit`'s history are dropped, and
 * changes to tracked files are overwritten (the executor owns its workspace, and a commit
 * that never reached the shared repository does not count). Untracked files not in the
 * commit are left alone. When the branch is already checked out at `commit`, nothing is
 * touched, as with {@link checkoutBranch}. Throws REF_NOT_FOUND when `commit` does not
 * resolve to a commit here, CHECKOUT_FAILED when updating the tree fails.
 */
export async function resetBranchToRemote(dir: string, { branch, commit }: ResetBranchOptions): Promise<{ branch: string; head: string }> {
  await assertRepository(dir);
  const target = await resolveOrNull(dir, commit);
  if (target === null) throw new GitError('REF_NOT_FOUND', `Cannot resolve ${commit}`, { ref: commit });
  const cache = {};
  try {
    await git.readCommit({ fs, dir, oid: target, cache });
  } catch (err) {
    if (isNotFound(err) || isoGitCode(err) === 'ObjectTypeError') {
      throw new GitError('REF_NOT_FOUND', `${commit} is not a commit in this repository`, { ref: commit });
    }
    throw toGitError(err, 'GIT_FAILED', `Could not read ${commit}`, { ref: commit });
  }
  const before = await resolveOrNull(dir, 'HEAD');
  if ((await currentBranchOrNull(dir)) === branch && before === target) return { branch, head: target };
  // HEAD is already at the commit and nothing differs from it: moving the refs is the whole
  // checkout, as in checkoutBranch (when something differs, the forced checkout below runs).
  const inPlace = before === target && (await worktreeChanges(dir, { limit: 0 })).clean;
  try {
    await git.writeRef({ fs, dir, ref: branchRef(branch), value: target, force: true });
    if (inPlace) {
      await git.writeRef({ fs, dir, ref: 'HEAD', value: branchRef(branch), symbolic: true, force: true });
      return { branch, head: target };
    }
    // force: the index and tracked files follow the commit even where they differ from it.
    await git.checkout({ fs, dir, ref: branchRef(branch), force: true, cache });
  } catch (err) {
    throw toGitError(err, 'CHECKOUT_FAILED', `Could not reset ${branch} to ${commit}`, { branch, commit: target });
  }
  if (before !== null && before !== target) await pruneDirectoriesLeftBehind(dir, before, target, cache);
  return { branch, head: target };
}

/**
 * isomorphic-git's checkout deletes files but can leave their emptied directories behind,
 * which git would not. Finds the files `from` has and `to` lacks (skipping identical
 * subtrees) and removes their empty parent directories.
 */
async function pruneDirectoriesLeftBehind(dir: string, from: string, to: string, cache: object): Promise<void> {
  const removed: string[] = [];
  await git.walk({
    fs,
    dir,
    cache,
    trees: [git.TREE({ ref: from }), git.TREE({ ref: to })],
    map: async (filepath: string, [before, after]: Array<WalkerEntry | null>) => {
      if (filepath === '.') return undefined;
      if (before && after && (await before.oid()) === (await after.oid())) return null;
      if (before && (await before.type()) === 'blob' && (!after || (await after.type()) !== 'blob')) {
        removed.push(filepath);
      }
      return undefined;
    },
  });
  for (const p of removed) await pruneEmptyParents(dir, p);
}

/** The entry a commit's tree holds at `p`, or `null` when there is none. */
async function treeEntryAt(
  dir: string,
  commit: string,
  p: string,
  cache: object,
): Promise<{ oid: string; mode: string; type: string } | null> {
  const parent = path.posix.dirname(p);
  try {
    const { tree } = await git.readTree({ fs, dir, oid: commit, filepath: parent === '.' ? undefined : parent, cache });
    const entry = tree.find((e) => e.path === path.posix.basename(p));
    return entry ? { oid: entry.oid, mode: entry.mode, type: entry.type } : null;
  } catch (err) {
    // A missing parent, or a parent that is a file at HEAD: nothing tracked at `p`.
    if (isNotFound(err) || isoGitCode(err) === 'ObjectTypeError') return null;
    throw err;
  }
}

/**
 * Makes every parent of `p` a real directory, replacing files or symlinks in the way.
 * HEAD has directories there, so anything else is part of what is being undone, and
 * writing through a symlink could land outside the repository.
 */
async function ensureRealParentDirs(dir: string, p: string): Promise<void> {
  let current = dir;
  for (const segment of p.split('/').slice(0, -1)) {
    current = path.join(current, segment);
    const stat = await lstatOrNull(current);
    if (stat?.isDirectory()) continue;
    if (stat) await fs.promises.rm(current, { force: true });
    await fs.promises.mkdir(current);
  }
}

/** True when every parent of `p` is a real directory (not missing, not a file, not a symlink). */
async function parentsAreRealDirs(dir: string, p: string): Promise<boolean> {
  let current = dir;
  for (const segment of p.split('/').slice(0, -1)) {
    current = path.join(current, segment);
    const stat = await lstatOrNull(current);
    if (!stat?.isDirectory()) return false;
  }
  return true;
}

/**
 * Deletes `p` from the working tree (a directory recursively), never following a symlinked
 * parent. Returns whether something was removed.
 */
export async function removeWorktreePath(dir: string, p: string): Promise<boolean> {
  if (!(await parentsAreRealDirs(dir, p))) return false;
  const target = path.join(dir, p);
  const stat = await lstatOrNull(target);
  if (stat === null) return false;
  // rm on a symlink removes the link itself, not what it points at.
  await fs.promises.rm(target, { recursive: stat.isDirectory(), force: true });
  return true;
}

/** Result of {@link discardPaths}. */
export interface DiscardResult {
  /** Paths rewritten from HEAD. */
  restored: string[];
  /** Paths untracked at HEAD, deleted from disk and index. */
  deleted: string[];
}

/**
 * Undoes a rejected attempt for the given paths: each path tracked at HEAD gets HEAD's
 * bytes and mode back (symlinks as symlinks), each path not tracked at HEAD is deleted.
 * The index entries follow, so the paths end up clean. Throws INVALID_ARGUMENT for a path
 * that is a directory or submodule at HEAD (pass the files instead).
 */
export async function discardPaths(dir: string, paths: string[]): Promise<DiscardResult> {
  await assertRepository(dir);
  const unique = [...new Set(paths)];
  unique.forEach(assertSafeRepoPath);
  const head = await resolveOrNull(dir, 'HEAD');
  const cache = {};
  const restored: string[] = [];
  const deleted: string[] = [];
  try {
    for (const p of unique) {
      const entry = head === null ? null : await treeEntryAt(dir, head, p, cache);
      if (entry === null) {
        await removeWorktreePath(dir, p);
        deleted.push(p);
        continue;
      }
      if (entry.type !== 'blob') {
        throw new GitError('INVALID_ARGUMENT', `${p} is a ${entry.type} at HEAD, not a file`, { path: p, type: entry.type });
      }
      await ensureRealParentDirs(dir, p);
      const target = path.join(dir, p);
      const existing = await lstatOrNull(target);
      // Remove first: writeFile on an existing symlink would write through it.
      if (existing) await fs.promises.rm(target, { recursive: existing.isDirectory(), force: true });
      const { blob } = await git.readBlob({ fs, dir, oid: entry.oid, cache });
      if (entry.mode === '120000') {
        await fs.promises.symlink(Buffer.from(blob).toString('utf8'), target);
      } else {
        await fs.promises.writeFile(target, blob);
        if (entry.mode === '100755') await fs.promises.chmod(target, 0o755);
      }
      restored.push(p);
    }
    // Batched index updates: one index rewrite each instead of one per path.
    if (restored.length > 0) await git.add({ fs, dir, filepath: restored, force: true, cache });
    if (deleted.length > 0) await git.remove({ fs, dir, filepath: deleted, cache });
  } catch (err) {
    throw toGitError(err, 'GIT_FAILED', 'Could not discard working tree changes', { dir });
  }
  for (const p of deleted) await pruneEmptyParents(dir, p);
  return { restored, deleted };
}
