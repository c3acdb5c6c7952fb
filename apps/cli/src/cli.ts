import yargs, { type Arguments, type Argv, type Options } from 'yargs';
import { EXECUTOR_OPTIONS, executorCommand } from '../../executor/src/cli.js';
import { AUTOPACK_VERSION } from '../../supervisor/src/version.js';
import {
  APPROVE_EPILOG,
  APPROVE_EXAMPLES,
  APPROVE_OPTIONS,
  BUILD_EPILOG,
  BUILD_EXAMPLES,
  BUILD_OPTIONS,
  BUILDS_EPILOG,
  BUILDS_EXAMPLES,
  BUILDS_OPTIONS,
  COMMAND_POSITIONALS,
  COORDINATE_EPILOG,
  COORDINATE_EXAMPLES,
  COORDINATE_OPTIONS,
  REPEATABLE_FLAGS,
} from './build-options.js';
import {
  CANCEL_EPILOG,
  CANCEL_EXAMPLES,
  CANCEL_OPTIONS,
  REPORT_EPILOG,
  REPORT_EXAMPLES,
  REPORT_OPTIONS,
  RETRY_EPILOG,
  RETRY_EXAMPLES,
  RETRY_OPTIONS,
  RUN_COMMAND_POSITIONALS,
  RUNS_EPILOG,
  RUNS_EXAMPLES,
  RUNS_OPTIONS,
  START_EPILOG,
  START_EXAMPLES,
  START_OPTIONS,
  STATUS_EPILOG,
  STATUS_EXAMPLES,
  STATUS_OPTIONS,
} from './run-options.js';

type OptionSpecs = Readonly<Record<string, Options>>;

const SUPERVISOR_OPTIONS = {
  port: { type: 'number', describe: 'listen port', defaultDescription: '$PORT or 8000' },
  host: { type: 'string', describe: 'listen address', defaultDescription: '$HOST or 127.0.0.1' },
} as const satisfies OptionSpecs;

const LLM_SERVER_OPTIONS = {
  script: { type: 'string', demandOption: true, describe: 'script file (YAML, or JSON when it ends in .json)' },
  port: { type: 'number', default: 0, describe: 'listen port (0: any free port)' },
  host: { type: 'string', default: '127.0.0.1', describe: 'listen address' },
  record: { type: 'string', describe: 'append every request as a JSON line to this file' },
} as const satisfies OptionSpecs;

const DEMO_OPTIONS = {
  live: { type: 'boolean', default: false, describe: 'call the real providers with the keys in the environment' },
  plan: { type: 'boolean', default: false, describe: 'the plan-file demo instead: a 2-tier, 4-phase run on a sample repository' },
  dir: { type: 'string', describe: 'where to create the demo', defaultDescription: '.autopack/demo/<timestamp>' },
} as const satisfies OptionSpecs;

/** Each command's flags, for checking what was typed before anything starts. */
const COMMAND_OPTIONS: Readonly<Record<string, OptionSpecs>> = {
  supervisor: SUPERVISOR_OPTIONS,
  executor: EXECUTOR_OPTIONS,
  'llm-server': LLM_SERVER_OPTIONS,
  demo: DEMO_OPTIONS,
  build: BUILD_OPTIONS,
  builds: BUILDS_OPTIONS,
  approve: APPROVE_OPTIONS,
  start: START_OPTIONS,
  runs: RUNS_OPTIONS,
  status: STATUS_OPTIONS,
  cancel: CANCEL_OPTIONS,
  retry: RETRY_OPTIONS,
  report: REPORT_OPTIONS,
  coordinate: COORDINATE_OPTIONS,
};
/** Positional arguments each command needs, by name, in order. */
const POSITIONALS: Readonly<Record<string, readonly string[]>> = { ...COMMAND_POSITIONALS, ...RUN_COMMAND_POSITIONALS };
const COMMANDS = Object.keys(COMMAND_OPTIONS);
/** Flags every command takes (yargs adds them). */
const GLOBAL_OPTIONS: OptionSpecs = { help: { type: 'boolean', alias: 'h' }, version: { type: 'boolean' } };

