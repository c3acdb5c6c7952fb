import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import type pinoPrettyModule from 'pino-pretty';
import { type LogFormat, PRETTY_LOG_OPTIONS, REDACTED_CENSOR, redactPaths, resolveLogFormat } from '@app/contracts';

/**
 * The executor's logger on stderr: the supervisor's settings (libs/contracts/src/logging.ts):
 * the shared redaction list, ISO timestamps, pino-pretty when stderr is a terminal (or
 * `AUTOPACK_LOG_FORMAT=pretty`), JSON otherwise.
 */
export function createExecutorLogger(
  level: string,
  base: Record<string, unknown>,
  opts: { format?: LogFormat; destination?: pino.DestinationStream; env?: NodeJS.ProcessEnv } = {},
): Logger {
  const tty = opts.destination === undefined && process.stderr.isTTY === true;
  const format = opts.format ?? resolveLogFormat((opts.env ?? process.env).AUTOPACK_LOG_FORMAT, tty);
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'autopack-executor', ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactPaths(), censor: REDACTED_CENSOR },
  };
  if (format === 'pretty') {
    const to = opts.destination;
    // pino-pretty pipes into a real stream: a plain `{ write }` destination (tests) is wrapped in one.
    const destination = to === undefined ? 2 : new Writable({ write: (chunk: Buffer, _encoding, done) => (to.write(chunk.toString()), done()) });
    // Loaded only for a terminal (or when asked for): JSON logs, the usual case, never need it.
    const pinoPretty = createRequire(import.meta.url)('pino-pretty') as typeof pinoPrettyModule;
    return pino(options, pinoPretty({ destination, sync: true, colorize: tty, ...PRETTY_LOG_OPTIONS }) as pino.DestinationStream);
  }
  return pino(options, opts.destination ?? pino.destination(2));
}
