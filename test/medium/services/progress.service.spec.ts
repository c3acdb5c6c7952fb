import { PhaseEntity, RunEntity, TierEntity } from '../../../apps/supervisor/src/entities/index.js';
import { ProgressService } from '../../../apps/supervisor/src/services/progress.service.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

describe(ProgressService.name, () => {
  let ctx: MediumContext;
  let sut: ProgressService;

  beforeAll(async () => {
    ctx = await createMediumContext();
    sut = ctx.get(ProgressService);
  });
  afterAll(() => ctx.close());

  const runRow = (runId: string) => ctx.ds.getRepository(RunEntity).findOneByOrFail({ runId });
  const tierState = async (id: number) => (await ctx.ds.getRepository(TierEntity).findOneByOrFail({ id })).state;
  const eventTypes = async (runId: string) => (await ctx.db.query<{ type: string }>('SELECT type FROM events WHERE run_id = $1 ORDER BY id', [runId])).map((e) => e.type);

  describe('settle', () => {
    it('skips the queued phases behind a failed tier and ends the run for review, with one event per move', async () => {
      const run = await ctx.factory.makeRun();
      const t1 = await ctx.factory.makeTier({ runId: run.runId, state: 'IN_PROGRESS' });
      await ctx.factory.makePhase({ runId: run.runId, tierId: t1.tierId, state: 'FAILED', lastFailureReason: 'tests failed', phaseId: 'p1' });
      const t2 = await ctx.factory.makeTier({ runId: run.runId });
      const blocked = await ctx.factory.makePhase({ runId: run.runId, tierId: t2.tierId });

      const state = await ctx.ds.transaction(async (em) => sut.settle(em, (await em.getRepository(RunEntity).findOneByOrFail({ runId: run.runId }))!));

      expect(state).toBe('DONE_FAILED_REQUIRES_HUMAN_REVIEW');
      expect(await ctx.ds.getRepository(PhaseEntity).findOneByOrFail({ id: blocked.id })).toMatchObject({ state: 'SKIPPED', lastFailureReason: 'an earlier tier failed' });
      expect([await tierState(t1.id), await tierState(t2.id)]).toEqual(['FAILED', 'SKIPPED']);
      const r = await runRow(run.runId);
      expect(r).toMatchObject({ state: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW', failureReason: 'phase(s) failed: p1 (tests failed)', failureCap: null });
      expect(r.completedAt).not.toBeNull();
      expect(await eventTypes(run.runId)).toEqual(['phase_state', 'tier_state', 'tier_state', 'run_state']);
    });

    it('stores the tiers derived cleanliness and issue counts, and the run totals', async () => {
      const run = await ctx.factory.makeRun();
      const tier = await ctx.factory.makeTier({ runId: run.runId, state: 'IN_PROGRESS' });
      await ctx.factory.makePhase({ runId: run.runId, tierId: tier.tierId, state: 'EXECUTING', majorIssuesCount: 1, minorIssuesCount: 2 });
      await ctx.ds.transaction(async (em) => sut.settle(em, (await em.getRepository(RunEntity).findOneByOrFail({ runId: run.runId }))!));
      expect(await ctx.ds.getRepository(TierEntity).findOneByOrFail({ id: tier.id })).toMatchObject({ state: 'IN_PROGRESS', cleanliness: 'not_clean', minorIssuesCount: 2, majorIssuesCount: 1 });
      expect(await runRow(run.runId)).toMatchObject({ state: 'PHASE_EXECUTION', minorIssuesCount: 2, majorIssuesCount: 1 });
      expect(await eventTypes(run.runId)).toEqual([]);
    });

    it('waits for approval at the end of a run in final approval mode', async () => {
      const run = await ctx.factory.makeRun({ approvalMode: 'final' });
      await ctx.factory.makePhase({ runId: run.runId, state: 'COMPLETE' });
      await ctx.ds.transaction(async (em) => sut.settle(em, (await em.getRepository(RunEntity).findOneByOrFail({ runId: run.runId }))!));
      expect(await runRow(run.runId)).toMatchObject({ state: 'AWAITING_APPROVAL', approvalState: 'pending' });
    });
  });

  describe('exhaustBudget', () => {
    it('ends the run with the cap stored, skipping queued phases and failing leased ones', async () => {
      const run = await ctx.factory.makeRun({ maxParallelPhases: 2 });
      const leased = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
      const queued = await ctx.factory.makePhase({ runId: run.runId });
      const ended = await ctx.ds.transaction(async (em) =>
        sut.exhaustBudget(em, (await em.getRepository(RunEntity).findOneByOrFail({ runId: run.runId }))!, { cap: 'cost_cap_usd', reason: 'cost_cap_usd exhausted: $1.0000 of $1.0000 spent' }),
      );
      expect(ended).toBe(true);
      expect(await runRow(run.runId)).toMatchObject({ state: 'DONE_FAILED_BUDGET_EXHAUSTED', failureCap: 'cost_cap_usd', failureReason: 'cost_cap_usd exhausted: $1.0000 of $1.0000 spent' });
      expect(await ctx.ds.getRepository(PhaseEntity).findOneByOrFail({ id: leased.id })).toMatchObject({ state: 'FAILED', leaseToken: null });
      expect((await ctx.ds.getRepository(PhaseEntity).findOneByOrFail({ id: queued.id })).state).toBe('SKIPPED');
    });

    it('refuses to end a run that already ended', async () => {
      const run = await ctx.factory.makeRun({ state: 'CANCELLED' });
      const ended = await ctx.ds.transaction(async (em) => sut.exhaustBudget(em, (await em.getRepository(RunEntity).findOneByOrFail({ runId: run.runId }))!, { cap: 'token_cap', reason: 'x' }));
      expect(ended).toBe(false);
      expect(await runRow(run.runId)).toMatchObject({ state: 'CANCELLED', failureCap: null });
    });
  });
});
