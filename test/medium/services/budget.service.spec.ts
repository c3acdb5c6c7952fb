import { PhaseEntity, RunEntity } from '../../../apps/supervisor/src/entities/index.js';
import { BudgetService } from '../../../apps/supervisor/src/services/budget.service.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

describe(BudgetService.name, () => {
  let ctx: MediumContext;
  let sut: BudgetService;

  beforeAll(async () => {
    ctx = await createMediumContext();
    sut = ctx.get(BudgetService);
  });
  afterAll(() => ctx.close());

  const reservations = (runId: string) => ctx.db.query<{ tokens: number }>('SELECT tokens::int AS tokens FROM budget_reservations WHERE run_id = $1', [runId]);

  describe('reserveBudget', () => {
    it('admits a call that fits and counts it against what is left', async () => {
      const run = await ctx.factory.makeRun({ tokenCap: 10_000 });
      const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
      const res = await sut.reserveBudget(run.runId, phase.phaseId, { lease_token: phase.leaseToken!, tokens: 4000 });
      expect(res.budget_left.tokens).toBe(6000);
      expect(await reservations(run.runId)).toEqual([{ tokens: 4000 }]);
      const second = await sut.reserveBudget(run.runId, phase.phaseId, { lease_token: phase.leaseToken!, tokens: 5000 });
      expect(second.budget_left.tokens).toBe(1000);
    });

    it('refuses a call beyond what is left with BUDGET_EXHAUSTED naming the cap, and reserves nothing', async () => {
      const run = await ctx.factory.makeRun({ tokenCap: 10_000 });
      const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
      await sut.reserveBudget(run.runId, phase.phaseId, { lease_token: phase.leaseToken!, tokens: 8000 });
      await expect(sut.reserveBudget(run.runId, phase.phaseId, { lease_token: phase.leaseToken!, tokens: 2001 })).rejects.toMatchObject({
        code: 'BUDGET_EXHAUSTED',
        details: { cap: 'token_cap', left: 2000, requested_tokens: 2001 },
      });
      expect(await reservations(run.runId)).toEqual([{ tokens: 8000 }]);
    });

    it('refuses a call beyond the cost cap', async () => {
      const run = await ctx.factory.makeRun({ costCapUsd: 1 });
      const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
      await expect(sut.reserveBudget(run.runId, phase.phaseId, { lease_token: phase.leaseToken!, tokens: 10, cost_usd: 1.5 })).rejects.toMatchObject({
        code: 'BUDGET_EXHAUSTED',
        details: { cap: 'cost_cap_usd', left: 1 },
      });
    });

    it('refuses a stale lease token', async () => {
      const run = await ctx.factory.makeRun();
      const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
      await expect(sut.reserveBudget(run.runId, phase.phaseId, { lease_token: '00000000-0000-4000-8000-000000000000', tokens: 1 })).rejects.toMatchObject({ code: 'LEASE_LOST' });
      expect(await reservations(run.runId)).toEqual([]);
    });
  });

  describe('endOverdueRuns', () => {
    it('ends a run past its wall time, storing the cap, and skips its queued phases', async () => {
      const run = await ctx.factory.makeRun({ maxDurationMinutes: 5, startedAt: new Date(Date.now() - 10 * 60_000) });
      const phase = await ctx.factory.makePhase({ runId: run.runId });
      const onTime = await ctx.factory.makeRun({ maxDurationMinutes: 60 });
      expect(await sut.endOverdueRuns()).toBeGreaterThanOrEqual(1);
      const ended = await ctx.ds.getRepository(RunEntity).findOneByOrFail({ runId: run.runId });
      expect(ended).toMatchObject({ state: 'DONE_FAILED_BUDGET_EXHAUSTED', failureCap: 'max_duration_minutes' });
      expect(ended.failureReason).toMatch(/^max_duration_minutes exhausted: \d+\.\d of 5 minutes elapsed$/);
      expect(await ctx.ds.getRepository(PhaseEntity).findOneByOrFail({ runId: run.runId, phaseId: phase.phaseId })).toMatchObject({ state: 'SKIPPED' });
      expect((await ctx.ds.getRepository(RunEntity).findOneByOrFail({ runId: onTime.runId })).state).toBe('PHASE_EXECUTION');
    });
  });
});
