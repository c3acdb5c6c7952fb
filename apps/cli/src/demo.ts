import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildStatusResponse, RunResponse } from '@app/contracts';
import { branchLog, createSampleRepository, initRepository } from '@app/git';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { embeddedPostgresPlace, findFreePort } from '../../supervisor/src/database/embedded-postgres.js';
import { type DemoDeployer, startDemoDeployer } from './demo-deployer.js';
import { DROPLET_INTENT, dropletHooks, dropletScript } from './demo-droplet.js';
import { DEMO_REPO_FILES, DEMO_SCRIPT, demoPlan } from './demo-fixture.js';
import { type DemoRegistry, startDemoRegistry } from './demo-registry.js';
import { DEMO_SERVICE_NAME } from './demo-service-files.js';

const BIN = fileURLToPath(new URL('../../../../bin/autopack.js', import.meta.url));
const say = (line = '') => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

function startChild(args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });
}

/** Prints `git fsck --strict` of the repository when a git binary exists; false only when it found a problem. */
function printFsck(repo: string): boolean {
  const fsck = spawnSync('git', ['-C', repo, 'fsck', '--strict'], { encoding: 'utf8' });
  if (fsck.error) {
    say('\ngit fsck: skipped (no git binary on PATH; Autopack itself never needs one)');
    return true;
  }
  const ok = fsck.status === 0;
  say(`\ngit fsck --strict: ${ok ? 'clean' : `FAILED\n${fsck.stdout}${fsck.stderr}`}`);
  return ok;
}

function tail(file: string, lines = 15): string {
  return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '(no log)';
}

/** What both demos run against: the repository, the started supervisor, the LLM side and the logs. */
interface DemoStack {
  dir: string;
  stamp: string;
  live: boolean;
  repo: string;
  /** The supervisor's base URL. */
  api: string;
  supervisorLog: string;
  executorLog: string;
  /** The scripted LLM server's request record (offline only). */
  llmRecord?: string;
  /** Starts an executor process with the demo's environment, its output going to `executorLog`. */
  startExecutor(args: string[]): ChildProcess;
  /** The build to cancel should the demo be interrupted before it ends (undefined once it has). */
  activeBuild?: string;
  /** Set on SIGINT/SIGTERM: the flows stop printing, everything is being stopped. */
  interrupted?: boolean;
}

/** The droplet demo's local deploy target and registry, in this process. */
interface DropletTargets {
  deployer: DemoDeployer;
  registry: DemoRegistry;
  registryFile: string;
  targetsLog: string;
}

/**
 * `npm run demo`: a droplet build from an intent, end to end, in `auto` mode. Creates an
 * empty repository, starts the supervisor (embedded PostgreSQL) and an executor as separate
 * processes, the demo deployer and registry in this process, plays the LLM side from the
 * bundled script (or calls real providers with --live), follows the build's six steps, then
 * shows the deployed service answering, the registry entry, the branch log and where to
 * look. With `plan`, the plan-file demo instead: a multi-phase run on a sample repository.
 */
