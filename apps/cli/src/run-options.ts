import { RUN_STATES } from '@app/contracts';
import type { Options } from 'yargs';
import { API_OPTIONS } from './build-options.js';

/*
 * The flags and `--help` texts of the admin commands on runs (CONTRACT.md section 10):
 * `start`, `runs`, `status`, `cancel`, `retry`, `report`. What they do is in run-commands.ts.
 */

export const START_OPTIONS = {
  ...API_OPTIONS,
  'run-id': { type: 'string', describe: "the run's id, instead of the plan file's run.run_id" },
} as const satisfies Record<string, Options>;

export const RUNS_OPTIONS = {
  ...API_OPTIONS,
  state: { type: 'string', choices: RUN_STATES, describe: 'only runs in this state' },
  json: { type: 'boolean', default: false, describe: 'print the raw JSON answer instead of a table' },
} as const satisfies Record<string, Options>;

export const STATUS_OPTIONS = {
  ...API_OPTIONS,
  watch: { type: 'boolean', default: false, describe: 'follow the run until it ends: exit 0 on DONE_SUCCESS, 3 on any other end' },
  json: { type: 'boolean', default: false, describe: 'print the raw JSON answer (with --watch: one run per line, on each change)' },
} as const satisfies Record<string, Options>;

export const CANCEL_OPTIONS = { ...API_OPTIONS } as const satisfies Record<string, Options>;
export const RETRY_OPTIONS = { ...API_OPTIONS } as const satisfies Record<string, Options>;

export const REPORT_OPTIONS = {
  ...API_OPTIONS,
  json: { type: 'boolean', default: false, describe: 'print the raw JSON answer' },
} as const satisfies Record<string, Options>;

/** Positional arguments of the run commands, by name, in order. */
export const RUN_COMMAND_POSITIONALS: Readonly<Record<string, readonly string[]>> = {
  start: ['plan'],
  status: ['id'],
  cancel: ['id'],
  retry: ['run_id', 'phase_id'],
  report: ['id'],
};

const ENVIRONMENT = `Environment (a flag wins over its variable):
  AUTOPACK_API_URL  supervisor URL (default http://localhost:8000)
  AUTOPACK_API_KEY  supervisor key, sent as the X-API-Key header; never
                    printed`;

const EXIT_CODES = `Exit codes:
  0  done
  1  bad usage (nothing is sent), or the supervisor answered 4xx: its
     error code and message are printed
  2  the supervisor is unreachable, failing (5xx) or not answering as one`;

export const START_EPILOG = `Starts a run: the plan file (JSON, or YAML when it ends in .yaml or .yml)
is the body of POST /runs/start: {run: {run_id, ...}, tiers: [...],
phases: [...]}. --run-id replaces run.run_id. The plan is checked before
anything is sent. Prints the run id and its state.

${ENVIRONMENT}

${EXIT_CODES}`;

export const RUNS_EPILOG = `Lists runs (GET /runs, newest first, up to 100): id, state, phases done,
current phase, tokens and creation time.

${ENVIRONMENT}

${EXIT_CODES}`;

export const STATUS_EPILOG = `Shows a run (GET /runs/<id>): state, budgets, tiers and phases. With
--watch it polls the run every second until it ends: in a terminal a
progress bar of phases done, otherwise one line per change of a phase's
or the run's state.

${ENVIRONMENT}

${EXIT_CODES}
  3  with --watch: the run ended in a failed state or was cancelled`;

export const CANCEL_EPILOG = `Cancels a run (POST /runs/<id>/cancel): its leases are revoked and
nothing more is claimed. Prints the run's new state.

${ENVIRONMENT}

${EXIT_CODES}`;

export const RETRY_EPILOG = `Retries a FAILED phase (POST /runs/<run_id>/phases/<phase_id>/retry): it
goes back to QUEUED with its attempts reset; a run that had ended because
of it is reopened. Prints the phase's and the run's new state.

${ENVIRONMENT}

${EXIT_CODES}`;

export const REPORT_EPILOG = `Prints a run's summary (GET /reports/run_summary/<id>): state, budgets,
LLM usage and cost, issues, and each phase with its attempts, commit and
last failure.

${ENVIRONMENT}

${EXIT_CODES}`;

export const START_EXAMPLES: ReadonlyArray<[string, string]> = [
  ['$0 start plan.yaml', 'start the run the plan describes'],
  ['$0 start plan.json --run-id nightly-42', 'the same plan under another run id'],
];
export const RUNS_EXAMPLES: ReadonlyArray<[string, string]> = [
  ['$0 runs', 'the latest runs, as a table'],
  ['$0 runs --state PHASE_EXECUTION --json', 'the running ones, as JSON'],
];
export const STATUS_EXAMPLES: ReadonlyArray<[string, string]> = [
  ['$0 status my-run --watch', 'follow a run to its end'],
  ['$0 status my-run --watch --json', 'one JSON run per change, for scripts'],
];
export const CANCEL_EXAMPLES: ReadonlyArray<[string, string]> = [['$0 cancel my-run', 'cancel run my-run']];
export const RETRY_EXAMPLES: ReadonlyArray<[string, string]> = [['$0 retry my-run p3', 'queue the failed phase p3 again']];
export const REPORT_EXAMPLES: ReadonlyArray<[string, string]> = [['$0 report my-run', "the run's summary"]];
