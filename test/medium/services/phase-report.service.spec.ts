import { AuditorResultRequestSchema, BuilderResultRequestSchema, UpdateStatusRequestSchema } from '@app/contracts';
import { PhaseEntity, RunEntity } from '../../../apps/supervisor/src/entities/index.js';
import { PhaseReportService } from '../../../apps/supervisor/src/services/phase-report.service.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

describe(PhaseReportService.name, () => {
  let ctx: MediumContext;
  let sut: PhaseReportService;

  beforeAll(async () => {
    ctx = await createMediumContext();
    sut = ctx.get(PhaseReportService);
  });
  afterAll(() => ctx.close());

  const phaseRow = (runId: string, phaseId: string) => ctx.ds.getRepository(PhaseEntity).findOneByOrFail({ runId, phaseId });
  const runRow = (runId: string) => ctx.ds.getRepository(RunEntity).findOneByOrFail({ runId });
  const attempts = (runId: string, phaseId: string) => ctx.db.query<{ attempt: number; outcome: string; reason: string | null }>('SELECT attempt, outcome, reason FROM phase_attempts WHERE run_id = $1 AND phase_id = $2 ORDER BY attempt', [runId, phaseId]);

  it('requeues a failed builder attempt with attempts left, records it and releases the lease', async () => {
    const run = await ctx.factory.makeRun();
    const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
    const res = await sut.builderResult(run.runId, phase.phaseId, BuilderResultRequestSchema.parse({ lease_token: phase.leaseToken, status: 'failed', failure_reason: 'patch did not apply' }));
    expect(res).toMatchObject({ phase_state: 'QUEUED', attempts_left: 2 });
    const after = await phaseRow(run.runId, phase.phaseId);
    expect(after).toMatchObject({ state: 'QUEUED', leaseToken: null, lastFailureReason: 'patch did not apply', failureCap: null, builderAttempts: 1 });
    expect(await attempts(run.runId, phase.phaseId)).toEqual([{ attempt: 1, outcome: 'builder_failed', reason: 'patch did not apply' }]);
  });

  it('fails the phase on its last attempt and stores the cap', async () => {
    const run = await ctx.factory.makeRun();
    const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING', attemptsUsed: 3, claimsCount: 3 });
    const res = await sut.builderResult(run.runId, phase.phaseId, BuilderResultRequestSchema.parse({ lease_token: phase.leaseToken, status: 'failed', failure_reason: 'tests failed' }));
    expect(res.phase_state).toBe('FAILED');
    expect(await phaseRow(run.runId, phase.phaseId)).toMatchObject({ state: 'FAILED', lastFailureReason: 'tests failed (attempts exhausted: 3/3)', failureCap: 'max_attempts' });
    // The run's only tier failed: the run ends for review.
    expect(res.run_state).toBe('DONE_FAILED_REQUIRES_HUMAN_REVIEW');
  });

  it('refuses a stale lease token with LEASE_LOST and changes nothing', async () => {
    const run = await ctx.factory.makeRun();
    const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
    const before = await phaseRow(run.runId, phase.phaseId);
    await expect(
      sut.builderResult(run.runId, phase.phaseId, BuilderResultRequestSchema.parse({ lease_token: '00000000-0000-4000-8000-000000000000', status: 'failed' })),
    ).rejects.toMatchObject({ code: 'LEASE_LOST' });
    expect(await phaseRow(run.runId, phase.phaseId)).toEqual(before);
    expect(await attempts(run.runId, phase.phaseId)).toEqual([]);
  });

  it('refuses an expired lease', async () => {
    const run = await ctx.factory.makeRun();
    const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING', lease: { expiresInSeconds: -5 } });
    await expect(sut.auditorResult(run.runId, phase.phaseId, AuditorResultRequestSchema.parse({ lease_token: phase.leaseToken, recommendation: 'approve' }))).rejects.toMatchObject({
      code: 'LEASE_LOST',
    });
  });

  it('fails a revised attempt past the incident cap with attempts left, and stores the cap', async () => {
    const run = await ctx.factory.makeRun();
    const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'GATE' });
    const cap = (await runRow(run.runId)).strategy.phases[phase.phaseId].incident_token_cap;
    await sut.auditorResult(
      run.runId,
      phase.phaseId,
      AuditorResultRequestSchema.parse({ lease_token: phase.leaseToken, recommendation: 'revise', usage: { prompt_tokens: cap, completion_tokens: 0 } }),
    );
    const after = await phaseRow(run.runId, phase.phaseId);
    expect(after).toMatchObject({ state: 'FAILED', failureCap: 'incident_token_cap', tokensUsed: cap });
    expect(after.lastFailureReason).toBe(`auditor requested changes; incident_token_cap exhausted: ${cap} of ${cap} tokens used`);
  });

  it('ends the run when reported usage crosses the run token cap, storing the cap', async () => {
    const run = await ctx.factory.makeRun({ tokenCap: 1000 });
    const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
    await ctx.factory.makePhase({ runId: run.runId });
    const res = await sut.builderResult(
      run.runId,
      phase.phaseId,
      BuilderResultRequestSchema.parse({ lease_token: phase.leaseToken, status: 'needs_review', usage: { prompt_tokens: 600, completion_tokens: 400 } }),
    );
    expect(res.run_state).toBe('DONE_FAILED_BUDGET_EXHAUSTED');
    expect(await runRow(run.runId)).toMatchObject({ state: 'DONE_FAILED_BUDGET_EXHAUSTED', failureCap: 'token_cap', failureReason: 'token_cap exhausted: 1000 of 1000 tokens used' });
  });

  it('ends the run instead of starting a CI run past the tier cap', async () => {
    const run = await ctx.factory.makeRun();
    const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
    // One phase in the tier: two CI runs allowed.
    await ctx.db.query(`UPDATE tiers SET ci_runs_used = 2 WHERE run_id = $1`, [run.runId]);
    await sut.updateStatus(run.runId, phase.phaseId, UpdateStatusRequestSchema.parse({ lease_token: phase.leaseToken, state: 'CI_RUNNING' }));
    const r = await runRow(run.runId);
    expect(r).toMatchObject({ state: 'DONE_FAILED_BUDGET_EXHAUSTED', failureCap: 'tier_ci_run_cap' });
    expect(r.failureReason).toMatch(/^tier \S+ ci_run_cap exhausted: 2 of 2 CI runs used$/);
  });

  it('counts a CI run within the cap and moves the phase', async () => {
    const run = await ctx.factory.makeRun();
    const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
    const res = await sut.updateStatus(run.runId, phase.phaseId, UpdateStatusRequestSchema.parse({ lease_token: phase.leaseToken, state: 'CI_RUNNING' }));
    expect(res.phase_state).toBe('CI_RUNNING');
    expect((await runRow(run.runId)).ciRunsUsed).toBe(1);
  });

  it('refunds the attempt of a released lease', async () => {
    const run = await ctx.factory.makeRun();
    const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING', attemptsUsed: 2, claimsCount: 2 });
    await sut.updateStatus(run.runId, phase.phaseId, UpdateStatusRequestSchema.parse({ lease_token: phase.leaseToken, state: 'QUEUED', failure_reason: 'shutting down' }));
    expect(await phaseRow(run.runId, phase.phaseId)).toMatchObject({ state: 'QUEUED', attemptsUsed: 1, leaseToken: null });
    expect(await attempts(run.runId, phase.phaseId)).toEqual([{ attempt: 2, outcome: 'released', reason: 'shutting down' }]);
  });

  it('retries a failed phase with fresh attempts, clearing its cap, and reopens a run ended for review', async () => {
    const run = await ctx.factory.makeRun({ state: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW' });
    const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'FAILED', attemptsUsed: 3, claimsCount: 3, failureCap: 'max_attempts', lastFailureReason: 'x' });
    await ctx.db.query(`UPDATE tiers SET state = 'FAILED' WHERE run_id = $1`, [run.runId]);
    const res = await sut.retry(run.runId, phase.phaseId);
    expect(res).toMatchObject({ phase_state: 'QUEUED', run_state: 'PHASE_EXECUTION', attempts_left: 3 });
    expect(await phaseRow(run.runId, phase.phaseId)).toMatchObject({ state: 'QUEUED', attemptsUsed: 0, failureCap: null, lastFailureReason: null });
  });
});
