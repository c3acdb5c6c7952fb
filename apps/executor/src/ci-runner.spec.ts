import { CiBaselineCache, type CiResult, failureLines, judgeCi, runCi, scrubbedEnvironment } from './ci-runner.js';

const result = (exitCode: number, outputTail: string, over: Partial<CiResult> = {}): CiResult => ({
  passed: exitCode === 0,
  exitCode,
  timedOut: false,
  durationMs: 10,
  outputTail,
  outputBytes: outputTail.length,
  ...over,
});

const BASELINE = 'ok   a.test.js works\nFAIL b.test.js broken: expected 1 (3 ms)\n2 test files, 1 failed\n';

describe('judgeCi', () => {
  it('passes a zero exit code whatever the baseline', () => {
    expect(judgeCi(result(0, 'ok'), undefined)).toEqual({ accepted: true, baselineFailed: false, newFailures: [] });
    expect(judgeCi(result(0, 'ok'), result(1, BASELINE))).toEqual({ accepted: true, baselineFailed: true, newFailures: [] });
  });

  it('fails a non-zero exit code when the baseline passed or is unknown', () => {
    expect(judgeCi(result(1, 'FAIL x'), result(0, 'ok')).accepted).toBe(false);
    expect(judgeCi(result(1, 'FAIL x'), undefined).accepted).toBe(false);
  });

  it('with a failing baseline, passes when the failure lines are the known ones (timings ignored)', () => {
    const attempt = 'ok   a.test.js works\nok   c.test.js new feature\n  FAIL b.test.js broken: expected 1 (12 ms)\n3 test files, 1 failed\n';
    expect(judgeCi(result(1, attempt), result(1, BASELINE))).toEqual({ accepted: true, baselineFailed: true, newFailures: [] });
  });

  it('with a failing baseline, fails on any new failure line, and on a timeout', () => {
    const attempt = `${BASELINE}FAIL c.test.js newFeature: boom\n`;
    expect(judgeCi(result(1, attempt), result(1, BASELINE))).toEqual({ accepted: false, baselineFailed: true, newFailures: ['FAIL c.test.js newFeature: boom'] });
    expect(judgeCi(result(1, 'SyntaxError: Unexpected token'), result(1, BASELINE)).newFailures).toEqual(['SyntaxError: Unexpected token']);
    expect(judgeCi(result(1, BASELINE, { timedOut: true }), result(1, BASELINE)).accepted).toBe(false);
  });
});

describe('failureLines', () => {
  it('recognizes the markers of common test runners', () => {
    const output = ['FAIL src/a.test.ts', 'not ok 3 - adds', '  ✕ multiplies (4 ms)', '× vitest case', '✗ mocha case', 'Error: boom', 'TypeError: x is not a function', 'ok 1 - fine', 'PASS src/b.test.ts', '  at Object.<anonymous>'].join('\n');
    expect(failureLines(output)).toEqual(['FAIL src/a.test.ts', 'not ok 3 - adds', '✕ multiplies', '× vitest case', '✗ mocha case', 'Error: boom', 'TypeError: x is not a function']);
  });
});

describe('CiBaselineCache', () => {
  it('runs once per (head, command) and forgets failed runs', async () => {
    const cache = new CiBaselineCache();
    let runs = 0;
    const run = async () => result(++runs, `run ${runs}`);
    expect((await cache.get('sha1', 'npm test', run)).outputTail).toBe('run 1');
    expect((await cache.get('sha1', 'npm test', run)).outputTail).toBe('run 1');
    expect((await cache.get('sha2', 'npm test', run)).outputTail).toBe('run 2');
    expect((await cache.get('sha1', 'make test', run)).outputTail).toBe('run 3');
    await expect(cache.get('sha3', 'npm test', async () => Promise.reject(new Error('stopped')))).rejects.toThrow('stopped');
    expect((await cache.get('sha3', 'npm test', run)).outputTail).toBe('run 4');
  });
});

