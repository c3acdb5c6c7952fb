/**
 * Prompt caching: a real 10-phase run end to end (supervisor on PostgreSQL, an executor process,
 * the bundled scripted LLM server recording every request) on a repository of about 200 files.
 * From the recorded builder requests (Anthropic wire format: tools, then system, then messages,
 * the order Anthropic caches a prefix in) it measures how much of each prompt is in a prefix
 * shared with the previous builder request AND before the last cache breakpoint
 * (`cache_control`), i.e. what Anthropic would serve from its cache (OpenAI caches any shared
 * prefix of 1,024+ tokens on its own). Tokens are estimated as UTF-8 bytes / 4 of the prompt
 * as sent: the tools JSON, the system text and the message text.
 *
 * The baseline is the order before the cache work (main at 129c6d7): the builder's user
 * message began with `# Phase <id>:`, so consecutive requests shared tools + system only, and
 * the only breakpoint was on the system block. It is computed from the same requests: their
 * tools + system bytes over their whole size. The reordering kept the content, except that a
 * directory's first 50 files are now counted as the run found them, so files the run added
 * there are shown on top (here about 5% more builder tokens by the last phases).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { INestApplication } from '@nestjs/common';
import { createSampleRepository } from '@app/git';
import { type LlmScriptInput, type ScriptedRequestRecord, startScriptedLlmServer } from '@app/testing';
import { NODE_TEST_RUNNER } from '../apps/cli/src/demo-fixture.js';
import { createSupervisorApp } from '../apps/supervisor/src/bootstrap.js';
import { loadSupervisorConfig } from '../apps/supervisor/src/config.js';
import { scratchDatabase } from './database.js';
import type { BenchOptions, BenchRow } from './rows.js';

const BIN = fileURLToPath(new URL('../../bin/autopack.js', import.meta.url));
const PHASES = 10;
const MODULES = 95;
const CI = { command: 'node test/run.js', timeout_s: 60 };
const USAGE = { input_tokens: 1000, output_tokens: 200 };
/** Anthropic's prices relative to an uncached input token. */
const CACHE_READ = 0.1;
const CACHE_WRITE = 1.25;
/** Anthropic caches no prefix shorter than 1,024 tokens (Sonnet/Opus; bytes/4). */
const MIN_CACHED_BYTES = 1024 * 4;

const pad = (n: number) => String(n).padStart(2, '0');

/** A calculator-like library: ~95 modules, ~95 tests, a test runner, an index and some docs (≈200 files). */
function repositoryFiles(): Record<string, string> {
  const files: Record<string, string> = {
    'package.json': `${JSON.stringify({ name: 'bench-calc', version: '1.0.0', private: true, type: 'module', scripts: { test: 'node test/run.js' } }, null, 2)}\n`,
    '.gitignore': 'node_modules/\n',
    'README.md': '# bench-calc\n\nA library of small numeric helpers, one module per helper.\n',
    'test/run.js': NODE_TEST_RUNNER,
  };
  for (let d = 1; d <= 6; d++) files[`docs/guide-${d}.md`] = `# Guide ${d}\n\n${'How the helpers compose, with examples. '.repeat(8)}\n`;
  const exports: string[] = [];
  for (let i = 1; i <= MODULES; i++) {
    const m = `mod-${pad(i)}`;
    files[`src/lib/${m}.js`] =
      `/** Helper ${i}: scales and offsets a number. */\nexport function helper${i}(x) {\n  const scaled = x * ${i};\n  return scaled + ${i % 7};\n}\n\n/** Helper ${i}, inverse. */\nexport function unhelper${i}(y) {\n  return (y - ${i % 7}) / ${i};\n}\n// end of ${m}\n`;
    files[`test/${m}.test.js`] =
      `import assert from 'node:assert/strict';\nimport { helper${i}, unhelper${i} } from '../src/lib/${m}.js';\n\nexport function roundTrips${i}() {\n  assert.equal(unhelper${i}(helper${i}(3)), 3);\n}\n`;
    exports.push(`export * from './lib/${m}.js';`);
  }
  files['src/index.js'] = `${exports.join('\n')}\n// exports end\n`;
  return files;
}

