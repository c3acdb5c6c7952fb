import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { escapeNulBytes, SupervisorClient, SupervisorError, SupervisorUnreachableError } from './supervisor-client.js';

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

const unavailable = { status: 503, body: { error: { code: 'DATABASE_UNAVAILABLE', message: 'db down' } } };
const reservation = { reservation_id: 'r-1', budget_left: { tokens: 1, cost_usd: null, phase_tokens: 1, minutes: 1, ci_runs: 0 } };

describe('SupervisorClient retries', () => {
  it('waits out 503s, resending the same Idempotency-Key', async () => {
    const srv = await scriptedServer([unavailable, { status: 504, body: null }, { status: 200, body: reservation }]);
    try {
      const logged: string[] = [];
      const client = new SupervisorClient({ baseUrl: srv.url, retryForMs: 10_000, log: (m) => logged.push(m) });
      const res = await client.reserveBudget('run', 'p1', { lease_token: 't', tokens: 10 });
      expect(res.reservation_id).toBe('r-1');
      expect(srv.seen).toHaveLength(3);
      const keys = srv.seen.map((s) => s.headers['idempotency-key']);
      expect(keys[0]).toMatch(/^reserve-/);
      expect(new Set(keys).size).toBe(1);
      expect(logged.some((m) => m.includes('HTTP 504'))).toBe(true);
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
    const srv = await scriptedServer([unavailable, unavailable, unavailable, unavailable, unavailable, unavailable]);
    try {
      const client = new SupervisorClient({ baseUrl: srv.url, retryForMs: 600 });
      await expect(client.claim({ executor_id: 'e' })).rejects.toBeInstanceOf(SupervisorUnreachableError);
      expect(srv.seen.length).toBeGreaterThan(1);
    } finally {
      await srv.close();
    }
  });
});

describe('SupervisorClient NUL bytes', () => {
  /** A server that records each raw request body and answers 200 with `answer`. */
  async function recordingServer(answer: unknown): Promise<{ url: string; bodies: string[]; close: () => Promise<void> }> {
    const bodies: string[] = [];
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, bodies, close: () => new Promise((r) => server.close(() => r())) };
  }
  const written = { message: 'ok', run_id: 'run', phase_id: 'p1', phase_state: 'FAILED', run_state: 'PHASE_EXECUTION', attempt: 1, attempts_left: 1 };

  it('escapes a NUL byte in every string and key as the visible one-character ␀, keeping lengths', () => {
    const body = { failure_reason: 'refused path a\0b', files_changed: ['x\0'], nested: { ['k\0']: ['\0\0'] }, n: 1, ok: 'plain', none: null };
    const sent = JSON.stringify(body, escapeNulBytes);
    expect(sent).not.toContain('\\u0000');
    expect(sent).not.toContain('\0');
    expect(JSON.parse(sent)).toEqual({ failure_reason: 'refused path a\u2400b', files_changed: ['x\u2400'], nested: { ['k\u2400']: ['\u2400\u2400'] }, n: 1, ok: 'plain', none: null });
    expect((JSON.parse(sent) as { failure_reason: string }).failure_reason).toHaveLength(body.failure_reason.length);
    // Bodies without a NUL are sent exactly as before.
    const clean = { a: 'x', b: [1, { c: 'y' }] };
    expect(JSON.stringify(clean, escapeNulBytes)).toBe(JSON.stringify(clean));
  });

  it('sends every report body escaped', async () => {
    const srv = await recordingServer(written);
    try {
      const client = new SupervisorClient({ baseUrl: srv.url, retryForMs: 2_000 });
      const token = '00000000-0000-4000-8000-000000000000';
      await client.updateStatus('run', 'p1', { lease_token: token, state: 'FAILED', failure_reason: 'scope: refused path "evil\0.txt"', feedback: 'do not write evil\0.txt' });
      await client.builderResult('run', 'p1', {
        lease_token: token,
        status: 'failed',
        files_changed: ['a\0'],
        lines_added: 0,
        lines_removed: 0,
        tokens_used: 0,
        suggested_issues: [{ issue_key: 'k', severity: 'minor', category: 'c', description: 'd\0' }],
        notes: 'n\0',
      });
      await client.auditorRequest('run', 'p1', { lease_token: token, failure_context: 'f\0', builder_result: { ['odd\0key']: 'v\0' } });
      await client.auditorResult('run', 'p1', { lease_token: token, recommendation: 'revise', issues_found: [], tokens_used: 0, review_notes: 'r\0' });
      expect(srv.bodies).toHaveLength(4);
      for (const raw of srv.bodies) {
        expect(raw).not.toContain('\\u0000');
        expect(raw).toContain('\u2400');
      }
      expect(JSON.parse(srv.bodies[0])).toMatchObject({ failure_reason: 'scope: refused path "evil\u2400.txt"', feedback: 'do not write evil\u2400.txt' });
      expect(JSON.parse(srv.bodies[2])).toMatchObject({ builder_result: { ['odd\u2400key']: 'v\u2400' } });
    } finally {
      await srv.close();
    }
  });
});
