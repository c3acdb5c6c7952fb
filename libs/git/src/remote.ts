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
import git, { type GitHttpRequest, type GitHttpResponse, type HttpClient } from 'isomorphic-git';
import nodeHttp from 'isomorphic-git/http/node';
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

/** Splits a pkt-line stream into its packets (`null` for a flush packet); `undefined` when it is not one. */
function pktLines(buf: Buffer): (Buffer | null)[] | undefined {
  const lines: (Buffer | null)[] = [];
  let i = 0;
  while (i < buf.length) {
    const length = Number.parseInt(buf.subarray(i, i + 4).toString('ascii'), 16);
    if (!Number.isInteger(length) || (length !== 0 && length < 4) || i + Math.max(length, 4) > buf.length) return undefined;
    lines.push(length === 0 ? null : buf.subarray(i + 4, i + length));
    i += Math.max(length, 4);
  }
  return lines;
}

function pktLine(line: Buffer | null): Buffer {
  if (line === null) return Buffer.from('0000', 'ascii');
  return Buffer.concat([Buffer.from((line.length + 4).toString(16).padStart(4, '0'), 'ascii'), line]);
}

/**
 * An upload-pack ref advertisement that names no HEAD (the remote's default branch has no
 * commit yet, for example a shared repository whose only branch is a run's integration
 * branch) gets a `symref=HEAD:<first ref>` capability. isomorphic-git's fetch looks HEAD up
 * after writing the fetched remote-tracking ref but before storing the pack, and throws when
 * it is missing (isomorphic-git issue #1654): the ref would then name objects that were never
 * stored. Fetches here are single-branch, so the symref is read for that lookup only.
 */
export function withAdvertisedHead(advertisement: Buffer): Buffer {
  const lines = pktLines(advertisement);
  if (!lines) return advertisement;
  const first = lines.findIndex((l, i) => l !== null && i > 0 && l.includes(0));
  if (first < 0) return advertisement;
  const refLine = lines[first]!;
  const nul = refLine.indexOf(0);
  const [, name] = refLine.subarray(0, nul).toString('utf8').split(' ');
  if (!name || name === 'capabilities^{}' || refLine.subarray(nul + 1).includes('symref=HEAD:')) return advertisement;
  const names = lines.slice(first).map((l) => (l === null ? '' : l.toString('utf8').split(/[ \0\n]/)[1]));
  if (names.includes('HEAD')) return advertisement;
  lines[first] = Buffer.concat([refLine.subarray(0, nul + 1), Buffer.from(`symref=HEAD:${name} `, 'utf8'), refLine.subarray(nul + 1)]);
  return Buffer.concat(lines.map(pktLine));
}

async function collect(body: AsyncIterableIterator<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** isomorphic-git's node HTTP client, with {@link withAdvertisedHead} applied to fetch ref advertisements. */
const http: HttpClient = {
  async request(request: GitHttpRequest): Promise<GitHttpResponse> {
    const response = await nodeHttp.request(request);
    const discovery = (request.method ?? 'GET') === 'GET' && /\/info\/refs\?service=git-upload-pack$/.test(request.url);
    if (!discovery || response.statusCode !== 200 || !response.body) return response;
    const amended = withAdvertisedHead(await collect(response.body));
    return { ...response, body: (async function* () { yield amended; })() };
  },
};

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

const ZERO_OID = '0000000000000000000000000000000000000000';

/** Options of {@link rewindRemoteBranch}. */
export interface RewindRemoteBranchOptions extends RemoteBranchOptions {
  /** Where the remote branch goes (a commit in this repository), or `null` to delete it. */
  to: string | null;
  /** Where the remote branch must be now (`null`: it must not exist). */
  expected: string | null;
}

/**
 * Moves the remote `branch` to `to` even when that is not a fast-forward (a rollback), but
 * only from `expected`: the push names the remote's current commit, as the remote advertised
 * it, as the one it replaces, and the remote refuses the update if the branch moved since (a
 * compare-and-swap, git's `--force-with-lease`). Returns true when it moved the branch, false
 * when the branch already was at `to`. Throws BRANCH_MOVED (`data.actual`: where the remote
 * branch is) when it is neither at `expected` nor at `to`, PUSH_REJECTED when it moved between
 * the check and the update, INVALID_ARGUMENT, REMOTE_AUTH_FAILED or REMOTE_FAILED.
 */
export async function rewindRemoteBranch(dir: string, options: RewindRemoteBranchOptions): Promise<boolean> {
  const { url, branch, headers, to, expected } = options;
  await assertRepository(dir);
  assertHttpUrl(url);
  await ensureSyncRemote(dir, url);
  let seen: string | null | undefined;
  try {
    await git.push({
      fs,
      http,
      dir,
      url,
      remote: SYNC_REMOTE,
      // A commit id is pushed as is; deleting needs a ref only to name the update.
      ref: to ?? expected ?? branchRef(branch),
      remoteRef: branchRef(branch),
      force: to !== null,
      delete: to === null,
      headers,
      cache: {},
      onPrePush: ({ remoteRef }) => {
        seen = remoteRef.oid === ZERO_OID ? null : remoteRef.oid;
        return seen === expected && seen !== to;
      },
    });
    return true;
  } catch (err) {
    if (isoGitCode(err) === 'UserCanceledError' && seen !== undefined) {
      if (seen === to) return false;
      const where = redactUrl(url);
      throw new GitError('BRANCH_MOVED', `The branch ${branch} of ${where} is at ${seen ?? '(missing)'}, not at the expected ${expected ?? '(missing)'}`, {
        url: where,
        branch,
        expected,
        actual: seen,
      });
    }
    throw remoteError(err, 'push', options);
  }
}
