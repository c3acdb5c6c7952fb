/**
 * The demo's local deployer: the target of a droplet build's `deploy` and `rollback` hooks
 * (CONTRACT.md section 8, step 5). It runs a commit of a local repository as a Node process
 * on a free port of 127.0.0.1. An HTTP server on 127.0.0.1, started in-process by the demo
 * and by tests.
 *
 * - `POST /deploy` `{build_id, droplet_id?, commit_sha, repo, branch?}`: exports the commit's
 *   tree (isomorphic-git, no checkout, no git binary) into a fresh directory, starts
 *   `node <entry>` there with `PORT` set and a minimal environment, waits until it accepts
 *   connections, and answers 200 with the deployment (`url`, `deployment_id`, `commit_sha`,
 *   ...). The build's previous deployment is stopped only after the new one is up. The
 *   commit already running for that build is answered again without a restart (a retried
 *   hook delivery). A service that does not come up in time: 502 with its output's tail.
 * - `POST /rollback` `{build_id, commit_sha?}`: stops the build's current deployment and
 *   starts the one before it again (on a fresh port), or only stops it when there is none.
 *   With `commit_sha`, only a current deployment of that commit is rolled back, so a
 *   retried rollback delivery changes nothing the second time. 200 `{rolled_back, stopped, current, url}`.
 * - `GET /deployments[?build_id=]`: 200 `{deployments}`, oldest first.
 * - `GET /builds/{build_id}/health`, `GET /droplets/{droplet_id}/health`: the current
 *   deployment's health path relayed (status and body), so a health check URL can be fixed
 *   before the deployment's port is known; 404 without a deployment, 502 when unreachable.
 * - `GET /health`: 200 `{status: "ok"}`.
 *
 * Errors are `{error: {code, message, details?}}`. Closing the deployer stops every service.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportTree, isGitError, repoPathProblem } from '@app/git';
import { z } from 'zod';
import {
  CommitShaSchema,
  DemoHttpError,
  acceptsConnections,
  findFreeLocalPort,
  finishApp,
  jsonApp,
  listenLocal,
  optionalText,
  parseBody,
  route,
} from './demo-http.js';

const IdSchema = z.string().min(1, 'must not be empty').max(200);

const DeployBodySchema = z.object({
  build_id: IdSchema,
  droplet_id: optionalText(200),
  commit_sha: CommitShaSchema,
  repo: z.string().min(1, 'must not be empty').max(4096).refine((p) => path.isAbsolute(p), 'must be an absolute path'),
  branch: optionalText(500),
});

const RollbackBodySchema = z.object({
  build_id: IdSchema,
  commit_sha: z.preprocess((v) => (v === '' || v === null ? undefined : v), CommitShaSchema.optional()),
});

/** Where a deployment is in its life. */
export type DeploymentStatus = 'starting' | 'running' | 'stopped' | 'exited' | 'failed';

/** A deployment as the routes show it. */
export interface DeploymentView {
  deployment_id: string;
  build_id: string;
  droplet_id: string | null;
  commit_sha: string;
  branch: string | null;
  status: DeploymentStatus;
  /** True for the build's deployment that is serving (or last served) it. */
  current: boolean;
  /** `http://127.0.0.1:<port>` of its latest start. */
  url: string;
  /** The service's process id while it runs. */
  pid: number | null;
  /** The exit code (or signal) of a service that stopped by itself. */
  exit: string | null;
  /** The exported tree the service runs in, and the file its output goes to. */
  dir: string;
  log_file: string;
  created_at: string;
  started_at: string | null;
  stopped_at: string | null;
}

/** Options of {@link startDemoDeployer}. */
export interface DemoDeployerOptions {
  /** Where each deployment's directory (`<root>/<deployment_id>/app`) and output log go. */
  root: string;
  /** When given, the only repositories `POST /deploy` may name (absolute paths); others are 403. */
  repos?: string[];
  /** Listen port on 127.0.0.1 (default 0: a free port). */
  port?: number;
  /** How long a service may take to accept connections (default 20 s). */
  startTimeoutMs?: number;
  /** How long a stopping service gets after SIGTERM before SIGKILL (default 5 s). */
  stopTimeoutMs?: number;
  /** When set, a service is up only once `GET <readyPath>` answers 2xx, not merely on accepting connections. */
  readyPath?: string;
  /** The path the `/builds/{id}/health` and `/droplets/{id}/health` routes relay (default `/health`). */
  healthPath?: string;
  /** Extra environment of every service (on top of the minimal one). */
  serviceEnv?: Record<string, string>;
  /** How much of a failed service's output the 502 carries (default 4000 characters). */
  outputTailChars?: number;
  /** Where unexpected errors are written (default: stderr). */
  log?: (line: string) => void;
}

