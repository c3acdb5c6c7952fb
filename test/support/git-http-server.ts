import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A smart-HTTP git server for tests: bare repositories in a temp directory, served on a free
 * loopback port by `git http-backend` (the CGI program that ships with git). Only tests use
 * the git binary; the product talks to this server through isomorphic-git.
 */

/** One request as the intercept hook sees it. */
export interface GitHttpRequest {
  method: string;
  /** Repository name (without `.git`). */
  repo: string;
  /** `upload-pack` (fetch) or `receive-pack` (push). */
  service: 'upload-pack' | 'receive-pack' | null;
  /** `advertisement`: GET .../info/refs (ref discovery); `rpc`: the POST that does the work. */
  kind: 'advertisement' | 'rpc' | 'other';
}

/**
 * What an intercept may do besides letting the request through: answer instead of the backend
 * (`status`), or let the backend do the work and then cut the connection without an answer
 * (`dropResponse`: a push that lands although its client sees a network error).
 */
export type GitHttpInterception = { status: number } | { dropResponse: true };

/**
 * Called before the backend serves a request, with the request body already read. It may act
 * (for example push a competing commit) and return an interception.
 */
export type GitHttpIntercept = (request: GitHttpRequest) => void | GitHttpInterception | Promise<void | GitHttpInterception>;

export interface GitHttpServer {
  /** `http://127.0.0.1:<port>/<name>.git`, with credentials when given. */
  url(name: string, credentials?: { username: string; password: string }): string;
  /** Path of the bare repository on disk. */
  repoPath(name: string): string;
  /** Creates a bare repository whose `branch` holds one commit of `files`; returns its id. */
  createRepository(name: string, files: Record<string, string>, opts?: { branch?: string }): string;
  /**
   * Commits `files` on `branch` of a repository (starting it from `from` when the branch does not
   * exist yet) with `message`, straight into the bare repository (not through HTTP, so the
   * intercept does not see it). Returns the new commit id.
   */
  commit(name: string, opts: { branch: string; from?: string; files: Record<string, string>; message: string }): string;
  /** Runs git in the bare repository and returns stdout; throws on a non-zero exit. */
  git(name: string, ...args: string[]): string;
  /** Clones a repository into `dir` (a normal working tree on `branch`). */
  clone(name: string, dir: string, opts?: { branch?: string }): void;
  /** Replaced or cleared by tests at any time. */
  intercept: GitHttpIntercept | undefined;
  close(): Promise<void>;
}

const IDENTITY = { GIT_AUTHOR_NAME: 'Fixture', GIT_AUTHOR_EMAIL: 'fixture@example.com', GIT_COMMITTER_NAME: 'Fixture', GIT_COMMITTER_EMAIL: 'fixture@example.com' };

/** git with no user or system configuration, so the host's settings cannot change what tests see. */
function gitEnv(home: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: home, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', ...IDENTITY };
}

