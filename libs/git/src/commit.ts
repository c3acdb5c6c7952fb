/**
 * Turning a kept attempt into exactly one commit on the integration branch.
 */
import { gitFs as fs } from './git-fs.js';
import nodeFs from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import { GitError, toGitError } from './errors.js';
import {
  ENTRY_SKIP_WORKTREE,
  comparePaths,
  entryFromStats,
  hashWorktreeFile,
  rawEntry,
  rawLowerBound,
  rawMtimeMs,
  rawPathIs,
  rawPathStartsWith,
  readRawIndex,
  writeRawIndex,
  type IndexEntry,
  type RawIndex,
} from './index-file.js';
import { rewriteTree, type TreeChange } from './index-tree.js';
import { commitTree, readBranchTip, writeBranchTip, writeCommitObject, writeObject } from './objects.js';
import {
  assertRepository,
  branchRef,
  currentBranchOrNull,
  gitSignature,
  type GitAuthor,
} from './internal.js';
import { assertNoSymlinkParents, assertSafeRepoPath, lstatOrNull, pruneEmptyParents } from './paths.js';
import { removeWorktreePath } from './worktree.js';

/** Inputs of {@link commitChanges}. */
export interface CommitChangesInput {
  /** Must be the checked-out branch. */
  branch: string;
  /** Repo-relative paths the attempt created or modified (they must exist on disk). */
  written: string[];
  /** Repo-relative paths the attempt deleted. */
  deleted: string[];
  message: string;
  author: GitAuthor;
  /** Fixed author/committer time (UTC); defaults to now. */
  date?: Date;
}

/**
 * Stages exactly `written` and `deleted` and commits them on `branch`. Returns the commit id.
 *
 * Only the named paths are touched: the working tree is never scanned, only the written
 * files are hashed, the index is updated for just the named paths, and the commit's tree is
 * its parent's with only the trees on the changed paths rewritten, so a commit costs in
 * proportion to the change, not to the repository. Written paths matching `.gitignore`
 * that are not already tracked are skipped, as `git add` would refuse them. A deleted path
 * still on disk is removed after the commit, so working tree, index and HEAD agree and the
 * next clean check passes. If staging or committing fails, the index entries of the named
 * paths are reset to HEAD and COMMIT_FAILED is thrown; nothing on disk has changed then.
 *
 * Throws NOT_A_REPOSITORY, BRANCH_NOT_CHECKED_OUT, UNSAFE_PATH, INVALID_ARGUMENT or COMMIT_FAILED.
 */
export async function commitChanges(dir: string, input: CommitChangesInput): Promise<string> {
  const { branch, message, author, date } = input;
  await assertRepository(dir);
  if (typeof message !== 'string' || message.trim() === '') {
    throw new GitError('INVALID_ARGUMENT', 'The commit message is empty', {});
  }
  if (!Array.isArray(input.written) || !Array.isArray(input.deleted)) {
    throw new GitError('INVALID_ARGUMENT', '`written` and `deleted` must be arrays of paths', {});
  }
  const written = [...new Set(input.written)];
  const deleted = [...new Set(input.deleted)];
  [...written, ...deleted].forEach(assertSafeRepoPath);
  const both = written.filter((p) => deleted.includes(p));
  if (both.length > 0) {
    throw new GitError('INVALID_ARGUMENT', `Paths listed as both written and deleted: ${both.join(', ')}`, { paths: both });
  }
  const signature = gitSignature(author, date);

  const current = await currentBranchOrNull(dir);
  if (current !== branch) {
    throw new GitError(
      'BRANCH_NOT_CHECKED_OUT',
      `Cannot commit on ${branch}: the checked-out branch is ${current ?? '(detached HEAD)'}`,
      { branch, current },
    );
  }

  for (const p of written) {
    await assertNoSymlinkParents(dir, p);
    const stat = await lstatOrNull(path.join(dir, p));
    if (stat === null || !(stat.isFile() || stat.isSymbolicLink())) {
      throw new GitError('COMMIT_FAILED', `Written path ${p} is ${stat === null ? 'missing' : 'not a file'}`, {
        path: p,
        reason: stat === null ? 'missing' : 'not a file',
      });
    }
  }
  for (const p of deleted) await assertNoSymlinkParents(dir, p);

  let sha: string;
  try {
    const indexBefore = readRawIndex(dir);
    const fast = indexBefore === null ? null : await commitOnParentTree(dir, indexBefore, { branch, written, deleted, message, signature });
    sha = fast ?? (await commitThroughIndex(dir, { branch, written, deleted, message, signature }));
  } catch (err) {
    await resetIndexEntries(dir, [...written, ...deleted]);
    throw toGitError(err, 'COMMIT_FAILED', `Could not commit on ${branch}`, { branch });
  }

  for (const p of deleted) {
    await removeWorktreePath(dir, p);
    await pruneEmptyParents(dir, p);
  }
  return sha;
}