/**
 * Ten phases of the kind a plan has: even phases add a new helper module with its test and
 * register it in src/index.js; odd phases extend an existing module (spread over the
 * repository) and add a test for it.
 */
function phases(): { plan: Record<string, unknown>[]; script: LlmScriptInput['replies'] } {
  const plan: Record<string, unknown>[] = [];
  const script: LlmScriptInput['replies'] = [];
  const existing = [12, 31, 47, 66, 88];
  for (let k = 1; k <= PHASES; k++) {
    const id = `p${pad(k)}`;
    if (k % 2 === 0) {
      const name = `extra-${pad(k)}`;
      const exportsEnd = '// exports end\n';
      plan.push({
        phase_id: id,
        phase_index: k - 1,
        tier_id: 't1',
        name: `Add ${name}`,
        description: `Add src/lib/${name}.js exporting twice${k}(x) = 2x + ${k}, export it from src/index.js, and test it in test/${name}.test.js.`,
        task_category: 'feature_scaffolding',
        complexity: 'low',
        scope: { paths: [`src/lib/${name}.js`, 'src/index.js', `test/${name}.test.js`], read_only_context: ['test/run.js'] },
        acceptance_criteria: [`twice${k}(1) === ${2 + k}`, 'the test suite passes'],
        ci: CI,
      });
      script.push({
        tool: 'submit_changes',
        match: `# Phase ${id}:`,
        arguments: {
          summary: `Add twice${k}`,
          edits: [
            { path: `src/lib/${name}.js`, action: 'create', content: `/** Doubles and offsets. */\nexport function twice${k}(x) {\n  return 2 * x + ${k};\n}\n` },
            { path: 'src/index.js', action: 'edit', search: exportsEnd, replace: `export * from './lib/${name}.js';\n${exportsEnd}` },
            { path: `test/${name}.test.js`, action: 'create', content: `import assert from 'node:assert/strict';\nimport { twice${k} } from '../src/index.js';\n\nexport function twice${k}Works() {\n  assert.equal(twice${k}(1), ${2 + k});\n}\n` },
          ],
        },
        usage: USAGE,
      });
    } else {
      const i = existing[(k - 1) / 2];
      const m = `mod-${pad(i)}`;
      const end = `// end of ${m}\n`;
      plan.push({
        phase_id: id,
        phase_index: k - 1,
        tier_id: 't1',
        name: `Extend ${m}`,
        description: `Add clamp${i}(x, lo, hi) to src/lib/${m}.js and test it in test/${m}-clamp.test.js.`,
        task_category: 'feature_scaffolding',
        complexity: 'low',
        scope: { paths: [`src/lib/${m}.js`, `test/${m}-clamp.test.js`], read_only_context: ['test/run.js', `test/${m}.test.js`] },
        acceptance_criteria: [`clamp${i}(5, 0, 3) === 3`, 'the test suite passes'],
        ci: CI,
      });
      script.push({
        tool: 'submit_changes',
        match: `# Phase ${id}:`,
        arguments: {
          summary: `Add clamp${i}`,
          edits: [
            { path: `src/lib/${m}.js`, action: 'edit', search: end, replace: `\n/** Clamps x into [lo, hi]. */\nexport function clamp${i}(x, lo, hi) {\n  return Math.min(hi, Math.max(lo, x));\n}\n${end}` },
            { path: `test/${m}-clamp.test.js`, action: 'create', content: `import assert from 'node:assert/strict';\nimport { clamp${i} } from '../src/lib/${m}.js';\n\nexport function clamps${i}() {\n  assert.equal(clamp${i}(5, 0, 3), 3);\n}\n` },
          ],
        },
        usage: USAGE,
      });
    }
  }
  script.push({ tool: 'submit_review', arguments: { approved: true, summary: 'Looks right.', confidence: 'high', issues: [] }, usage: USAGE, times: PHASES * 3 });
  return { plan, script };
}

