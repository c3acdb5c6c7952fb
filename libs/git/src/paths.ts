/**
 * Repository-relative path checks.
 *
 * Paths reaching this library come from LLM output, which is untrusted. A path that is
 * absolute, climbs out with `..`, or names `.git` in any spelling a file system might fold
 * to it could overwrite hooks or config, so such paths are refused before any I/O.
 */
import nodeFs, { type Stats } from 'node:fs';
import { gitFs as fs } from './git-fs.js';
import path from 'node:path';
import { GitError } from './errors.js';

/**
 * Why `p` is not a safe repo-relative path, or `null` when it is.
 *
 * Accepted: `a/b.txt` style paths with `/` separators, no empty, `.` or `..` segments,
 * no leading or trailing slash, no backslash or NUL, and no `.git` segment (also `.GIT`,
 * `.git.`, `.git ` and the 8.3 short name `git~1`, which Windows and macOS resolve to it).
 */
export function repoPathProblem(p: string): string | null {
  if (typeof p !== 'string' || p.length === 0) return 'empty path';
  if (p.includes('\0')) return 'contains a NUL byte';
  if (p.includes('\\')) return 'contains a backslash (use /)';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'absolute path';
  if (p.endsWith('/')) return 'trailing slash';
  for (const segment of p.split('/')) {
    if (segment === '') return 'empty path segment';
    if (segment === '.' || segment === '..') return `"${segment}" segment`;
    // Windows strips trailing dots and spaces, and both Windows and macOS fold case.
    const folded = segment.replace(/[. ]+$/, '').toLowerCase();
    if (folded === '.git' || /^git~\d+$/.test(folded)) return 'names the .git directory';
  }
  return null;
}

/** Throws UNSAFE_PATH unless `p` passes {@link repoPathProblem}. */
export function assertSafeRepoPath(p: string): void {
  const problem = repoPathProblem(p);
  if (problem !== null) {
    throw new GitError('UNSAFE_PATH', `Unsafe repository path ${JSON.stringify(p)}: ${problem}`, {
      path: p,
      reason: problem,
    });
  }
}

/**
 * Throws UNSAFE_PATH when a parent directory of `p` inside `dir` is a symlink.
 *
 * Lexical checks cannot see links: `docs -> /etc` makes `docs/passwd` point outside the
 * repository, so reading it would commit foreign bytes and writing it would escape.
 * Missing parents are fine (nothing to follow yet).
 */
export async function assertNoSymlinkParents(dir: string, p: string): Promise<void> {
  const segments = p.split('/');
  let current = dir;
  for (const segment of segments.slice(0, -1)) {
    current = path.join(current, segment);
    // Synchronous: a few lstat calls cost less than as many thread-pool round trips.
    const stat = lstatSyncOrNull(current);
    if (stat === null) return;
    if (stat.isSymbolicLink()) {
      throw new GitError('UNSAFE_PATH', `Path ${JSON.stringify(p)} runs through a symlinked directory`, {
        path: p,
        reason: 'symlinked parent directory',
      });
    }
    if (!stat.isDirectory()) return;
  }
}

function lstatSyncOrNull(p: string): Stats | null {
  try {
    return nodeFs.lstatSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/** `fs.promises.lstat`, or `null` when nothing exists at `p`. */
export async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await fs.promises.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      return null;
    }
    throw err;
  }
}

/**
 * Removes the now-empty parent directories of `p` (repo-relative), stopping at `dir`.
 *
 * Git does not track directories, and `git rm`/`git checkout` leave no empty ones behind;
 * isomorphic-git does, so we tidy up after deletions to keep the tree what git would show.
 */
export async function pruneEmptyParents(dir: string, p: string): Promise<void> {
  let parent = path.posix.dirname(p);
  while (parent !== '.' && parent !== '') {
    try {
      await fs.promises.rmdir(path.join(dir, parent));
    } catch {
      return; // Not empty, already gone, or not a directory: stop climbing.
    }
    parent = path.posix.dirname(parent);
  }
}
