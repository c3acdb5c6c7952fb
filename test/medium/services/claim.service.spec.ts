import { PhaseEntity, RunEntity, TierEntity } from '../../../apps/supervisor/src/entities/index.js';
import { ClaimService } from '../../../apps/supervisor/src/services/claim.service.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

describe(ClaimService.name, () => {
  let ctx: MediumContext;
  let sut: ClaimService;

  beforeAll(async () => {
    ctx = await createMediumContext();
    sut = ctx.get(ClaimService);
  });
  afterAll(() => ctx.close());

  const runRow = (runId: string) => ctx.ds.getRepository(RunEntity).findOneByOrFail({ runId });

  it('leases the lowest-index queued phase of the first unfinished tier, charging an attempt, and settles the run', async () => {
    const run = await ctx.factory.makeRun({ state: 'RUN_CREATED' });
    const t1 = await ctx.factory.makeTier({ runId: run.runId });
    const first = await ctx.factory.makePhase({ runId: run.runId, tierId: t1.tierId });
    await ctx.factory.makePhase({ runId: run.runId, tierId: t1.tierId });
    const t2 = await ctx.factory.makeTier({ runId: run.runId });
    await ctx.factory.makePhase({ runId: run.runId, tierId: t2.tierId, phaseIndex: -1 });

    const claimed = await sut.claim({ executor_id: 'ex-1', run_id: run.runId });
    expect(claimed).toMatchObject({ run_id: run.runId, phase_id: first.phaseId, attempt: 1, lease_seconds: ctx.config.leaseSeconds });
    expect(claimed?.run.phase_states).toMatchObject({ [first.phaseId]: 'EXECUTING' });
    const phase = await ctx.ds.getRepository(PhaseEntity).findOneByOrFail({ runId: run.runId, phaseId: first.phaseId });
    expect(phase).toMatchObject({ state: 'EXECUTING', leaseToken: claimed!.lease_token, leaseOwner: 'ex-1', attemptsUsed: 1, claimsCount: 1 });
    expect((await ctx.ds.getRepository(TierEntity).findOneByOrFail({ id: t1.id })).state).toBe('IN_PROGRESS');
    expect((await runRow(run.runId)).state).toBe('PHASE_EXECUTION');
  });

  it('answers null when every parallel slot of the run is leased', async () => {
    const run = await ctx.factory.makeRun();
    await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
    await ctx.factory.makePhase({ runId: run.runId });
    expect(await sut.claim({ executor_id: 'ex-1', run_id: run.runId })).toBeNull();
  });

  it('ends a run whose token budget is used up instead of claiming, storing the cap', async () => {
    const run = await ctx.factory.makeRun({ tokenCap: 100, tokensUsed: 100 });
    const phase = await ctx.factory.makePhase({ runId: run.runId });
    expect(await sut.claim({ executor_id: 'ex-1', run_id: run.runId })).toBeNull();
    expect(await runRow(run.runId)).toMatchObject({ state: 'DONE_FAILED_BUDGET_EXHAUSTED', failureCap: 'token_cap', failureReason: 'token_cap exhausted: 100 of 100 tokens used' });
    expect((await ctx.ds.getRepository(PhaseEntity).findOneByOrFail({ runId: run.runId, phaseId: phase.phaseId })).state).toBe('SKIPPED');
  });

  it('stops a run at max_phases before a new phase starts, but lets a started phase retry', async () => {
    const run = await ctx.factory.makeRun({ maxPhases: 1 });
    const retried = await ctx.factory.makePhase({ runId: run.runId, claimsCount: 1, attemptsUsed: 1 });
    await ctx.factory.makePhase({ runId: run.runId });
    const claimed = await sut.claim({ executor_id: 'ex-1', run_id: run.runId });
    expect(claimed?.phase_id).toBe(retried.phaseId);
    expect(claimed?.attempt).toBe(2);

    const other = await ctx.factory.makeRun({ maxPhases: 1 });
    await ctx.factory.makePhase({ runId: other.runId, state: 'COMPLETE', claimsCount: 1, attemptsUsed: 1 });
    await ctx.factory.makePhase({ runId: other.runId });
    expect(await sut.claim({ executor_id: 'ex-1', run_id: other.runId })).toBeNull();
    expect(await runRow(other.runId)).toMatchObject({ state: 'DONE_FAILED_BUDGET_EXHAUSTED', failureCap: 'max_phases' });
  });
});
