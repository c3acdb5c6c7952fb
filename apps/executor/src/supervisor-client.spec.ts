import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SupervisorClient, SupervisorError, SupervisorUnreachableError } from './supervisor-client.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** A real HTTP server that answers each request with the next scripted response. */
async function scriptedServer(answers: Array<{ status: number; body?: unknown }>): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      const next = answers.shift() ?? { status: 500, body: { error: { code: 'SCRIPT_EXHAUSTED', message: 'no answer left' } } };
      res.writeHead(next.status, { 'content-type': 'application/json' });
      res.end(next.body === undefined ? '' : JSON.stringify(next.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((r) => server.close(() => r())) };
}

const inProgress = { status: 409, body: { error: { code: 'IDEMPOTENCY_IN_PROGRESS', message: 'still being processed' } } };
const reservation = { reservation_id: 'r-1', budget_left: { tokens: 1, cost_usd: null, phase_tokens: 1, minutes: 1, ci_runs: 0 } };

describe('SupervisorClient retries', () => {
  it('waits out 503s and a 409 IDEMPOTENCY_IN_PROGRESS, resending the same Idempotency-Key', async () => {
    const srv = await scriptedServer([{ status: 503, body: { error: { code: 'DATABASE_UNAVAILABLE', message: 'db down' } } }, inProgress, { status: 200, body: reservation }]);
    try {
      const logged: string[] = [];
      const client = new SupervisorClient({ baseUrl: srv.url, retryForMs: 10_000, log: (m) => logged.push(m) });
      const res = await client.reserveBudget('run', 'p1', { lease_token: 't', tokens: 10 });
      expect(res.reservation_id).toBe('r-1');
      expect(srv.seen).toHaveLength(3);
      const keys = srv.seen.map((s) => s.headers['idempotency-key']);
      expect(keys[0]).toMatch(/^reserve-/);
      expect(new Set(keys).size).toBe(1);
      expect(logged.some((m) => m.includes('earlier try still in progress'))).toBe(true);
    } finally {
      await srv.close();
    }
  });

  it('throws other coded refusals at once', async () => {
    const srv = await scriptedServer([{ status: 409, body: { error: { code: 'LEASE_LOST', message: 'lease gone' } } }]);
    try {
      const client = new SupervisorClient({ baseUrl: srv.url, retryForMs: 10_000 });
      const err = await client.heartbeat('run', 'p1', 't').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SupervisorError);
      expect((err as SupervisorError).code).toBe('LEASE_LOST');
      expect(srv.seen).toHaveLength(1);
    } finally {
      await srv.close();
    }
  });

  it('retries a 500 twice, then reports it', async () => {
    const fault = { status: 500, body: { error: { code: 'INTERNAL_ERROR', message: 'internal error (error_id e-1)' } } };
    const recovers = await scriptedServer([fault, fault, { status: 200, body: reservation }]);
    const persists = await scriptedServer([fault, fault, fault, { status: 200, body: reservation }]);
    try {
      const ok = await new SupervisorClient({ baseUrl: recovers.url, retryForMs: 10_000 }).reserveBudget('run', 'p1', { lease_token: 't', tokens: 10 });
      expect(ok.reservation_id).toBe('r-1');
      const err = await new SupervisorClient({ baseUrl: persists.url, retryForMs: 10_000 }).reserveBudget('run', 'p1', { lease_token: 't', tokens: 10 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SupervisorError);
      expect((err as SupervisorError).code).toBe('INTERNAL_ERROR');
      expect(persists.seen).toHaveLength(3);
    } finally {
      await recovers.close();
      await persists.close();
    }
  });

  it('gives up with SupervisorUnreachableError when the retry time is spent', async () => {
    const srv = await scriptedServer([inProgress, inProgress, inProgress, inProgress, inProgress, inProgress]);
    try {
      const client = new SupervisorClient({ baseUrl: srv.url, retryForMs: 600 });
      await expect(client.claim({ executor_id: 'e' })).rejects.toBeInstanceOf(SupervisorUnreachableError);
      expect(srv.seen.length).toBeGreaterThan(1);
    } finally {
      await srv.close();
    }
  });
});
