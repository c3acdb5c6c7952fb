import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { AppLogger } from './logger.js';
import { mapError } from './error-mapping.js';

/** The only exception filter: coded JSON errors for everything, stacks only in logs. */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  constructor(private readonly log: AppLogger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const mapped = mapError(exception);
    if (mapped.unexpected) {
      this.log.error({ err: exception, error_id: mapped.body.error.error_id }, 'unexpected error');
    }
    if (res.headersSent) return;
    res.status(mapped.status).json(mapped.body);
  }
}