describe('scrubbedEnvironment', () => {
  it('drops secret-named variables, values holding a known secret, and copies of secret values', () => {
    const env = scrubbedEnvironment(
      {
        PATH: '/usr/bin',
        HOME: '/home/x',
        OPENAI_API_KEY: 'sk-openai-123456',
        MY_SERVICE_TOKEN: 'tok-abcdefgh',
        DB_PASSWORD: 'hunter2hunter2',
        SOME_SECRET: 'shh-shh-shh',
        INNOCENT: 'sk-openai-123456',
        WRAPPED: 'Bearer sk-openai-123456',
        COPY_OF_DB: 'hunter2hunter2',
        DATABASE_URL: 'postgres://u:p@h/db',
      },
      ['sk-openai-123456'],
    );
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/home/x', CI: 'true' });
  });

  it('reaches the CI process: the child sees only the scrubbed environment', async () => {
    const r = await runCi({ command: 'env', cwd: process.cwd(), timeoutMs: 10_000, env: scrubbedEnvironment({ PATH: process.env.PATH, SOME_SECRET: 'do-not-leak-me' }) });
    expect(r.passed).toBe(true);
    expect(r.outputTail).toContain('CI=true');
    expect(r.outputTail).not.toContain('do-not-leak-me');
  });
});

describe('runCi', () => {
  /** Pids of live processes whose command line contains `marker`. */
  const processesWith = async (marker: string): Promise<number[]> => {
    const { readdir, readFile } = await import('node:fs/promises');
    const pids: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.split('\0').join(' ').includes(marker)) pids.push(Number(entry));
    }
    return pids;
  };
  const env = { PATH: process.env.PATH };

  it('judges CI when its process exits, even while a background child holds the output open, and leaves no child behind', async () => {
    const marker = `299.${process.pid}${Date.now() % 100_000}`;
    const started = Date.now();
    const r = await runCi({ command: `sleep ${marker} & exit 1`, cwd: process.cwd(), timeoutMs: 120_000, env });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(r).toMatchObject({ passed: false, exitCode: 1, timedOut: false });
    // The group was killed: the background sleep is gone (allow the kernel a moment to reap it).
    const deadline = Date.now() + 2_000;
    while ((await processesWith(`sleep ${marker}`)).length > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    expect(await processesWith(`sleep ${marker}`)).toEqual([]);
  });

  it('still captures output written just before the exit', async () => {
    const marker = `298.${process.pid}${Date.now() % 100_000}`;
    const r = await runCi({ command: `sleep ${marker} & printf 'FAIL last words\\n'; echo 'on stderr' >&2; exit 3`, cwd: process.cwd(), timeoutMs: 120_000, env });
    expect(r).toMatchObject({ passed: false, exitCode: 3, timedOut: false });
    expect(r.outputTail).toContain('FAIL last words');
    expect(r.outputTail).toContain('on stderr');
  });

  it('passes a zero exit and keeps the whole output of a command without background children', async () => {
    const r = await runCi({ command: 'for i in 1 2 3; do echo line-$i; done', cwd: process.cwd(), timeoutMs: 10_000, env });
    expect(r).toMatchObject({ passed: true, exitCode: 0, timedOut: false });
    expect(r.outputTail).toBe('line-1\nline-2\nline-3\n');
  });

  it('still times out a command that does not exit, killing its whole group', async () => {
    const marker = `297.${process.pid}${Date.now() % 100_000}`;
    const started = Date.now();
    const r = await runCi({ command: `echo started; sleep ${marker} & wait`, cwd: process.cwd(), timeoutMs: 500, env });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(r).toMatchObject({ passed: false, exitCode: null, timedOut: true });
    expect(r.outputTail).toContain('started');
    expect(r.outputTail).toContain('CI timed out');
    const deadline = Date.now() + 2_000;
    while ((await processesWith(`sleep ${marker}`)).length > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    expect(await processesWith(`sleep ${marker}`)).toEqual([]);
  });
});
