import { Injectable, type LoggerService } from '@nestjs/common';
import pino, { type Logger } from 'pino';

/** Keys whose values never reach a log line, wherever they appear. */
export const REDACTED_KEYS = [
  'authorization',
  'x-api-key',
  'apiKey',
  'api_key',
  'password',
  'token',
  'lease_token',
  'leaseToken',
  'secret',
  'databaseUrl',
  'DATABASE_URL',
];

/** Builds the process logger: structured JSON on stderr (or `destination`), secrets redacted by key. */
export function createRootLogger(level: string, destination: pino.DestinationStream = pino.destination(2)): Logger {
  return pino(
    {
      level,
      base: { service: 'autopack-supervisor' },
      redact: { paths: [...REDACTED_KEYS, ...REDACTED_KEYS.map((k) => `*.${k}`), ...REDACTED_KEYS.map((k) => `*.*.${k}`)], censor: '[redacted]' },
    },
    destination,
  );
}

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
    this.pino.info({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.pino.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.pino.trace({ context }, String(message));
  }
}
