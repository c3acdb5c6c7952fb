import { mkdtempSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  BUILD_APPROVAL_MODES,
  type BuildApprovalMode,
  CoordinatorPassResponseSchema,
  CoordinatorServicesResponseSchema,
  IdSchema,
  ObserveServiceResponseSchema,
  type ObserveServiceResponse,
  RunResponseSchema,
  type ServiceStage,
} from '@app/contracts';
import { detectStage, readmeIntent, testCommandOf } from '@app/domain';
import { exportTree, headCommit, isGitError, isRepository, listTrackedFiles, promoteBranch, readFileAtRef } from '@app/git';
import { load as loadYaml } from 'js-yaml';
import { runCi, scrubbedEnvironment } from '../../executor/src/ci-runner.js';
import type { AdminApi } from './admin-api.js';
import { type ApiFlags, type CliIo, EXIT, withApi } from './build-commands.js';

/*
 * `autopack coordinate --services DIR` (CONTRACT.md section 9): each pass promotes the
 * coordinator's finished runs into their service's base branch, detects every service's stage
 * from its base branch, and reports it to the supervisor, which starts what moves it on.
 */

/** The base branch a service's stage is read from. */
export const SERVICE_BASE = 'main';
/** How long one service's test command may run. */
const TEST_TIMEOUT_MS = 300_000;
/** The author of a promotion's merge commit. */
const AUTHOR = { name: 'Autopack', email: 'autopack@localhost' };

export interface CoordinateFlags extends ApiFlags {
  services?: string;
  once?: boolean;
  interval?: number;
  approvalMode?: string;
}

/** What a pass found out about one service. */
export interface ServiceObservation {
  service: string;
  path: string;
  stage: ServiceStage;
  test_command?: string;
  intent?: string;
  /** Why the tests were judged as they were (the tail of a failing run), for the log. */
  note?: string;
}

/** The git repositories directly under `dir`, by name (names that are not valid ids are reported and skipped). */
export async function serviceRepositories(dir: string, warn: (line: string) => void): Promise<{ service: string; path: string }[]> {
  const out: { service: string; path: string }[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    try {
      if (!statSync(p).isDirectory() || !(await isRepository(p))) continue;
    } catch {
      continue;
    }
    if (!IdSchema.safeParse(name).success) {
      warn(`skipping ${name}: a service name is letters, digits, "_", "-" and inner dots`);
      continue;
    }
    out.push({ service: name, path: realpathSync(p) });
  }
  return out;
}

async function baseHead(repo: string): Promise<string | null> {
  try {
    return await headCommit(repo, SERVICE_BASE);
  } catch (err) {
    if (isGitError(err, 'REF_NOT_FOUND')) return null;
    throw err;
  }
}

/** `ci.command` of an autopack.yaml, or null. */
function autopackCiCommand(text: string | null): string | null {
  if (!text) return null;
  try {
    const doc = loadYaml(text) as { ci?: { command?: unknown } } | null;
    return typeof doc?.ci?.command === 'string' ? doc.ci.command : null;
  } catch {
    return null;
  }
}

/** `scripts.test` of a package.json, or null. */
function packageTestScript(text: string | null): string | null {
  if (!text) return null;
  try {
    const test = (JSON.parse(text) as { scripts?: { test?: unknown } }).scripts?.test;
    return typeof test === 'string' ? test : null;
  } catch {
    return null;
  }
}

/**
 * Detects a service's stage from its base branch, read with isomorphic-git (no git binary).
 * The test command runs in an exported copy of the tree, so the working tree is never touched.
 */
