import yargs from 'yargs';
import { executorOptions } from '../../executor/src/cli.js';

/**
 * `autopack <command>`: one yargs CLI for the supervisor, the executor, the scripted LLM
 * server and the demo. Heavy modules are imported lazily so `autopack executor` never
 * loads NestJS. Returns an exit code, or undefined for long-running servers.
 */
export async function runCli(argv: string[]): Promise<number | undefined> {
  let result: number | undefined;
  const cli = yargs(argv)
    .scriptName('autopack')
    .usage('$0 <command> [options]')
    .command(
      'supervisor',
      'run the supervisor REST API (PORT, HOST, DATABASE_URL, AUTOPACK_API_KEY from the environment)',
      (y) =>
        y
          .option('port', { type: 'number', describe: 'listen port (default $PORT or 8000)' })
          .option('host', { type: 'string', describe: 'listen address (default $HOST or 127.0.0.1)' }),
      async (args) => {
        const { runSupervisorCommand } = await import('./supervisor-command.js');
        result = await runSupervisorCommand({ port: args.port, host: args.host });
      },
    )
    .command(
      'executor',
      'claim and execute phases (CONTRACT.md section 3)',
      (y) => executorOptions(y),
      async (args) => {
        const { runExecutor } = await import('../../executor/src/main.js');
        result = await runExecutor(args);
      },
    )
    .command(
      'llm-server',
      'run the scripted LLM server (OpenAI and Anthropic wire formats) for offline demos and tests',
      (y) =>
        y
          .option('script', { type: 'string', demandOption: true, describe: 'script file (YAML or JSON)' })
          .option('port', { type: 'number', default: 0 })
          .option('host', { type: 'string', default: '127.0.0.1' })
          .option('record', { type: 'string', describe: 'append every request as a JSON line to this file' }),
      async (args) => {
        const { runLlmServerCommand } = await import('./llm-server-command.js');
        result = await runLlmServerCommand({ script: args.script, port: args.port, host: args.host, record: args.record });
      },
    )
    .command(
      'demo',
      'run a real multi-phase run end to end, offline, and print where to look',
      (y) =>
        y
          .option('live', { type: 'boolean', default: false, describe: 'call the real providers with the keys in the environment' })
          .option('dir', { type: 'string', describe: 'where to create the demo (default .autopack/demo/<timestamp>)' }),
      async (args) => {
        const { runDemo } = await import('./demo.js');
        result = await runDemo({ live: args.live, dir: args.dir });
      },
    )
    .demandCommand(1, 'name a command: supervisor, executor, llm-server or demo')
    .strict()
    .help()
    .version(false)
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`autopack: ${msg}\nRun "autopack --help" for usage.\n`);
      result = 1;
    });
  await cli.parseAsync();
  return result;
}
