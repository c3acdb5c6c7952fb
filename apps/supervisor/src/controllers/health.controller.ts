import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { HealthService } from '../services/health.service.js';

/** `GET /health`: 200 when the database answers, 503 otherwise. */
@Controller()
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('health')
  async get(@Res({ passthrough: true }) res: Response) {
    const h = await this.health.check();
    if (h.database !== 'up') res.status(503);
    return h;
  }
}