interface CommitPlan {
  branch: string;
  written: string[];
  deleted: string[];
  message: string;
  signature: ReturnType<typeof gitSignature>;
}

/**
 * The general path: isomorphic-git stages the paths (rewriting the whole index) and builds
 * every tree of the commit from the index. Used when the index is one {@link readIndexFile}
 * cannot handle or content filters (`core.autocrlf`) are configured.
 */
async function commitThroughIndex(dir: string, { branch, written, deleted, message, signature }: CommitPlan): Promise<string> {
  const cache = {};
  if (written.length > 0) await git.add({ fs, dir, filepath: written, cache });
  if (deleted.length > 0) await git.remove({ fs, dir, filepath: deleted, cache });
  return git.commit({ fs, dir, cache, message, author: signature, committer: signature, ref: branchRef(branch) });
}

/**
 * The fast path, in proportion to the change: blobs are written for the written paths only,
 * the new tree is the parent's with only the trees on the changed paths rewritten (every
 * other subtree keeps its id), and the index is updated for just those paths (other
 * entries are copied byte for byte). So the commit holds the parent's tree plus exactly the
 * named changes. Returns null (nothing written yet) when `core.autocrlf` asks for content
 * filtering, which only isomorphic-git's add implements.
 *
 * Order of writes: objects, then the index, then the branch ref, so a failure before the
 * ref update leaves the branch where it was (the caller resets the named index entries).
 */
