import { BUILD_APPROVAL_MODES, BUILD_CHECKPOINTS, BUILD_STATUSES } from '@app/contracts';
import type { Options } from 'yargs';

/*
 * The flags and `--help` texts of the admin commands that talk to the supervisor's build API
 * (`build`, `builds`, `approve`), as data, so the CLI can check what was typed against them
 * before anything is sent. What they do is in build-commands.ts.
 */

/** Where the supervisor is and its key: every admin command takes them. */
export const API_OPTIONS = {
  'api-url': { type: 'string', describe: 'supervisor URL', defaultDescription: '$AUTOPACK_API_URL or http://localhost:8000' },
  'api-key': { type: 'string', describe: 'supervisor key, sent as X-API-Key (never printed)', defaultDescription: '$AUTOPACK_API_KEY' },
} as const satisfies Record<string, Options>;

export const BUILD_OPTIONS = {
  ...API_OPTIONS,
  'droplet-id': { type: 'string', describe: 'the droplet (and build) id; generated when absent' },
  'droplet-name': { type: 'string', describe: 'a display name for the droplet' },
  'approval-mode': { type: 'string', choices: BUILD_APPROVAL_MODES, describe: 'auto never waits; checkpoints waits after the SPEC and after Verify; final waits once, after Verify', defaultDescription: 'auto' },
  auto: { type: 'boolean', default: false, describe: 'the same as --approval-mode auto' },
  deploy: { type: 'boolean', default: true, describe: 'deploy after a verified build; --no-deploy: promotion only (auto_deploy false)' },
  notify: { type: 'string', describe: 'a notification channel, repeatable: slack, email, webhook, or a JSON object such as \'{"type":"webhook","url":"https://..."}\'' },
  wait: { type: 'boolean', default: false, describe: 'follow the build until it ends: exit 0 when completed, 3 when failed or cancelled' },
  'poll-interval': { type: 'number', default: 2, describe: 'with --wait: seconds between status polls (> 0)' },
  json: { type: 'boolean', default: false, describe: 'print the raw JSON answers (with --wait: one status per line, on each change)' },
} as const satisfies Record<string, Options>;

export const BUILDS_OPTIONS = {
  ...API_OPTIONS,
  status: { type: 'string', choices: BUILD_STATUSES, describe: 'only builds with this status' },
  json: { type: 'boolean', default: false, describe: 'print the raw JSON answer instead of a table' },
} as const satisfies Record<string, Options>;

export const APPROVE_OPTIONS = {
  ...API_OPTIONS,
  reject: { type: 'boolean', default: false, describe: 'reject instead of approving (a build then fails)' },
  notes: { type: 'string', describe: 'notes recorded with the answer' },
  checkpoint: { type: 'string', choices: BUILD_CHECKPOINTS, describe: 'builds only: the checkpoint being answered (409 when the build waits elsewhere)' },
} as const satisfies Record<string, Options>;

/** Flags that may be given more than once (each value is kept). */
export const REPEATABLE_FLAGS: ReadonlySet<string> = new Set(['notify']);

/** Positional arguments each command needs, by name, in order. */
export const COMMAND_POSITIONALS: Readonly<Record<string, readonly string[]>> = {
  build: ['intent'],
  approve: ['id'],
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

export const BUILD_EPILOG = `Starts a droplet build: POST /executor/build-droplet with the intent. Prints
the build id and its status URL. With --wait it polls the build's status and
prints one line per change of status, step or progress; when the build waits
for approval it says at which checkpoint and how to answer
(autopack approve <id>).

${ENVIRONMENT}

${EXIT_CODES}
  3  with --wait: the build failed or was cancelled (its error is printed)`;

export const BUILDS_EPILOG = `Lists droplet builds (GET /executor/builds): id, status, current step,
progress, deployment URL and creation time, in the supervisor's order.

${ENVIRONMENT}

${EXIT_CODES}`;

export const APPROVE_EPILOG = `Answers an approval gate. When <id> is a build (GET
/executor/builds/<id>/status answers), POST /executor/builds/<id>/approve;
when that answers 404, <id> is taken as a run: POST /runs/<id>/approve.
Prints the new status. A rejected build fails; nothing is promoted,
deployed or registered.

${ENVIRONMENT}

${EXIT_CODES}`;

export const BUILD_EXAMPLES: ReadonlyArray<[string, string]> = [
  ['$0 build "A URL shortener with a REST API" --wait', 'start a build and follow it to the end'],
  ['$0 build "..." --approval-mode checkpoints --notify slack --notify \'{"type":"webhook","url":"https://hooks.example/x"}\'', 'wait for approval at both checkpoints, notify two channels'],
];

export const BUILDS_EXAMPLES: ReadonlyArray<[string, string]> = [
  ['$0 builds', 'every build, as a table'],
  ['$0 builds --status awaiting_approval --json', 'the builds waiting for an answer, as JSON'],
];

export const APPROVE_EXAMPLES: ReadonlyArray<[string, string]> = [
  ['$0 approve b-42 --checkpoint spec_generated', 'approve the SPEC of build b-42'],
  ['$0 approve my-run --reject --notes "not this way"', 'reject run my-run'],
];

export const COORDINATE_OPTIONS = {
  ...API_OPTIONS,
  services: { type: 'string', describe: 'the directory whose git repositories (one level down) are the services' },
  once: { type: 'boolean', default: false, describe: 'one pass, then exit' },
  interval: { type: 'number', default: 30, describe: 'seconds between passes (> 0)' },
  'approval-mode': { type: 'string', choices: BUILD_APPROVAL_MODES, describe: 'approval mode of the builds it starts', defaultDescription: 'auto' },
} as const satisfies Record<string, Options>;

export const COORDINATE_EPILOG = `Keeps a directory of services moving. Each git repository directly under
--services is a service. Each pass: promotes the coordinator's finished
runs into the service's main branch, detects every service's stage from
its main branch (needs_spec, ready_for_build, needs_tests, tests_failing,
ready_for_deploy, production; the test command comes from autopack.yaml
ci.command, a package.json test script or a Makefile test target, and
runs in an exported copy of the tree), reports it to the supervisor, which
starts the build or run that moves it on (at most one per service), and
prints one line per service. Without --once it repeats every --interval
seconds until SIGINT/SIGTERM.

${ENVIRONMENT}

${EXIT_CODES}`;

export const COORDINATE_EXAMPLES: ReadonlyArray<[string, string]> = [
  ['$0 coordinate --services ./services --once', 'one pass over every service'],
  ['$0 coordinate --services ./services --interval 60 --approval-mode final', 'a pass a minute; builds wait for approval once, after Verify'],
];
