import pg from 'pg';
import { PhaseEntity, RunEntity, TierEntity } from '../../../apps/supervisor/src/entities/index.js';
import { EventRepository, PhaseRepository } from '../../../apps/supervisor/src/repositories/index.js';
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

  it('hands back the claimed phase exactly as TypeORM reads it, and a snapshot of the run exactly as its rows are', async () => {
    const run = await ctx.factory.makeRun();
    const tier = await ctx.factory.makeTier({ runId: run.runId });
    await ctx.factory.makePhase({
      runId: run.runId,
      tierId: tier.tierId,
      tokensUsed: 12_345_678_901,
      scope: { paths: ['src/'], read_only_context: ['README.md'] },
      requires: ['builder'],
      acceptanceCriteria: ['it works'],
      lastFailureReason: 'earlier',
    });
    await ctx.factory.makePhase({ runId: run.runId, tierId: tier.tierId, minorIssuesCount: 2 });
    const phases = ctx.get(PhaseRepository);
    const claimed = await ctx.ds.transaction((em) => phases.claimNextInRun(em, run.runId, 'ex-1', '00000000-0000-4000-8000-000000000001', 60, ['builder']));
    const read = await ctx.ds.getRepository(PhaseEntity).findOneByOrFail({ id: claimed!.id });
    expect(claimed).toEqual(read);
    expect(claimed).toBeInstanceOf(PhaseEntity);
    expect(typeof claimed!.tokensUsed).toBe('number');
    expect(claimed!.leaseExpiresAt).toBeInstanceOf(Date);

    const snapshot = await ctx.ds.transaction((em) => phases.readSnapshot(em, run.runId));
    const rows = await ctx.ds.getRepository(PhaseEntity).find({ where: { runId: run.runId }, order: { phaseIndex: 'ASC', id: 'ASC' } });
    expect(snapshot.phases).toEqual(
      rows.map((p) => ({
        id: p.id,
        phaseId: p.phaseId,
        tierId: p.tierId,
        kind: p.kind,
        state: p.state,
        attemptsUsed: p.attemptsUsed,
        maxAttempts: p.maxAttempts,
        claimsCount: p.claimsCount,
        tokensUsed: p.tokensUsed,
        minorIssuesCount: p.minorIssuesCount,
        majorIssuesCount: p.majorIssuesCount,
        leaseToken: p.leaseToken,
        lastFailureReason: p.lastFailureReason,
        commitSha: p.commitSha,
      })),
    );
    const t = await ctx.ds.getRepository(TierEntity).findOneByOrFail({ id: tier.id });
    expect(snapshot.tiers).toEqual([
      {
        id: t.id,
        tierId: t.tierId,
        tierIndex: t.tierIndex,
        state: t.state,
        cleanliness: t.cleanliness,
        minorIssuesCount: t.minorIssuesCount,
        majorIssuesCount: t.majorIssuesCount,
        tokensUsed: t.tokensUsed,
        ciRunsUsed: t.ciRunsUsed,
      },
    ]);
  });

  it('appends events in their order and sends the notification in the same statement, on commit', async () => {
    const run = await ctx.factory.makeRun();
    const listener = new pg.Client({ connectionString: ctx.db.url });
    await listener.connect();
    try {
      await listener.query('LISTEN autopack_medium_test');
      const heard = new Promise<string | undefined>((resolve) => listener.once('notification', (m) => resolve(m.payload)));
      const events = ctx.get(EventRepository);
      await ctx.ds.transaction((em) =>
        events.appendAndNotify(
          em,
          [
            { runId: run.runId, phaseId: 'a', type: 'phase_claimed', payload: { attempt: 1, executor_id: 'x' } },
            { runId: run.runId, type: 'run_state', payload: { from: 'RUN_CREATED', to: 'PHASE_EXECUTION' } },
            { runId: run.runId, phaseId: 'b', type: 'phase_claimed', payload: { attempt: 2, executor_id: 'y' } },
          ],
          'autopack_medium_test',
          run.runId,
        ),
      );
      expect(await heard).toBe(run.runId);
      const rows: { phase_id: string | null; type: string; payload: unknown }[] = await ctx.ds.query(`SELECT phase_id, type, payload FROM events WHERE run_id = $1 ORDER BY id`, [run.runId]);
      expect(rows).toEqual([
        { phase_id: 'a', type: 'phase_claimed', payload: { attempt: 1, executor_id: 'x' } },
        { phase_id: null, type: 'run_state', payload: { from: 'RUN_CREATED', to: 'PHASE_EXECUTION' } },
        { phase_id: 'b', type: 'phase_claimed', payload: { attempt: 2, executor_id: 'y' } },
      ]);
    } finally {
      await listener.end();
    }
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
