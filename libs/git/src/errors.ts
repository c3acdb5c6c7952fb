/**
 * Coded, serializable errors for the git façade.
 *
 * The executor reports failures to the supervisor over HTTP, so an error must survive
 * `JSON.stringify` with its machine-readable `code` and `data` intact (the isomorphic-git
 * `BaseError` pattern). Callers branch on `code`, never on message text.
 */

/** Every code a {@link GitError} can carry. */
export type GitErrorCode =
  /** The directory is not the root of a git working tree. */
  | 'NOT_A_REPOSITORY'
  /** A named branch (base or target) does not exist. */
  | 'BRANCH_NOT_FOUND'
  /** A ref or revision could not be resolved. */
  | 'REF_NOT_FOUND'
  /** An operation that must run on the checked-out branch was asked to use another one. */
  | 'BRANCH_NOT_CHECKED_OUT'
  /** A branch that is checked out in the working tree was asked to move behind its back (promotion, rollback). */
  | 'BRANCH_CHECKED_OUT'
  /** A guarded branch move found the branch somewhere else than expected (someone moved it meanwhile). */
  | 'BRANCH_MOVED'
  /** A promotion needs a merge that cannot be made cleanly; `data.paths` names the conflicting files. */
  | 'MERGE_CONFLICT'
  /** The working tree holds uncommitted changes or untracked files. */
  | 'DIRTY_WORKTREE'
  /** A path is absolute, escapes the repository, touches `.git` or runs through a symlink. */
  | 'UNSAFE_PATH'
  /** An argument is malformed (branch name, author, overlapping path lists, ...). */
  | 'INVALID_ARGUMENT'
  /** Staging or writing the commit failed; the index was rolled back. */
  | 'COMMIT_FAILED'
  /** Updating the working tree to another branch failed. */
  | 'CHECKOUT_FAILED'
  /** The remote refused a push because its branch moved on (not a fast-forward, or changed meanwhile). */
  | 'PUSH_REJECTED'
  /** The remote refused the credentials (HTTP 401 or 403). */
  | 'REMOTE_AUTH_FAILED'
  /** The remote could not be reached or answered with something other than smart HTTP. */
  | 'REMOTE_FAILED'
  /** Any other failure reported by isomorphic-git or the file system. */
  | 'GIT_FAILED';

/** The JSON shape of a {@link GitError}, as sent across process boundaries. */
export interface GitErrorJSON {
  code: GitErrorCode;
  message: string;
  data: Record<string, unknown>;
}

/** An error raised by `@app/git`; `code` says what went wrong, `data` gives JSON-safe details. */
export class GitError extends Error {
  override readonly name = 'GitError';

  constructor(
    readonly code: GitErrorCode,
    message: string,
    readonly data: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Serializable form: `{ code, message, data }`. */
  toJSON(): GitErrorJSON {
    return { code: this.code, message: this.message, data: this.data };
  }

  /** Rebuilds an error from {@link GitError.toJSON} output (for example on the supervisor side). */
  static fromJSON(json: GitErrorJSON): GitError {
    return new GitError(json.code, json.message, json.data ?? {});
  }
}

/** Type guard: `err` is a {@link GitError}, optionally with the given code. */
export function isGitError(err: unknown, code?: GitErrorCode): err is GitError {
  return err instanceof GitError && (code === undefined || err.code === code);
}

/** The `code` isomorphic-git puts on its own errors (`'NotFoundError'`, ...), if any. */
export function isoGitCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/**
 * Converts anything thrown underneath into a {@link GitError}.
 *
 * A GitError passes through untouched so the most specific code wins. isomorphic-git errors
 * that have an obvious meaning get their own code; everything else gets `fallback`. The
 * original code and message go into `data.cause` (strings only, so it stays serializable).
 */
export function toGitError(
  err: unknown,
  fallback: GitErrorCode,
  message: string,
  data: Record<string, unknown> = {},
): GitError {
  if (err instanceof GitError) return err;
  const causeCode = isoGitCode(err);
  const causeMessage = err instanceof Error ? err.message : String(err);
  let code: GitErrorCode = fallback;
  if (causeCode === 'UnsafeFilepathError' || causeCode === 'InvalidFilepathError') code = 'UNSAFE_PATH';
  else if (causeCode === 'InvalidRefNameError') code = 'INVALID_ARGUMENT';
  else if (causeCode === 'CheckoutConflictError') code = 'DIRTY_WORKTREE';
  const detail: Record<string, unknown> = { ...data, cause: { code: causeCode ?? null, message: causeMessage } };
  // CheckoutConflictError lists the conflicting paths; keep them where DIRTY_WORKTREE callers look.
  if (code === 'DIRTY_WORKTREE' && detail.paths === undefined) {
    const filepaths = (err as { data?: { filepaths?: unknown } }).data?.filepaths;
    if (Array.isArray(filepaths)) detail.paths = filepaths.slice(0, 20).map(String);
  }
  return new GitError(code, `${message}: ${causeMessage}`, detail, { cause: err });
}