/** A running deployer. */
export interface DemoDeployer {
  /** `http://127.0.0.1:<port>`; the deploy hook's URL is `${url}/deploy`. */
  url: string;
  port: number;
  /** Every deployment, oldest first. */
  deployments(): DeploymentView[];
  /** Stops accepting requests, then stops every service (SIGTERM, then SIGKILL). */
  close(): Promise<void>;
}

interface Deployment {
  id: string;
  buildId: string;
  dropletId: string | null;
  commitSha: string;
  branch: string | null;
  status: DeploymentStatus;
  dir: string;
  entry: string;
  logFile: string;
  port: number;
  createdAt: string;
  startedAt: string | null;
  stoppedAt: string | null;
  exit: string | null;
  /** Rolled back: never the target of a later rollback. */
  rolledBack: boolean;
  child: ChildProcess | null;
  exited: Promise<void> | null;
}

/** The last `limit` characters of a process's output. */
class OutputTail {
  private text = '';
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.text = (this.text + chunk.toString('utf8')).slice(-this.limit);
  }
  toString(): string {
    return this.text;
  }
}

/** Signals the service's whole process group (it is started detached, as the group's leader). */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/** The file `node` starts: package.json `main`, else `server.js`, else `index.js`. */
async function entryPoint(dir: string): Promise<string> {
  const manifest = path.join(dir, 'package.json');
  if (existsSync(manifest)) {
    let main: unknown;
    try {
      main = (JSON.parse(await fsp.readFile(manifest, 'utf8')) as { main?: unknown }).main;
    } catch (err) {
      throw new DemoHttpError(422, 'BAD_PACKAGE_JSON', `package.json of the commit is not valid JSON: ${(err as Error).message}`);
    }
    if (main !== undefined) {
      const rel = typeof main === 'string' ? path.posix.normalize(main.replace(/^\.\//, '')) : '';
      const problem = typeof main === 'string' ? repoPathProblem(rel) : 'not a string';
      if (problem !== null) throw new DemoHttpError(422, 'BAD_PACKAGE_JSON', `package.json "main" is unusable: ${problem}`);
      if (!isFile(path.join(dir, rel))) throw new DemoHttpError(422, 'NO_ENTRY_POINT', `package.json "main" names ${rel}, which the commit does not have`);
      return rel;
    }
  }
  for (const candidate of ['server.js', 'index.js']) if (isFile(path.join(dir, candidate))) return candidate;
  throw new DemoHttpError(422, 'NO_ENTRY_POINT', 'the commit has no package.json "main", server.js or index.js to start');
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Starts the deployer. */
export async function startDemoDeployer(options: DemoDeployerOptions): Promise<DemoDeployer> {
  const root = path.resolve(options.root);
  const allowedRepos = options.repos?.map((r) => path.resolve(r));
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 5_000;
  const healthPath = options.healthPath ?? '/health';
  const tailChars = options.outputTailChars ?? 4000;
  const log = options.log ?? ((line: string) => process.stderr.write(`demo deployer: ${line}\n`));
  await fsp.mkdir(root, { recursive: true });

  const all: Deployment[] = [];
  const current = new Map<string, Deployment>();
  let sequence = 0;
  let closed = false;

  // One operation per build at a time: a deploy and a rollback of one build never interleave.
  const queues = new Map<string, Promise<unknown>>();
  const perBuild = <T>(buildId: string, work: () => Promise<T>): Promise<T> => {
    const next = (queues.get(buildId) ?? Promise.resolve()).then(work, work);
    queues.set(buildId, next.catch(() => undefined));
    return next;
  };

  // Last resort for a process that exits without closing the deployer: its services go with it.
  const killAllNow = () => {
    for (const d of all) if (d.child?.pid !== undefined && d.child.exitCode === null && d.child.signalCode === null) signalGroup(d.child.pid, 'SIGKILL');
  };
  process.on('exit', killAllNow);

  const view = (d: Deployment): DeploymentView => ({
    deployment_id: d.id,
    build_id: d.buildId,
    droplet_id: d.dropletId,
    commit_sha: d.commitSha,
    branch: d.branch,
    status: d.status,
    current: current.get(d.buildId) === d,
    url: `http://127.0.0.1:${d.port}`,
    pid: d.status === 'running' || d.status === 'starting' ? (d.child?.pid ?? null) : null,
    exit: d.exit,
    dir: d.dir,
    log_file: d.logFile,
    created_at: d.createdAt,
    started_at: d.startedAt,
    stopped_at: d.stoppedAt,
  });

  /** Starts `d`'s service on a fresh port and waits until it is up; on failure it is killed and a 502 thrown. */
  async function launch(d: Deployment): Promise<void> {
    d.port = await findFreeLocalPort();
    d.status = 'starting';
    d.exit = null;
    d.stoppedAt = null;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(d.port),
      AUTOPACK_BUILD_ID: d.buildId,
      AUTOPACK_DEPLOYMENT_ID: d.id,
      AUTOPACK_COMMIT_SHA: d.commitSha,
      ...options.serviceEnv,
    };
    const tail = new OutputTail(tailChars);
    const logStream = createWriteStream(d.logFile, { flags: 'a' });
    // Detached: the service leads its own process group, so stopping it also stops what it spawned.
    const child = spawn(process.execPath, [d.entry], { cwd: d.dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    d.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        tail.push(chunk);
        logStream.write(chunk);
      });
    }
    const outputClosed = new Promise<void>((resolve) =>
      child.once('close', () => {
        logStream.end();
        resolve();
      }),
    );
    d.exited = new Promise<void>((resolve) => {
      const ended = (exit: string) => {
        // The leader is gone; whatever it left in its group goes too (and with it the pipes it held).
        if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
        if (d.status === 'running' || d.status === 'starting') d.status = 'exited';
        d.exit = exit;
        d.stoppedAt ??= new Date().toISOString();
        d.child = null;
        resolve();
      };
      // 'exit', not 'close': a grandchild holding the pipes open must not hide the service's end.
      child.once('exit', (code, signal) => ended(signal ?? String(code)));
      child.once('error', (err) => {
        tail.push(Buffer.from(`\n${err.message}\n`));
        // Without a pid the process never started, and no 'exit' follows.
        if (child.pid === undefined) ended('spawn failed');
      });
    });

    const deadline = Date.now() + startTimeoutMs;
    let why = `it did not accept connections on port ${d.port} within ${startTimeoutMs} ms`;
    for (;;) {
      if (d.status !== 'starting') {
        why = `it exited (${d.exit ?? 'unknown'}) before accepting connections`;
        break;
      }
      if (await isUp(d.port)) {
        if (d.status === 'starting') {
          d.status = 'running';
          d.startedAt = new Date().toISOString();
          return;
        }
        continue;
      }
      if (Date.now() > deadline) break;
      await Promise.race([sleep(100), d.exited]);
    }
    await stop(d);
    d.status = 'failed';
    // The group is killed, so its pipes close; read what is left in them before reporting (bounded, to be safe).
    await Promise.race([outputClosed, sleep(2000, undefined, { ref: false })]);
    throw new DemoHttpError(502, 'SERVICE_DID_NOT_START', `the service of ${d.commitSha.slice(0, 10)} did not start: ${why}`, {
      deployment_id: d.id,
      exit: d.exit,
      output_tail: tail.toString(),
      log_file: d.logFile,
    });
  }

  async function isUp(port: number): Promise<boolean> {
    if (!(await acceptsConnections(port))) return false;
    if (!options.readyPath) return true;
    try {
      const res = await fetch(`http://127.0.0.1:${port}${options.readyPath}`, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }

  /** Stops `d`'s service: SIGTERM to its group, SIGKILL after `stopTimeoutMs`; resolves once it exited. */
  async function stop(d: Deployment): Promise<void> {
    const child = d.child;
    if (d.status === 'running' || d.status === 'starting') d.status = 'stopped';
    if (!child || !d.exited) return;
    if (child.pid !== undefined) signalGroup(child.pid, 'SIGTERM');
    const timer = setTimeout(() => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL'), stopTimeoutMs);
    await d.exited;
    clearTimeout(timer);
    d.stoppedAt = new Date().toISOString();
  }

  async function deploy(body: z.infer<typeof DeployBodySchema>): Promise<Deployment> {
    const repo = path.resolve(body.repo);
    if (allowedRepos && !allowedRepos.includes(repo)) {
      throw new DemoHttpError(403, 'REPO_NOT_ALLOWED', `this deployer only deploys from ${allowedRepos.join(', ')}`);
    }
    const running = current.get(body.build_id);
    if (running && running.commitSha === body.commit_sha && running.status === 'running') return running;

    const id = `d${++sequence}-${body.commit_sha.slice(0, 10)}`;
    const dir = path.join(root, id, 'app');
    const d: Deployment = {
      id,
      buildId: body.build_id,
      dropletId: body.droplet_id ?? null,
      commitSha: body.commit_sha,
      branch: body.branch ?? null,
      status: 'starting',
      dir,
      entry: '',
      logFile: path.join(root, id, 'output.log'),
      port: 0,
      createdAt: new Date().toISOString(),
      startedAt: null,
      stoppedAt: null,
      exit: null,
      rolledBack: false,
      child: null,
      exited: null,
    };
    try {
      await exportTree(repo, body.commit_sha, dir);
      d.entry = await entryPoint(dir);
    } catch (err) {
      // Nothing ran from it: leave no directory behind.
      await fsp.rm(path.join(root, id), { recursive: true, force: true });
      if (isGitError(err, 'NOT_A_REPOSITORY')) throw new DemoHttpError(422, 'NOT_A_REPOSITORY', `${repo} is not a git repository`);
      if (isGitError(err, 'REF_NOT_FOUND')) throw new DemoHttpError(422, 'COMMIT_NOT_FOUND', `${body.commit_sha} is not a commit of ${repo}`);
      if (isGitError(err, 'UNSAFE_PATH')) throw new DemoHttpError(422, 'UNSAFE_TREE', err.message);
      throw err;
    }
    all.push(d);
    await launch(d);
    // Only now, with the new service up, does the previous one stop.
    const previous = current.get(d.buildId);
    current.set(d.buildId, d);
    if (previous) await stop(previous);
    return d;
  }

  async function rollback(body: z.infer<typeof RollbackBodySchema>): Promise<Record<string, unknown>> {
    const now = current.get(body.build_id);
    if (!now || now.rolledBack || (body.commit_sha !== undefined && now.commitSha !== body.commit_sha)) {
      const reason = !now
        ? 'the build has no deployment'
        : now.rolledBack
          ? 'the build has no deployment left to roll back'
          : `the current deployment runs ${now.commitSha}, not ${body.commit_sha}`;
      return { rolled_back: false, reason, stopped: null, current: now && !now.rolledBack ? view(now) : null, url: now && now.status === 'running' ? view(now).url : null };
    }
    await stop(now);
    now.rolledBack = true;
    const before = all.filter((d) => d.buildId === body.build_id && d !== now && !d.rolledBack && d.startedAt !== null && all.indexOf(d) < all.indexOf(now)).pop();
    if (!before) {
      return { rolled_back: true, stopped: view(now), current: null, url: null };
    }
    current.set(body.build_id, before);
    await launch(before);
    return { rolled_back: true, stopped: view(now), current: view(before), url: view(before).url };
  }

  /** Relays `GET <healthPath>` of `d` (status and body). */
  async function relayHealth(d: Deployment | undefined, what: string): Promise<{ status: number; body: unknown }> {
    if (!d || d.status !== 'running') throw new DemoHttpError(404, 'NO_DEPLOYMENT', `${what} has no running deployment`);
    try {
      const res = await fetch(`http://127.0.0.1:${d.port}${healthPath}`, { signal: AbortSignal.timeout(5000) });
      const text = (await res.text()).slice(0, 64_000);
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // relay the text as it is
      }
      return { status: res.status, body };
    } catch (err) {
      throw new DemoHttpError(502, 'SERVICE_UNREACHABLE', `${what}'s service did not answer: ${(err as Error).message}`);
    }
  }

  const refuseWhenClosed = () => {
    if (closed) throw new DemoHttpError(503, 'SHUTTING_DOWN', 'the deployer is stopping');
  };

  const app = jsonApp();
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.post(
    '/deploy',
    route(async (req, res) => {
      refuseWhenClosed();
      const body = parseBody(DeployBodySchema, req.body);
      const d = await perBuild(body.build_id, () => deploy(body));
      res.status(200).json(view(d));
    }),
  );
  app.post(
    '/rollback',
    route(async (req, res) => {
      refuseWhenClosed();
      const body = parseBody(RollbackBodySchema, req.body);
      res.status(200).json(await perBuild(body.build_id, () => rollback(body)));
    }),
  );
  app.get('/deployments', (req, res) => {
    const buildId = typeof req.query.build_id === 'string' ? req.query.build_id : undefined;
    res.json({ deployments: all.filter((d) => buildId === undefined || d.buildId === buildId).map(view) });
  });
  app.get(
    '/builds/:build_id/health',
    route(async (req, res) => {
      const buildId = String(req.params.build_id);
      const { status, body } = await relayHealth(current.get(buildId), `build ${buildId}`);
      res.status(status).json(body);
    }),
  );
  app.get(
    '/droplets/:droplet_id/health',
    route(async (req, res) => {
      const dropletId = String(req.params.droplet_id);
      // The droplet's newest running deployment that is its build's current one.
      const d = all.filter((x) => x.dropletId === dropletId && x.status === 'running' && current.get(x.buildId) === x).pop();
      const { status, body } = await relayHealth(d, `droplet ${dropletId}`);
      res.status(status).json(body);
    }),
  );
  finishApp(app, log);

  const server = await listenLocal(app, options.port);
  return {
    url: server.url,
    port: server.port,
    deployments: () => all.map(view),
    close: async () => {
      closed = true;
      await server.close();
      // Let a deploy or rollback under way finish first, so nothing it starts outlives the deployer.
      await Promise.all([...queues.values()]);
      await Promise.all(all.map(stop));
      process.off('exit', killAllNow);
    },
  };
}
