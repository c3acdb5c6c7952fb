/**
 * The API's view of a run, from rows as TypeORM reads them back: bigint and numeric columns
 * come back from pg as strings and timestamps as dates, so the mapping is checked on real rows.
 */
import { PhaseEntity, RunEntity, TierEntity } from '../../../apps/supervisor/src/entities/index.js';
import { toPhaseResponse, toRunResponse } from '../../../apps/supervisor/src/services/run-view.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
beforeAll(async () => {
  ctx = await createMediumContext();
});
afterAll(() => ctx?.close());

async function read(runId: string) {
  const run = await ctx.ds.getRepository(RunEntity).findOneByOrFail({ runId });
  const tiers = await ctx.ds.getRepository(TierEntity).find({ where: { runId }, order: { tierIndex: 'ASC' } });
  const phases = await ctx.ds.getRepository(PhaseEntity).find({ where: { runId }, order: { phaseIndex: 'ASC' } });
  const [{ now }] = await ctx.db.query<{ now: Date }>('SELECT now() AS now');
  return { run, tiers, phases, now };
}

describe('run view', () => {
  it('maps a run with its tiers and phases: numbers as numbers, times as ISO strings, phases under their tier', async () => {
    await ctx.factory.makeRun({ runId: 'view', tokenCap: 9_000_000_000, tokensUsed: 5_000_000_000, costCapUsd: 12.5, costUsedUsd: 2.25, maxDurationMinutes: 60 });
    await ctx.db.query(`UPDATE runs SET started_at = now() - interval '15 minutes' WHERE run_id = 'view'`);
    await ctx.factory.makeTier({ runId: 'view', tierId: 't1', name: 'One' });
    await ctx.factory.makeTier({ runId: 'view', tierId: 't2', name: 'Two' });
    await ctx.factory.makePhase({ runId: 'view', tierId: 't1', phaseId: 'a', tokensUsed: 4_000_000_000 });
    await ctx.factory.makePhase({ runId: 'view', tierId: 't2', phaseId: 'b', state: 'EXECUTING', lease: { owner: 'ex-1', expiresInSeconds: 60 } });
    const { run, tiers, phases, now } = await read('view');
    const view = toRunResponse(run, tiers, phases, now);

    expect(view).toMatchObject({ run_id: 'view', token_cap: 9_000_000_000, tokens_used: 5_000_000_000, integration_branch: 'autonomous/view', completed_at: null });
    expect(view.created_at).toBe(run.createdAt.toISOString());
    expect(view.budgets).toMatchObject({ tokens_left: 4_000_000_000, cost_used_usd: 2.25, cost_left_usd: 10.25, phases: 2, max_duration_minutes: 60 });
    expect(view.budgets.elapsed_minutes).toBeGreaterThanOrEqual(15);
    expect(view.budgets.elapsed_minutes).toBeLessThan(16);
    expect(view.budgets.minutes_left).toBeCloseTo(60 - view.budgets.elapsed_minutes, 1);
    expect(view.tiers.map((t) => [t.tier_id, t.phases.map((p) => p.phase_id)])).toEqual([
      ['t1', ['a']],
      ['t2', ['b']],
    ]);
    expect(view.phases[0].tokens_used).toBe(4_000_000_000);
    const leased = toPhaseResponse(phases[1]);
    expect(leased).toMatchObject({ state: 'EXECUTING', lease_owner: 'ex-1' });
    expect(Date.parse(leased.lease_expires_at!)).toBeGreaterThan(now.getTime());
    // The lease token is the executor's secret: the view never shows it.
    expect(JSON.stringify(view)).not.toContain(phases[1].leaseToken!);
  });

  it('stops the clock at completion and never reports a negative budget', async () => {
    await ctx.factory.makeRun({ runId: 'over', state: 'DONE_FAILED_BUDGET_EXHAUSTED', tokenCap: 100, tokensUsed: 150, costCapUsd: 1, costUsedUsd: 3, maxDurationMinutes: 10 });
    await ctx.db.query(`UPDATE runs SET started_at = now() - interval '3 hours', completed_at = now() - interval '2 hours' WHERE run_id = 'over'`);
    const { run, tiers, phases, now } = await read('over');
    const { budgets } = toRunResponse(run, tiers, phases, now);
    expect(budgets).toMatchObject({ tokens_left: 0, cost_left_usd: 0, elapsed_minutes: 60, minutes_left: 0 });
  });

  it('offers promotion only for a clean success with no major issue and no approval outstanding', async () => {
    const eligible = async (runId: string) => {
      const { run, tiers, phases, now } = await read(runId);
      return toRunResponse(run, tiers, phases, now);
    };
    await ctx.factory.makeRun({ runId: 'clean', state: 'DONE_SUCCESS' });
    await ctx.factory.makeTier({ runId: 'clean', state: 'COMPLETE' });
    expect(await eligible('clean')).toMatchObject({ promotion_eligible: true, promotion_eligible_to_main: 'true' });

    await ctx.factory.makeRun({ runId: 'dirty-tier', state: 'DONE_SUCCESS' });
    await ctx.factory.makeTier({ runId: 'dirty-tier', state: 'COMPLETE', cleanliness: 'not_clean' });
    await ctx.factory.makeRun({ runId: 'major', state: 'DONE_SUCCESS', majorIssuesCount: 1 });
    await ctx.factory.makeRun({ runId: 'awaiting', state: 'DONE_SUCCESS', approvalState: 'pending' });
    await ctx.factory.makeRun({ runId: 'rejected', state: 'DONE_SUCCESS', approvalState: 'rejected' });
    await ctx.factory.makeRun({ runId: 'running' });
    for (const runId of ['dirty-tier', 'major', 'awaiting', 'rejected', 'running']) {
      expect([runId, await eligible(runId)]).toEqual([runId, expect.objectContaining({ promotion_eligible: false, promotion_eligible_to_main: 'false' })]);
    }
    await ctx.factory.makeRun({ runId: 'approved', state: 'DONE_SUCCESS', approvalState: 'approved' });
    expect(await eligible('approved')).toMatchObject({ promotion_eligible: true });
  });
});