/** One request as Anthropic caches it: its text in cache order and where the last breakpoint ends. */
interface Flattened {
  text: string;
  /** Bytes of tools + system: all the baseline order could share and cache. */
  toolsAndSystem: number;
  /** Bytes up to the end of the last block marked `cache_control` (0: none). */
  breakpoint: number;
  /** Bytes up to the end of every block marked `cache_control`, in order. */
  breakpoints: number[];
}

type Block = { type?: string; text?: string; cache_control?: unknown };

function flatten(record: ScriptedRequestRecord): Flattened {
  const body = record.body as { tools?: unknown; system?: string | Block[]; messages?: { content: string | Block[] }[] };
  let text = JSON.stringify(body.tools ?? []);
  const breakpoints: number[] = [];
  const add = (content: string | Block[] | undefined) => {
    if (typeof content === 'string') text += content;
    else
      for (const b of content ?? []) {
        text += b.text ?? '';
        if (b.cache_control) breakpoints.push(Buffer.byteLength(text));
      }
  };
  add(body.system);
  const toolsAndSystem = Buffer.byteLength(text);
  for (const m of body.messages ?? []) add(m.content);
  return { text, toolsAndSystem, breakpoint: breakpoints.at(-1) ?? 0, breakpoints };
}

/** Bytes of the longest common prefix of two strings (compared as UTF-8). */
function sharedPrefixBytes(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  const n = Math.min(x.length, y.length);
  let i = 0;
  while (i < n && x[i] === y[i]) i++;
  return i;
}

const tokens = (bytes: number) => bytes / 4;

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });
}

