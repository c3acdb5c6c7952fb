import { Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { DomainError } from '@app/contracts';
import { EventRepository, RunRepository } from '../repositories/index.js';
import { NotificationHub } from './notification-hub.js';

/** One event as streamed to clients (SSE and WebSocket). */
export interface StreamedEvent {
  id: number;
  run_id: string;
  phase_id: string | null;
  type: string;
  payload: Record<string, unknown>;
  created_at: string;
}

/**
 * A run's events for streaming: the backlog after an id, then live ones, in order, as
 * NOTIFYs arrive (each write to a run notifies). Used by SSE and WebSocket alike.
 */
@Injectable()
export class EventStreamService {
  constructor(
    private readonly events: EventRepository,
    private readonly runs: RunRepository,
    private readonly hub: NotificationHub,
  ) {}

  /** 404 unless the run exists. */
  async assertRun(runId: string): Promise<void> {
    if (!(await this.runs.find(runId))) throw new DomainError('NOT_FOUND', `run ${runId} not found`);
  }

  /**
   * Delivers events after `after` to `send`, then (when `follow`) live ones until the
   * returned function is called. Deliveries are serialized so ids stay increasing.
   */
  async subscribe(runId: string, after: number, follow: boolean, send: (e: StreamedEvent) => void): Promise<() => void> {
    let last = String(after);
    let closed = false;
    let chain = Promise.resolve();
    const pump = () => {
      chain = chain
        .then(async () => {
          while (!closed) {
            const batch = await this.events.listForRun(runId, last, 200);
            for (const e of batch) {
              send({ id: Number(e.id), run_id: e.runId, phase_id: e.phaseId, type: e.type, payload: e.payload, created_at: new Date(e.createdAt).toISOString() });
              last = e.id;
            }
            if (batch.length < 200) break;
          }
        })
        .catch(() => undefined);
      return chain;
    };
    await pump();
    if (!follow) return () => undefined;
    const unsubscribe = this.hub.subscribe(runId, () => void pump());
    await pump(); // anything committed between the first read and subscribing
    return () => {
      closed = true;
      unsubscribe();
    };
  }

  /** `GET /runs/{id}/events` as Server-Sent Events. */
  async sse(runId: string, after: number, follow: boolean, req: Request, res: Response): Promise<void> {
    await this.assertRun(runId);
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    const stop = await this.subscribe(runId, after, follow, (e) => res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`));
    if (!follow) {
      res.end();
      return;
    }
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    req.on('close', () => {
      clearInterval(keepAlive);
      stop();
    });
  }
}
