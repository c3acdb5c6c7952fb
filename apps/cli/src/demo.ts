import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunResponse } from '@app/contracts';
import { branchLog, createSampleRepository } from '@app/git';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { embeddedPostgresPlace, findFreePort } from '../../supervisor/src/database/embedded-postgres.js';
import { DEMO_REPO_FILES, DEMO_SCRIPT, demoPlan } from './demo-fixture.js';

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

function tail(file: string, lines = 15): string {
  return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '(no log)';
}

/**
 * `npm run demo`: a real multi-phase run end to end. Creates a sample repository, starts
 * the supervisor (embedded PostgreSQL) and an executor as separate processes, plays the
 * LLM side from the bundled script (or calls real providers with --live), waits for the
 * run to finish, and prints the summary, the integration branch and where to look.
 */
export async function runDemo(opts: { live: boolean; dir?: string }): Promise<number> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const dir = path.resolve(opts.dir ?? path.join('.autopack', 'demo', stamp));
  const repo = path.join(dir, 'repo');
  const runId = `demo-${stamp}`;
  mkdirSync(dir, { recursive: true });
  say(`Autopack demo (${opts.live ? 'live providers' : 'offline, scripted LLM server'})`);
  say(`  working in ${dir}`);

  if (opts.live && !process.env.OPENAI_API_KEY && !process.env.ANTHROPIC_API_KEY) {
    process.stderr.write('autopack demo --live needs OPENAI_API_KEY or ANTHROPIC_API_KEY in the environment\n');
    return 1;
  }

  await createSampleRepository(repo, DEMO_REPO_FILES, { author: { name: 'Autopack Demo', email: 'demo@autopack.local' }, message: 'Initial commit: demo-calc' });
  say(`  sample repository: ${repo} (branch main)`);

  let llm: ScriptedLlmServer | undefined;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, AUTOPACK_LOG_LEVEL: process.env.AUTOPACK_LOG_LEVEL ?? 'info' };
  // The demo always uses the embedded PostgreSQL under .autopack/ (no database to install).
  delete childEnv.DATABASE_URL;
  delete childEnv.AUTOPACK_API_KEY;
  if (!opts.live) {
    llm = await startScriptedLlmServer({ script: DEMO_SCRIPT, recordFile: path.join(dir, 'llm-requests.jsonl') });
    Object.assign(childEnv, {
      OPENAI_API_KEY: 'scripted-demo-key',
      ANTHROPIC_API_KEY: 'scripted-demo-key',
      OPENAI_BASE_URL: llm.openaiBaseUrl,
      ANTHROPIC_BASE_URL: llm.anthropicBaseUrl,
    });
    say(`  scripted LLM server: ${llm.url} (OpenAI builder, Anthropic auditor)`);
  }

  const port = await findFreePort();
  const api = `http://127.0.0.1:${port}`;
  const supervisorLog = path.join(dir, 'supervisor.log');
  const executorLog = path.join(dir, 'executor.log');
  const supervisor = startChild(['supervisor'], { ...childEnv, PORT: String(port), HOST: '127.0.0.1' }, supervisorLog);
  let executor: ChildProcess | undefined;
  let code: number;
  try {
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (supervisor.exitCode !== null) throw new Error(`the supervisor exited (code ${supervisor.exitCode}):\n${tail(supervisorLog)}`);
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

    const started = await fetch(`${api}/runs/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(demoPlan(runId)) });
    if (started.status !== 201) throw new Error(`POST /runs/start answered ${started.status}: ${await started.text()}`);
    say(`  run ${runId}: 2 tiers, 4 phases`);
    say('');

    executor = startChild(
      ['executor', '--run-id', runId, '--workspace', repo, '--api-url', api, '--poll-interval', '1', '--exit-when-idle', '--executor-id', 'demo-executor'],
      childEnv,
      executorLog,
    );
    const seen = new Map<string, string>();
    let run: RunResponse | undefined;
    const runDeadline = Date.now() + (opts.live ? 30 * 60_000 : 5 * 60_000);
    for (;;) {
      const r = await getJson(`${api}/runs/${runId}`).catch(() => undefined);
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
    run = (await getJson(`${api}/runs/${runId}`)).body as RunResponse;

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
    const log = await branchLog(repo, branch, { depth: 20 }).catch(() => []);
    if (execCode !== 0) say(`The executor exited with code ${execCode}; its log ends with:\n${tail(executorLog)}\n`);
    say(`Integration branch ${branch} (newest first):`);
    for (const c of log) say(`  ${c.sha.slice(0, 10)} ${c.message.split('\n')[0]}`);
    const phaseCommits = log.filter((c) => c.trailers['Autopack-Run'] === runId).length;

    let fsckOk = true;
    const fsck = spawnSync('git', ['-C', repo, 'fsck', '--strict'], { encoding: 'utf8' });
    if (fsck.error) say('\ngit fsck: skipped (no git binary on PATH; Autopack itself never needs one)');
    else {
      fsckOk = fsck.status === 0;
      say(`\ngit fsck --strict: ${fsckOk ? 'clean' : `FAILED\n${fsck.stdout}${fsck.stderr}`}`);
    }

    say('\nWhere to look:');
    say(`  repository      git -C ${repo} log --stat ${branch}`);
    say(`  executor log    ${executorLog}`);
    say(`  supervisor log  ${supervisorLog}`);
    if (llm) say(`  LLM requests    ${path.join(dir, 'llm-requests.jsonl')} (every prompt the executor sent)`);
    say(`  the run again   npm run supervisor   # then: curl -s http://127.0.0.1:8000/runs/${runId}`);

    const success = run.state === 'DONE_SUCCESS' && execCode === 0 && phaseCommits === run.phases.length && fsckOk;
    say(`\n${success ? 'Demo finished: DONE_SUCCESS' : 'Demo did not succeed'}: ${phaseCommits} commits for ${run.phases.length} phases, executor exit code ${execCode}.`);
    code = success ? 0 : 1;
  } catch (err) {
    process.stderr.write(`autopack demo: ${(err as Error).message}\n`);
    code = 1;
  } finally {
    if (executor && executor.exitCode === null) executor.kill('SIGTERM');
    supervisor.kill('SIGTERM');
    await Promise.race([exited(supervisor), sleep(10_000)]);
    await llm?.close();
  }
  return code;
}
