import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { BuildPathParamsSchema, BuildStreamEventSchema, IdSchema, RunPathParamsSchema, StreamedEventSchema } from '@app/contracts';
import { type BuildStreamSource, buildStreamMessageOf } from '@app/domain';
import type { EventStreamService, StreamedEvent } from '../services/event-stream.service.js';
import { apiKeyCheck } from './api-key.js';
import { type ExtraApiRoute, named } from './api-route.js';

/** The WebSocket route in the OpenAPI document: it is served by the upgrade handler below, not by Nest's router. */
export const RUN_STREAM_ROUTE: ExtraApiRoute = {
  method: 'get',
  path: '/runs/:run_id/stream',
  tag: 'events',
  summary: 'WebSocket (Upgrade: websocket): the same events as /events, one JSON message each',
  params: RunPathParamsSchema,
  response: named('StreamedEvent', StreamedEventSchema),
  success: 101,
  errors: [401, 404],
};

/** The build stream in the OpenAPI document. */
export const BUILD_STREAM_ROUTE: ExtraApiRoute = {
  method: 'get',
  path: '/executor/builds/:build_id/stream',
  tag: 'builds',
  summary: 'WebSocket (Upgrade: websocket): {type, phase, progress_percent, message, at} per step move; closed after the build ends',
  params: BuildPathParamsSchema,
  response: named('BuildStreamEvent', BuildStreamEventSchema),
  success: 101,
  errors: [401, 404],
};

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
  const keyMatches = apiKeyCheck(apiKey);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = /^\/runs\/([^/]+)\/stream$/.exec(url.pathname) ?? /^\/executor\/builds\/([^/]+)\/stream$/.exec(url.pathname);
    if (!m) return reject(socket, 404, 'ROUTE_NOT_FOUND');
    const isBuild = url.pathname.startsWith('/executor/');
    if (keyMatches && !keyMatches(req.headers)) return reject(socket, 401, 'UNAUTHORIZED');
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
          let progress = 0;
          const send = isBuild
            ? (e: StreamedEvent) => {
                const msg = buildStreamMessageOf(e as unknown as BuildStreamSource, progress);
                if (!msg) return;
                progress = msg.progress_percent;
                const { final, ...message } = msg;
                ws.send(JSON.stringify(message));
                if (final) ws.close(1000, 'build ended');
              }
            : (e: StreamedEvent) => ws.send(JSON.stringify(e));
          void stream
            .subscribe(runId, after, true, send)
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
