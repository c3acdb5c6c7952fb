/**
 * The executor as a process: the real built CLI (dist/) spawned against a real supervisor (in
 * this process, on DATABASE_URL or the embedded PostgreSQL) and the bundled scripted LLM server,
 * on a small repository. Each phase is a whole attempt: builder call, governed apply, CI,
 * auditor call, commit, reports. Baselines: the LLM time the executor waited for, a bare Node
 * process doing one fetch, and one executor alone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { INestApplication } from '@nestjs/common';
import type { RunStartRequest } from '@app/contracts';
import { createSampleRepository } from '@app/git';
import { type LlmScriptInput, type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { createSupervisorApp } from '../apps/supervisor/src/bootstrap.js';
import { loadSupervisorConfig } from '../apps/supervisor/src/config.js';
import { scratchDatabase } from './database.js';
import { type BenchOptions, type BenchRow, median } from './rows.js';

const CLI = path.resolve('bin/autopack.js');
const MiB = 1024 * 1024;
/** BENCH_LOG_DIR=<dir> keeps each executor's log there as <run id>.log; BENCH_PHASES=<n> sets the phases of the latency run. */
/** Extra node flags for the spawned processes, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile them. */
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** A small repository: a package with a few modules the phases add to. */
const REPO_FILES: Record<string, string> = {
  'package.json': `${JSON.stringify({ name: 'bench-repo', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
  'README.md': '# bench-repo\n\nModules added one phase at a time.\n',
  'src/index.js': "export const name = 'bench-repo';\n",
  ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`lib/util${i}.js`, `/** Utility ${i}. */\nexport function util${i}(x) {\n  return x + ${i};\n}\n`])),
};

/** What a phase writes: a script module (the governed apply parses it) or a document. */
type PhaseFile = 'js' | 'md';

const fileOf = (phaseId: string, kind: PhaseFile) => (kind === 'js' ? `src/${phaseId}.js` : `docs/${phaseId}.md`);

function plan(runId: string, phases: number, kind: PhaseFile): RunStartRequest {
  return {
    run: { run_id: runId, token_cap: 50_000_000, max_duration_minutes: 30 },
    tiers: [{ tier_id: 't1', tier_index: 0, name: 'Only tier' }],
    phases: Array.from({ length: phases }, (_, i) => {
      const id = `${runId}-p${i + 1}`;
      return {
        phase_id: id,
        phase_index: i,
        tier_id: 't1',
        name: `Phase ${i + 1}`,
        description: `Add ${fileOf(id, kind)}.`,
        task_category: 'feature_scaffolding',
        complexity: 'low',
        scope: { paths: [fileOf(id, kind)], read_only_context: ['src/index.js'] },
        acceptance_criteria: ['the file exists'],
        ci: { command: 'test -f package.json', timeout_s: 60 },
      };
    }),
  } as RunStartRequest;
}

/** One builder and one auditor reply per phase, each answered after `delayMs`. */
function script(runIds: string[], phases: number, kind: PhaseFile, delayMs: number): LlmScriptInput {
  const replies: LlmScriptInput['replies'] = [];
  for (const runId of runIds) {
    for (let i = 1; i <= phases; i++) {
      const id = `${runId}-p${i}`;
      const content = kind === 'js' ? `/** Phase ${i}. */\nexport function phase${i}(x) {\n  return x * ${i};\n}\n` : `# Phase ${i}\n\nNotes of phase ${i}.\n`;
      replies.push(
        {
          tool: 'submit_changes',
          match: `# Phase ${id}:`,
          arguments: { summary: `Add ${fileOf(id, kind)}`, edits: [{ path: fileOf(id, kind), action: 'create', content }] },
          usage: { input_tokens: 2000, output_tokens: 200 },
          delay_ms: delayMs,
        },
        {
          tool: 'submit_review',
          match: `# Phase ${id}:`,
          arguments: { approved: true, summary: 'Looks right.', confidence: 'high', issues: [] },
          usage: { input_tokens: 1400, output_tokens: 100 },
          delay_ms: delayMs,
        },
      );
    }
  }
  return { replies };
}

