import type { Argv, Options } from 'yargs';
import type { ExecutorFlags } from './config.js';

/** The executor's flags, as data so the CLI can check what was typed against them. */
export const EXECUTOR_OPTIONS = {
  'run-id': { type: 'string', describe: 'only claim phases of this run; without it, claim from any run' },
  'api-url': { type: 'string', describe: 'supervisor URL', defaultDescription: '$AUTOPACK_API_URL or http://localhost:8000' },
  'api-key': { type: 'string', describe: 'supervisor key', defaultDescription: '$AUTOPACK_API_KEY' },
  'openai-key': { type: 'string', describe: 'OpenAI key', defaultDescription: '$OPENAI_API_KEY' },
  'anthropic-key': { type: 'string', describe: 'Anthropic key', defaultDescription: '$ANTHROPIC_API_KEY' },
  workspace: { type: 'string', default: '.', describe: 'the git repository the run edits' },
  'poll-interval': { type: 'number', default: 10, describe: 'seconds between claim attempts when the long poll returns nothing (> 0)' },
  'max-iterations': { type: 'number', describe: 'stop after this many phase attempts (a positive integer)', defaultDescription: 'unlimited' },
  'dual-auditor': { type: 'boolean', default: true, describe: 'two auditors (OpenAI and Anthropic) for high-risk phases; --no-dual-auditor: one' },
  'executor-id': { type: 'string', describe: 'identity shown in leases and metrics', defaultDescription: 'hostname-pid' },
  'exit-when-idle': { type: 'boolean', default: false, describe: 'exit 0 when the run (or, without --run-id, every run) has nothing left to claim' },
} as const satisfies Record<string, Options>;

/** What `autopack executor --help` says below the flags: self-contained, no other file needed. */
export const EXECUTOR_EPILOG = `Claims phases from the supervisor one at a time. For each, a Builder model
writes the change in the --workspace repository, the phase's CI command runs,
one or two Auditor models review the change, and an accepted change is
committed to the run's integration branch. The Builder uses OpenAI when an
OpenAI key is present, otherwise Anthropic; the Auditor uses the other
provider when both keys exist. High-risk phases get two auditors (one per
provider) unless --no-dual-auditor.

Environment (a flag wins over its variable):
  AUTOPACK_API_URL     supervisor URL (default http://localhost:8000)
  AUTOPACK_API_KEY     supervisor key, sent as X-API-Key
  OPENAI_API_KEY, ANTHROPIC_API_KEY
                       provider keys; at least one is required
  OPENAI_BASE_URL, ANTHROPIC_BASE_URL
                       provider endpoints, read as the official SDKs read them
                       (OpenAI's ends in /v1, Anthropic's does not)
  AUTOPACK_MODELS      optional YAML/JSON model-routing file: role x category x
                       complexity -> provider/model, escalation, prices
  AUTOPACK_LOG_LEVEL   fatal, error, warn, info (default), debug, trace
  AUTOPACK_LOG_FORMAT  pretty or json (default: pretty when stderr is a terminal)
  AUTOPACK_SUPERVISOR_RETRY_SECONDS
                       how long to retry an unreachable supervisor (120)

Exit codes:
  0  the run it served ended DONE_SUCCESS, or (without --run-id) nothing was
     left, or it was told to stop (SIGINT/SIGTERM)
  1  bad usage or configuration: an unknown or invalid flag (then nothing is
     started), no provider key, a workspace that is not a clean git
     repository, a provider refusing the key or the model
  2  the supervisor could not be reached after its retries
  3  the run it served ended in a failed state or was cancelled`;

/** Examples shown by `autopack executor --help`. */
export const EXECUTOR_EXAMPLES: ReadonlyArray<[string, string]> = [
  ['$0 executor --run-id my-run --workspace ./repo', 'serve run my-run (key from $OPENAI_API_KEY)'],
  ['$0 executor --api-url http://sup:8000 --exit-when-idle', 'serve every run until none has work left'],
];

/** Adds the executor's flags to a yargs command. */
export function executorOptions<T>(y: Argv<T>): Argv<T & ExecutorFlags> {
  return y.options(EXECUTOR_OPTIONS) as unknown as Argv<T & ExecutorFlags>;
}

/** Adds the executor's flags, examples and epilog (its whole `--help`) to a yargs command. */
export function executorCommand<T>(y: Argv<T>): Argv<T & ExecutorFlags> {
  let out = executorOptions(y).usage('$0 executor [options]\n\nClaim and execute phases of Autopack runs.');
  for (const [cmd, what] of EXECUTOR_EXAMPLES) out = out.example(cmd, what);
  return out.epilog(EXECUTOR_EPILOG);
}
