import { resolveLogFormat } from '@app/contracts';
import { LlmClient } from '@app/llm';
import { ExecutorConfigError, type ExecutorFlags, loadExecutorConfig } from './config.js';
import { EXIT, Executor } from './executor.js';
import { createExecutorLogger } from './logger.js';
import { resolveModelRouting } from './models.js';
import { RunProgressBar } from './run-progress.js';
import { SupervisorClient } from './supervisor-client.js';
import { WorkspaceLock } from './workspace-lock.js';

/**
 * The executor's composition root: configuration, logger, clients, signals. Returns the
 * process exit code (0 done, 1 bad usage/configuration, 2 supervisor unreachable, 3 the run
 * it served ended failed or cancelled).
 */
export async function runExecutor(flags: ExecutorFlags, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let config;
  let routing;
  let logFormat;
  try {
    config = loadExecutorConfig(flags, env);
    try {
      logFormat = resolveLogFormat(env.AUTOPACK_LOG_FORMAT, process.stderr.isTTY === true);
    } catch (err) {
      throw new ExecutorConfigError((err as Error).message);
    }
    routing = resolveModelRouting({ openai: !!config.openaiKey, anthropic: !!config.anthropicKey }, config.modelsFile);
  } catch (err) {
    if (err instanceof ExecutorConfigError) {
      process.stderr.write(`autopack executor: ${err.message}\n`);
      return EXIT.usage;
    }
    throw err;
  }
  const log = createExecutorLogger(config.logLevel, { executor_id: config.executorId }, { format: logFormat });
  const supervisor = new SupervisorClient({
    baseUrl: config.apiUrl,
    apiKey: config.apiKey,
    retryForMs: config.supervisorRetrySeconds * 1000,
    log: (m) => log.warn(m),
  });
  const llm = new LlmClient({
    openaiApiKey: config.openaiKey,
    anthropicApiKey: config.anthropicKey,
    openaiBaseUrl: config.openaiBaseUrl,
    anthropicBaseUrl: config.anthropicBaseUrl,
  });
  const workspaceLock = new WorkspaceLock(config.workspace, config.executorId);
  const executor = new Executor({ config, supervisor, llm, routing, log, env, workspaceLock, progress: progressView(config.logLevel) });
  // A second signal exits at once, past every `finally`: the lock still goes.
  const releaseLock = () => executor.releaseLocks();
  process.on('exit', releaseLock);

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal: sig }, 'second signal: exiting now');
      process.exit(130);
    }
    log.info({ signal: sig }, 'stopping: handing back the current lease');
    executor.requestStop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await executor.run();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', releaseLock);
  }
}

/** Log levels that print nothing in normal work: the bar then has the terminal to itself. */
const QUIET_LEVELS: ReadonlySet<string> = new Set(['silent', 'fatal', 'error']);

/**
 * The live progress bar, when stdout is a terminal and the JSON logs (on stderr) cannot write
 * through it: stderr goes elsewhere, or the log level keeps it quiet. Otherwise none: the
 * logs already say what happens, and a bar between log lines would garble both.
 */
function progressView(logLevel: string): RunProgressBar | undefined {
  if (!process.stdout.isTTY) return undefined;
  if (process.stderr.isTTY && !QUIET_LEVELS.has(logLevel)) return undefined;
  return new RunProgressBar(process.stdout);
}
