/**
 * Reading history and content: branch logs, finding a phase's commit, files at a ref.
 */
import { gitFs as fs } from './git-fs.js';
import git, { type ReadCommitResult, type WalkerEntry } from 'isomorphic-git';
import { GitError, isoGitCode, toGitError } from './errors.js';
import { assertRepository, branchRef, isNotFound, resolveBranch, resolveOrNull } from './internal.js';
import { parseTrailers, TRAILER_ATTEMPT, TRAILER_PHASE, TRAILER_RUN } from './messages.js';
import { assertSafeRepoPath } from './paths.js';

/** One commit of {@link branchLog}. */
export interface BranchLogEntry {
  sha: string;
  message: string;
  author: { name: string; email: string };
  /** Author time in seconds since the Unix epoch. */
  timestamp: number;
  trailers: Record<string, string>;
}

/** Newest-first commits reachable from `branch`, at most `depth` of them. Throws BRANCH_NOT_FOUND. */
export async function branchLog(dir: string, branch: string, { depth = 50 }: { depth?: number } = {}): Promise<BranchLogEntry[]> {
  await assertRepository(dir);
  const tip = await resolveBranch(dir, branch);
  return (await readLog(dir, tip, depth)).map(toEntry);
}

async function readLog(dir: string, oid: string, depth: number): Promise<ReadCommitResult[]> {
  try {
    return await git.log({ fs, dir, ref: oid, depth, cache: {} });
  } catch (err) {
    throw toGitError(err, 'GIT_FAILED', `Could not read the history of ${oid}`, { oid });
  }
}

function toEntry({ oid, commit }: ReadCommitResult): BranchLogEntry {
  return {
    sha: oid,
    message: commit.message,
    author: { name: commit.author.name, email: commit.author.email },
    timestamp: commit.author.timestamp,
    trailers: parseTrailers(commit.message),
  };
}

/** Trailer lookup ignoring key case, as git does. */
function trailer(trailers: Record<string, string>, key: string): string | undefined {
  const wanted = key.toLowerCase();
  for (const [k, v] of Object.entries(trailers)) if (k.toLowerCase() === wanted) return v;
  return undefined;
}

/** Query of {@link findPhaseCommit}. */
export interface FindPhaseCommitQuery {
  branch: string;
  runId: string;
  phaseId: string;
  /** How many commits back to look (default 500). */
  depth?: number;
}

/**
 * The newest commit on `branch` whose trailers name this run and phase, or `null`.
 *
 * An executor that died between committing and reporting finds its own commit here on
 * restart and reports it, instead of building the phase a second time. A missing branch
 * means no such commit yet, so it also yields `null`.
 */
export async function findPhaseCommit(
  dir: string,
  { branch, runId, phaseId, depth = 500 }: FindPhaseCommitQuery,
): Promise<{ sha: string; attempt: number | null } | null> {
  await assertRepository(dir);
  const tip = await resolveOrNull(dir, branchRef(branch));
  if (tip === null) return null;
  for (const { oid, commit } of await readLog(dir, tip, depth)) {
    const trailers = parseTrailers(commit.message);
    if (trailer(trailers, TRAILER_RUN) === runId && trailer(trailers, TRAILER_PHASE) === phaseId) {
      const raw = trailer(trailers, TRAILER_ATTEMPT);
      const attempt = raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : null;
      return { sha: oid, attempt };
    }
  }
  return null;
}

async function resolveRefOrThrow(dir: string, ref: string): Promise<string> {
  const oid = await resolveOrNull(dir, ref);
  if (oid === null) throw new GitError('REF_NOT_FOUND', `Cannot resolve ${ref}`, { ref });
  return oid;
}

/** Every file path tracked in the commit `ref` points at (default `HEAD`), repo-relative with `/`. */
export async function listTrackedFiles(dir: string, ref = 'HEAD'): Promise<string[]> {
  await assertRepository(dir);
  const oid = await resolveRefOrThrow(dir, ref);
  try {
    return await git.listFiles({ fs, dir, ref: oid, cache: {} });
  } catch (err) {
    throw toGitError(err, 'GIT_FAILED', `Could not list the files of ${ref}`, { ref });
  }
}

/** How a file differs between two commits. */
export type FileChange = 'added' | 'modified' | 'removed';

/**
 * The files that differ between the commits `from` and `to` point at, with how: added,
 * modified (other content or mode) or removed, repo-relative with `/`. Identical subtrees are
 * skipped, so the cost follows the change, not the repository. Throws REF_NOT_FOUND for an
 * unknown ref.
 */
export async function changedFilesBetween(dir: string, from: string, to = 'HEAD'): Promise<Map<string, FileChange>> {
  await assertRepository(dir);
  const [a, b] = [await resolveRefOrThrow(dir, from), await resolveRefOrThrow(dir, to)];
  const changed = new Map<string, FileChange>();
  if (a === b) return changed;
  try {
    await git.walk({
      fs,
      dir,
      cache: {},
      trees: [git.TREE({ ref: a }), git.TREE({ ref: b })],
      map: async (filepath: string, [before, after]: Array<WalkerEntry | null>) => {
        if (filepath === '.') return undefined;
        if (before && after && (await before.oid()) === (await after.oid())) return null;
        const wasFile = before !== null && (await before.type()) === 'blob';
        const isFile = after !== null && (await after.type()) === 'blob';
        if (wasFile || isFile) changed.set(filepath, wasFile && isFile ? 'modified' : isFile ? 'added' : 'removed');
        return undefined;
      },
    });
  } catch (err) {
    throw toGitError(err, 'GIT_FAILED', `Could not compare ${from} with ${to}`, { ref: from });
  }
  return changed;
}

/**
 * The raw bytes of `filepath` in the commit `ref` points at, or `null` when that commit has
 * no file there. Throws REF_NOT_FOUND for an unknown ref and UNSAFE_PATH for a bad path.
 */
export async function readBlobAtRef(dir: string, ref: string, filepath: string): Promise<Uint8Array | null> {
  assertSafeRepoPath(filepath);
  await assertRepository(dir);
  const oid = await resolveRefOrThrow(dir, ref);
  try {
    const { blob } = await git.readBlob({ fs, dir, oid, filepath });
    return blob;
  } catch (err) {
    // NotFound: no such path. ObjectTypeError: the path is a directory, or runs through a file.
    if (isNotFound(err) || isoGitCode(err) === 'ObjectTypeError') return null;
    throw toGitError(err, 'GIT_FAILED', `Could not read ${filepath} at ${ref}`, { ref, path: filepath });
  }
}

/** {@link readBlobAtRef} decoded as UTF-8 (invalid bytes become U+FFFD, a BOM is kept), for building LLM context. */
export async function readFileAtRef(dir: string, ref: string, filepath: string): Promise<string | null> {
  const blob = await readBlobAtRef(dir, ref, filepath);
  return blob === null ? null : new TextDecoder('utf-8', { ignoreBOM: true }).decode(blob);
}
