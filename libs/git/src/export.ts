/**
 * Writing the tree of a commit out to a plain directory (what a deployer runs), read from
 * the object store alone: no checkout, so the repository's working tree and HEAD stay as
 * they are, and no git binary.
 */
import { gitFs as fs } from './git-fs.js';
import path from 'node:path';
import git from 'isomorphic-git';
import { GitError, isoGitCode, toGitError } from './errors.js';
import { assertRepository, isNotFound, resolveOrNull } from './internal.js';
import { assertSafeRepoPath } from './paths.js';

/** What {@link exportTree} wrote. */
export interface ExportTreeResult {
  /** The commit whose tree was written. */
  commit: string;
  /** Repo-relative paths of the files written, sorted. */
  files: string[];
  /** Repo-relative paths left out: symlinks and submodules (a plain export has nothing to point them at). */
  skipped: string[];
}

const EXECUTABLE_MODE = '100755';
const SYMLINK_MODE = '120000';

/**
 * Writes the files of the commit `ref` resolves to (a branch, a full ref name or a full
 * commit id) into `target`, which must not exist yet (its parent is created). Executable
 * files keep their executable bit; symlinks and submodules are skipped and listed.
 *
 * Every path is checked with the repository path rules before anything is written under
 * it (isomorphic-git's tree parser already refuses `.git`-like and `..` names; this holds
 * whatever it lets through), so a crafted tree cannot write outside `target`. On failure
 * `target` is removed.
 *
 * Throws NOT_A_REPOSITORY, REF_NOT_FOUND (unknown ref, missing object, or not a commit),
 * INVALID_ARGUMENT (`target` exists), UNSAFE_PATH or GIT_FAILED.
 */
export async function exportTree(dir: string, ref: string, target: string): Promise<ExportTreeResult> {
  await assertRepository(dir);
  const commit = await resolveCommit(dir, ref);
  await fs.promises.mkdir(path.dirname(path.resolve(target)), { recursive: true });
  try {
    await fs.promises.mkdir(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new GitError('INVALID_ARGUMENT', `Cannot export into ${target}: it already exists`, { target });
    }
    throw toGitError(err, 'GIT_FAILED', `Could not create ${target}`, { target });
  }
  const result: ExportTreeResult = { commit, files: [], skipped: [] };
  try {
    await writeTree({ dir, target, result, cache: {} }, commit, '');
  } catch (err) {
    await fs.promises.rm(target, { recursive: true, force: true });
    throw toGitError(err, 'GIT_FAILED', `Could not export ${ref} into ${target}`, { ref, target });
  }
  result.files.sort();
  result.skipped.sort();
  return result;
}

/** The commit id `ref` names, checked to be a commit present in the object store. */
async function resolveCommit(dir: string, ref: string): Promise<string> {
  const oid = await resolveOrNull(dir, ref);
  if (oid === null) throw new GitError('REF_NOT_FOUND', `Cannot resolve ${ref}`, { ref });
  try {
    // resolveRef hands a full commit id back unchecked; reading it proves it exists and is a commit.
    await git.readCommit({ fs, dir, oid, cache: {} });
    return oid;
  } catch (err) {
    if (isNotFound(err) || isoGitCode(err) === 'ObjectTypeError') {
      throw new GitError('REF_NOT_FOUND', `${ref} is not a commit in this repository`, { ref });
    }
    throw toGitError(err, 'GIT_FAILED', `Could not read the commit ${ref}`, { ref });
  }
}

interface ExportState {
  dir: string;
  target: string;
  result: ExportTreeResult;
  /** One isomorphic-git object cache for the whole export (packfile indexes are read once). */
  cache: object;
}

async function writeTree(state: ExportState, oid: string, prefix: string): Promise<void> {
  const { dir, target, result, cache } = state;
  const { tree } = await git.readTree({ fs, dir, oid, cache });
  for (const entry of tree) {
    const rel = prefix === '' ? entry.path : `${prefix}/${entry.path}`;
    assertSafeRepoPath(rel);
    const out = path.join(target, ...rel.split('/'));
    if (entry.type === 'tree') {
      await fs.promises.mkdir(out);
      await writeTree(state, entry.oid, rel);
    } else if (entry.type === 'blob' && entry.mode !== SYMLINK_MODE) {
      const { blob } = await git.readBlob({ fs, dir, oid: entry.oid, cache });
      await fs.promises.writeFile(out, blob, { mode: entry.mode === EXECUTABLE_MODE ? 0o755 : 0o644 });
      result.files.push(rel);
    } else {
      result.skipped.push(rel);
    }
  }
}
