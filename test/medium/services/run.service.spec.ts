import { DomainError, RunStartRequestSchema } from '@app/contracts';
import { RunService } from '../../../apps/supervisor/src/services/run.service.js';
import { stateSnapshot } from '../../support/database.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let runs: RunService;
beforeAll(async () => {
  ctx = await createMediumContext();
  runs = ctx.get(RunService);
});
afterAll(() => ctx?.close());

/** A start request as the controller hands it over (parsed, defaults applied). */
function plan(runId: string, run: Record<string, unknown> = {}, categories: string[] = ['feature_scaffolding', 'docs', 'tests']) {
  return RunStartRequestSchema.parse({
    run: { run_id: runId, ...run },
    tiers: [
      { tier_id: 't1', tier_index: 0, name: 'Foundation' },
      { tier_id: 't2', tier_index: 1, name: 'Features' },
    ],
    phases: categories.map((c, i) => ({ phase_id: `p${i + 1}`, phase_index: i, tier_id: i < 2 ? 't1' : 't2', name: `Phase ${i + 1}`, task_category: c })),
  });
}

async function refusal(p: Promise<unknown>): Promise<DomainError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}

const eventsOf = (runId: string) => ctx.db.query<{ type: string; phase_id: string | null; payload: Record<string, unknown> }>('SELECT type, phase_id, payload FROM events WHERE run_id = $1 ORDER BY id', [runId]);

describe('RunService.start', () => {
  it('stores the run, its tiers and its queued phases with the compiled strategy, and records run_created', async () => {
    const view = await runs.start(plan('start-1', { token_cap: 900_000 }));
    expect(view).toMatchObject({ run_id: 'start-1', state: 'RUN_CREATED', token_cap: 900_000, approval_state: 'not_required', integration_branch: 'autonomous/start-1' });
    expect(view.tiers.map((t) => [t.tier_id, t.state, t.phases.map((p) => p.phase_id)])).toEqual([
      ['t1', 'PENDING', ['p1', 'p2']],
      ['t2', 'PENDING', ['p3']],
    ]);
    const phases = await ctx.db.query<{ phase_id: string; state: string; max_attempts: number; attempts_used: number }>(
      'SELECT phase_id, state, max_attempts, attempts_used FROM phases WHERE run_id = $1 ORDER BY phase_index',
      ['start-1'],
    );
    // max_attempts comes from each category's strategy (docs allows 2 builder attempts).
    expect(phases.map((p) => [p.phase_id, p.state, p.max_attempts, p.attempts_used])).toEqual([
      ['p1', 'QUEUED', 3, 0],
      ['p2', 'QUEUED', 2, 0],
      ['p3', 'QUEUED', 3, 0],
    ]);
    expect(await eventsOf('start-1')).toEqual([{ type: 'run_created', phase_id: null, payload: { tiers: 2, phases: 3, safety_profile: 'normal' } }]);
  });

  it('asks for approval up front when a phase may not apply itself (high-risk category)', async () => {
    const view = await runs.start(plan('start-risky', {}, ['feature_scaffolding', 'security_auth_change']));
    expect(view.approval_state).toBe('pending');
  });

  it('applies the project ruleset stored for the run project', async () => {
    await ctx.db.query(`INSERT INTO project_rulesets (project_id, ruleset) VALUES ('proj-r', $1::jsonb)`, [JSON.stringify({ docs: { maxBuilderAttempts: 7 } })]);
    await runs.start(plan('start-ruleset', { project_id: 'proj-r' }));
    const [p2] = await ctx.db.query<{ max_attempts: number }>(`SELECT max_attempts FROM phases WHERE run_id = 'start-ruleset' AND phase_id = 'p2'`);
    expect(p2.max_attempts).toBe(7);
  });

  it('refuses duplicate ids, unknown tiers and an existing run without writing anything', async () => {
    await runs.start(plan('start-dup'));
    const before = await stateSnapshot(ctx.db);
    const dup = plan('start-dup-2');
    dup.phases[1].phase_id = 'p1';
    expect(await refusal(runs.start(dup))).toMatchObject({ code: 'INVALID_PLAN', details: { duplicate_phase_ids: ['p1'] } });
    const orphan = plan('start-orphan');
    orphan.phases[2].tier_id = 'nope';
    expect(await refusal(runs.start(orphan))).toMatchObject({ code: 'UNKNOWN_TIER', details: { phases: [{ phase_id: 'p3', tier_id: 'nope' }] } });
    expect(await refusal(runs.start(plan('start-dup')))).toMatchObject({ code: 'RUN_EXISTS' });
    expect(await stateSnapshot(ctx.db)).toEqual(before);
  });

  it('stores the idempotent answer in the transaction that creates the run, and creates nothing when storing fails', async () => {
    const stored: unknown[] = [];
    const view = await runs.start(plan('start-answer'), async (em, answer) => {
      // Inside the transaction: the run is visible here and not yet outside.
      expect((await em.query(`SELECT state FROM runs WHERE run_id = 'start-answer'`)) as unknown[]).toEqual([{ state: 'RUN_CREATED' }]);
      expect(await ctx.db.query(`SELECT 1 FROM runs WHERE run_id = 'start-answer'`)).toEqual([]);
      stored.push(answer);
    });
    expect(stored).toEqual([{ status: 201, body: view }]);

    const failing = runs.start(plan('start-rolled-back'), async () => {
      throw new Error('storage failed');
    });
    await expect(failing).rejects.toThrow('storage failed');
    expect(await ctx.db.query(`SELECT count(*)::int AS n FROM phases WHERE run_id = 'start-rolled-back'`)).toEqual([{ n: 0 }]);
    expect(await ctx.db.query(`SELECT 1 FROM runs WHERE run_id = 'start-rolled-back'`)).toEqual([]);
  });

  it("schedules a debt cleanup tier for the project's aged backlog issues, unless the plan opts out", async () => {
    await ctx.factory.makeBacklogEntry({ projectId: 'proj-debt', issueKey: 'flaky-test', category: 'tests', status: 'needs_cleanup', ageInRuns: 4, ageInTiers: 5 });
    await ctx.factory.makeBacklogEntry({ projectId: 'proj-debt', issueKey: 'fresh', status: 'open' });
    const view = await runs.start(plan('start-debt', { project_id: 'proj-debt' }));
    expect(view.tiers.map((t) => t.tier_id)).toEqual(['t1', 't2', 'debt-cleanup']);
    const cleanup = view.phases.find((p) => p.phase_id === 'debt-cleanup')!;
    expect(cleanup).toMatchObject({ tier_id: 'debt-cleanup', phase_index: 3, task_category: 'debt_cleanup', acceptance_criteria: ['flaky-test no longer occurs'] });
    expect(view.debt_status).toBe('debt cleanup scheduled: 1 phase(s) for aged issues');

    const optOut = await runs.start(plan('start-no-debt', { project_id: 'proj-debt', schedule_debt_cleanup: false }));
    expect(optOut.tiers.map((t) => t.tier_id)).toEqual(['t1', 't2']);
    expect(optOut.debt_status).toBeNull();
  });
});

