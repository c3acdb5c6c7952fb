import { Controller, Get, Param, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { parseId, parseQuery } from '../http/validation.js';
import { EventStreamService } from '../services/event-stream.service.js';

const EventsQuery = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
  follow: z.enum(['true', 'false']).default('true'),
});

/** `GET /runs/{id}/events`: Server-Sent Events of the run's audit trail. */
@Controller()
export class EventsController {
  constructor(private readonly stream: EventStreamService) {}

  @Get('runs/:run_id/events')
  async events(@Param('run_id') runId: string, @Query() query: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const q = parseQuery(EventsQuery, query);
    const lastId = Number(req.headers['last-event-id']);
    const after = q.after ?? (Number.isInteger(lastId) && lastId >= 0 ? lastId : 0);
    await this.stream.sse(parseId(runId, "run"), after, q.follow === "true", req, res);
  }
}
