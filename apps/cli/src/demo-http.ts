/**
 * The small HTTP plumbing the demo's local deployer and registry share: an Express app
 * with a bounded JSON body, errors as `{error: {code, message, details?}}` (the
 * supervisor's shape), and a server on 127.0.0.1 that closes with its open connections.
 */
import type { Server } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';

/** An error the route answers with: its status, a stable code, and JSON-safe details. */
export class DemoHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** Parses `body` with `schema`, or throws a 422 VALIDATION_FAILED naming every problem. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 20).map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
  const what = body === undefined ? 'a JSON body (Content-Type: application/json) is required' : issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  throw new DemoHttpError(422, 'VALIDATION_FAILED', what, { issues });
}

/** A string field that template substitution may leave empty (`"{{droplet_id}}"` without a value): empty counts as absent. */
export const optionalText = (max: number) =>
  z.preprocess((v) => (v === '' || v === null ? undefined : v), z.string().max(max).optional());

/** A full commit id, lower-cased. */
export const CommitShaSchema = z
  .string()
  .regex(/^[0-9a-fA-F]{40}$/, 'must be a full 40-character commit id')
  .transform((s) => s.toLowerCase());

/** An Express app parsing JSON bodies of at most `limit`. */
export function jsonApp(limit = '64kb'): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit }));
  return app;
}

/** Wraps an async route so a thrown {@link DemoHttpError} (or anything) reaches the error handler. */
export function route(handler: (req: Request, res: Response) => Promise<void>): RequestHandler {
  return (req, res, next) => {
    handler(req, res).catch(next);
  };
}

/** The 404 for unknown routes and the error handler; add them after the routes. */
export function finishApp(app: Express, log: (line: string) => void): void {
  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'ROUTE_NOT_FOUND', message: `no route ${req.method} ${req.path}` } });
  });
  // Express recognises an error handler by its four parameters.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const body = errorBody(err);
    if (body.status >= 500 && !(err instanceof DemoHttpError)) log(`unexpected error: ${(err as Error)?.stack ?? String(err)}`);
    if (res.headersSent) return;
    res.status(body.status).json({ error: body.error });
  });
}

function errorBody(err: unknown): { status: number; error: Record<string, unknown> } {
  if (err instanceof DemoHttpError) {
    return { status: err.status, error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
  }
  // body-parser's errors carry `type` and `status`.
  const type = (err as { type?: unknown })?.type;
  if (type === 'entity.parse.failed') return { status: 400, error: { code: 'INVALID_JSON', message: 'the body is not valid JSON' } };
  if (type === 'entity.too.large') return { status: 413, error: { code: 'PAYLOAD_TOO_LARGE', message: 'the body is too large' } };
  const status = (err as { status?: unknown })?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, error: { code: 'BAD_REQUEST', message: (err as Error).message } };
  }
  return { status: 500, error: { code: 'INTERNAL_ERROR', message: 'internal error' } };
}

/** A listening server and how to close it (open keep-alive connections included). */
export interface ListeningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Starts `app` on 127.0.0.1:`port` (0: a free port). */
export async function listenLocal(app: Express, port = 0): Promise<ListeningServer> {
  const sockets = new Set<Socket>();
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(port, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it). */
export async function findFreeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** True when something accepts a TCP connection on 127.0.0.1:`port`. */
export function acceptsConnections(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