export async function runDemo(opts: { live: boolean; plan?: boolean; dir?: string }): Promise<number> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const dir = path.resolve(opts.dir ?? path.join('.autopack', 'demo', stamp));
  const repo = path.join(dir, 'repo');
  const plan = opts.plan ?? false;
  mkdirSync(dir, { recursive: true });
  const where = opts.live ? 'live providers' : 'offline, scripted LLM server';
  say(plan ? `Autopack demo (${where})` : `Autopack demo: a droplet build from an intent (${where})`);
  say(`  working in ${dir}`);

  if (opts.live && !process.env.OPENAI_API_KEY && !process.env.ANTHROPIC_API_KEY) {
    process.stderr.write('autopack demo --live needs OPENAI_API_KEY or ANTHROPIC_API_KEY in the environment\n');
    return 1;
  }

  if (plan) {
    await createSampleRepository(repo, DEMO_REPO_FILES, { author: { name: 'Autopack Demo', email: 'demo@autopack.local' }, message: 'Initial commit: demo-calc' });
    say(`  sample repository: ${repo} (branch main)`);
  } else {
    await initRepository(repo, { defaultBranch: 'main' });
    say(`  empty repository: ${repo} (branch main, no commit yet)`);
  }

  let llm: ScriptedLlmServer | undefined;
  let targets: DropletTargets | undefined;
  let supervisor: ChildProcess | undefined;
  let executor: ChildProcess | undefined;
  let code: number;
  let stopping: Promise<void> | undefined;
  let stack: DemoStack | undefined;
  // Stops everything the demo started, once: the deployed services run in process groups of
  // their own, so an interrupted demo stops them too rather than leaving them behind.
  const stopAll = () =>
    (stopping ??= (async () => {
      // An interrupted build is cancelled, so that it does not hold one of the supervisor's
      // build slots in the demo's database. Then the executor, while the supervisor still
      // answers: it hands its lease back.
      const unfinished = stack?.activeBuild;
      if (stack && unfinished) {
        const cancel = await fetch(`${stack.api}/executor/builds/${unfinished}/cancel`, { method: 'POST', signal: AbortSignal.timeout(5000) }).catch(() => undefined);
        process.stderr.write(`autopack demo: build ${unfinished} ${cancel?.ok ? 'cancelled' : `could not be cancelled (${cancel ? `HTTP ${cancel.status}` : 'no answer'})`}\n`);
      }
      const exec = executor as ChildProcess | undefined;
      if (exec && exec.exitCode === null) {
        exec.kill('SIGTERM');
        if ((await Promise.race([exited(exec), sleep(10_000).then(() => 'late' as const)])) === 'late') exec.kill('SIGKILL');
      }
      if (supervisor) {
        if (supervisor.exitCode === null) supervisor.kill('SIGTERM');
        await Promise.race([exited(supervisor), sleep(10_000)]);
      }
      await llm?.close();
      await targets?.deployer.close();
      await targets?.registry.close();
    })());
  const onSignal = (signal: NodeJS.Signals) => {
    if (stack) stack.interrupted = true;
    process.stderr.write(`autopack demo: ${signal}, stopping what the demo started\n`);
    void stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  // embedded-postgres (imported for embeddedPostgresPlace) hooks SIGINT/SIGTERM with
  // async-exit-hook, which ends the process a few ticks later: before the deployed services
  // (process groups of their own) could be stopped. This process runs no PostgreSQL (the
  // supervisor does), so its hooks step aside while the demo runs and come back after.
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const saved = signals.map((sig) => [sig, process.listeners(sig)] as const);
  for (const sig of signals) {
    process.removeAllListeners(sig);
    process.once(sig, onSignal);
  }
  const childEnv: NodeJS.ProcessEnv = { ...process.env, AUTOPACK_LOG_LEVEL: process.env.AUTOPACK_LOG_LEVEL ?? 'info' };
  // The demo always uses the embedded PostgreSQL under .autopack/ (no database to install).
  delete childEnv.DATABASE_URL;
  delete childEnv.AUTOPACK_API_KEY;
  try {
    const llmRecord = opts.live ? undefined : path.join(dir, 'llm-requests.jsonl');
    if (llmRecord) {
      llm = await startScriptedLlmServer({ script: plan ? DEMO_SCRIPT : dropletScript(), recordFile: llmRecord });
      Object.assign(childEnv, {
        OPENAI_API_KEY: 'scripted-demo-key',
        ANTHROPIC_API_KEY: 'scripted-demo-key',
        OPENAI_BASE_URL: llm.openaiBaseUrl,
        ANTHROPIC_BASE_URL: llm.anthropicBaseUrl,
      });
      say(`  scripted LLM server: ${llm.url} (${plan ? 'OpenAI builder, Anthropic auditor' : 'planner, builder and auditor replies of the droplet build'})`);
    }
    if (!plan) {
      const targetsLog = path.join(dir, 'deployer-registry.log');
      const log = (line: string) => appendFileSync(targetsLog, `${new Date().toISOString()} ${line}\n`);
      const registryFile = path.join(dir, 'registry.json');
      const deployer = await startDemoDeployer({ root: path.join(dir, 'deployments'), repos: [repo], log });
      const registry = await startDemoRegistry({ file: registryFile, log }).catch(async (err: unknown) => {
        await deployer.close();
        throw err;
      });
      targets = { deployer, registry, registryFile, targetsLog };
      say(`  demo deployer: ${deployer.url} (runs the promoted commit as a process; deployments under ${path.join(dir, 'deployments')})`);
      say(`  demo registry: ${registry.url} (entries in ${registryFile})`);
    }

    const port = await findFreePort();
    const api = `http://127.0.0.1:${port}`;
    const supervisorLog = path.join(dir, 'supervisor.log');
    const executorLog = path.join(dir, 'executor.log');
    const sup = startChild(['supervisor'], { ...childEnv, PORT: String(port), HOST: '127.0.0.1' }, supervisorLog);
    supervisor = sup;
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (sup.exitCode !== null) throw new Error(`the supervisor exited (code ${sup.exitCode}):\n${tail(supervisorLog)}`);
      const health = await getJson(`${api}/health`).catch(() => undefined);
      if (health?.status === 200) break;
      if (Date.now() > deadline) throw new Error(`the supervisor did not become healthy:\n${tail(supervisorLog)}`);
      await sleep(250);
    }
    // Where the supervisor put its cluster: .autopack/pg, or a place the server can use (one line).
    const pgDir = path.join(process.env.AUTOPACK_DATA_DIR || '.autopack', 'pg');
    const pgPlace = embeddedPostgresPlace(pgDir);
    say(`  supervisor: ${api} (embedded PostgreSQL${pgPlace.notice ? '' : `, data in ${pgDir}`})`);
    if (pgPlace.notice) say(`  ${pgPlace.notice}`);

    stack = {
      dir,
      stamp,
      live: opts.live,
      repo,
      api,
      supervisorLog,
      executorLog,
      llmRecord,
      startExecutor: (args) => (executor = startChild(args, childEnv, executorLog)),
    };
    code = targets ? await dropletDemo(stack, targets) : await planDemo(stack);
  } catch (err) {
    process.stderr.write(`autopack demo: ${(err as Error).message}\n`);
    code = 1;
  } finally {
    await stopAll();
    for (const [sig, listeners] of saved) {
      process.off(sig, onSignal);
      for (const l of listeners) process.on(sig, l);
    }
  }
  return code;
}

