import { Controller, Get, Param, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { RunEventsQuerySchema, RunPathParamsSchema } from '@app/contracts';
import { z } from 'zod';
import { ApiRoute, type ApiRouteSpec } from '../http/api-route.js';
import { parseId, parseRouteQuery } from '../http/validation.js';
import { EventStreamService } from '../services/event-stream.service.js';

/** The schemas the route parses with and answers with (also its OpenAPI entry). */
const ROUTES = {
  events: {
    tag: 'events',
    summary: 'Server-Sent Events of the run (supports Last-Event-ID, ?after=, ?follow=false); each data line is a StreamedEvent',
    params: RunPathParamsSchema,
    query: RunEventsQuerySchema,
    contentType: 'text/event-stream',
    response: z.string(),
    errors: [401, 404, 422],
  },
} satisfies Record<string, ApiRouteSpec>;

/** `GET /runs/{id}/events`: Server-Sent Events of the run's audit trail. */
@Controller()
export class EventsController {
  constructor(private readonly stream: EventStreamService) {}

  @Get('runs/:run_id/events')
  @ApiRoute(ROUTES.events)
  async events(@Param('run_id') runId: string, @Query() query: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const q = parseRouteQuery(ROUTES.events, query);
    const lastId = Number(req.headers['last-event-id']);
    const after = q.after ?? (Number.isInteger(lastId) && lastId >= 0 ? lastId : 0);
    await this.stream.sse(parseId(runId, "run"), after, q.follow === "true", req, res);
  }
}