/** Peak RSS of a running process so far (VmHWM), in bytes; undefined once it is gone. */
function peakRss(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds of a running process (user + system), and of its children it waited for (CI). */
function cpuOf(pid: number): { own: number; children: number } | undefined {
  try {
    // Fields after the command name (which may hold spaces): state is field 3, utime 14 ... cstime 17.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const tick = 100; // USER_HZ
    return { own: (Number(f[11]) + Number(f[12])) / tick, children: (Number(f[13]) + Number(f[14])) / tick };
  } catch {
    return undefined;
  }
}

interface Finished {
  code: number | null;
  /** CPU time of the executor itself (last sample before exit), in ms. */
  cpuMs: number;
  /** CPU time of the executor when it logged "executor started" (its start-up), in ms. */
  startCpuMs: number;
  /** CPU time of the processes it spawned and waited for (CI commands), in ms. */
  childCpuMs: number;
  /** Spawn to exit. */
  wallMs: number;
  /** Spawn to the "executor started" log line. */
  startMs: number;
  /** The "run is terminal" log line to exit. */
  exitTailMs: number;
  peakRssBytes: number;
  stderr: string;
}

/**
 * Spawns `node <cli> <args>` and follows it to its exit: wall time, peak RSS (VmHWM sampled every
 * 20 ms), and, from its JSON log lines, when it started working and when it learnt the run was over.
 */
function spawnTimed(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 180_000): { child: ChildProcess; done: Promise<Finished> } {
  const t0 = performance.now();
  const epoch0 = Date.now();
  const child = spawn(process.execPath, [...NODE_ARGS, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let startedAt: number | undefined;
  let terminalAt: number | undefined;
  let startCpu = Number.NaN;
  let pending = '';
  child.stderr!.on('data', (d: Buffer) => {
    const text = d.toString();
    stderr += text;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        const rec = JSON.parse(line) as { msg?: string; time?: string | number };
        const at = typeof rec.time === 'string' ? Date.parse(rec.time) : rec.time;
        if (rec.msg === 'executor started' && startedAt === undefined) {
          startedAt = at;
          startCpu = child.pid !== undefined ? (cpuOf(child.pid)?.own ?? 0) * 1000 : 0;
        }
        if (rec.msg === 'run is terminal') terminalAt = at;
      } catch {
        // not a log line
      }
    }
  });
  let peak = 0;
  let cpu = { own: 0, children: 0 };
  const sample = () => {
    const p = child.pid !== undefined ? peakRss(child.pid) : undefined;
    if (p !== undefined) peak = Math.max(peak, p);
    const c = child.pid !== undefined ? cpuOf(child.pid) : undefined;
    if (c !== undefined) cpu = c;
  };
  const sampler = setInterval(sample, 20);
  const done = new Promise<Finished>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let wallMs = 0;
    let exitEpoch = 0;
    child.on('exit', () => {
      wallMs = performance.now() - t0;
      exitEpoch = Date.now();
      clearTimeout(timer);
      clearInterval(sampler);
    });
    // Read the times once every log line is in (stderr may drain after the exit).
    child.on('close', (code) => {
      resolve({
        code,
        wallMs,
        cpuMs: cpu.own * 1000,
        startCpuMs: startCpu,
        childCpuMs: cpu.children * 1000,
        startMs: startedAt !== undefined ? startedAt - epoch0 : Number.NaN,
        exitTailMs: terminalAt !== undefined ? exitEpoch - terminalAt : Number.NaN,
        peakRssBytes: peak,
        stderr,
      });
    });
  });
  return { child, done };
}

