import type { Argv } from 'yargs';
import type { ExecutorFlags } from './config.js';

/** Adds the executor's flags (CONTRACT.md section 3) to a yargs command. */
export function executorOptions<T>(y: Argv<T>): Argv<T & ExecutorFlags> {
  return y
    .option('run-id', { type: 'string', describe: 'only claim phases of this run; without it, claim from any run' })
    .option('api-url', { type: 'string', describe: 'supervisor URL (default $AUTOPACK_API_URL or http://localhost:8000)' })
    .option('api-key', { type: 'string', describe: 'supervisor key (default $AUTOPACK_API_KEY)' })
    .option('openai-key', { type: 'string', describe: 'OpenAI key (default $OPENAI_API_KEY)' })
    .option('anthropic-key', { type: 'string', describe: 'Anthropic key (default $ANTHROPIC_API_KEY)' })
    .option('workspace', { type: 'string', default: '.', describe: 'the git repository the run edits' })
    .option('poll-interval', { type: 'number', default: 10, describe: 'seconds between claim attempts when the long poll returns nothing' })
    .option('max-iterations', { type: 'number', describe: 'stop after this many phase attempts' })
    .option('dual-auditor', { type: 'boolean', default: true, describe: 'two auditors for high-risk phases (--no-dual-auditor: one)' })
    .option('executor-id', { type: 'string', describe: 'identity shown in leases and metrics (default hostname-pid)' })
    .option('exit-when-idle', { type: 'boolean', default: false, describe: 'exit 0 when nothing is left to claim' }) as unknown as Argv<T & ExecutorFlags>;
}
