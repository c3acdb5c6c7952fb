import fs, { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import git from 'isomorphic-git';
import { branchLog, createSampleRepository } from '@app/git';
import { type ScriptReplyInput, type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { DEMO_REPO_FILES } from '../../apps/cli/src/demo-fixture.js';
import { type Finished, pathWithoutGit, runCli } from '../support/processes.js';
import { http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

/** Helpers shared by the executor process tests: repositories, plans, scripted replies, runs. */

export const AUTHOR = { name: 'T', email: 't@example.com' };
export const OPENAI_KEY = 'sk-test-openai-key-4f9a1c';
export const ANTHROPIC_KEY = 'sk-ant-test-key-7d2e8b';
/** The demo repository's own test runner: prints `ok`/`FAIL <file> <name>` lines, exits 1 on a failure. */
export const CI = { command: 'node test/run.js', timeout_s: 60 };
export { DEMO_REPO_FILES };

/** What a file of executor process tests works in; everything in it goes away after the file. */
export interface Testbed {
  /** A supervisor on a scratch database (real HTTP, real PostgreSQL). */
  readonly sup: TestSupervisor;
  /** A scratch directory for repositories and executor homes. */
  readonly tmp: string;
  /** Starts a scripted LLM server that is closed with the testbed. */
  startLlm(opts: Parameters<typeof startScriptedLlmServer>[0]): Promise<ScriptedLlmServer>;
}

/** Registers the hooks that set a {@link Testbed} up before the file's tests and tear it down after. */
export function useTestbed(name: string, ...supervisor: Parameters<typeof startTestSupervisor>): Testbed {
  let sup: TestSupervisor | undefined;
  let tmp: string | undefined;
  const servers: ScriptedLlmServer[] = [];
  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), `autopack-${name}-`));
    sup = await startTestSupervisor(...supervisor);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await sup?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });
  const ready = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`the testbed's ${what} is only there inside its tests`);
    return v;
  };
  return {
    get sup() {
      return ready(sup, 'supervisor');
    },
    get tmp() {
      return ready(tmp, 'directory');
    },
    async startLlm(opts) {
      const server = await startScriptedLlmServer(opts);
      servers.push(server);
      return server;
    },
  };
}

/** Creates a repository with one commit holding `files` and, optionally, symlinks (path -> target). */
export async function createRepo(dir: string, files: Record<string, string>, symlinks: Record<string, string> = {}): Promise<void> {
  await createSampleRepository(dir, files, { author: AUTHOR, message: 'init' });
  const links = Object.keys(symlinks);
  if (links.length === 0) return;
  for (const [p, target] of Object.entries(symlinks)) symlinkSync(target, path.join(dir, p));
  await git.add({ fs, dir, filepath: links });
  await git.commit({ fs, dir, message: 'add links', author: AUTHOR });
}

/** Every entry below `dir` except `.git/objects` (bytes as base64, symlink targets), for byte-exact comparisons. */
export function treeSnapshot(dir: string, { skipGit = false } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === '.git/objects' || (skipGit && r === '.git')) continue;
      const abs = path.join(dir, r);
      const st = lstatSync(abs);
      if (st.isSymbolicLink()) out[r] = `-> ${readlinkSync(abs)}`;
      else if (st.isDirectory()) walk(r);
      else out[r] = readFileSync(abs).toString('base64');
    }
  };
  walk('');
  return out;
}

/** The environment of an executor process: no git on PATH, both keys, the scripted server. */
export function executorEnv(home: string, llm: ScriptedLlmServer, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: pathWithoutGit(),
    HOME: home,
    OPENAI_API_KEY: OPENAI_KEY,
    ANTHROPIC_API_KEY: ANTHROPIC_KEY,
    OPENAI_BASE_URL: llm.openaiBaseUrl,
    ANTHROPIC_BASE_URL: llm.anthropicBaseUrl,
    AUTOPACK_LOG_LEVEL: 'info',
    ...extra,
  };
}

/** Runs one executor process for `runId` until the run has nothing left. */
export function runExecutor(supervisorUrl: string, repo: string, runId: string, env: NodeJS.ProcessEnv): Promise<Finished> {
  return runCli(['executor', '--run-id', runId, '--workspace', repo, '--api-url', supervisorUrl, '--poll-interval', '1', '--exit-when-idle', '--executor-id', `t-${runId}`], env, 150_000).done;
}

/** The lines of an executor's stderr that are not JSON log lines: the one line that explains an exit. */
export function plainLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() && !l.startsWith('{'));
}

/** The `msg` of every JSON log line the executor wrote. */
export function logMessages(output: string): string[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { msg?: string }).msg ?? '');
}

/** A feature_scaffolding phase (3 attempts) in tier `t1`. */
export function phase(phaseId: string, phaseIndex: number, extra: Record<string, unknown> = {}) {
  return { phase_id: phaseId, phase_index: phaseIndex, tier_id: 't1', name: `Phase ${phaseId}`, description: `Work of ${phaseId}`, task_category: 'feature_scaffolding', complexity: 'low', ...extra };
}

/** A one-tier plan. */
export function plan(runId: string, phases: ReturnType<typeof phase>[], run: Record<string, unknown> = {}) {
  return { run: { run_id: runId, token_cap: 5_000_000, ...run }, tiers: [{ tier_id: 't1', tier_index: 0, name: 'Tier one' }], phases };
}

/** Starts a run; fails the test unless the supervisor accepts it. */
export async function startRun(supervisorUrl: string, body: unknown, apiKey?: string): Promise<void> {
  const res = await http(supervisorUrl, 'POST', '/runs/start', body, apiKey ? { 'x-api-key': apiKey } : {});
  if (res.status !== 201) throw new Error(`POST /runs/start: ${res.status} ${JSON.stringify(res.body)}`);
}

/** `GET /runs/{id}`. */
export async function getRun(supervisorUrl: string, runId: string): Promise<any> {
  return (await http(supervisorUrl, 'GET', `/runs/${runId}`)).body;
}

const USAGE = { input_tokens: 1000, output_tokens: 100 };

/** A Builder reply for the next attempt of `phaseId` (replies of a phase are used in script order). */
export function builderReply(phaseId: string, args: { summary?: string; edits: unknown[] }, extra: Partial<ScriptReplyInput> = {}): ScriptReplyInput {
  return { tool: 'submit_changes', match: `# Phase ${phaseId}:`, arguments: { summary: args.summary ?? `work on ${phaseId}`, edits: args.edits }, usage: USAGE, ...extra };
}

/** An approving review, `times` times. */
export function approveReply(times = 1, extra: Partial<ScriptReplyInput> = {}): ScriptReplyInput {
  return { tool: 'submit_review', arguments: { approved: true, summary: 'Looks right.', confidence: 'high', issues: [] }, usage: USAGE, times, ...extra };
}

/** The Builder prompts the scripted server received for `phaseId`, in order. */
export function builderPrompts(llm: ScriptedLlmServer, phaseId: string): string[] {
  return llm.requestsFor('submit_changes').filter((r) => r.text.includes(`# Phase ${phaseId}:`)).map((r) => r.text);
}

/** Phase commits on the run's integration branch, oldest first, as `[phase, attempt]`. */
export async function phaseCommits(repo: string, runId: string): Promise<[string, string][]> {
  const log = await branchLog(repo, `autonomous/${runId}`, { depth: 50 });
  return log
    .filter((c) => c.trailers['Autopack-Run'] === runId)
    .reverse()
    .map((c) => [c.trailers['Autopack-Phase'], c.trailers['Autopack-Attempt']]);
}
