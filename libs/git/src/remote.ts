/**
 * Sharing a branch through a remote repository over smart HTTP (CONTRACT.md section 5: a
 * run's `repo_url`). isomorphic-git speaks the protocol itself, so no `git` binary is needed.
 *
 * Credentials may come inside the URL (`https://user:token@host/repo.git`); isomorphic-git
 * sends them as Basic auth. They never reach a message, an error's data or `.git/config`:
 * everything shown names the URL through {@link redactUrl}, and remote errors do not keep
 * the underlying error as `cause`, because isomorphic-git puts the raw URL into some of them.
 */
import { gitFs as fs } from './git-fs.js';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { GitError, isoGitCode } from './errors.js';
import { assertRepository, branchRef, isNotFound, resolveBranch } from './internal.js';

/**
 * The remote name fetched branches are recorded under (`refs/remotes/autopack/<branch>`),
 * apart from the user's own remotes such as `origin`.
 */
export const SYNC_REMOTE = 'autopack';

/** Which branch of which remote a fetch or push is about. */
export interface RemoteBranchOptions {
  /** `http(s)://` URL of the remote repository, optionally with credentials. */
  url: string;
  /** Branch name on both sides, e.g. `autonomous/<run_id>`. */
  branch: string;
  /** Extra HTTP headers (e.g. `Authorization`), sent with every request and never shown. */
  headers?: Record<string, string>;
}

/** Authority up to and including the last `@`: the userinfo part of a URL. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i;

/** `url` without its userinfo (`https://user:token@host/r.git` -> `https://host/r.git`), for logs and messages. */
export function redactUrl(url: string): string {
  return url.replace(USERINFO, '$1');
}

/** True for the `http://` and `https://` URLs {@link fetchBranch} and {@link pushBranch} can use. */
export function isHttpUrl(url: string): boolean {
  return /^https?:\/\//i.test(url);
}

/**
 * Every spelling of the URL's secret a message could contain: the whole userinfo and the
 * password (or, for `https://<token>@host`, the user name), raw and percent-decoded.
 */
function credentialsIn(url: string): string[] {
  const userinfo = USERINFO.exec(url)?.[2];
  if (!userinfo) return [];
  const colon = userinfo.indexOf(':');
  const secret = colon < 0 ? userinfo : userinfo.slice(colon + 1);
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const spellings = [userinfo, decode(userinfo), secret, decode(secret)].filter((s) => s.length > 0);
  // Longest first, so a whole userinfo is replaced before its password.
  return [...new Set(spellings)].sort((a, b) => b.length - a.length);
}

/** `text` with the URL shown redacted and any credential spelling removed. */
function scrubbed(text: string, url: string): string {
  let out = text.split(url).join(redactUrl(url));
  for (const secret of credentialsIn(url)) out = out.split(secret).join('***');
  return out;
}

function assertHttpUrl(url: string): void {
  if (typeof url !== 'string' || !isHttpUrl(url)) {
    throw new GitError('INVALID_ARGUMENT', `Unsupported remote ${JSON.stringify(redactUrl(String(url)))}: only http(s) URLs can be used without a git binary`, {
      url: redactUrl(String(url)),
    });
  }
}

/** The coded, credential-free error of a failed fetch or push. */
function remoteError(err: unknown, action: 'fetch' | 'push', { url, branch }: RemoteBranchOptions): GitError {
  const causeCode = isoGitCode(err) ?? null;
  const detail = scrubbed(err instanceof Error ? err.message : String(err), url);
  const statusCode = (err as { data?: { statusCode?: unknown } }).data?.statusCode;
  // GitPushError with ok=false is the server failing to unpack, not a refused update.
  const refUpdateRefused = causeCode === 'GitPushError' && (err as { data?: { result?: { ok?: boolean } } }).data?.result?.ok !== false;
  const code =
    causeCode === 'PushRejectedError' || refUpdateRefused
      ? 'PUSH_REJECTED'
      : causeCode === 'HttpError' && (statusCode === 401 || statusCode === 403)
        ? 'REMOTE_AUTH_FAILED'
        : 'REMOTE_FAILED';
  const where = redactUrl(url);
  return new GitError(code, `Could not ${action} ${branch} ${action === 'fetch' ? 'from' : 'to'} ${where}: ${detail}`, {
    url: where,
    branch,
    cause: { code: causeCode, message: detail },
  });
}

/**
 * Declares {@link SYNC_REMOTE} in `.git/config` (URL without credentials, and a fetch refspec,
 * which isomorphic-git needs to record fetched branches). Written only when it differs.
 */
async function ensureSyncRemote(dir: string, url: string): Promise<void> {
  const wanted: [string, string][] = [
    [`remote.${SYNC_REMOTE}.url`, redactUrl(url)],
    [`remote.${SYNC_REMOTE}.fetch`, `+refs/heads/*:refs/remotes/${SYNC_REMOTE}/*`],
  ];
  for (const [path, value] of wanted) {
    if ((await git.getConfig({ fs, dir, path })) !== value) await git.setConfig({ fs, dir, path, value });
  }
}

/**
 * Fetches `branch` from the remote into `refs/remotes/autopack/<branch>` with the objects it
 * needs. Returns the remote's head of the branch, or `null` when the remote does not have it
 * (or has no branches at all). Local branches are not touched; see
 * {@link resetBranchToRemote}. Throws INVALID_ARGUMENT for a non-http(s) URL,
 * REMOTE_AUTH_FAILED or REMOTE_FAILED.
 */
export async function fetchBranch(dir: string, options: RemoteBranchOptions): Promise<string | null> {
  const { url, branch, headers } = options;
  await assertRepository(dir);
  assertHttpUrl(url);
  await ensureSyncRemote(dir, url);
  const remoteRef = branchRef(branch);
  try {
    const result = await git.fetch({ fs, http, dir, url, remote: SYNC_REMOTE, ref: branch, remoteRef, singleBranch: true, tags: false, headers, cache: {} });
    return result.fetchHead ?? null;
  } catch (err) {
    // The remote lists its refs and this one is not among them.
    if (isNotFound(err) && (err as { data?: { what?: unknown } }).data?.what === remoteRef) return null;
    throw remoteError(err, 'fetch', options);
  }
}

/**
 * Pushes the local `branch` to the same branch on the remote, only as a fast-forward.
 * Returns the pushed commit id. Throws PUSH_REJECTED when the remote branch is not an
 * ancestor of the local one, or moved between the two requests of the push (the remote
 * decides atomically, so of two racing pushes exactly one wins); BRANCH_NOT_FOUND when the
 * local branch is missing; INVALID_ARGUMENT, REMOTE_AUTH_FAILED or REMOTE_FAILED otherwise.
 */
export async function pushBranch(dir: string, options: RemoteBranchOptions): Promise<string> {
  const { url, branch, headers } = options;
  await assertRepository(dir);
  assertHttpUrl(url);
  const head = await resolveBranch(dir, branch);
  await ensureSyncRemote(dir, url);
  try {
    await git.push({ fs, http, dir, url, remote: SYNC_REMOTE, ref: branchRef(branch), remoteRef: branchRef(branch), headers, cache: {} });
  } catch (err) {
    throw remoteError(err, 'push', options);
  }
  return head;
}
