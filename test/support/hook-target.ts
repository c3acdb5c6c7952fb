import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** A request as the target received it. */
export interface ReceivedRequest {
  method: string;
  /** Path and query. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The body parsed as JSON, or the raw text when it is not JSON. */
  body: unknown;
  at: number;
}

/** What the target answers one request with. */
export interface TargetAnswer {
  status?: number;
  json?: unknown;
  /** Waits this long before answering (to make a caller time out). */
  delayMs?: number;
}

/** A local HTTP server standing in for a deployer, a registry, a webhook or Slack. */
export interface HookTarget {
  url: string;
  port: number;
  /** Every request received, in order. */
  received: ReceivedRequest[];
  /** Received requests whose path starts with `path`. */
  to(path: string): ReceivedRequest[];
  close(): Promise<void>;
}

/**
 * Starts a target on 127.0.0.1 (on `port` when given, to bring a target back up where a
 * delivery expects it). `answer` decides each answer from the request and how many requests
 * came to that path before it; the default is 200 with `{"ok": true}`.
 */
export async function startHookTarget(answer: (req: ReceivedRequest, nthOnPath: number) => TargetAnswer = () => ({}), port = 0): Promise<HookTarget> {
  const received: ReceivedRequest[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // keep the text
      }
      const r: ReceivedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() };
      const path = r.url.split('?')[0];
      const nth = received.filter((x) => x.url.split('?')[0] === path).length;
      received.push(r);
      const a = answer(r, nth);
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(a.status ?? 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(a.json ?? { ok: true }));
      };
      if (a.delayMs) setTimeout(send, a.delayMs).unref();
      else send();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    received,
    to: (path) => received.filter((r) => r.url.startsWith(path)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (taken from the OS, then released): a target that is down. */
export async function freePort(): Promise<number> {
  const t = await startHookTarget();
  await t.close();
  return t.port;
}

/** A mail as the local SMTP server received it. */
export interface ReceivedMail {
  from: string;
  to: string[];
  /** The raw message (headers and body). */
  data: string;
}

/** A local SMTP server (smtp-server, by the nodemailer authors) that accepts every mail, without TLS or auth. */
export async function startSmtpTarget(): Promise<{ url: string; received: ReceivedMail[]; close(): Promise<void> }> {
  const received: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return { url: `smtp://127.0.0.1:${port}`, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
