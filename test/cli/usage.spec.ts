import type { Arguments } from 'yargs';
import { closest, typedFlags, usageProblems } from '../../apps/cli/src/cli.js';
import { ExecutorConfigError, type ExecutorFlags, loadExecutorConfig } from '../../apps/executor/src/config.js';

/** What yargs would hand the middleware for `autopack <command> ...` with no stray argument. */
const parsed = (command: string | undefined, extra: Record<string, unknown> = {}): Arguments => ({ _: command ? [command] : [], $0: 'autopack', ...extra });

function configProblems(flags: ExecutorFlags, env: NodeJS.ProcessEnv = { OPENAI_API_KEY: 'k' }): string[] {
  try {
    loadExecutorConfig(flags, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ExecutorConfigError);
    return [...(err as ExecutorConfigError).problems];
  }
  return [];
}

describe('the command line as typed', () => {
  it('reads flags as typed, with their values, up to --', () => {
    expect(typedFlags(['executor', '--poll-interval', 'abc', '--api-url=x', '--no-dual-auditor', '-h', '--run-id', '--bogus', '--', '--after'])).toEqual([
      { typed: '--poll-interval', name: 'poll-interval', value: 'abc' },
      { typed: '--api-url', name: 'api-url', value: 'x' },
      { typed: '--no-dual-auditor', name: 'no-dual-auditor', value: undefined },
      { typed: '-h', name: 'h', value: undefined },
      { typed: '--run-id', name: 'run-id', value: undefined },
      { typed: '--bogus', name: 'bogus', value: undefined },
    ]);
    // A negative number is a value, not a flag.
    expect(typedFlags(['--poll-interval', '-1'])).toEqual([{ typed: '--poll-interval', name: 'poll-interval', value: '-1' }]);
  });

  it('suggests the closest flag only when one is close', () => {
    const names = ['run-id', 'api-url', 'poll-interval', 'max-iterations', 'no-dual-auditor', 'exit-when-idle'];
    expect(closest('pol-interval', names)).toBe('poll-interval');
    expect(closest('runid', names)).toBe('run-id');
    expect(closest('poll', names)).toBe('poll-interval');
    expect(closest('no-dual-auditors', names)).toBe('no-dual-auditor');
    expect(closest('bogus', names)).toBeUndefined();
  });

  it('reports each problem once, naming the flag as typed', () => {
    expect(usageProblems('executor', ['executor', '--pol-interval', '1'], parsed('executor'))).toEqual(['--pol-interval: unknown flag (did you mean --poll-interval?)']);
    expect(usageProblems('executor', ['executor', '--bogus', '--bogus'], parsed('executor'))).toEqual(['--bogus: unknown flag']);
    expect(usageProblems('executor', ['executor', '--poll-interval', 'abc'], parsed('executor', { pollInterval: NaN, 'poll-interval': NaN }))).toEqual([
      '--poll-interval: must be a number (got "abc")',
    ]);
    expect(usageProblems('executor', ['executor', '--run-id', 'a', '--run-id', 'b'], parsed('executor'))).toEqual(['--run-id: given more than once']);
    expect(usageProblems('executor', ['executor', '--workspace'], parsed('executor'))).toEqual(['--workspace: needs a value']);
    expect(usageProblems('llm-server', ['llm-server'], parsed('llm-server'))).toEqual(['--script: required']);
    expect(usageProblems('executor', ['executor', 'x'], parsed('executor', { _: ['executor', 'x'] }))).toEqual(['unexpected argument "x"']);
    expect(usageProblems(undefined, [], parsed(undefined))).toEqual(['name a command: supervisor, executor, llm-server, demo, build, builds, approve, start, runs, status, cancel, retry, report, coordinate']);
  });

  it('accepts what yargs accepts: negated booleans, camelCase, --flag=value, -h', () => {
    const args = ['executor', '--no-dual-auditor', '--runId', 'r', '--poll-interval=2', '--max-iterations', '3', '-h', '--no-exit-when-idle'];
    expect(usageProblems('executor', args, parsed('executor'))).toEqual([]);
    // Only booleans negate.
    expect(usageProblems('executor', ['executor', '--no-run-id'], parsed('executor'))).toEqual(['--no-run-id: unknown flag (did you mean --run-id?)']);
  });
});

describe('executor configuration messages', () => {
  it('names --poll-interval, not the schema key', () => {
    expect(configProblems({ pollInterval: 0 })).toEqual(['--poll-interval: must be a number > 0']);
    expect(configProblems({ pollInterval: NaN })).toEqual(['--poll-interval: must be a number > 0']);
    expect(configProblems({ pollInterval: 0.5 })).toEqual([]);
  });

  it('reports a bad --api-url once, and names AUTOPACK_API_URL when the value came from there', () => {
    expect(configProblems({ apiUrl: 'notaurl' })).toEqual(['--api-url: must be an http(s) URL']);
    expect(configProblems({ apiUrl: 'ftp://host/x' })).toEqual(['--api-url: must be an http(s) URL']);
    expect(configProblems({ apiUrl: '' })).toEqual(['--api-url: must be an http(s) URL']);
    expect(configProblems({}, { OPENAI_API_KEY: 'k', AUTOPACK_API_URL: 'nope' })).toEqual(['AUTOPACK_API_URL: must be an http(s) URL']);
    expect(configProblems({ apiUrl: 'https://sup.example:8443/base' })).toEqual([]);
  });

  it('checks --max-iterations, --run-id and --executor-id', () => {
    expect(configProblems({ maxIterations: 1.5 })).toEqual(['--max-iterations: must be a positive integer']);
    expect(configProblems({ maxIterations: 0 })).toEqual(['--max-iterations: must be a positive integer']);
    expect(configProblems({ runId: '' })).toEqual(['--run-id: must not be empty']);
    expect(configProblems({ runId: 'a..b' })[0]).toMatch(/^--run-id: must be at most 100 letters/);
    expect(configProblems({ executorId: 'has space' })).toEqual(['--executor-id: must be at most 200 printable characters without spaces']);
    expect(configProblems({ runId: 'run-1.2', maxIterations: 3, executorId: 'worker-7' })).toEqual([]);
  });

  it('keeps the missing provider key a configuration error, listed with the others, one per line', () => {
    let error: ExecutorConfigError | undefined;
    try {
      loadExecutorConfig({ apiUrl: 'notaurl', maxIterations: -1 }, {});
    } catch (err) {
      error = err as ExecutorConfigError;
    }
    expect(error).toBeInstanceOf(ExecutorConfigError);
    expect(error!.exitCode).toBe(1);
    expect(error!.problems).toEqual([
      '--api-url: must be an http(s) URL',
      '--max-iterations: must be a positive integer',
      'no LLM provider key: set OPENAI_API_KEY or ANTHROPIC_API_KEY (or --openai-key / --anthropic-key)',
    ]);
    // main.ts prints `autopack executor: <message>`: one prefixed line per problem.
    expect(`autopack executor: ${error!.message}`.split('\n')).toEqual(error!.problems.map((p) => `autopack executor: ${p}`));
  });

  it('a single message stays as it was given', () => {
    expect(new ExecutorConfigError('run x does not exist').message).toBe('run x does not exist');
  });
});
