import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createSampleRepository } from '@app/git';
import { type Finished, runCli } from '../support/processes.js';

/**
 * The strict command line, through the built binaries (`node bin/autopack.js ...`): unknown
 * commands and flags exit 1 before anything starts, each problem is one line naming the flag
 * as typed, `--version` answers, and every `--help` stands on its own.
 */

const EXECUTOR_BIN = path.resolve('bin/autopack-executor.js');
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
/** An environment in which no executor could start anyway: no provider key. */
const NO_KEY = { PATH: process.env.PATH };

const lines = (text: string) => text.split('\n').filter((l) => l.trim());

function runExecutorBin(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<Finished> {
  const child = spawn(process.execPath, [EXECUTOR_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let tmp: string;
let repo: string;
let server: Server;
let serverUrl: string;
/** Every request the would-be supervisor (and LLM endpoint) received. */
const received: string[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-cli-'));
  // A clean git repository: an executor that got past its flags would go on to the supervisor.
  repo = path.join(tmp, 'repo');
  await createSampleRepository(repo, { 'a.txt': 'a\n' }, { author: { name: 'T', email: 't@example.com' }, message: 'init' });
  server = createServer((req, res) => {
    received.push(`${req.method} ${req.url}`);
    res.writeHead(503, { 'content-type': 'application/json' }).end('{"detail":"not a supervisor"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  rmSync(tmp, { recursive: true, force: true });
});

describe('unknown flags and commands: exit 1, one line with a suggestion, nothing started', () => {
  // With a provider key and a git workspace, only the flag check stands between this
  // command line and an executor that polls the supervisor URL.
  const startable = () => ({
    PATH: process.env.PATH,
    HOME: tmp,
    OPENAI_API_KEY: 'sk-fake-cli-test',
    OPENAI_BASE_URL: `${serverUrl}/v1`,
    AUTOPACK_SUPERVISOR_RETRY_SECONDS: '1',
  });
  const args = () => ['--pol-interval', '1', '--run-id', 'r1', '--workspace', repo, '--api-url', serverUrl, '--exit-when-idle', '--executor-id', 'cli-test'];
  const expected = 'autopack executor: --pol-interval: unknown flag (did you mean --poll-interval?)';

  it('autopack executor --pol-interval ...', async () => {
    received.length = 0;
    const started = Date.now();
    const r = await runCli(['executor', ...args()], startable(), 30_000).done;
    const elapsed = Date.now() - started;
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expected]);
    expect(r.stdout).toBe('');
    expect(received).toEqual([]);
    expect(elapsed).toBeLessThan(10_000);
  });

  it('autopack-executor --pol-interval ... (the same command)', async () => {
    received.length = 0;
    const r = await runExecutorBin(args(), startable());
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expected]);
    expect(received).toEqual([]);
  });

  it('suggests the negated boolean and keeps accepting --no-dual-auditor', async () => {
    const typo = await runCli(['executor', '--no-dual-auditors'], NO_KEY).done;
    expect(typo.code).toBe(1);
    expect(lines(typo.stderr)).toEqual(['autopack executor: --no-dual-auditors: unknown flag (did you mean --no-dual-auditor?)']);

    // Valid flags reach the configuration, whose only complaint is the missing key.
    const ok = await runCli(['executor', '--no-dual-auditor', '--exit-when-idle', '--poll-interval', '2'], NO_KEY).done;
    expect(ok.code).toBe(1);
    expect(lines(ok.stderr)).toEqual([expect.stringMatching(/^autopack executor: no LLM provider key/)]);
  });

  it('autopack supervisor --prot: the supervisor never starts', async () => {
    // An unreachable database: a supervisor that started anyway would fail differently.
    const r = await runCli(['supervisor', '--prot', '9999'], { PATH: process.env.PATH, DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none' }, 30_000).done;
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual(['autopack supervisor: --prot: unknown flag (did you mean --port?)']);
  });

  it('autopack superviser suggests supervisor', async () => {
    const r = await runCli(['superviser'], NO_KEY).done;
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual(['autopack: unknown command "superviser" (did you mean supervisor?)']);
    expect(r.stdout).toBe('');
  });

  it('a stray argument is named', async () => {
    const r = await runCli(['executor', 'now'], NO_KEY).done;
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual(['autopack executor: unexpected argument "now"']);
  });
});

describe('bad values name the flag as typed, once', () => {
  it('--poll-interval abc', async () => {
    const r = await runCli(['executor', '--poll-interval', 'abc'], NO_KEY).done;
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual(['autopack executor: --poll-interval: must be a number (got "abc")']);
    expect(r.stderr).not.toContain('poll-interval-seconds');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('--poll-interval 0 and --max-iterations 1.5', async () => {
    const r = await runCli(['executor', '--poll-interval', '0', '--max-iterations', '1.5'], { ...NO_KEY, OPENAI_API_KEY: 'k' }).done;
    expect(r.code).toBe(1);
    expect(lines(r.stderr).sort()).toEqual(['autopack executor: --max-iterations: must be a positive integer', 'autopack executor: --poll-interval: must be a number > 0']);
  });

  it('--api-url notaurl: the message appears exactly once', async () => {
    const r = await runCli(['executor', '--api-url', 'notaurl'], NO_KEY).done;
    expect(r.code).toBe(1);
    expect(r.stderr.split('must be an http(s) URL').length - 1).toBe(1);
    const all = lines(r.stderr);
    expect(all).toContain('autopack executor: --api-url: must be an http(s) URL');
    // Another problem (no key) may be listed too, but never one twice, and each on its own line.
    expect(new Set(all).size).toBe(all.length);
    for (const l of all) expect(l).toMatch(/^autopack executor: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('--version and --help', () => {
  it('autopack --version prints the package version and exits 0', async () => {
    expect(VERSION).toBe('0.1.0');
    const r = await runCli(['--version'], NO_KEY).done;
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
    expect(r.stderr).toBe('');
  });

  const ENV_VARS: Record<string, string[]> = {
    '': ['DATABASE_URL', 'PORT', 'HOST', 'AUTOPACK_API_KEY', 'AUTOPACK_API_URL', 'OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'OPENAI_BASE_URL', 'ANTHROPIC_BASE_URL', 'AUTOPACK_LEASE_SECONDS', 'AUTOPACK_MODELS', 'AUTOPACK_DATA_DIR', 'AUTOPACK_LOG_LEVEL', 'AUTOPACK_MAX_BODY_BYTES'],
    supervisor: ['DATABASE_URL', 'PORT', 'HOST', 'AUTOPACK_API_KEY', 'AUTOPACK_LEASE_SECONDS', 'AUTOPACK_DATA_DIR', 'AUTOPACK_MAX_BODY_BYTES', 'AUTOPACK_LOG_LEVEL'],
    executor: ['AUTOPACK_API_URL', 'AUTOPACK_API_KEY', 'OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'OPENAI_BASE_URL', 'ANTHROPIC_BASE_URL', 'AUTOPACK_MODELS', 'AUTOPACK_LOG_LEVEL'],
    'llm-server': ['OPENAI_BASE_URL', 'ANTHROPIC_BASE_URL'],
    demo: ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'AUTOPACK_LOG_LEVEL'],
    build: ['AUTOPACK_API_URL', 'AUTOPACK_API_KEY'],
    builds: ['AUTOPACK_API_URL', 'AUTOPACK_API_KEY'],
    approve: ['AUTOPACK_API_URL', 'AUTOPACK_API_KEY'],
    coordinate: ['AUTOPACK_API_URL', 'AUTOPACK_API_KEY'],
  };

  function expectSelfContained(r: Finished, command: string) {
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const help = r.stdout;
    expect(help).toMatch(/^Environment\b/m);
    for (const v of ENV_VARS[command]) expect(help).toContain(v);
    expect(help).toMatch(/^Exit codes:\n\s+0\s+\S/m);
    expect(help).toMatch(/^\s+1\s+bad usage/m);
    expect(help).toMatch(/^Examples:\n\s+autopack /m);
    expect(help).not.toMatch(/CONTRACT|\.md\b/);
  }

  for (const command of Object.keys(ENV_VARS)) {
    it(`autopack ${command || ''} --help`.replace('  ', ' '), async () => {
      const r = await runCli([...(command ? [command] : []), '--help'], NO_KEY).done;
      expectSelfContained(r, command);
      if (command) expect(r.stdout).toContain(`autopack ${command}`);
    });
  }

  it('the executor help lists every flag with its default and exit codes 0 to 3', async () => {
    const r = await runExecutorBin(['--help'], NO_KEY);
    expectSelfContained(r, 'executor');
    const help = r.stdout;
    for (const flag of ['--run-id', '--api-url', '--api-key', '--openai-key', '--anthropic-key', '--workspace', '--poll-interval', '--max-iterations', '--dual-auditor', '--no-dual-auditor', '--executor-id', '--exit-when-idle']) {
      expect(help).toContain(flag);
    }
    for (const d of ['default: 10', 'default: "."', 'default: unlimited', 'default: hostname-pid', 'http://localhost:8000']) expect(help).toContain(d);
    expect(help).toMatch(/^\s+0\s+the run it served ended DONE_SUCCESS/m);
    expect(help).toMatch(/^\s+1\s+bad usage or configuration/m);
    expect(help).toMatch(/^\s+2\s+the supervisor could not be reached/m);
    expect(help).toMatch(/^\s+3\s+the run it served ended in a failed state or was cancelled/m);
  });
});
