import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { HealthResponseSchema } from '@app/contracts';
import { ApiRoute, named } from '../http/api-route.js';
import { HealthService } from '../services/health.service.js';

/** `GET /health`: 200 when the database answers, 503 otherwise. */
@Controller()
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('health')
  @ApiRoute({
    tag: 'meta',
    summary: '{status, database, version}; 503 when the database is unreachable',
    response: named('Health', HealthResponseSchema),
    extraSuccess: { 503: 'database unreachable (same body, database "down")' },
    auth: false,
  })
  async get(@Res({ passthrough: true }) res: Response) {
    const h = await this.health.check();
    if (h.database !== 'up') res.status(503);
    return h;
  }
}
