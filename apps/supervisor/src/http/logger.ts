import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { Injectable, type LoggerService } from '@nestjs/common';
import pino, { type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import pinoPretty from 'pino-pretty';
import { type LogFormat, PRETTY_LOG_OPTIONS, REDACTED_CENSOR, REDACTED_KEYS, redactPaths, resolveLogFormat } from '@app/contracts';

/** The shared list (libs/contracts/src/logging.ts), re-exported where the supervisor always had it. */
export { REDACTED_KEYS };

/**
 * pino options both apps use: ISO timestamps and the shared redaction. Redaction happens when
 * pino serializes a line, before the pretty or JSON output, so both forms hide the same values.
 */
export function loggerOptions(level: string, service: string, base: Record<string, unknown> = {}): pino.LoggerOptions {
  return {
    level,
    base: { service, ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactPaths(), censor: REDACTED_CENSOR },
  };
}

/** A pino-pretty stream (synchronous, in-process: no worker thread) writing to `destination` (default stderr). */
export function prettyStream(destination: pino.DestinationStream | number = 2, colorize = false): pino.DestinationStream {
  return pinoPretty({
    destination: asWritable(destination),
    sync: true,
    colorize,
    ...PRETTY_LOG_OPTIONS,
  }) as pino.DestinationStream;
}

/** pino-pretty pipes into a real stream: a plain `{ write }` destination (tests) is wrapped in one. */
function asWritable(destination: pino.DestinationStream | number): number | NodeJS.WritableStream {
  if (typeof destination === 'number' || typeof (destination as Partial<NodeJS.WritableStream>).on === 'function') return destination as number | NodeJS.WritableStream;
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      destination.write(chunk.toString());
      done();
    },
  });
}

/**
 * Builds the process logger, on stderr (or `destination`): pino-pretty when `format` is
 * `pretty`, one JSON object a line when `json`. Without `format`: `AUTOPACK_LOG_FORMAT`, else
 * pretty when stderr is a terminal.
 */
export function createRootLogger(level: string, destination?: pino.DestinationStream, format?: LogFormat): Logger {
  const form = format ?? resolveLogFormat(process.env.AUTOPACK_LOG_FORMAT, destination === undefined && process.stderr.isTTY === true);
  const options = loggerOptions(level, 'autopack-supervisor');
  if (form === 'pretty') return pino(options, prettyStream(destination ?? 2, destination === undefined && process.stderr.isTTY === true));
  return pino(options, destination ?? pino.destination(2));
}

/** A well-formed incoming request id (letters, digits, `_`, `.`, `-`; at most 100). */
const REQUEST_ID = /^[\w.-]{1,100}$/;

/** The matched route pattern (`/runs/:run_id`), or `unmatched`: ids never reach a label or a route field. */
export function routePattern(req: IncomingMessage): string {
  return ((req as IncomingMessage & { route?: { path?: unknown } }).route?.path as string | undefined) ?? 'unmatched';
}

/**
 * Request logging with correlation ids (pino-http). Each request gets an id (a well-formed
 * `X-Request-Id` header, else a UUID) that is echoed as `X-Request-Id` and bound as `req_id` on
 * every line logged through `req.log`. One line per request when it finishes: method, route
 * pattern, path, status and duration; never headers or bodies.
 */
export function requestLogger(log: Logger) {
  const fields = (req: IncomingMessage, res: ServerResponse, ms: number) => ({
    method: req.method,
    route: routePattern(req),
    path: (req as IncomingMessage & { path?: string }).path ?? req.url?.split('?')[0],
    status: res.statusCode,
    duration_ms: ms,
  });
  return pinoHttp({
    logger: log,
    quietReqLogger: true,
    quietResLogger: true,
    customAttributeKeys: { reqId: 'req_id' },
    genReqId: (req, res) => {
      const incoming = req.headers['x-request-id'];
      const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
    customSuccessObject: (req, res, val: { responseTime: number }) => fields(req, res, val.responseTime),
    customErrorObject: (req, res, err, val: { responseTime: number }) => ({ ...fields(req, res, val.responseTime), err: err.message }),
    customSuccessMessage: () => 'request',
    customErrorMessage: () => 'request failed',
  });
}

/**
 * Nest's own contexts whose info lines are start-up noise (one "Mapped {/runs, GET} route"
 * line per route, one line per module): logged at debug.
 */
const QUIET_CONTEXTS = new Set(['RoutesResolver', 'RouterExplorer', 'InstanceLoader']);

/** The supervisor's logger, usable as Nest's logger too. */
@Injectable()
export class AppLogger implements LoggerService {
  constructor(readonly pino: Logger) {}

  info(obj: object | string, msg?: string): void {
    if (typeof obj === 'string') this.pino.info(obj);
    else this.pino.info(obj, msg);
  }
  warn(obj: object | string, msg?: string): void {
    if (typeof obj === 'string') this.pino.warn(obj);
    else this.pino.warn(obj, msg);
  }
  error(obj: object | string, msg?: string): void {
    if (typeof obj === 'string') this.pino.error(obj);
    else this.pino.error(obj, msg);
  }
  /** Nest's `log`. */
  log(message: unknown, context?: string): void {
    if (context !== undefined && QUIET_CONTEXTS.has(context)) this.pino.debug({ context }, String(message));
    else this.pino.info({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.pino.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.pino.trace({ context }, String(message));
  }
}