async function post(base: string, route: string, body: unknown): Promise<number> {
  const res = await fetch(base + route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await res.text();
  return res.status;
}

interface Env {
  supervisorUrl: string;
  llm: ScriptedLlmServer;
  tmp: string;
}

/** Runs `runs` runs of `phases` phases, one executor process each, all at once. */
async function executorRuns(env: Env, tag: string, runs: number, phases: number, kind: PhaseFile, delayMs: number): Promise<{ wallMs: number; llmMs: number; results: Finished[] }> {
  const runIds = Array.from({ length: runs }, (_, i) => `${tag}-${i}`);
  env.llm.setScript(script(runIds, phases, kind, delayMs));
  const before = env.llm.requests.length;
  const repos: string[] = [];
  for (const runId of runIds) {
    const repo = path.join(env.tmp, runId);
    await createSampleRepository(repo, REPO_FILES, { author: { name: 'Bench', email: 'bench@example.com' }, message: 'init' });
    repos.push(repo);
    const status = await post(env.supervisorUrl, '/runs/start', plan(runId, phases, kind));
    if (status !== 201) throw new Error(`POST /runs/start ${runId}: ${status}`);
  }
  const childEnv = {
    PATH: process.env.PATH,
    HOME: env.tmp,
    OPENAI_API_KEY: 'sk-bench-openai-000',
    OPENAI_BASE_URL: env.llm.openaiBaseUrl,
    AUTOPACK_LOG_LEVEL: 'info',
    AUTOPACK_LOG_FORMAT: 'json',
  };
  const t0 = performance.now();
  const results = await Promise.all(
    runIds.map(
      (runId, i) =>
        spawnTimed([CLI, 'executor', '--run-id', runId, '--workspace', repos[i], '--api-url', env.supervisorUrl, '--exit-when-idle', '--executor-id', `bench-${runId}`], childEnv).done,
    ),
  );
  const wallMs = performance.now() - t0;
  for (const [i, r] of results.entries()) {
    if (process.env.BENCH_LOG_DIR) writeFileSync(path.join(process.env.BENCH_LOG_DIR, `${runIds[i]}.log`), r.stderr);
    if (r.code !== 0) throw new Error(`executor of ${runIds[i]} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  }
  const served = env.llm.requests.length - before;
  if (served !== runs * phases * 2) throw new Error(`expected ${runs * phases * 2} LLM calls, the server saw ${served}`);
  // One executor waits for its calls one after another: its LLM time is their delays summed.
  return { wallMs, llmMs: phases * 2 * delayMs, results };
}

/** Peak RSS of `node -e` doing one fetch (to the supervisor's health route). */
async function bareNodeRss(url: string): Promise<number> {
  const r = await spawnTimed(['-e', `fetch(${JSON.stringify(`${url}/health`)}).then((r) => r.text()).then(() => setTimeout(() => {}, 100))`], { PATH: process.env.PATH }).done;
  return r.peakRssBytes;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;

export async function benchExecutor(opts: BenchOptions): Promise<BenchRow[]> {
  const phases = Number(process.env.BENCH_PHASES) || (opts.quick ? 6 : 10);
  const reps = opts.quick ? 1 : 3;
  const scalePhases = opts.quick ? 3 : 5;

  const db = await scratchDatabase('autopack_bench_exec');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-bench-exec-'));
  let app: INestApplication | undefined;
  let llm: ScriptedLlmServer | undefined;
  const rows: BenchRow[] = [];
  try {
    const config = loadSupervisorConfig({ AUTOPACK_LOG_LEVEL: 'silent', AUTOPACK_RATE_LIMIT_PER_SEC: '0' }, { port: 0 });
    app = await createSupervisorApp(config, db.url);
    await app.listen(0, '127.0.0.1');
    const supervisorUrl = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
    llm = await startScriptedLlmServer({ script: { replies: [] } });
    const env: Env = { supervisorUrl, llm, tmp };

    // Warm-up: the supervisor's pools and plans, the file cache of dist/ and node_modules.
    await executorRuns(env, 'warm', 1, 2, 'js', 0);

    // 1. Ten phases at 200 ms per LLM call.
    const inRun: number[] = [];
    const perPhase: number[] = [];
    const whole: number[] = [];
    const starts: number[] = [];
    const tails: number[] = [];
    const peaksJs: number[] = [];
    const cpuPerPhase: number[] = [];
    const ciCpuPerPhase: number[] = [];
    const startCpu: number[] = [];
    let llmMs = 0;
    for (let r = 0; r < reps; r++) {
      const one = await executorRuns(env, `lat${r}`, 1, phases, 'js', 200);
      const f = one.results[0];
      llmMs = one.llmMs;
      const working = f.wallMs - f.startMs - f.exitTailMs;
      console.error(
        `bench executor: ${phases} phases, wall ${f.wallMs.toFixed(0)} ms (start ${f.startMs.toFixed(0)}, exit tail ${f.exitTailMs.toFixed(0)}), LLM ${one.llmMs} ms, CPU ${f.cpuMs.toFixed(0)} ms, peak ${mib(f.peakRssBytes)}`,
      );
      inRun.push((working - llmMs) / working);
      perPhase.push((working - llmMs) / phases);
      whole.push((f.wallMs - llmMs) / f.wallMs);
      starts.push(f.startMs);
      tails.push(f.exitTailMs);
      peaksJs.push(f.peakRssBytes);
      cpuPerPhase.push((f.cpuMs - f.startCpuMs) / phases);
      ciCpuPerPhase.push(f.childCpuMs / phases);
      startCpu.push(f.startCpuMs);
    }
    rows.push(
      {
        name: `executor, ${phases} phases, LLM answers in 200 ms: time outside the LLM per phase`,
        baseline: `LLM time ${(llmMs / phases).toFixed(0)} ms per phase (builder + auditor)`,
        measured: `${median(perPhase).toFixed(0)} ms per phase`,
        ratio: median(perPhase) / (llmMs / phases),
        meaning: 'overhead / LLM time per phase (claim, context, apply, CI, commit, reports); median of ' + reps,
      },
      {
        name: 'executor: its own CPU per phase (apply, git, prompts, HTTP), beside the overhead',
        baseline: `overhead ${median(perPhase).toFixed(0)} ms per phase`,
        measured: `${median(cpuPerPhase).toFixed(0)} ms CPU per phase (+ ${median(ciCpuPerPhase).toFixed(0)} ms in CI processes); start-up ${median(startCpu).toFixed(0)} ms CPU`,
        ratio: median(cpuPerPhase) / median(perPhase),
        meaning: 'share of the per-phase overhead the executor spends computing; the rest is waiting (supervisor round trips, CI process start, a busy machine)',
      },
      {
        name: 'executor: share of the run outside the LLM, start to "run is terminal"',
        baseline: `LLM ${(llmMs / 1000).toFixed(1)} s`,
        measured: pct(median(inRun)),
        ratio: median(inRun),
        meaning: 'overhead share of the run; target at most 8%',
      },
      {
        name: 'executor: share outside the LLM counting process start and exit',
        baseline: `LLM ${(llmMs / 1000).toFixed(1)} s`,
        measured: `${pct(median(whole))} (start ${median(starts).toFixed(0)} ms, exit tail ${median(tails).toFixed(0)} ms)`,
        ratio: median(whole),
        meaning: 'overhead share of spawn to exit; target at most 15%',
      },
    );

    // 2. Peak RSS beside a bare Node process doing one fetch.
    const bare: number[] = [];
    for (let r = 0; r < reps; r++) bare.push(await bareNodeRss(supervisorUrl));
    const peaksMd: number[] = [];
    for (let r = 0; r < reps; r++) peaksMd.push((await executorRuns(env, `mem${r}`, 1, 3, 'md', 0)).results[0].peakRssBytes);
    rows.push(
      {
        name: 'executor peak RSS, phases writing JavaScript (the TypeScript parser checks them)',
        baseline: `bare node + fetch: ${mib(median(bare))}`,
        measured: mib(median(peaksJs)),
        ratio: median(peaksJs) / median(bare),
        meaning: 'x of bare Node (VmHWM); target at most 130 MiB',
      },
      {
        name: 'executor peak RSS, phases writing documents only',
        baseline: `bare node + fetch: ${mib(median(bare))}`,
        measured: mib(median(peaksMd)),
        ratio: median(peaksMd) / median(bare),
        meaning: 'x of bare Node (VmHWM); target at most 130 MiB',
      },
    );

    // 3. Four executors on four runs against one executor on one run, 500 ms per LLM call.
    const ratios: number[] = [];
    let oneRate = 0;
    let fourRate = 0;
    for (let r = 0; r < reps; r++) {
      const one = await executorRuns(env, `one${r}`, 1, scalePhases, 'js', 500);
      const four = await executorRuns(env, `four${r}`, 4, scalePhases, 'js', 500);
      oneRate = scalePhases / (one.wallMs / 1000);
      fourRate = (4 * scalePhases) / (four.wallMs / 1000);
      ratios.push(fourRate / oneRate);
    }
    rows.push({
      name: `4 executors on 4 runs vs 1 (${scalePhases} phases each, LLM 500 ms)`,
      baseline: `1 executor: ${oneRate.toFixed(2)} phases/s`,
      measured: `${fourRate.toFixed(2)} phases/s`,
      ratio: median(ratios),
      meaning: `throughput x of one executor (spawn to exit); target at least 3.5; median of ${reps}`,
    });
  } finally {
    await app?.close();
    await llm?.close();
    rmSync(tmp, { recursive: true, force: true });
    await db.drop();
  }
  return rows;
}