const BUILD_END = ['completed', 'failed', 'cancelled'];

/** A short view of an HTTP answer's body. */
function shortBody(text: string, max = 200): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max)}...` : one;
}

async function probe(url: string): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, body: shortBody(await res.text()) };
  } catch (err) {
    return { status: 0, body: `unreachable: ${(err as Error).message}` };
  }
}

async function printBranch(repo: string, branch: string): Promise<void> {
  const log = await branchLog(repo, branch, { depth: 20 }).catch(() => undefined);
  say(`  ${branch} (newest first):`);
  if (!log?.length) say('    (no commits)');
  for (const c of log ?? []) {
    const phase = c.trailers['Autopack-Phase'];
    say(`    ${c.sha.slice(0, 10)} ${c.message.split('\n')[0]}${phase ? `  [${phase}]` : ''}`);
  }
}

/** `npm run demo`: the droplet build (see {@link runDemo}). */
async function dropletDemo(s: DemoStack, t: DropletTargets): Promise<number> {
  const buildId = `demo-${s.stamp}`;
  const body = {
    architect_intent: DROPLET_INTENT,
    droplet_id: buildId,
    droplet_name: DEMO_SERVICE_NAME,
    approval_mode: 'auto',
    ...dropletHooks(t, s.repo, { dropletName: DEMO_SERVICE_NAME }),
  };
  const started = await fetch(`${s.api}/executor/build-droplet`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (started.status !== 202) throw new Error(`POST /executor/build-droplet answered ${started.status}: ${await started.text()}`);
  const accepted = (await started.json()) as { build_id: string; status: string };
  s.activeBuild = buildId;
  say(`  build ${accepted.build_id}: ${accepted.status}, approval mode auto, from the intent:`);
  say(`    "${DROPLET_INTENT}"`);
  say('');

  const executor = s.startExecutor(['executor', '--run-id', buildId, '--workspace', s.repo, '--api-url', s.api, '--poll-interval', '1', '--executor-id', 'demo-executor']);
  const seen = new Map<number, string>();
  let lastStatus = accepted.status;
  let build: BuildStatusResponse | undefined;
  let executorGoneAt: number | undefined;
  let saidQueued = false;
  const buildDeadline = Date.now() + (s.live ? 30 * 60_000 : 5 * 60_000);
  for (;;) {
    const r = await getJson(`${s.api}/executor/builds/${buildId}/status`).catch(() => undefined);
    if (r?.status === 200) {
      build = r.body as BuildStatusResponse;
      for (const p of build.phases) {
        if (seen.get(p.step) === p.status) continue;
        seen.set(p.step, p.status);
        if (p.status !== 'pending') say(`  step ${p.step}/${build.phases.length} ${p.name.padEnd(16)} ${p.status.padEnd(10)} ${String(build.progress_percent).padStart(3)}%`);
      }
      if (build.status !== lastStatus) {
        lastStatus = build.status;
        if (!BUILD_END.includes(build.status)) say(`  build ${build.status}${build.checkpoint ? ` at ${build.checkpoint}` : ''}`);
      }
      if (BUILD_END.includes(build.status)) break;
      if (build.status === 'queued' && !saidQueued) {
        saidQueued = true;
        say(`  build queued: the supervisor runs a few builds at once (AUTOPACK_MAX_CONCURRENT_BUILDS); see the others with: curl -s '${s.api}/executor/builds?status=running'`);
      }
    }
    // The executor ends with the run; the supervisor may still be finishing the last steps.
    if (s.interrupted) return 1;
    if (executor.exitCode !== null) {
      executorGoneAt ??= Date.now();
      if (executor.exitCode !== 0 || Date.now() - executorGoneAt > 60_000) break;
    }
    if (Date.now() > buildDeadline) throw new Error(`the build did not finish in time; the executor log ends with:\n${tail(s.executorLog)}`);
    await sleep(300);
  }
  const execCode = await Promise.race([exited(executor), sleep(15_000).then(() => undefined)]);
  if (s.interrupted) return 1;
  const final = await getJson(`${s.api}/executor/builds/${buildId}/status`).catch(() => undefined);
  if (final?.status === 200) build = final.body as BuildStatusResponse;
  if (!build) throw new Error(`no status of build ${buildId}; the supervisor log ends with:\n${tail(s.supervisorLog)}`);
  if (BUILD_END.includes(build.status)) s.activeBuild = undefined;

  say('');
  say(`Build ${build.build_id}: ${build.status}, ${build.progress_percent}%${build.error ? ` (${build.error})` : ''}${build.status !== 'completed' && build.current_phase ? ` at ${build.current_phase}` : ''}`);
  if (execCode !== 0) say(`The executor ${execCode === undefined ? 'is still running' : `exited with code ${execCode}`}; its log ends with:\n${tail(s.executorLog)}\n`);

  let healthy = false;
  const url = build.deployment_url;
  if (build.status === 'completed' && url) {
    const health = await probe(`${url}/health`);
    const root = await probe(`${url}/`);
    healthy = health.status === 200;
    say(`  deployment URL  ${url}`);
    say(`  GET /health     ${health.status || 'no answer'} ${health.body}`);
    say(`  GET /           ${root.status || 'no answer'} ${root.body}`);
  } else if (build.status === 'completed') {
    say('  no deployment URL in the build status');
  }

  const entry = t.registry.entries().find((e) => e.build_id === buildId);
  say(`\nRegistry entry (${t.registryFile}):`);
  say(entry ? JSON.stringify(entry, null, 2).replace(/^/gm, '  ') : '  (none)');

  say('\nBranch log:');
  await printBranch(s.repo, `autonomous/${buildId}`);
  await printBranch(s.repo, 'main');

  const fsckOk = printFsck(s.repo);

  const deployment = t.deployer.deployments().find((d) => d.build_id === buildId && d.current);
  say('\nWhere to look:');
  say(`  repository       ${s.repo}  (git -C ${s.repo} log --stat main; SPEC.md is at its root)`);
  say(`  build status     curl -s ${s.api}/executor/builds/${buildId}/status  (while the demo runs)`);
  say(`  executor log     ${s.executorLog}`);
  say(`  supervisor log   ${s.supervisorLog}`);
  say(`  deployer log     ${t.targetsLog}  (the deployer's and registry's own errors, if any)`);
  if (deployment) {
    say(`  the service      ${deployment.dir}  (the promoted commit, exported)`);
    say(`  service output   ${deployment.log_file}`);
  }
  if (s.llmRecord) say(`  LLM requests     ${s.llmRecord}  (every prompt the executor sent)`);

  const success = build.status === 'completed' && healthy && fsckOk;
  if (success) {
    say(`\nDemo finished: build completed, deployed at ${url}, health check 200.`);
  } else {
    const why = build.status !== 'completed' ? '' : !healthy ? ', but the deployed service did not answer 200 on /health' : ', but git fsck found problems';
    say(`\nDemo did not succeed: build ${build.status}${why}.`);
  }
  say('The demo now stops the deployed service, the deployer, the registry and the supervisor.');
  if (deployment) say(`To run the service again: cd ${deployment.dir} && PORT=3000 node server.js`);
  return success ? 0 : 1;
}

/**
 * `npm run demo -- --plan`: a real multi-phase run from a plan file on a sample repository
 * (2 tiers, 4 phases); prints the summary, the integration branch and where to look.
 */
async function planDemo(s: DemoStack): Promise<number> {
  const runId = `demo-${s.stamp}`;
  const started = await fetch(`${s.api}/runs/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(demoPlan(runId)) });
  if (started.status !== 201) throw new Error(`POST /runs/start answered ${started.status}: ${await started.text()}`);
  say(`  run ${runId}: 2 tiers, 4 phases`);
  say('');

  const executor = s.startExecutor(
    ['executor', '--run-id', runId, '--workspace', s.repo, '--api-url', s.api, '--poll-interval', '1', '--exit-when-idle', '--executor-id', 'demo-executor'],
  );
  const seen = new Map<string, string>();
  let run: RunResponse | undefined;
  const runDeadline = Date.now() + (s.live ? 30 * 60_000 : 5 * 60_000);
  for (;;) {
    const r = await getJson(`${s.api}/runs/${runId}`).catch(() => undefined);
    if (r?.status === 200) {
      run = r.body as RunResponse;
      for (const p of run.phases) {
        const key = `${p.state}#${p.attempts_used}`;
        if (seen.get(p.phase_id) !== key) {
          seen.set(p.phase_id, key);
          if (p.state !== 'QUEUED' || p.attempts_used > 0) {
            const why = p.state === 'QUEUED' && p.last_failure_reason ? ` (retrying: ${p.last_failure_reason})` : '';
            say(`  [${p.tier_id}] ${p.phase_id.padEnd(14)} ${p.state.padEnd(10)} attempt ${p.attempts_used}/${p.max_attempts}${why}`);
          }
        }
      }
    }
    if (executor.exitCode !== null) break;
    if (Date.now() > runDeadline) throw new Error('the run did not finish in time');
    await sleep(300);
  }
  const execCode = await exited(executor);
  run = (await getJson(`${s.api}/runs/${runId}`)).body as RunResponse;

  say('');
  say(`Run ${run.run_id}: ${run.state}${run.failure_reason ? ` (${run.failure_reason})` : ''}`);
  say(`  tokens used: ${run.tokens_used} of ${run.token_cap}; CI runs: ${run.ci_runs_used}; minor issues: ${run.minor_issues_count}; major: ${run.major_issues_count}`);
  say(`  promotion eligible: ${run.promotion_eligible_to_main}`);
  for (const t of run.tiers) {
    say(`  tier ${t.tier_id} (${t.name}): ${t.state}, ${t.cleanliness}`);
    for (const p of t.phases) {
      const earlier = p.attempts_used > 1 && p.last_failure_reason ? `  (earlier attempt: ${p.last_failure_reason})` : '';
      say(`    ${p.phase_id.padEnd(14)} ${p.state.padEnd(9)} attempts ${p.attempts_used}  commit ${p.commit_sha?.slice(0, 10) ?? '-'}${earlier}`);
    }
  }
  say('');
  const branch = `autonomous/${runId}`;
  const log = await branchLog(s.repo, branch, { depth: 20 }).catch(() => []);
  if (execCode !== 0) say(`The executor exited with code ${execCode}; its log ends with:\n${tail(s.executorLog)}\n`);
  say(`Integration branch ${branch} (newest first):`);
  for (const c of log) say(`  ${c.sha.slice(0, 10)} ${c.message.split('\n')[0]}`);
  const phaseCommits = log.filter((c) => c.trailers['Autopack-Run'] === runId).length;

  const fsckOk = printFsck(s.repo);

  say('\nWhere to look:');
  say(`  repository      git -C ${s.repo} log --stat ${branch}`);
  say(`  executor log    ${s.executorLog}`);
  say(`  supervisor log  ${s.supervisorLog}`);
  if (s.llmRecord) say(`  LLM requests    ${s.llmRecord} (every prompt the executor sent)`);
  say(`  the run again   npm run supervisor   # then: curl -s http://127.0.0.1:8000/runs/${runId}`);

  const success = run.state === 'DONE_SUCCESS' && execCode === 0 && phaseCommits === run.phases.length && fsckOk;
  say(`\n${success ? 'Demo finished: DONE_SUCCESS' : 'Demo did not succeed'}: ${phaseCommits} commits for ${run.phases.length} phases, executor exit code ${execCode}.`);
  return success ? 0 : 1;
}