describe('RunService.cancel', () => {
  it('cancels a running run: queued phases are skipped, a leased phase fails and loses its lease', async () => {
    const run = await ctx.factory.makeRun({ runId: 'cancel-1' });
    await ctx.factory.makePhase({ runId: run.runId, phaseId: 'leased', state: 'EXECUTING' });
    await ctx.factory.makePhase({ runId: run.runId, phaseId: 'queued' });
    const view = await runs.cancel(run.runId, 'wrong branch');
    expect(view.state).toBe('CANCELLED');
    expect(view.failure_reason).toBe('cancelled by operator: wrong branch');
    expect(view.completed_at).not.toBeNull();
    const phases = await ctx.db.query('SELECT phase_id, state, lease_token, last_failure_reason FROM phases WHERE run_id = $1 ORDER BY phase_index', [run.runId]);
    expect(phases).toEqual([
      { phase_id: 'leased', state: 'FAILED', lease_token: null, last_failure_reason: 'run ended: cancelled by operator: wrong branch' },
      { phase_id: 'queued', state: 'SKIPPED', lease_token: null, last_failure_reason: 'run ended: cancelled by operator: wrong branch' },
    ]);
    expect((await eventsOf(run.runId)).map((e) => e.type)).toEqual(['phase_state', 'phase_state', 'run_state', 'tier_state']);
  });

  it('refuses a run that already ended, or does not exist, and changes nothing', async () => {
    const run = await ctx.factory.makeRun({ runId: 'cancel-done', state: 'DONE_SUCCESS' });
    await ctx.factory.makePhase({ runId: run.runId, state: 'COMPLETE' });
    const before = await stateSnapshot(ctx.db);
    expect(await refusal(runs.cancel(run.runId))).toMatchObject({ code: 'INVALID_TRANSITION', details: { state: 'DONE_SUCCESS' } });
    expect(await refusal(runs.cancel('no-such-run'))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await stateSnapshot(ctx.db)).toEqual(before);
  });
});

