import { jest } from '@jest/globals';
import { PhaseAttemptEntity, PhaseEntity, RunEntity } from '../../../apps/supervisor/src/entities/index.js';
import { PhaseWriteService, type WriteContext } from '../../../apps/supervisor/src/services/phase-write.service.js';
import { stateSnapshot } from '../../support/database.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

describe(PhaseWriteService.name, () => {
  let ctx: MediumContext;
  let sut: PhaseWriteService;

  beforeAll(async () => {
    ctx = await createMediumContext();
    sut = ctx.get(PhaseWriteService);
  });
  afterAll(() => ctx.close());

  const phaseRow = (runId: string, phaseId: string) => ctx.ds.getRepository(PhaseEntity).findOneByOrFail({ runId, phaseId });
  const runRow = (runId: string) => ctx.ds.getRepository(RunEntity).findOneByOrFail({ runId });
  const eventsOf = (runId: string, type: string) => ctx.db.query<{ payload: Record<string, unknown> }>('SELECT payload FROM events WHERE run_id = $1 AND type = $2 ORDER BY id', [runId, type]);

  /** A run with one leased phase (EXECUTING, attempt 1 of 3). */
  async function leasedPhase(run: Partial<RunEntity> = {}) {
    const r = await ctx.factory.makeRun(run);
    const phase = await ctx.factory.makePhase({ runId: r.runId, state: 'EXECUTING' });
    return { run: r, phase };
  }

  it.each([
    ['a stale token', (t: string) => t.replace(/^./, (c) => (c === '0' ? '1' : '0'))],
    ['no token', () => undefined],
  ])('refuses %s with LEASE_LOST and changes nothing', async (_name, tokenOf) => {
    const { run, phase } = await leasedPhase();
    const before = await stateSnapshot(ctx.db);
    const write = jest.fn(async (w: WriteContext) => sut.apply(w, { kind: 'move', event: 'startCi' }));
    await expect(sut.fencedWrite(run.runId, phase.phaseId, tokenOf(phase.leaseToken!), {}, write)).rejects.toMatchObject({ code: 'LEASE_LOST' });
    expect(write).not.toHaveBeenCalled();
    expect(await stateSnapshot(ctx.db)).toEqual(before);
  });

  it('refuses an expired lease with LEASE_LOST', async () => {
    const r = await ctx.factory.makeRun();
    const phase = await ctx.factory.makePhase({ runId: r.runId, state: 'EXECUTING', lease: { expiresInSeconds: -1 } });
    await expect(sut.fencedWrite(r.runId, phase.phaseId, phase.leaseToken!, {}, (w) => sut.apply(w, { kind: 'keep' }))).rejects.toMatchObject({ code: 'LEASE_LOST' });
  });

  it('refuses a body naming another phase with ID_MISMATCH', async () => {
    const { run, phase } = await leasedPhase();
    await expect(sut.fencedWrite(run.runId, phase.phaseId, phase.leaseToken!, { phase_id: 'other' }, (w) => sut.apply(w, { kind: 'keep' }))).rejects.toMatchObject({
      code: 'ID_MISMATCH',
    });
  });

  it('applies a move that keeps the lease, with its phase_state event', async () => {
    const { run, phase } = await leasedPhase();
    const res = await sut.fencedWrite(run.runId, phase.phaseId, phase.leaseToken!, {}, (w) => sut.apply(w, { kind: 'move', event: 'startCi' }));
    expect(res).toMatchObject({ phase_state: 'CI_RUNNING', run_state: 'PHASE_EXECUTION', attempt: 1, attempts_left: 2 });
    expect(await phaseRow(run.runId, phase.phaseId)).toMatchObject({ state: 'CI_RUNNING', leaseToken: phase.leaseToken });
    expect(await eventsOf(run.runId, 'phase_state')).toEqual([{ payload: { from: 'EXECUTING', to: 'CI_RUNNING', event: 'startCi' } }]);
  });

  it('ends an attempt as COMPLETE: lease released, attempt recorded, the run settled to DONE_SUCCESS', async () => {
    const { run, phase } = await leasedPhase();
    const res = await sut.fencedWrite(run.runId, phase.phaseId, phase.leaseToken!, {}, (w) =>
      sut.apply(w, { kind: 'endAttempt', report: { event: 'complete', outcome: 'auditor_approve' }, commitSha: 'a'.repeat(40), set: { commitSha: 'a'.repeat(40) } }),
    );
    expect(res).toMatchObject({ phase_state: 'COMPLETE', run_state: 'DONE_SUCCESS', commit_sha: 'a'.repeat(40) });
    expect(await phaseRow(run.runId, phase.phaseId)).toMatchObject({ state: 'COMPLETE', leaseToken: null, leaseExpiresAt: null });
    expect(await ctx.ds.getRepository(PhaseAttemptEntity).findBy({ runId: run.runId })).toEqual([
      expect.objectContaining({ phaseId: phase.phaseId, attempt: 1, outcome: 'auditor_approve', commitSha: 'a'.repeat(40), executorId: 'executor-1' }),
    ]);
    expect((await runRow(run.runId)).state).toBe('DONE_SUCCESS');
  });

  it('fails the phase when its last attempt fails, and the run ends for review', async () => {
    const r = await ctx.factory.makeRun();
    const phase = await ctx.factory.makePhase({ runId: r.runId, state: 'EXECUTING', attemptsUsed: 3, claimsCount: 3 });
    const res = await sut.fencedWrite(r.runId, phase.phaseId, phase.leaseToken!, {}, (w) =>
      sut.apply(w, { kind: 'endAttempt', report: { event: 'failAttempt', outcome: 'builder_failed', reason: 'builder_failed: no tool call' } }),
    );
    expect(res).toMatchObject({ phase_state: 'FAILED', run_state: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW', attempts_left: 0 });
    const row = await phaseRow(r.runId, phase.phaseId);
    expect(row).toMatchObject({ state: 'FAILED', failureCap: 'max_attempts', leaseToken: null });
    expect(row.lastFailureReason).toMatch(/attempts exhausted/);
  });

  it('rolls the whole write back with STALE_STATE when the phase moved under the guarded update', async () => {
    const { run, phase } = await leasedPhase();
    const before = await stateSnapshot(ctx.db);
    const write = sut.fencedWrite(run.runId, phase.phaseId, phase.leaseToken!, {}, async (w) => {
      // Another writer's change, in this transaction, before the guarded update runs.
      await w.em.query(`UPDATE phases SET state = 'GATE' WHERE id = $1`, [w.phase.id]);
      return sut.apply(w, { kind: 'move', event: 'startCi' });
    });
    await expect(write).rejects.toMatchObject({ code: 'STALE_STATE' });
    expect(await stateSnapshot(ctx.db)).toEqual(before);
  });

  it('ends the run DONE_FAILED_BUDGET_EXHAUSTED with its cap stored when a write crosses the token cap', async () => {
    const { run, phase } = await leasedPhase({ tokenCap: 1000 });
    const res = await sut.fencedWrite(run.runId, phase.phaseId, phase.leaseToken!, {}, async (w) => {
      await w.em.query('UPDATE runs SET tokens_used = 1500 WHERE run_id = $1', [run.runId]);
      return sut.apply(w, { kind: 'keep' });
    });
    expect(res.run_state).toBe('DONE_FAILED_BUDGET_EXHAUSTED');
    expect(await runRow(run.runId)).toMatchObject({ state: 'DONE_FAILED_BUDGET_EXHAUSTED', failureCap: 'token_cap' });
    expect((await runRow(run.runId)).failureReason).toMatch(/^token_cap exhausted/);
  });
});
