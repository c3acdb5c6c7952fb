import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { IdSchema } from '@app/contracts';
import type { EventStreamService } from '../services/event-stream.service.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

function reject(socket: Duplex, status: number, code: string): void {
  const body = JSON.stringify({ error: { code, message: code.toLowerCase().replace(/_/g, ' ') } });
  socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Not Found'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/**
 * `WS /runs/{run_id}/stream`: the run's events over WebSocket, one JSON message each (the
 * same objects as the SSE `data:` lines). Same API-key rule as HTTP; `?after=<id>` resumes.
 */
export function attachRunStreamWebSocket(server: Server, stream: EventStreamService, apiKey: string | undefined): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  const expected = apiKey ? digest(apiKey) : undefined;
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = /^\/runs\/([^/]+)\/stream$/.exec(url.pathname);
    if (!m) return reject(socket, 404, 'ROUTE_NOT_FOUND');
    if (expected) {
      const header = req.headers['x-api-key'];
      const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const given = typeof header === 'string' ? header : bearer;
      if (!given || !timingSafeEqual(digest(given), expected)) return reject(socket, 401, 'UNAUTHORIZED');
    }
    let runId: string;
    try {
      runId = decodeURIComponent(m[1]);
    } catch {
      return reject(socket, 404, 'NOT_FOUND'); // malformed percent-encoding: a throw here would be uncaught
    }
    if (!IdSchema.safeParse(runId).success) return reject(socket, 404, 'NOT_FOUND');
    stream.assertRun(runId).then(
      () =>
        wss.handleUpgrade(req, socket, head, (ws) => {
          const after = Math.max(0, Number(url.searchParams.get('after') ?? 0) || 0);
          let stop: (() => void) | undefined;
          let closed = false;
          ws.on('close', () => {
            closed = true;
            stop?.();
          });
          ws.on('message', () => undefined); // the stream is one-way; client messages are ignored
          void stream
            .subscribe(runId, after, true, (e) => ws.send(JSON.stringify(e)))
            .then((s) => {
              if (closed) s();
              else stop = s;
            });
        }),
      () => reject(socket, 404, 'NOT_FOUND'),
    );
  });
  return wss;
}