async function commitOnParentTree(dir: string, index: RawIndex, plan: CommitPlan): Promise<string | null> {
  const { branch, written, deleted, message, signature } = plan;
  if (await autocrlfConfigured(dir)) return null;
  const cache = {};
  const tip = branch.startsWith('refs/') ? undefined : readBranchTip(dir, branch);
  if (tip === undefined) return null;
  const parent = tip;
  const baseTree = parent === null ? null : await commitTree(dir, parent, cache);
  /** The index position of `p`, or -1 when it is not tracked. */
  const find = (p: string): number => {
    const bytes = Buffer.from(p, 'utf8');
    const i = rawLowerBound(index, bytes);
    return rawPathIs(index, i, bytes) ? i : -1;
  };
  const removed = new Uint8Array(index.count);
  /** Drops every entry under directory `p`: they are contiguous in the sorted index. */
  const removeUnder = (p: string): void => {
    const prefix = Buffer.from(`${p}/`, 'utf8');
    for (let i = rawLowerBound(index, prefix); i < index.count && rawPathStartsWith(index, i, prefix); i++) removed[i] = 1;
  };

  const changes = new Map<string, TreeChange>();
  const added: IndexEntry[] = [];
  for (const p of written) {
    const at = find(p);
    // As `git add` without --force: an ignored path is staged only when already tracked.
    if (at < 0 && (await git.isIgnored({ fs, dir, filepath: p }))) continue;
    const abs = path.join(dir, p);
    const stats = nodeFs.lstatSync(abs);
    const content = stats.isSymbolicLink() ? Buffer.from(nodeFs.readlinkSync(abs, 'utf8').replace(/\\/g, '/'), 'utf8') : nodeFs.readFileSync(abs);
    const oid = writeObject(dir, 'blob', content);
    const entry = entryFromStats(p, stats, oid, at < 0 ? 0 : rawEntry(index, at).extFlags & ENTRY_SKIP_WORKTREE);
    changes.set(p, { oid, mode: entry.mode.toString(8) });
    added.push(entry);
    if (at >= 0) removed[at] = 1;
    // A file where a directory was, or a directory where a file was: the other goes, as on disk.
    removeUnder(p);
    for (let slash = p.indexOf('/'); slash > 0; slash = p.indexOf('/', slash + 1)) {
      const parentAt = find(p.slice(0, slash));
      if (parentAt >= 0) removed[parentAt] = 1;
    }
  }
  for (const p of deleted) {
    changes.set(p, null);
    // As isomorphic-git's remove: the entry itself, or everything under a directory.
    const at = find(p);
    if (at >= 0) removed[at] = 1;
    else removeUnder(p);
  }

  const tree = await rewriteTree(dir, baseTree, changes, cache);
  const sha = writeCommitObject(dir, {
    tree,
    parent: parent === null ? [] : [parent],
    author: withTimezone(signature),
    committer: withTimezone(signature),
    message,
  });

  writeRawIndex(dir, index, {
    removed,
    replaced: smudgeRacilyClean(dir, index, removed),
    inserted: added
      .map((entry) => ({ before: rawLowerBound(index, Buffer.from(entry.path, 'utf8')), entry }))
      .sort((a, b) => a.before - b.before || comparePaths(a.entry.path, b.entry.path)),
  });
  writeBranchTip(dir, branch, sha);
  return sha;
}

/** True when `core.autocrlf` asks for line-ending conversion (the config is parsed only when it mentions it). */
async function autocrlfConfigured(dir: string): Promise<boolean> {
  try {
    if (!/autocrlf/i.test(nodeFs.readFileSync(path.join(dir, '.git', 'config'), 'utf8'))) return false;
  } catch {
    return false;
  }
  const autocrlf: unknown = await git.getConfig({ fs, dir, path: 'core.autocrlf' });
  return autocrlf !== undefined && autocrlf !== false && autocrlf !== 'false';
}

function withTimezone(signature: CommitPlan['signature']): Required<CommitPlan['signature']> {
  return { ...signature, timezoneOffset: signature.timezoneOffset ?? new Date(signature.timestamp * 1000).getTimezoneOffset() };
}

/**
 * Racy git: an entry whose file changed in the same clock tick as the last index write
 * looks clean by its stat data, and once the index is rewritten later it would stay that
 * way. As git does, such entries (mtime not older than the index file) are checked by
 * content and, when the file differs, their recorded size is zeroed so every later check
 * hashes the file. Returns the entries to re-encode, by position.
 */
function smudgeRacilyClean(dir: string, index: RawIndex, removed: Uint8Array): Map<number, IndexEntry> {
  const smudged = new Map<number, IndexEntry>();
  const racyFrom = index.stat === null ? -Infinity : index.stat.mtimeMs - 0.001;
  for (let i = 0; i < index.count; i++) {
    if (removed[i] || rawMtimeMs(index, i) < racyFrom) continue;
    const e = rawEntry(index, i);
    if (e.mode === 0o160000 || hashWorktreeFile(path.join(dir, e.path)) === e.oid) continue;
    smudged.set(i, { ...e, size: 0, start: -1, end: -1 });
  }
  return smudged;
}

/**
 * Best-effort rollback of the index for `paths` after a failed commit. isomorphic-git may
 * already have written some staged entries; leaving them would make the next commit
 * include half of a rejected attempt.
 */
async function resetIndexEntries(dir: string, paths: string[]): Promise<void> {
  for (const filepath of paths) {
    try {
      await git.resetIndex({ fs, dir, filepath });
    } catch {
      // Keep going: the original error is the one worth reporting.
    }
  }
}
