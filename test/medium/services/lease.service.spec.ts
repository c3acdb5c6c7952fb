import { PhaseEntity } from '../../../apps/supervisor/src/entities/index.js';
import { LeaseService } from '../../../apps/supervisor/src/services/lease.service.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

describe(LeaseService.name, () => {
  let ctx: MediumContext;
  let sut: LeaseService;

  beforeAll(async () => {
    ctx = await createMediumContext();
    sut = ctx.get(LeaseService);
  });
  afterAll(() => ctx.close());

  const phaseRow = (runId: string, phaseId: string) => ctx.ds.getRepository(PhaseEntity).findOneByOrFail({ runId, phaseId });

  describe('heartbeat', () => {
    it('extends a live lease', async () => {
      const run = await ctx.factory.makeRun();
      const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING', lease: { expiresInSeconds: 5 } });
      const res = await sut.heartbeat(run.runId, phase.phaseId, phase.leaseToken!);
      expect(new Date(res.lease_expires_at).getTime()).toBeGreaterThan(new Date(phase.leaseExpiresAt!).getTime());
      expect(res).toMatchObject({ run_state: 'PHASE_EXECUTION', stop_requested: false });
      expect((await phaseRow(run.runId, phase.phaseId)).leaseExpiresAt).toEqual(new Date(res.lease_expires_at));
    });

    it('asks the executor to stop when the run no longer accepts work', async () => {
      const run = await ctx.factory.makeRun({ state: 'AWAITING_APPROVAL' });
      const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
      expect(await sut.heartbeat(run.runId, phase.phaseId, phase.leaseToken!)).toMatchObject({ run_state: 'AWAITING_APPROVAL', stop_requested: true });
    });

    it.each([
      ['a stale token', {}, '00000000-0000-4000-8000-000000000000'],
      ['an expired lease', { expiresInSeconds: -1 }, undefined],
    ])('refuses %s with LEASE_LOST', async (_name, lease, token) => {
      const run = await ctx.factory.makeRun();
      const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING', lease });
      await expect(sut.heartbeat(run.runId, phase.phaseId, token ?? phase.leaseToken!)).rejects.toMatchObject({ code: 'LEASE_LOST' });
      expect((await phaseRow(run.runId, phase.phaseId)).leaseExpiresAt).toEqual(phase.leaseExpiresAt);
    });

    it('answers NOT_FOUND for an unknown phase', async () => {
      const run = await ctx.factory.makeRun();
      await expect(sut.heartbeat(run.runId, 'nope', '00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
  });

  describe('expireLeases', () => {
    it('requeues a phase whose lease expired, uncharged and counted as an abandonment; live leases stay', async () => {
      const run = await ctx.factory.makeRun({ maxParallelPhases: 2 });
      const expired = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING', lease: { owner: 'ex-1', expiresInSeconds: -1 } });
      const live = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
      expect(await sut.expireLeases()).toBeGreaterThanOrEqual(1);
      expect(await phaseRow(run.runId, expired.phaseId)).toMatchObject({
        state: 'QUEUED',
        leaseToken: null,
        attemptsUsed: 0,
        abandonments: 1,
        lastFailureReason: 'lease of ex-1 expired',
        failureCap: null,
      });
      expect(await phaseRow(run.runId, live.phaseId)).toMatchObject({ state: 'EXECUTING', leaseToken: live.leaseToken });
      const [attempt] = await ctx.db.query('SELECT outcome, executor_id FROM phase_attempts WHERE run_id = $1 AND phase_id = $2', [run.runId, expired.phaseId]);
      expect(attempt).toEqual({ outcome: 'lease_expired', executor_id: 'ex-1' });
    });

    it('fails a phase abandoned as often as its cap allows, storing the cap, and settles the run', async () => {
      const run = await ctx.factory.makeRun();
      const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING', abandonments: 1, maxAbandonments: 2, lease: { owner: 'ex-2', expiresInSeconds: -1 } });
      await sut.expireLeases();
      expect(await phaseRow(run.runId, phase.phaseId)).toMatchObject({
        state: 'FAILED',
        abandonments: 2,
        failureCap: 'max_abandonments',
        lastFailureReason: 'abandoned: the lease expired 2 times (cap 2); lease of ex-2 expired',
      });
      const [r] = await ctx.db.query<{ state: string }>('SELECT state FROM runs WHERE run_id = $1', [run.runId]);
      expect(r.state).toBe('DONE_FAILED_REQUIRES_HUMAN_REVIEW');
    });
  });
});