const TOP_EPILOG = `Environment (each command's --help says what it reads and why):
  supervisor  DATABASE_URL, PORT, HOST, AUTOPACK_API_KEY,
              AUTOPACK_LEASE_SECONDS, AUTOPACK_DATA_DIR,
              AUTOPACK_MAX_BODY_BYTES, AUTOPACK_LOG_LEVEL
  executor    AUTOPACK_API_URL, AUTOPACK_API_KEY, OPENAI_API_KEY,
              ANTHROPIC_API_KEY, OPENAI_BASE_URL, ANTHROPIC_BASE_URL,
              AUTOPACK_MODELS, AUTOPACK_LOG_LEVEL
  demo        OPENAI_API_KEY, ANTHROPIC_API_KEY (with --live),
              AUTOPACK_LOG_LEVEL
  build, builds, approve, start, runs, status, cancel, retry, report,
  coordinate
              AUTOPACK_API_URL, AUTOPACK_API_KEY
  any         AUTOPACK_DEBUG=1 adds the stack trace to an unexpected error

Exit codes:
  0  done (also --help and --version)
  1  bad usage or configuration: an unknown command or flag, a bad value
     (nothing is started); admin commands (build, builds, approve, start,
     runs, status, cancel, retry, report): a 4xx answer (its code and
     message are printed)
  2  executor: the supervisor could not be reached after its retries;
     admin commands: the supervisor is unreachable or failing
  3  executor: the run it served ended in a failed state or was cancelled;
     build --wait: the build failed or was cancelled; status --watch: the
     run ended other than DONE_SUCCESS`;

const SUPERVISOR_EPILOG = `Serves the REST API that plans runs, leases phases to executors and
records attempts, audits, budgets and issues; GET /docs is the API
reference. Storage is PostgreSQL: DATABASE_URL, or an embedded PostgreSQL
under AUTOPACK_DATA_DIR when it is unset. Migrations run on start. Runs
until SIGINT/SIGTERM.

Environment (a flag wins over its variable):
  DATABASE_URL             postgres:// URL; unset: embedded PostgreSQL
  PORT, HOST               listen address (default 127.0.0.1:8000)
  AUTOPACK_API_KEY         when set, every route but GET /health needs
                           the header X-API-Key (or Authorization:
                           Bearer); when unset, HOST must be loopback
  AUTOPACK_LEASE_SECONDS   phase lease length (default 60)
  AUTOPACK_DATA_DIR        embedded PostgreSQL's place (.autopack)
  AUTOPACK_MAX_BODY_BYTES  request body limit (default 2 MiB)
  AUTOPACK_LOG_LEVEL       fatal, error, warn, info (default), debug
  AUTOPACK_RATE_LIMIT_PER_SEC, AUTOPACK_RATE_LIMIT_BURST
                           write requests per second per client
                           (default 100, 0: unlimited), burst (400)

Exit codes:
  0  stopped by SIGINT/SIGTERM
  1  bad usage or configuration, or it could not start (address in
     use, database unreachable)`;

const LLM_SERVER_EPILOG = `Serves scripted replies in the OpenAI (chat completions) and Anthropic
(messages) wire formats, for offline demos and tests; no key is checked.
It prints the base URLs to give an executor as OPENAI_BASE_URL and
ANTHROPIC_BASE_URL. Runs until SIGINT/SIGTERM. A script looks like
  replies:
    - tool: <forced tool name>  # optional: match, provider, usage, times
      arguments: { ... }        # or text, raw_arguments, error: {status}

Environment: none read.

Exit codes:
  0  stopped by SIGINT/SIGTERM
  1  bad usage, an invalid script, or the address is in use`;

const DEMO_EPILOG = `Starts a droplet build from an intent in auto mode: creates an empty
repository, starts a supervisor (embedded PostgreSQL) and an executor as
separate processes, a local deployer and a local registry, and plays the
planner, builder and auditor from a bundled scripted LLM server (or the
real providers with --live). The plan writes a tiny HTTP service with a
test; the build verifies, promotes, deploys it as a local process,
checks its health and registers it. The demo prints each step, the
deployment URL with the service's answers, the registry entry, the
branch log and where the logs are, then stops everything it started.
With --plan: the plan-file demo instead (a sample repository, 2 tiers
and 4 phases; it prints the run summary and the integration branch).
Offline, no database and no key are needed.

Environment:
  OPENAI_API_KEY, ANTHROPIC_API_KEY  provider keys, with --live only
  AUTOPACK_LOG_LEVEL                 its processes' log level (info)
  DATABASE_URL and AUTOPACK_API_KEY are ignored: the demo always uses its
  own embedded PostgreSQL on loopback.

Exit codes:
  0  the build completed and the deployed service answered 200 on
     /health (--plan: the run ended DONE_SUCCESS with one commit per phase)
  1  bad usage, or the demo did not succeed (the executor's log tail is
     printed)`;