describe('RunService.approve', () => {
  it('resumes a run waiting at a checkpoint and records how far it is approved', async () => {
    const run = await ctx.factory.makeRun({ runId: 'approve-checkpoint', state: 'AWAITING_APPROVAL', approvalMode: 'checkpoints', approvalState: 'pending' });
    const t1 = await ctx.factory.makeTier({ runId: run.runId, tierId: 't1', state: 'COMPLETE' });
    await ctx.factory.makePhase({ runId: run.runId, tierId: t1.tierId, state: 'COMPLETE' });
    const t2 = await ctx.factory.makeTier({ runId: run.runId, tierId: 't2' });
    await ctx.factory.makePhase({ runId: run.runId, tierId: t2.tierId });
    const view = await runs.approve(run.runId, { approved: true, notes: 'looks good' });
    expect(view).toMatchObject({ state: 'PHASE_EXECUTION', approval_state: 'pending' });
    expect(await ctx.db.query('SELECT approved_through_tier_index, approval_notes FROM runs WHERE run_id = $1', [run.runId])).toEqual([
      { approved_through_tier_index: 0, approval_notes: 'looks good' },
    ]);
  });

  it('completes a run waiting for final approval once every tier is done', async () => {
    const run = await ctx.factory.makeRun({ runId: 'approve-final', state: 'AWAITING_APPROVAL', approvalMode: 'final', approvalState: 'pending' });
    await ctx.factory.makeTier({ runId: run.runId, state: 'COMPLETE' });
    await ctx.factory.makePhase({ runId: run.runId, state: 'COMPLETE' });
    const view = await runs.approve(run.runId, { approved: true });
    expect(view).toMatchObject({ state: 'DONE_SUCCESS', approval_state: 'approved' });
  });

  it('ends a rejected run for human review', async () => {
    const run = await ctx.factory.makeRun({ runId: 'approve-reject', state: 'AWAITING_APPROVAL', approvalMode: 'final', approvalState: 'pending' });
    await ctx.factory.makePhase({ runId: run.runId, state: 'COMPLETE' });
    const view = await runs.approve(run.runId, { approved: false, notes: 'not this way' });
    expect(view).toMatchObject({ state: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW', approval_state: 'rejected', failure_reason: 'rejected by operator: not this way' });
  });

  it('records the promotion decision of a finished run without changing its state', async () => {
    const run = await ctx.factory.makeRun({ runId: 'approve-promotion', state: 'DONE_SUCCESS', approvalState: 'pending' });
    await ctx.factory.makePhase({ runId: run.runId, state: 'COMPLETE' });
    const view = await runs.approve(run.runId, { approved: true });
    expect(view).toMatchObject({ state: 'DONE_SUCCESS', approval_state: 'approved', promotion_eligible: true });
    expect((await eventsOf(run.runId)).at(-1)).toEqual({ type: 'run_approval', phase_id: null, payload: { approved: true, for: 'promotion' } });
  });

  it('refuses a run that is not waiting for approval, and changes nothing', async () => {
    const run = await ctx.factory.makeRun({ runId: 'approve-running' });
    const before = await stateSnapshot(ctx.db);
    expect(await refusal(runs.approve(run.runId, { approved: true }))).toMatchObject({ code: 'INVALID_TRANSITION', details: { state: 'PHASE_EXECUTION' } });
    expect(await refusal(runs.approve('no-such-run', { approved: true }))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await stateSnapshot(ctx.db)).toEqual(before);
  });
});

describe('RunService.get and list', () => {
  it('reads a run with its budgets in database time, and 404s an unknown one', async () => {
    const run = await ctx.factory.makeRun({ runId: 'get-1', tokenCap: 1000, tokensUsed: 250, costCapUsd: 2, costUsedUsd: 0.5 });
    const view = await runs.get(run.runId);
    expect(view.budgets).toMatchObject({ tokens_used: 250, token_cap: 1000, tokens_left: 750, cost_left_usd: 1.5, phases: 0 });
    expect(view.budgets.elapsed_minutes).toBeLessThan(1);
    expect(await refusal(runs.get('no-such-run'))).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('lists runs newest first, filtered by state and paged, with phase progress', async () => {
    const ctx2 = await createMediumContext();
    try {
      const list = ctx2.get(RunService);
      for (const [runId, state, age] of [
        ['old', 'DONE_SUCCESS', 30],
        ['mid', 'PHASE_EXECUTION', 20],
        ['new', 'PHASE_EXECUTION', 10],
      ] as const) {
        await ctx2.factory.makeRun({ runId, state });
        await ctx2.db.query(`UPDATE runs SET created_at = now() - make_interval(mins => $2) WHERE run_id = $1`, [runId, age]);
      }
      await ctx2.factory.makePhase({ runId: 'mid', state: 'COMPLETE', name: 'Done one' });
      await ctx2.factory.makePhase({ runId: 'mid', state: 'EXECUTING', name: 'Busy one' });
      const all = await list.list({ limit: 10, offset: 0 });
      expect(all.total).toBe(3);
      expect(all.runs.map((r) => r.run_id)).toEqual(['new', 'mid', 'old']);
      expect(all.runs[1]).toMatchObject({ phases_total: 2, phases_completed: 1, current_phase_name: 'Busy one' });
      const running = await list.list({ state: 'PHASE_EXECUTION', limit: 1, offset: 1 });
      expect(running).toMatchObject({ total: 2, limit: 1, offset: 1 });
      expect(running.runs.map((r) => r.run_id)).toEqual(['mid']);
    } finally {
      await ctx2.close();
    }
  });
});