function runGit(env: NodeJS.ProcessEnv, cwd: string, args: string[]): string {
  const r = spawnSync('git', args, { cwd, env, encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Throws unless a git binary (with `http-backend`) is on PATH: the fixture cannot work without one. */
function assertGitAvailable(): void {
  const probe = spawnSync('git', ['--exec-path'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error('test/support/git-http-server needs the `git` binary on PATH (for `git http-backend`); install git to run these tests');
  }
}

function classify(method: string, pathname: string, query: URLSearchParams): { repo: string; rest: string; request: GitHttpRequest } | undefined {
  const m = /^\/([A-Za-z0-9._-]+)\.git(\/.*)$/.exec(pathname);
  if (!m) return undefined;
  const [, repo, rest] = m;
  const service = (rest === '/info/refs' ? query.get('service') : rest.slice(1))?.replace(/^git-/, '');
  return {
    repo,
    rest,
    request: {
      method,
      repo,
      service: service === 'upload-pack' || service === 'receive-pack' ? service : null,
      kind: rest === '/info/refs' ? 'advertisement' : rest === '/git-upload-pack' || rest === '/git-receive-pack' ? 'rpc' : 'other',
    },
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Runs `git http-backend` for one request and returns its CGI output split into status, headers and body. */
function httpBackend(env: NodeJS.ProcessEnv, body: Buffer): Promise<{ status: number; headers: [string, string][]; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('error', reject);
    child.on('close', () => {
      const raw = Buffer.concat(out);
      const crlf = raw.indexOf('\r\n\r\n');
      const lf = raw.indexOf('\n\n');
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? { at: crlf, len: 4 } : lf >= 0 ? { at: lf, len: 2 } : undefined;
      if (!end) return reject(new Error(`git http-backend wrote no CGI headers: ${stderr}`));
      let status = 200;
      const headers: [string, string][] = [];
      for (const line of raw.subarray(0, end.at).toString('latin1').split(/\r?\n/)) {
        const colon = line.indexOf(':');
        if (colon < 0) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else headers.push([name, value]);
      }
      resolve({ status, headers, body: raw.subarray(end.at + end.len) });
    });
    // The backend may exit before reading the whole body (a refused push); its output, read on
    // close, still holds the answer, so the broken pipe is not an error of the request.
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') reject(err);
    });
    child.stdin.end(body);
  });
}

/**
 * Starts the server. With `auth`, every request needs that Basic auth (401 otherwise), so
 * tests can check that credentials in a URL work and never show up in messages.
 */
export async function startGitHttpServer(opts: { auth?: { username: string; password: string } } = {}): Promise<GitHttpServer> {
  assertGitAvailable();
  const root = mkdtempSync(path.join(os.tmpdir(), 'autopack-git-http-'));
  const projects = path.join(root, 'repos');
  const home = path.join(root, 'home');
  mkdirSync(projects);
  mkdirSync(home);
  const env = gitEnv(home);
  const expectedAuth = opts.auth ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}` : undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fixture');
    const described = classify(req.method ?? 'GET', url.pathname, url.searchParams);
    const body = await readBody(req);
    if (!described) {
      res.writeHead(404).end();
      return;
    }
    if (expectedAuth && req.headers.authorization !== expectedAuth) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fixture"' }).end();
      return;
    }
    const intercepted = await server.intercept?.(described.request);
    if (intercepted && 'status' in intercepted) {
      res.writeHead(intercepted.status).end();
      return;
    }
    const cgi = await httpBackend(
      {
        ...env,
        GIT_PROJECT_ROOT: projects,
        GIT_HTTP_EXPORT_ALL: '1',
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: `/${described.repo}.git${described.rest}`,
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        CONTENT_LENGTH: String(body.length),
        REMOTE_ADDR: '127.0.0.1',
        ...(opts.auth ? { REMOTE_USER: opts.auth.username } : {}),
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
      },
      body,
    );
    if (intercepted?.dropResponse) {
      res.destroy();
      return;
    }
    res.writeHead(cgi.status, cgi.headers).end(cgi.body);
  };

  const httpServer = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500).end(err.message);
      else res.destroy(err);
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = httpServer.address() as AddressInfo;

  const repoPath = (name: string) => path.join(projects, `${name}.git`);
  const server: GitHttpServer = {
    intercept: undefined,
    url: (name, credentials) => {
      const userinfo = credentials ? `${encodeURIComponent(credentials.username)}:${encodeURIComponent(credentials.password)}@` : '';
      return `http://${userinfo}127.0.0.1:${port}/${name}.git`;
    },
    repoPath,
    git: (name, ...args) => runGit(env, repoPath(name), args),
    createRepository: (name, files, { branch = 'main' } = {}) => {
      const bare = repoPath(name);
      runGit(env, projects, ['init', '-q', '--bare', `--initial-branch=${branch}`, bare]);
      // Pushes are allowed over HTTP, refused unless fast-forward, and checked object by object.
      for (const [key, value] of [
        ['http.receivepack', 'true'],
        ['receive.denyNonFastForwards', 'true'],
        ['receive.fsckObjects', 'true'],
      ]) {
        runGit(env, bare, ['config', key, value]);
      }
      return server.commit(name, { branch, files, message: 'init' });
    },
    commit: (name, { branch, from, files, message }) => {
      const work = mkdtempSync(path.join(root, 'work-'));
      try {
        runGit(env, root, ['clone', '-q', repoPath(name), work]);
        const remoteBranches = runGit(env, work, ['branch', '-r', '--format=%(refname:short)']).split('\n');
        const start = remoteBranches.includes(`origin/${branch}`) ? `origin/${branch}` : from ? `origin/${from}` : undefined;
        runGit(env, work, start ? ['checkout', '-q', '-B', branch, start] : ['checkout', '-q', '--orphan', branch]);
        for (const [p, content] of Object.entries(files)) {
          mkdirSync(path.dirname(path.join(work, p)), { recursive: true });
          writeFileSync(path.join(work, p), content);
        }
        runGit(env, work, ['add', '-A']);
        runGit(env, work, ['commit', '-q', '--allow-empty', '-m', message]);
        runGit(env, work, ['push', '-q', 'origin', `HEAD:refs/heads/${branch}`]);
        return runGit(env, work, ['rev-parse', 'HEAD']).trim();
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
    clone: (name, dir, { branch = 'main' } = {}) => {
      runGit(env, root, ['clone', '-q', '--branch', branch, repoPath(name), dir]);
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      // Clients keep connections alive; close() alone would wait for them.
      httpServer.closeAllConnections();
      await closed;
      rmSync(root, { recursive: true, force: true });
    },
  };
  return server;
}