export async function benchPromptCache(_opts: BenchOptions): Promise<BenchRow[]> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-bench-cache-'));
  const repo = path.join(tmp, 'repo');
  const files = repositoryFiles();
  await createSampleRepository(repo, files, { author: { name: 'Bench', email: 'bench@autopack.local' }, message: 'init' });
  const { plan, script } = phases();
  const llm = await startScriptedLlmServer({ script: { replies: script } });

  const db = await scratchDatabase('autopack_bench_cache');
  let app: INestApplication | undefined;
  let executor: ChildProcess | undefined;
  try {
    app = await createSupervisorApp(loadSupervisorConfig({ AUTOPACK_LOG_LEVEL: 'silent', AUTOPACK_RATE_LIMIT_PER_SEC: '0' }, { port: 0 }), db.url);
    await app.listen(0, '127.0.0.1');
    const api = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
    const runId = 'bench-cache';
    const start = await fetch(`${api}/runs/start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ run: { run_id: runId, token_cap: 10_000_000 }, tiers: [{ tier_id: 't1', tier_index: 0, name: 'Helpers' }], phases: plan }),
    });
    if (start.status !== 201) throw new Error(`POST /runs/start: ${start.status} ${await start.text()}`);

    // Anthropic only: builder and auditor both speak the wire format whose cache breakpoints we read.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: tmp,
      ANTHROPIC_API_KEY: 'scripted-bench-key',
      ANTHROPIC_BASE_URL: llm.anthropicBaseUrl,
      AUTOPACK_LOG_LEVEL: 'warn',
    };
    const args = ['executor', '--run-id', runId, '--workspace', repo, '--api-url', api, '--poll-interval', '1', '--exit-when-idle', '--executor-id', 'bench-cache'];
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    executor = child;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const code = await Promise.race([exited(child), new Promise<'late'>((r) => setTimeout(() => r('late'), 120_000).unref())]);
    if (code !== 0) throw new Error(`the executor ${code === 'late' ? 'took more than 120 s' : `exited ${code}`}:\n${stderr}`);
    const run = (await (await fetch(`${api}/runs/${runId}`)).json()) as { state: string };
    if (run.state !== 'DONE_SUCCESS') throw new Error(`the run ended ${run.state}:\n${stderr}`);
  } finally {
    if (executor && executor.exitCode === null) executor.kill('SIGKILL');
    await app?.close();
    await db.drop();
    await llm.close();
    rmSync(tmp, { recursive: true, force: true });
  }

  const builder = llm.requestsFor('submit_changes').map(flatten);
  const all = llm.requests.map(flatten);
  if (builder.length !== PHASES) throw new Error(`expected ${PHASES} builder requests, got ${builder.length}`);
  let sent = 0;
  let cached = 0;
  let baselineCached = 0;
  let hits = 0;
  let effective = 0;
  let baselineEffective = 0;
  builder.forEach((r, i) => {
    const size = Buffer.byteLength(r.text);
    const shared = i === 0 ? 0 : Math.min(sharedPrefixBytes(builder[i - 1].text, r.text), r.breakpoint);
    const baseShared = i === 0 ? 0 : r.toolsAndSystem;
    sent += size;
    cached += shared;
    // Anthropic serves a prefix from its cache only up to a breakpoint an earlier request wrote.
    const hit = i === 0 ? 0 : Math.max(0, ...r.breakpoints.filter((b) => b <= shared && b >= MIN_CACHED_BYTES && builder[i - 1].breakpoints.includes(b)));
    hits += hit;
    baselineCached += baseShared;
    // Anthropic pricing: the prefix read from the cache at 0.1x, the rest up to the last breakpoint written at 1.25x.
    // A prefix shorter than Anthropic's minimum is neither written nor read: all of it costs 1x.
    const written = r.breakpoint >= MIN_CACHED_BYTES ? r.breakpoint : 0;
    effective += hit * CACHE_READ + (written - hit) * CACHE_WRITE + (size - written);
    const baseWritten = r.toolsAndSystem >= MIN_CACHED_BYTES ? r.toolsAndSystem : 0;
    const baseHit = Math.min(baseShared, baseWritten);
    baselineEffective += baseHit * CACHE_READ + (baseWritten - baseHit) * CACHE_WRITE + (size - baseWritten);
  });
  const later = builder.slice(1);
  const laterShare =
    later.reduce((n, r, i) => n + Math.min(sharedPrefixBytes(builder[i].text, r.text), r.breakpoint), 0) / later.reduce((n, r) => n + Buffer.byteLength(r.text), 0);
  const share = cached / sent;
  const baselineShare = baselineCached / sent;
  const perPhase = (bytes: number) => Math.round(tokens(bytes) / PHASES).toLocaleString('en-US');
  const allSent = all.reduce((n, r) => n + Buffer.byteLength(r.text), 0);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return [
    {
      name: `builder prompt in a cacheable prefix shared with the previous request, ${PHASES} phases, ~${Object.keys(files).length} files`,
      baseline: `order before (phase first): ${pct(baselineShare)}; target 60%`,
      measured: `${pct(share)} of all builder prompt tokens (${pct(laterShare)} of phases 2-${PHASES}; the first has no previous request); whole up to a breakpoint, as Anthropic reads it: ${pct(hits / sent)}`,
      ratio: share / 0.6,
      meaning: `measured / 60% target (>= 1: met); ${(share / baselineShare).toFixed(1)}x the order before`,
    },
    {
      name: 'prompt tokens sent per phase (demo-like run, bytes/4)',
      baseline: `builder ${perPhase(sent)}, all calls ${perPhase(allSent)}; cacheable and shared: ${perPhase(baselineCached)} (tools + system)`,
      measured: `builder ${perPhase(sent)}, all calls ${perPhase(allSent)}; cacheable and shared: ${perPhase(cached)}`,
      ratio: effective / baselineEffective,
      meaning: `builder input cost at Anthropic cache prices (read 0.1x, write 1.25x, reads only up to a breakpoint of 1,024+ tokens) relative to the order before: ${perPhase(effective)} vs ${perPhase(baselineEffective)} token-equivalents per phase`,
    },
  ];
}
