import { LeaseSweeperService } from '../../../apps/supervisor/src/services/lease-sweeper.service.js';
import { stateSnapshot } from '../../support/database.js';
import { waitFor } from '../../support/wait.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let sweeper: LeaseSweeperService;
beforeEach(async () => {
  // A database per test: a sweep looks at every run there is.
  ctx = await createMediumContext();
  sweeper = ctx.get(LeaseSweeperService);
});
afterEach(() => ctx?.close());

const phase = (runId: string, phaseId: string) =>
  ctx.db.query('SELECT state, lease_token, lease_owner, attempts_used, claims_count, abandonments, last_failure_reason FROM phases WHERE run_id = $1 AND phase_id = $2', [runId, phaseId]).then((r) => r[0]);
const run = (runId: string) => ctx.db.query('SELECT state, failure_reason, completed_at FROM runs WHERE run_id = $1', [runId]).then((r) => r[0]);

describe('LeaseSweeperService.sweep', () => {
  it('requeues a phase whose lease expired, uncharged and counted as an abandonment, and leaves live leases alone', async () => {
    await ctx.factory.makeRun({ runId: 'r' });
    const gone = await ctx.factory.makePhase({ runId: 'r', phaseId: 'gone', state: 'EXECUTING', lease: { owner: 'crashed', expiresInSeconds: -5 } });
    const live = await ctx.factory.makePhase({ runId: 'r', phaseId: 'live', state: 'GATE', lease: { owner: 'busy', expiresInSeconds: 600 } });
    await ctx.factory.makeReservation({ runId: 'r', phaseId: 'gone', tokens: 5000 });
    await ctx.factory.makeReservation({ runId: 'r', phaseId: 'live', tokens: 700 });

    expect(await sweeper.sweep()).toBe(1);
    expect(await phase('r', 'gone')).toEqual({
      state: 'QUEUED',
      lease_token: null,
      lease_owner: null,
      attempts_used: 0,
      claims_count: 1,
      abandonments: 1,
      last_failure_reason: 'lease of crashed expired',
    });
    expect(await phase('r', 'live')).toMatchObject({ state: 'GATE', lease_token: live.leaseToken, lease_owner: 'busy' });
    // The expired attempt's reservation is released; the live one's is kept.
    expect(await ctx.db.query('SELECT phase_id, tokens::int FROM budget_reservations')).toEqual([{ phase_id: 'live', tokens: 700 }]);
    expect(await ctx.db.query('SELECT attempt, outcome, executor_id FROM phase_attempts WHERE phase_id = $1', [gone.phaseId])).toEqual([
      { attempt: 1, outcome: 'lease_expired', executor_id: 'crashed' },
    ]);
    expect(await ctx.db.query(`SELECT payload FROM events WHERE type = 'phase_state'`)).toEqual([
      {
        payload: expect.objectContaining({ from: 'EXECUTING', to: 'QUEUED', event: 'expireLease', outcome: 'lease_expired', abandonments: 1, attempt_charged: false }),
      },
    ]);
    // Done: the next sweep finds nothing.
    expect(await sweeper.sweep()).toBe(0);
  });

  it('fails a phase abandoned too often: its tier fails, later tiers are skipped and the run ends for review', async () => {
    await ctx.factory.makeRun({ runId: 'r' });
    await ctx.factory.makeTier({ runId: 'r', tierId: 't1', state: 'IN_PROGRESS' });
    await ctx.factory.makeTier({ runId: 'r', tierId: 't2' });
    await ctx.factory.makePhase({ runId: 'r', tierId: 't1', phaseId: 'p', state: 'CI_RUNNING', abandonments: 2, maxAbandonments: 3, lease: { owner: 'flaky', expiresInSeconds: -1 } });
    await ctx.factory.makePhase({ runId: 'r', tierId: 't2', phaseId: 'next' });

    expect(await sweeper.sweep()).toBe(1);
    expect(await phase('r', 'p')).toMatchObject({
      state: 'FAILED',
      abandonments: 3,
      last_failure_reason: 'abandoned: the lease expired 3 times (cap 3); lease of flaky expired',
    });
    expect(await phase('r', 'next')).toMatchObject({ state: 'SKIPPED', last_failure_reason: 'an earlier tier failed' });
    expect(await ctx.db.query(`SELECT tier_id, state FROM tiers WHERE run_id = 'r' ORDER BY tier_index`)).toEqual([
      { tier_id: 't1', state: 'FAILED' },
      { tier_id: 't2', state: 'SKIPPED' },
    ]);
    expect(await run('r')).toMatchObject({ state: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW' });
    expect((await run('r')).failure_reason).toMatch(/^phase\(s\) failed: p \(abandoned: /);
  });

  it('ends a run past its wall-time budget, skipping its queued phases', async () => {
    await ctx.factory.makeRun({ runId: 'late', maxDurationMinutes: 30, startedAt: new Date(Date.now() - 31 * 60_000) });
    await ctx.factory.makePhase({ runId: 'late', phaseId: 'q' });
    await ctx.factory.makeRun({ runId: 'in-time', maxDurationMinutes: 30, startedAt: new Date(Date.now() - 29 * 60_000) });

    expect(await sweeper.sweep()).toBe(1);
    expect(await run('late')).toMatchObject({ state: 'DONE_FAILED_BUDGET_EXHAUSTED', completed_at: expect.any(Date) });
    expect((await run('late')).failure_reason).toMatch(/^max_duration_minutes exhausted: 3\d\.\d of 30 minutes elapsed$/);
    expect(await phase('late', 'q')).toMatchObject({ state: 'SKIPPED' });
    expect(await run('in-time')).toMatchObject({ state: 'PHASE_EXECUTION', completed_at: null });
  });

  it('purges stored Idempotency-Key answers older than a day', async () => {
    await ctx.factory.makeIdempotencyKey({ route: 'POST /runs/start', key: 'old', ageSeconds: 25 * 3600 });
    await ctx.factory.makeIdempotencyKey({ route: 'POST /runs/start', key: 'recent', ageSeconds: 23 * 3600 });
    await sweeper.sweep();
    expect(await ctx.db.query('SELECT key FROM idempotency_keys')).toEqual([{ key: 'recent' }]);
  });

  it('changes nothing when there is nothing to do', async () => {
    await ctx.factory.makeRun({ runId: 'r' });
    await ctx.factory.makePhase({ runId: 'r', state: 'EXECUTING' });
    await ctx.factory.makePhase({ runId: 'r' });
    const before = await stateSnapshot(ctx.db);
    expect(await sweeper.sweep()).toBe(0);
    expect(await stateSnapshot(ctx.db)).toEqual(before);
  });

  it('survives a failing database: the sweep reports nothing done instead of throwing', async () => {
    await ctx.factory.makeRun({ runId: 'r' });
    await ctx.factory.makePhase({ runId: 'r', state: 'EXECUTING', lease: { expiresInSeconds: -1 } });
    await ctx.db.query('ALTER TABLE phases RENAME TO phases_away');
    expect(await sweeper.sweep()).toBe(0);
    await ctx.db.query('ALTER TABLE phases_away RENAME TO phases');
    expect(await sweeper.sweep()).toBe(1);
  });
});

describe('LeaseSweeperService timer', () => {
  it('sweeps on its own every third of a lease once the application has started', async () => {
    const started = await createMediumContext({ init: true, config: { leaseSeconds: 3 } });
    try {
      await started.factory.makeRun({ runId: 'r' });
      await started.factory.makePhase({ runId: 'r', phaseId: 'p', state: 'EXECUTING', lease: { expiresInSeconds: -1 } });
      await waitFor('the timer to requeue the phase', async () => ((await started.db.query(`SELECT 1 FROM phases WHERE state = 'QUEUED'`)).length ? true : undefined), {
        timeoutMs: 10_000,
      });
    } finally {
      await started.close();
    }
  });
});
