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