/** Adds `examples` to a command's help. */
function withExamples<T>(y: Argv<T>, examples: ReadonlyArray<[string, string]>): Argv<T> {
  let out = y;
  for (const [cmd, what] of examples) out = out.example(cmd, what);
  return out;
}

/** Usage problems found before anything starts: one line each, exit code 1. */
export class CliUsageError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'CliUsageError';
  }
}

/** A flag as typed: `--poll-interval=5` is { typed: '--poll-interval', name: 'poll-interval', value: '5' }. */
export interface TypedFlag {
  typed: string;
  name: string;
  /** The text after `=`, else the next argument unless that is a flag; undefined when neither. */
  value: string | undefined;
}

const isFlag = (a: string | undefined) => a !== undefined && a.startsWith('-') && a !== '-' && !/^-\.?\d/.test(a);

/** The flags in `args`, up to `--`, as the user typed them (`-abc` is -a, -b and -c). */
export function typedFlags(args: readonly string[]): TypedFlag[] {
  const flags: TypedFlag[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') break;
    if (!isFlag(a)) continue;
    const eq = a.indexOf('=');
    const body = eq < 0 ? a : a.slice(0, eq);
    const value = eq >= 0 ? a.slice(eq + 1) : isFlag(args[i + 1]) || args[i + 1] === '--' ? undefined : args[i + 1];
    if (body.startsWith('--')) flags.push({ typed: body, name: body.slice(2), value });
    else for (const c of body.slice(1)) flags.push({ typed: `-${c}`, name: c, value: body.endsWith(c) ? value : undefined });
  }
  return flags;
}

/** The edit distance between two strings. */
export function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/** The candidate closest to `typed`, when one is close enough to be what was meant. */
export function closest(typed: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = levenshtein(typed.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  if (best !== undefined && bestDistance <= Math.max(2, Math.floor(typed.length / 3))) return best;
  // A prefix (--poll for --poll-interval) or a word of a longer flag (--interval).
  const part = candidates.filter((c) => typed.length >= 3 && (c.startsWith(typed) || c.split('-').includes(typed)));
  return part.length === 1 ? part[0] : undefined;
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The option a typed name stands for, as yargs reads it (camelCase, aliases, `--no-` for booleans). */
function resolveFlag(name: string, specs: OptionSpecs): { key: string; negated: boolean } | undefined {
  for (const n of new Set([name, kebab(name)])) {
    for (const [key, spec] of Object.entries(specs)) {
      const aliases = spec.alias === undefined ? [] : ([] as string[]).concat(spec.alias);
      if (key === n || aliases.includes(n)) return { key, negated: false };
    }
  }
  if (name.startsWith('no-')) {
    const r = resolveFlag(name.slice(3), specs);
    if (r && !r.negated && specs[r.key].type === 'boolean') return { key: r.key, negated: true };
  }
  return undefined;
}

/**
 * Every usage problem of a command line, each once, naming flags as typed: unknown flags
 * (with the closest known one), missing or repeated values, numbers that are not numbers,
 * missing required flags and stray arguments. Empty when the line is fine.
 */
export function usageProblems(command: string | undefined, args: readonly string[], argv: Arguments): string[] {
  const specs: OptionSpecs = { ...GLOBAL_OPTIONS, ...(command ? COMMAND_OPTIONS[command] : {}) };
  const problems = new Set<string>();
  const seen = new Map<string, string>();
  const names = Object.entries(specs).flatMap(([key, s]) => (key.length > 1 ? [key, ...(s.type === 'boolean' && s.default === true ? [`no-${key}`] : [])] : []));
  for (const flag of typedFlags(args)) {
    const r = resolveFlag(flag.name, specs);
    if (!r) {
      const hint = flag.name.length > 1 ? closest(flag.name, names) : undefined;
      problems.add(`${flag.typed}: unknown flag${hint ? ` (did you mean --${hint}?)` : ''}`);
      continue;
    }
    const spec = specs[r.key];
    if (seen.has(r.key) && !REPEATABLE_FLAGS.has(r.key)) {
      problems.add(`${flag.typed}: given more than once`);
      continue;
    }
    seen.set(r.key, flag.typed);
    if (spec.type === 'boolean') continue;
    const choices = spec.choices === undefined ? undefined : ([] as unknown[]).concat(spec.choices).map(String);
    if (flag.value === undefined) problems.add(`${flag.typed}: needs a value`);
    else if (choices && !choices.includes(flag.value)) problems.add(`${flag.typed}: must be one of ${choices.join(', ')} (got ${JSON.stringify(flag.value)})`);
    else if (spec.type === 'number' && (!flag.value.trim() || !Number.isFinite(Number(flag.value)))) {
      problems.add(`${flag.typed}: must be a number (got ${JSON.stringify(flag.value)})`);
    }
  }
  for (const [key, spec] of Object.entries(specs)) {
    const typed = seen.get(key) ?? `--${key}`;
    if (spec.demandOption && argv[key] === undefined && !seen.has(key)) problems.add(`--${key}: required`);
    // What yargs made of a number, in case it read the line otherwise than typedFlags.
    if (spec.type === 'number' && Number.isNaN(argv[key]) && ![...problems].some((p) => p.startsWith(`${typed}:`))) problems.add(`${typed}: must be a number`);
  }
  const stray = [...argv._, ...((argv['--'] as unknown[] | undefined) ?? [])].map(String);
  if (command && stray[0] === command) stray.splice(0, 1);
  else if (!command) {
    if (!stray.length) problems.add(`name a command: ${COMMANDS.join(', ')}`);
    else if (!COMMANDS.includes(stray[0])) problems.add(`unknown command ${JSON.stringify(stray[0])} (commands: ${COMMANDS.join(', ')})`);
    stray.splice(0, 1);
  }
  for (const s of stray) problems.add(`unexpected argument ${JSON.stringify(s)}`);
  return [...problems];
}

/**
 * Stops yargs from rendering a command's whole `--help` text each time the command runs. It
 * does so to show the help on a later failure, which `.fail()` here never does (it throws a
 * one-line usage error instead), and rendering it measures every word's terminal width: about
 * 0.15-0.25 s of CPU at every start of every command, the executor's included. `--help` itself
 * renders as before. Through yargs' internal methods (yargs 17-18), skipped when they differ.
 */
function skipHelpCache(cli: Argv<unknown>): void {
  const internal = cli as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: unknown } } };
  const usage = internal.getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
}