export async function observeService(repo: { service: string; path: string }, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<ServiceObservation> {
  const head = await baseHead(repo.path);
  const files = head ? await listTrackedFiles(repo.path, SERVICE_BASE) : [];
  const read = async (f: string) => (head && files.includes(f) ? await readFileAtRef(repo.path, SERVICE_BASE, f) : null);
  const readme = files.find((f) => /^readme(\.[a-z]+)?$/i.test(f));
  const intent = readmeIntent(readme ? await read(readme) : null) ?? `Build the ${repo.service} service.`;
  const command = testCommandOf({
    autopackCiCommand: autopackCiCommand((await read('autopack.yaml')) ?? (await read('autopack.yml'))),
    packageTestScript: packageTestScript(await read('package.json')),
    makefile: await read('Makefile'),
  });
  let testsPass: boolean | null = null;
  let note: string | undefined;
  const before = detectStage({ files, testsPass: true, deployed: false });
  // Only a service with code and tests needs its tests run.
  if (command && (before === 'ready_for_deploy' || before === 'production')) {
    const copy = mkdtempSync(path.join(tmpdir(), `autopack-coordinate-${repo.service}-`));
    try {
      await exportTree(repo.path, SERVICE_BASE, path.join(copy, 'tree'));
      const result = await runCi({ command, cwd: path.join(copy, 'tree'), timeoutMs: TEST_TIMEOUT_MS, env: scrubbedEnvironment(env), signal });
      testsPass = result.passed;
      if (!result.passed) note = result.timedOut ? `timed out after ${TEST_TIMEOUT_MS / 1000} s` : `exit ${result.exitCode}`;
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  }
  return {
    service: repo.service,
    path: repo.path,
    stage: detectStage({ files, testsPass, deployed: false }),
    ...(command ? { test_command: command } : {}),
    intent,
    ...(note ? { note } : {}),
  };
}

/**
 * Promotes the coordinator's runs of the known services that ended DONE_SUCCESS into their
 * base branch (a build promotes itself: promoting it again is `up_to_date`).
 */
async function promoteFinished(api: AdminApi, repos: Map<string, string>, out: CliIo): Promise<void> {
  const known = await api.call(CoordinatorServicesResponseSchema, 'GET', '/coordinator/services');
  for (const svc of known) {
    const repo = repos.get(svc.service);
    if (!repo) continue;
    for (const runId of [svc.active_run_id, svc.last_run_id]) {
      if (!runId) continue;
      const run = await api.call(RunResponseSchema, 'GET', `/runs/${encodeURIComponent(runId)}`);
      if (run.state !== 'DONE_SUCCESS') continue;
      try {
        const r = await promoteBranch(repo, { base: run.base_branch, head: run.integration_branch, author: AUTHOR });
        if (r.kind !== 'up_to_date') out.err(`autopack coordinate: ${svc.service}: promoted ${run.integration_branch} into ${run.base_branch} (${r.kind})`);
      } catch (err) {
        if (isGitError(err, 'BRANCH_NOT_FOUND') || isGitError(err, 'REF_NOT_FOUND')) continue;
        out.err(`autopack coordinate: ${svc.service}: could not promote ${run.integration_branch}: ${(err as Error).message}`);
      }
    }
  }
}

/** The table of a pass: a header and aligned columns on a terminal, one plain line per service otherwise. */
export function coordinatorTable(rows: readonly ObserveServiceResponse[], tty: boolean): string[] {
  if (!tty) return rows.map((r) => `${r.service} stage=${r.stage} since=${r.stage_since} active_run=${r.active_run_id ?? '-'}${r.started ? ' started' : ''}`);
  const head = ['SERVICE', 'STAGE', 'SINCE', 'ACTIVE RUN', ''];
  const cells = rows.map((r) => [r.service, r.stage, r.stage_since.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), r.active_run_id ?? '-', r.started ? 'started' : '']);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  return [head, ...cells].map((c) => c.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd());
}

/** One pass: promote, detect, observe. */
export async function coordinatePass(api: AdminApi, dir: string, approvalMode: BuildApprovalMode, out: CliIo, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<ObserveServiceResponse[]> {
  const repos = await serviceRepositories(dir, (l) => out.err(`autopack coordinate: ${l}`));
  await promoteFinished(api, new Map(repos.map((r) => [r.service, r.path])), out);
  const answers: ObserveServiceResponse[] = [];
  for (const repo of repos) {
    let seen: ServiceObservation;
    try {
      seen = await observeService(repo, env, signal);
    } catch (err) {
      out.err(`autopack coordinate: ${repo.service}: could not read its ${SERVICE_BASE} branch: ${(err as Error).message}`);
      continue;
    }
    const { note: _note, service, ...body } = seen;
    answers.push(await api.call(ObserveServiceResponseSchema, 'POST', `/coordinator/services/${encodeURIComponent(service)}/observe`, { ...body, approval_mode: approvalMode }));
  }
  return answers;
}

/** `autopack coordinate --services DIR [--once] [--interval S] [--approval-mode M]`. */
export async function runCoordinateCommand(flags: CoordinateFlags, env: NodeJS.ProcessEnv = process.env, io?: CliIo, tty = process.stdout.isTTY === true): Promise<number> {
  return withApi('coordinate', flags, env, io, async (api, out) => {
    const problems: string[] = [];
    const dir = flags.services?.trim();
    if (!dir) problems.push('--services: name the directory of service repositories');
    else if (!isDirectory(dir)) problems.push(`--services: ${dir} is not a directory`);
    const interval = flags.interval ?? 30;
    if (!Number.isFinite(interval) || interval <= 0) problems.push('--interval: must be a number of seconds > 0');
    const mode = (flags.approvalMode ?? 'auto') as BuildApprovalMode;
    if (!BUILD_APPROVAL_MODES.includes(mode)) problems.push(`--approval-mode: one of ${BUILD_APPROVAL_MODES.join(', ')}`);
    if (problems.length) return problems.slice(0, 1);
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      // A pass request ("assign now") newer than the last one seen cuts the wait short.
      let seenRequest = flags.once ? 0 : (await api.call(CoordinatorPassResponseSchema, 'GET', '/coordinator/pass')).request_id;
      for (;;) {
        const rows = await coordinatePass(api, dir!, mode, out, env, stop.signal);
        for (const line of coordinatorTable(rows, tty)) out.out(line);
        if (flags.once || stop.signal.aborted) return EXIT.done;
        const until = Date.now() + interval * 1000;
        while (!stop.signal.aborted && Date.now() < until) {
          await sleepUnlessStopped(Math.min(PASS_REQUEST_POLL_MS, until - Date.now()), stop.signal);
          if (stop.signal.aborted) break;
          const latest = (await api.call(CoordinatorPassResponseSchema, 'GET', '/coordinator/pass')).request_id;
          if (latest > seenRequest) {
            seenRequest = latest;
            out.err(`autopack coordinate: pass requested (#${latest}): assigning now`);
            break;
          }
        }
        if (stop.signal.aborted) return EXIT.done;
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}

/** How often a waiting coordinator looks for an "assign now" request. */
const PASS_REQUEST_POLL_MS = 1000;

function sleepUnlessStopped(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, Math.max(0, ms));
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
