import { setTimeout as sleep } from 'node:timers/promises';
import { DomainError } from '@app/contracts';
import { type Answer, IdempotencyService, type RecordAnswer } from '../../../apps/supervisor/src/services/idempotency.service.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let idempotency: IdempotencyService;
beforeAll(async () => {
  ctx = await createMediumContext();
  idempotency = ctx.get(IdempotencyService);
});
afterAll(() => ctx?.close());

const stored = (route: string, key: string) => ctx.db.query('SELECT status, response FROM idempotency_keys WHERE route = $1 AND key = $2', [route, key]);

/**
 * A handler that makes a change (an event row standing for it) and records its answer in the
 * same transaction, as RunService.start does; counts its calls.
 */
function changing(answer: Answer, opts: { after?: Promise<void>; onRecorded?: () => void; holdFor?: number } = {}) {
  const handler = async (record: RecordAnswer | undefined): Promise<Answer> => {
    handler.calls++;
    await opts.after;
    await ctx.ds.transaction(async (em) => {
      await em.query(`INSERT INTO events (run_id, type, payload) VALUES ('idem', 'change', $1::jsonb)`, [JSON.stringify(answer.body)]);
      await record?.(em, answer);
      opts.onRecorded?.();
      if (opts.holdFor) await sleep(opts.holdFor);
    });
    return answer;
  };
  handler.calls = 0;
  return handler;
}

const changes = () => ctx.db.query<{ payload: unknown }>(`SELECT payload FROM events WHERE run_id = 'idem' ORDER BY id`).then((r) => r.map((e) => e.payload));

beforeEach(() => ctx.db.query(`DELETE FROM events WHERE run_id = 'idem'`));

describe('IdempotencyService.run', () => {
  it('without a key, just runs the handler and stores nothing', async () => {
    const handler = changing({ status: 201, body: { n: 1 } });
    expect(await idempotency.run('POST /things', undefined, { a: 1 }, handler)).toEqual({ status: 201, body: { n: 1 } });
    expect(handler.calls).toBe(1);
    expect(await ctx.db.query('SELECT count(*)::int AS n FROM idempotency_keys')).toEqual([{ n: 0 }]);
  });

  it('stores the first answer with its change, and replays it for the same key and body without running the handler', async () => {
    const first = changing({ status: 201, body: { id: 'thing-1' } });
    expect(await idempotency.run('POST /things', 'key-1', { a: 1, b: [1, 2] }, first)).toEqual({ status: 201, body: { id: 'thing-1' } });
    expect(await stored('POST /things', 'key-1')).toEqual([{ status: 201, response: { id: 'thing-1' } }]);

    const again = changing({ status: 201, body: { id: 'thing-2' } });
    // The same body with its keys in another order is the same request.
    expect(await idempotency.run('POST /things', 'key-1', { b: [1, 2], a: 1 }, again)).toEqual({ status: 201, body: { id: 'thing-1' } });
    expect(again.calls).toBe(0);
    expect(await changes()).toEqual([{ id: 'thing-1' }]);
  });

  it('keys are per route', async () => {
    await idempotency.run('POST /a', 'shared-key', {}, changing({ status: 201, body: 'a' }));
    expect(await idempotency.run('POST /b', 'shared-key', {}, changing({ status: 201, body: 'b' }))).toEqual({ status: 201, body: 'b' });
  });

  it('refuses the same key with another body, and a malformed key, without running the handler', async () => {
    await idempotency.run('POST /things', 'key-2', { a: 1 }, changing({ status: 201, body: 'first' }));
    const handler = changing({ status: 201, body: 'second' });
    await expect(idempotency.run('POST /things', 'key-2', { a: 2 }, handler)).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    await expect(idempotency.run('POST /things', 'has space', { a: 1 }, handler)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(idempotency.run('POST /things', 'k'.repeat(201), { a: 1 }, handler)).rejects.toBeInstanceOf(DomainError);
    expect(handler.calls).toBe(0);
    expect(await changes()).toEqual(['first']);
  });

  it('stores nothing for an answer the handler did not record (a refusal): a retry asks again', async () => {
    const refusing = async () => {
      throw new DomainError('RUN_EXISTS', 'run exists');
    };
    await expect(idempotency.run('POST /things', 'key-3', {}, refusing)).rejects.toMatchObject({ code: 'RUN_EXISTS' });
    expect(await stored('POST /things', 'key-3')).toEqual([]);
    const retry = changing({ status: 201, body: 'made' });
    expect(await idempotency.run('POST /things', 'key-3', {}, retry)).toEqual({ status: 201, body: 'made' });
    expect(retry.calls).toBe(1);
  });

  it('lets one of two concurrent requests with one key commit; the other rolls back and replays its answer', async () => {
    // The loser starts once the winner has stored the key, not yet committed.
    let recorded!: () => void;
    const winnerRecorded = new Promise<void>((resolve) => (recorded = resolve));
    const winner = changing({ status: 201, body: 'winner' }, { onRecorded: () => recorded(), holdFor: 300 });
    const loser = changing({ status: 201, body: 'loser' }, { after: winnerRecorded });
    const answers = await Promise.all([idempotency.run('POST /things', 'key-race', {}, winner), idempotency.run('POST /things', 'key-race', {}, loser)]);
    expect(answers).toEqual([
      { status: 201, body: 'winner' },
      { status: 201, body: 'winner' },
    ]);
    expect([winner.calls, loser.calls]).toEqual([1, 1]);
    // The loser's change was rolled back with its attempt to store the key.
    expect(await changes()).toEqual(['winner']);
    expect(await stored('POST /things', 'key-race')).toEqual([{ status: 201, response: 'winner' }]);
  });
});

describe('IdempotencyService.respond', () => {
  it('sets the stored status on the response and returns the body, or nothing for a 204', async () => {
    const statuses: number[] = [];
    const res = { status: (code: number) => statuses.push(code) };
    expect(await idempotency.respond(res, 'POST /r', 'key-r', {}, changing({ status: 202, body: { ok: true } }))).toEqual({ ok: true });
    expect(await idempotency.respond(res, 'POST /r', 'key-r', {}, changing({ status: 500, body: 'never' }))).toEqual({ ok: true });
    expect(await idempotency.respond(res, 'POST /r', 'key-204', {}, changing({ status: 204, body: null }))).toBeUndefined();
    expect(statuses).toEqual([202, 202, 204]);
  });
});