/**
 * `autopack <command>`: one yargs CLI for the supervisor, the executor, the scripted LLM
 * server and the demo. The command line is checked in full before any command starts (an
 * unknown flag or command, or a bad value, is exit code 1 and nothing runs). Heavy modules
 * are imported lazily so `autopack executor` never loads NestJS. Returns an exit code, or
 * undefined for long-running servers.
 */
export async function runCli(argv: string[]): Promise<number | undefined> {
  let result: number | undefined;
  let ran = false;
  /** The command yargs entered (its builder ran), for messages and the flags it takes. */
  let command: string | undefined;
  const prefix = () => `autopack${command ? ` ${command}` : ''}`;
  const enter = <T>(name: string, y: Argv<T>) => {
    command = name;
    return y;
  };
  const cli = yargs(argv)
    .scriptName('autopack')
    .locale('en')
    .usage('$0 <command> [options]\n\nAutopack: autonomous, governed software builds. A supervisor plans runs and\nleases their phases to executors, which build, audit and commit each phase.')
    .command(
      'supervisor',
      'run the supervisor REST API on PostgreSQL',
      (y) =>
        enter('supervisor', y)
          .options(SUPERVISOR_OPTIONS)
          .usage('$0 supervisor [options]\n\nRun the Autopack supervisor.')
          .example('$0 supervisor', 'embedded PostgreSQL, http://127.0.0.1:8000')
          .example('$0 supervisor --host 0.0.0.0', 'every interface (needs AUTOPACK_API_KEY)')
          .epilog(SUPERVISOR_EPILOG),
      async (args) => {
        ran = true;
        const { runSupervisorCommand } = await import('./supervisor-command.js');
        result = await runSupervisorCommand({ port: args.port, host: args.host });
      },
    )
    .command(
      'executor',
      'claim and execute phases: build, CI, audit, commit (also `autopack-executor`)',
      (y) => executorCommand(enter('executor', y)),
      async (args) => {
        ran = true;
        const { runExecutor } = await import('../../executor/src/main.js');
        result = await runExecutor(args);
      },
    )
    .command(
      'llm-server',
      'run the scripted LLM server (OpenAI and Anthropic wire formats) for offline demos and tests',
      (y) =>
        enter('llm-server', y)
          .options(LLM_SERVER_OPTIONS)
          .usage('$0 llm-server --script <file> [options]\n\nServe a scripted LLM.')
          .example('$0 llm-server --script replies.yaml', 'prints the base URLs to use')
          .epilog(LLM_SERVER_EPILOG),
      async (args) => {
        ran = true;
        const { runLlmServerCommand } = await import('./llm-server-command.js');
        result = await runLlmServerCommand({ script: args.script, port: args.port, host: args.host, record: args.record });
      },
    )
    .command(
      'demo',
      'build, deploy and register a tiny service from an intent, offline, and print where to look',
      (y) =>
        enter('demo', y)
          .options(DEMO_OPTIONS)
          .usage('$0 demo [options]\n\nRun the end-to-end demo.')
          .example('$0 demo', 'offline: scripted LLM server, embedded PostgreSQL')
          .example('$0 demo --live --dir /tmp/demo', 'the same build, real providers')
          .example('$0 demo --plan', 'the plan-file demo: 2 tiers, 4 phases')
          .epilog(DEMO_EPILOG),
      async (args) => {
        ran = true;
        const { runDemo } = await import('./demo.js');
        result = await runDemo({ live: args.live, plan: args.plan, dir: args.dir });
      },
    )
    .command(
      'build <intent>',
      'start a droplet build from an intent; --wait follows it to the end',
      (y) => withExamples(enter('build', y).options(BUILD_OPTIONS).positional('intent', { type: 'string', describe: 'what to build, in words' }).usage('$0 build "<intent>" [options]\n\nStart a droplet build.'), BUILD_EXAMPLES).epilog(BUILD_EPILOG),
      async (args) => {
        ran = true;
        const { runBuildCommand } = await import('./build-commands.js');
        result = await runBuildCommand({ ...args, intent: String(args.intent) });
      },
    )
    .command(
      'builds',
      'list droplet builds',
      (y) => withExamples(enter('builds', y).options(BUILDS_OPTIONS).usage('$0 builds [options]\n\nList droplet builds.'), BUILDS_EXAMPLES).epilog(BUILDS_EPILOG),
      async (args) => {
        ran = true;
        const { runBuildsCommand } = await import('./build-commands.js');
        result = await runBuildsCommand(args);
      },
    )
    .command(
      'approve <id>',
      'approve (or --reject) a build or run waiting for approval',
      (y) => withExamples(enter('approve', y).options(APPROVE_OPTIONS).positional('id', { type: 'string', describe: 'a build id or a run id' }).usage('$0 approve <id> [options]\n\nAnswer an approval gate.'), APPROVE_EXAMPLES).epilog(APPROVE_EPILOG),
      async (args) => {
        ran = true;
        const { runApproveCommand } = await import('./build-commands.js');
        result = await runApproveCommand({ ...args, id: String(args.id) });
      },
    )
    .command(
      'coordinate',
      'keep a directory of services moving: detect each stage, start what moves it on',
      (y) =>
        withExamples(enter('coordinate', y).options(COORDINATE_OPTIONS).usage('$0 coordinate --services DIR [options]\n\nCoordinate services.'), COORDINATE_EXAMPLES).epilog(COORDINATE_EPILOG),
      async (args) => {
        ran = true;
        const { runCoordinateCommand } = await import('./coordinate.js');
        result = await runCoordinateCommand(args);
      },
    )
    .command(
      'start <plan>',
      'start a run from a plan file (JSON or YAML): the body of POST /runs/start',
      (y) => withExamples(enter('start', y).options(START_OPTIONS).positional('plan', { type: 'string', describe: 'plan.json or plan.yaml' }).usage('$0 start <plan.json|plan.yaml> [options]\n\nStart a run.'), START_EXAMPLES).epilog(START_EPILOG),
      async (args) => {
        ran = true;
        const { runStartCommand } = await import('./run-commands.js');
        result = await runStartCommand({ ...args, plan: String(args.plan) });
      },
    )
    .command(
      'runs',
      'list runs',
      (y) => withExamples(enter('runs', y).options(RUNS_OPTIONS).usage('$0 runs [options]\n\nList runs.'), RUNS_EXAMPLES).epilog(RUNS_EPILOG),
      async (args) => {
        ran = true;
        const { runRunsCommand } = await import('./run-commands.js');
        result = await runRunsCommand(args);
      },
    )
    .command(
      'status <id>',
      "show a run's state, budgets and phases; --watch follows it to the end",
      (y) => withExamples(enter('status', y).options(STATUS_OPTIONS).positional('id', { type: 'string', describe: 'a run id' }).usage('$0 status <id> [options]\n\nShow a run.'), STATUS_EXAMPLES).epilog(STATUS_EPILOG),
      async (args) => {
        ran = true;
        const { runStatusCommand } = await import('./run-commands.js');
        result = await runStatusCommand({ ...args, id: String(args.id) });
      },
    )
    .command(
      'cancel <id>',
      'cancel a run',
      (y) => withExamples(enter('cancel', y).options(CANCEL_OPTIONS).positional('id', { type: 'string', describe: 'a run id' }).usage('$0 cancel <id> [options]\n\nCancel a run.'), CANCEL_EXAMPLES).epilog(CANCEL_EPILOG),
      async (args) => {
        ran = true;
        const { runCancelCommand } = await import('./run-commands.js');
        result = await runCancelCommand({ ...args, id: String(args.id) });
      },
    )
    .command(
      'retry <run_id> <phase_id>',
      'queue a failed phase again (reopening the run it ended)',
      (y) =>
        withExamples(
          enter('retry', y)
            .options(RETRY_OPTIONS)
            .positional('run_id', { type: 'string', describe: 'the run' })
            .positional('phase_id', { type: 'string', describe: 'the FAILED phase' })
            .usage('$0 retry <run_id> <phase_id> [options]\n\nRetry a failed phase.'),
          RETRY_EXAMPLES,
        ).epilog(RETRY_EPILOG),
      async (args) => {
        ran = true;
        const { runRetryCommand } = await import('./run-commands.js');
        result = await runRetryCommand({ ...args, runId: String(args.run_id), phaseId: String(args.phase_id) });
      },
    )
    .command(
      'report <id>',
      "print a run's summary report",
      (y) => withExamples(enter('report', y).options(REPORT_OPTIONS).positional('id', { type: 'string', describe: 'a run id' }).usage('$0 report <id> [options]\n\nReport on a run.'), REPORT_EXAMPLES).epilog(REPORT_EPILOG),
      async (args) => {
        ran = true;
        const { runReportCommand } = await import('./run-commands.js');
        result = await runReportCommand({ ...args, id: String(args.id) });
      },
    )
    .example('$0 supervisor', 'start the supervisor on http://127.0.0.1:8000')
    .example('$0 executor --run-id my-run --workspace ./repo', 'serve run my-run in ./repo')
    .example('$0 demo', 'a whole run end to end, offline')
    .example('$0 build "A URL shortener" --wait', 'build from an intent and follow it')
    .example('$0 start plan.yaml && $0 status my-run --watch', 'start a run from a plan and follow it')
    .epilog(TOP_EPILOG)
    // Checked before yargs' own validation and before any handler: every problem, as typed.
    .middleware((args) => {
      if (args.help || args.version) return;
      const problems = usageProblems(command, argv, args);
      if (problems.length) throw new CliUsageError(problems.map((p) => `${prefix()}: ${p}`));
    }, true)
    .demandCommand(1, `name a command: ${COMMANDS.join(', ')}`)
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version(AUTOPACK_VERSION)
    .exitProcess(false)
    .fail((msg, err) => {
      // An error a command handler threw is not a usage problem: main.ts reports it.
      if (err && err.name !== 'YError') throw err;
      const text = (msg ?? err?.message ?? 'bad usage').split('\n')[0];
      const positionals = command ? POSITIONALS[command] : undefined;
      if (positionals && /^Not enough non-option arguments/.test(text)) throw new CliUsageError([`${prefix()}: missing ${positionals.map((p) => `<${p}>`).join(' ')}`]);
      const meant = /^Did you mean (.+)\?$/.exec(text);
      if (meant) {
        const typed = argv.find((a) => !isFlag(a)) ?? '';
        throw new CliUsageError([`autopack: unknown command ${JSON.stringify(typed)} (did you mean ${meant[1]}?)`]);
      }
      throw new CliUsageError([`${prefix()}: ${text}`]);
    });
  skipHelpCache(cli);
  try {
    await cli.parseAsync();
  } catch (err) {
    if (!(err instanceof CliUsageError)) throw err;
    process.stderr.write(`${err.problems.join('\n')}\n`);
    return 1;
  }
  // No handler ran and nothing failed: --help or --version was answered.
  return ran ? result : 0;
}
