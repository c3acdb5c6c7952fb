import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Request, Response } from 'express';
import { EventStreamService, type StreamedEvent } from '../../../apps/supervisor/src/services/event-stream.service.js';
import { CLAIMABLE_CHANNEL } from '../../../apps/supervisor/src/services/progress.service.js';
import { waitFor } from '../../support/wait.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let stream: EventStreamService;
beforeAll(async () => {
  // Live events need the hub's LISTEN connection, opened by the lifecycle hooks.
  ctx = await createMediumContext({ init: true, config: { leaseSeconds: 3600 } });
  stream = ctx.get(EventStreamService);
});
afterAll(() => ctx?.close());

/** An event committed with its NOTIFY, as every write to a run does. */
async function commitEvent(runId: string, type: string, payload: Record<string, unknown> = {}): Promise<void> {
  await ctx.ds.transaction(async (em) => {
    await em.query(`INSERT INTO events (run_id, type, payload) VALUES ($1, $2, $3::jsonb)`, [runId, type, JSON.stringify(payload)]);
    await em.query('SELECT pg_notify($1, $2)', [CLAIMABLE_CHANNEL, runId]);
  });
}

/**
 * Commits an event while a witness follows the run, and returns once the witness has it and a
 * little more: a subscriber that had not stopped would have been woken by the same NOTIFY.
 */
async function expectNotDelivered(runId: string, type: string): Promise<void> {
  const witness: string[] = [];
  const [{ last }] = await ctx.db.query<{ last: number }>('SELECT COALESCE(max(id), 0)::int AS last FROM events');
  const stop = await stream.subscribe(runId, last, true, (e) => witness.push(e.type));
  await commitEvent(runId, type);
  await until(`the witness to see ${type}`, () => witness.includes(type));
  await sleep(200);
  stop();
}

const until = (what: string, ok: () => boolean) => waitFor(what, async () => (ok() ? true : undefined), { timeoutMs: 10_000, everyMs: 20 });

describe('EventStreamService.subscribe', () => {
  it("delivers a run's events after an id, oldest first, and only that run's", async () => {
    const run = await ctx.factory.makeRun();
    const first = await ctx.factory.makeEvent({ runId: run.runId, type: 'run_created' });
    await ctx.factory.makeEvent({ runId: 'another-run', type: 'run_created' });
    const second = await ctx.factory.makeEvent({ runId: run.runId, phaseId: 'p1', type: 'phase_state', payload: { to: 'EXECUTING' } });
    const third = await ctx.factory.makeEvent({ runId: run.runId, type: 'run_state' });

    const all: StreamedEvent[] = [];
    await stream.subscribe(run.runId, 0, false, (e) => all.push(e));
    expect(all.map((e) => e.id)).toEqual([first, second, third].map((e) => Number(e.id)));
    expect(all[1]).toEqual({ id: Number(second.id), run_id: run.runId, phase_id: 'p1', type: 'phase_state', payload: { to: 'EXECUTING' }, created_at: second.createdAt.toISOString() });

    const after: StreamedEvent[] = [];
    await stream.subscribe(run.runId, Number(first.id), false, (e) => after.push(e));
    expect(after.map((e) => e.type)).toEqual(['phase_state', 'run_state']);
  });

  it('pages through a long backlog without losing or repeating an event', async () => {
    const run = await ctx.factory.makeRun();
    await ctx.db.query(`INSERT INTO events (run_id, type, payload) SELECT $1, 'llm_usage', jsonb_build_object('n', g) FROM generate_series(1, 450) g`, [run.runId]);
    const got: StreamedEvent[] = [];
    await stream.subscribe(run.runId, 0, false, (e) => got.push(e));
    expect(got.map((e) => e.payload.n)).toEqual(Array.from({ length: 450 }, (_, i) => i + 1));
  });

  it('follows: live events arrive in order as they commit, until the subscriber stops', async () => {
    const run = await ctx.factory.makeRun();
    await ctx.factory.makeEvent({ runId: run.runId, type: 'backlog' });
    const got: string[] = [];
    const stop = await stream.subscribe(run.runId, 0, true, (e) => got.push(e.type));
    expect(got).toEqual(['backlog']);
    await commitEvent(run.runId, 'live-1');
    await commitEvent(run.runId, 'live-2');
    await commitEvent('unrelated-run', 'elsewhere');
    await until('both live events', () => got.length === 3);
    stop();
    await expectNotDelivered(run.runId, 'after-stop');
    expect(got).toEqual(['backlog', 'live-1', 'live-2']);
  });
});

/** Enough of express's request and response for the SSE handler. */
function fakeHttp() {
  const req = new EventEmitter();
  const res = {
    statusCode: 0,
    headers: {} as Record<string, string>,
    chunks: [] as string[],
    ended: false,
    status(code: number) {
      this.statusCode = code;
      return this;
    },
    setHeader(name: string, value: string) {
      this.headers[name] = value;
    },
    flushHeaders() {},
    write(chunk: string) {
      this.chunks.push(chunk);
      return true;
    },
    end() {
      this.ended = true;
    },
  };
  return { req, res, request: req as unknown as Request, response: res as unknown as Response };
}

describe('EventStreamService.sse', () => {
  it('writes the backlog as Server-Sent Events and ends when not following', async () => {
    const run = await ctx.factory.makeRun();
    const e = await ctx.factory.makeEvent({ runId: run.runId, type: 'run_created', payload: { tiers: 1 } });
    const { res, request, response } = fakeHttp();
    await stream.sse(run.runId, 0, false, request, response);
    expect(res.statusCode).toBe(200);
    expect(res.headers).toMatchObject({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store' });
    expect(res.chunks).toHaveLength(1);
    const [head, event, data] = res.chunks[0].split('\n');
    expect([head, event]).toEqual([`id: ${e.id}`, 'event: run_created']);
    expect(JSON.parse(data.replace(/^data: /, ''))).toMatchObject({ id: Number(e.id), type: 'run_created', payload: { tiers: 1 } });
    expect(res.ended).toBe(true);
  });

  it('keeps following until the client goes away', async () => {
    const run = await ctx.factory.makeRun();
    const { req, res, request, response } = fakeHttp();
    await stream.sse(run.runId, 0, true, request, response);
    expect(res.ended).toBe(false);
    await commitEvent(run.runId, 'live');
    await until('the live event', () => res.chunks.length === 1);
    req.emit('close');
    await expectNotDelivered(run.runId, 'after-close');
    expect(res.chunks.map((c) => c.split('\n')[1])).toEqual(['event: live']);
  });

  it('404s an unknown run before writing anything', async () => {
    const { res, request, response } = fakeHttp();
    await expect(stream.sse('no-such-run', 0, false, request, response)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(res.statusCode).toBe(0);
  });
});
