import type { EntityManager } from 'typeorm';
import { BuildDropletRequestSchema, BuildStatusResponseSchema, DomainError } from '@app/contracts';
import { BuildRepository } from '../../../apps/supervisor/src/repositories/index.js';
import { BuildService } from '../../../apps/supervisor/src/services/build.service.js';
import { stateSnapshot } from '../../support/database.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let sut: BuildService;
beforeAll(async () => {
  ctx = await createMediumContext({ config: { maxConcurrentBuilds: 3 } });
  sut = ctx.get(BuildService);
});
afterAll(() => ctx?.close());

/** Runs `fn` in a transaction of its own, as a route would. */
const tx = <T>(fn: (em: EntityManager) => Promise<T>): Promise<T> => ctx.ds.transaction(fn);
const build = (runId: string) => ctx.db.query('SELECT status, checkpoint, error, deployment_url, started_at IS NOT NULL AS started, completed_at IS NOT NULL AS completed, version FROM builds WHERE run_id = $1', [runId]).then((r) => r[0]);
const steps = (runId: string) => ctx.db.query('SELECT step, status, tries, error FROM build_steps WHERE run_id = $1 ORDER BY step', [runId]);
const events = (runId: string) => ctx.db.query(`SELECT payload FROM events WHERE run_id = $1 AND type = 'build_status' ORDER BY id`, [runId]).then((r) => r.map((e) => e.payload));
/** The domain error a call is refused with. */
async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DomainError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('the call was not refused');
}
/** Finishes every build holding a slot, so each test starts with the cap free. */
async function freeSlots(): Promise<void> {
  await ctx.db.query(`UPDATE builds SET status = 'cancelled', checkpoint = NULL WHERE status IN ('queued','running','awaiting_approval')`);
}
beforeEach(freeSlots);

describe('BuildService.create', () => {
  it('stores the build queued with six pending steps, the hooks and channels as given', async () => {
    const run = await ctx.factory.makeRun();
    const req = BuildDropletRequestSchema.parse({
      architect_intent: '  A shop for hats  ',
      droplet_id: 'hats',
      droplet_name: 'Hats',
      approval_mode: 'checkpoints',
      notify_channels: [{ type: 'webhook', url: 'https://n.example/hook' }],
      deploy: { url: 'https://d.example/{{build_id}}' },
    });
    const row = await tx((em) => sut.create(em, run.runId, req));
    expect(row).toMatchObject({ runId: run.runId, dropletId: 'hats', dropletName: 'Hats', intent: 'A shop for hats', approvalMode: 'checkpoints', autoDeploy: true, status: 'queued', checkpoint: null, hooks: { deploy: { url: 'https://d.example/{{build_id}}' } } });
    expect(row.notifyChannels).toEqual(req.notify_channels);
    // Hooks left out are not stored: they come from the configuration when called.
    expect(Object.keys(row.hooks)).toEqual(['deploy']);
    expect(await steps(run.runId)).toEqual([1, 2, 3, 4, 5, 6].map((step) => ({ step, status: 'pending', tries: 0, error: null })));
  });

  it('stores nothing when the caller rolls back', async () => {
    const run = await ctx.factory.makeRun();
    await expect(
      tx(async (em) => {
        await sut.create(em, run.runId, BuildDropletRequestSchema.parse({ architect_intent: 'x' }));
        throw new Error('the plan failed');
      }),
    ).rejects.toThrow('the plan failed');
    expect(await build(run.runId)).toBeUndefined();
  });
});

describe('BuildService.admit', () => {
  it('starts queued builds first come first, up to the cap; the next one starts when a slot frees', async () => {
    const queued: string[] = [];
    for (const ago of [40, 30, 20, 10]) queued.push((await ctx.factory.makeBuild({ queuedSecondsAgo: ago })).runId);
    expect(await tx((em) => sut.admit(em))).toEqual(queued.slice(0, 3));
    expect(await Promise.all(queued.map(async (id) => (await build(id)).status))).toEqual(['running', 'running', 'running', 'queued']);
    expect(await build(queued[0])).toMatchObject({ started: true, completed: false, version: 2 });
    // Steps are the orchestration's to start.
    expect((await steps(queued[0])).map((s) => s.status)).toEqual(Array(6).fill('pending'));
    expect(await events(queued[0])).toEqual([{ from: 'queued', to: 'running' }]);

    expect(await tx((em) => sut.admit(em))).toEqual([]);
    await tx((em) => sut.complete(em, queued[1], { deploymentUrl: 'https://hats.example' }));
    expect(await tx((em) => sut.admit(em))).toEqual([queued[3]]);
    expect((await build(queued[3])).status).toBe('running');
  });

  it('counts builds awaiting approval against the cap', async () => {
    for (let i = 0; i < 3; i++) await ctx.factory.makeBuild({ status: 'awaiting_approval' });
    const waiting = await ctx.factory.makeBuild();
    expect(await tx((em) => sut.admit(em))).toEqual([]);
    expect((await build(waiting.runId)).status).toBe('queued');
  });

  it('never overfills the cap when admissions run at once', async () => {
    for (let i = 0; i < 5; i++) await ctx.factory.makeBuild({ queuedSecondsAgo: 10 - i });
    const started = await Promise.all([1, 2, 3].map(() => tx((em) => sut.admit(em))));
    expect(started.flat()).toHaveLength(3);
    expect(await ctx.db.query(`SELECT count(*)::int AS n FROM builds WHERE status = 'running'`)).toEqual([{ n: 3 }]);
  });
});

describe('BuildService steps', () => {
  it('starts a step (one more try), completes it, and fails one with its error', async () => {
    const b = await ctx.factory.makeBuild({ status: 'running' });
    await tx((em) => sut.startStep(em, b.runId, 1));
    expect(await tx((em) => sut.completeStep(em, b.runId, 1))).toBeUndefined();
    await tx((em) => sut.startStep(em, b.runId, 2));
    await tx((em) => sut.failStep(em, b.runId, 2, { error: 'npm install failed' }));
    expect((await steps(b.runId)).slice(0, 3)).toEqual([
      { step: 1, status: 'completed', tries: 1, error: null },
      { step: 2, status: 'failed', tries: 1, error: 'npm install failed' },
      { step: 3, status: 'pending', tries: 0, error: null },
    ]);
    expect((await build(b.runId)).status).toBe('running');
  });

  it('waits at the checkpoint of the approval mode after its step', async () => {
    const spec = await ctx.factory.makeBuild({ status: 'running', approvalMode: 'checkpoints', steps: { 1: { status: 'running', startedSecondsAgo: 5 } } });
    expect(await tx((em) => sut.completeStep(em, spec.runId, 1))).toBe('spec_generated');
    expect(await build(spec.runId)).toMatchObject({ status: 'awaiting_approval', checkpoint: 'spec_generated' });
    expect(await events(spec.runId)).toEqual([{ from: 'running', to: 'awaiting_approval', checkpoint: 'spec_generated', step: 1 }]);

    const final = await ctx.factory.makeBuild({ status: 'running', approvalMode: 'final', steps: { 1: { status: 'running', startedSecondsAgo: 5 } } });
    expect(await tx((em) => sut.completeStep(em, final.runId, 1))).toBeUndefined();
    expect((await build(final.runId)).status).toBe('running');
  });

  it('refuses a step move the table does not allow, or of a build not running, changing nothing', async () => {
    const b = await ctx.factory.makeBuild({ status: 'running', steps: { 1: { status: 'completed', startedSecondsAgo: 9, completedSecondsAgo: 1 } } });
    const queued = await ctx.factory.makeBuild();
    const before = await stateSnapshot(ctx.db);
    expect(await refusal(tx((em) => sut.startStep(em, b.runId, 1)))).toMatchObject({ code: 'INVALID_TRANSITION' });
    expect(await refusal(tx((em) => sut.completeStep(em, b.runId, 2)))).toMatchObject({ code: 'INVALID_TRANSITION' });
    expect(await refusal(tx((em) => sut.startStep(em, queued.runId, 1)))).toMatchObject({ code: 'INVALID_TRANSITION', message: expect.stringContaining('queued') });
    expect(await stateSnapshot(ctx.db)).toEqual(before);
  });
});

describe('BuildService guarded updates', () => {
  it('refuse a build or step no longer in the status read: nothing changes', async () => {
    const b = await ctx.factory.makeBuild({ status: 'running' });
    const repo = ctx.get(BuildRepository);
    const before = await stateSnapshot(ctx.db);
    expect(await tx((em) => repo.updateStatus(em, b.runId, 'queued', 'running', { stamp: 'started' }))).toBe(0);
    expect(await tx((em) => repo.updateStep(em, b.runId, 1, 'running', 'completed', { stamp: 'completed' }))).toBe(0);
    expect(await stateSnapshot(ctx.db)).toEqual(before);
    expect(await tx((em) => repo.updateStatus(em, b.runId, 'running', 'completed', { stamp: 'completed' }))).toBe(1);
  });
});

describe('BuildService.approve', () => {
  it('runs on when approved (checkpoint cleared)', async () => {
    const b = await ctx.factory.makeBuild({ status: 'awaiting_approval', checkpoint: 'spec_generated' });
    const row = await tx((em) => sut.approve(em, b.runId, { approved: true, checkpoint: 'spec_generated' }));
    expect(row).toMatchObject({ status: 'running', checkpoint: null });
    expect(await events(b.runId)).toEqual([{ from: 'awaiting_approval', to: 'running', checkpoint: 'spec_generated' }]);
  });

  it('fails with the notes when rejected', async () => {
    const b = await ctx.factory.makeBuild({ status: 'awaiting_approval', checkpoint: 'built' });
    const row = await tx((em) => sut.approve(em, b.runId, { approved: false, notes: 'colours are off' }));
    expect(row).toMatchObject({ status: 'failed', checkpoint: null, error: 'rejected at built: colours are off' });
    expect((await build(b.runId)).completed).toBe(true);
  });

  it('refuses 409 when not awaiting approval or waiting at another checkpoint, changing nothing', async () => {
    const waiting = await ctx.factory.makeBuild({ status: 'awaiting_approval', checkpoint: 'built' });
    const running = await ctx.factory.makeBuild({ status: 'running' });
    const before = await stateSnapshot(ctx.db);
    expect(await refusal(tx((em) => sut.approve(em, waiting.runId, { approved: true, checkpoint: 'spec_generated' })))).toEqual({
      code: 'INVALID_TRANSITION',
      message: expect.stringContaining(`waits at 'built', not 'spec_generated'`),
    });
    expect(await refusal(tx((em) => sut.approve(em, running.runId, { approved: true })))).toMatchObject({ code: 'INVALID_TRANSITION' });
    expect(await refusal(tx((em) => sut.approve(em, 'no-such-build', { approved: true })))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await stateSnapshot(ctx.db)).toEqual(before);
  });
});

describe('BuildService.cancel', () => {
  it('cancels a build that has not finished; 409 once it has', async () => {
    const b = await ctx.factory.makeBuild({ status: 'awaiting_approval' });
    expect(await tx((em) => sut.cancel(em, b.runId))).toMatchObject({ status: 'cancelled', checkpoint: null });
    const done = await ctx.factory.makeBuild({ status: 'completed' });
    const before = await stateSnapshot(ctx.db);
    expect(await refusal(tx((em) => sut.cancel(em, b.runId)))).toMatchObject({ code: 'INVALID_TRANSITION' });
    expect(await refusal(tx((em) => sut.cancel(em, done.runId)))).toMatchObject({ code: 'INVALID_TRANSITION' });
    expect(await stateSnapshot(ctx.db)).toEqual(before);
  });
});

describe('BuildService.retry', () => {
  const failedAt5 = () =>
    ctx.factory.makeBuild({
      status: 'failed',
      error: 'deploy hook answered 500',
      steps: {
        1: { status: 'completed', startedSecondsAgo: 100, completedSecondsAgo: 90 },
        2: { status: 'completed', startedSecondsAgo: 90, completedSecondsAgo: 80 },
        3: { status: 'completed', startedSecondsAgo: 80, completedSecondsAgo: 30 },
        4: { status: 'completed', startedSecondsAgo: 30, completedSecondsAgo: 20 },
        5: { status: 'failed', startedSecondsAgo: 20, error: 'answered 500', tries: 4 },
      },
    });

  it('requeues from the failed step by default, resetting it only', async () => {
    const b = await failedAt5();
    const { build: row, fromStep } = await tx((em) => sut.retry(em, b.runId));
    expect(fromStep).toBe(5);
    expect(row).toMatchObject({ status: 'queued', error: null });
    expect((await steps(b.runId)).map((s) => s.status)).toEqual(['completed', 'completed', 'completed', 'completed', 'pending', 'pending']);
    expect((await steps(b.runId))[4]).toEqual({ step: 5, status: 'pending', tries: 4, error: null });
    expect(await events(b.runId)).toEqual([{ from: 'failed', to: 'queued', step: 5 }]);
  });

  it('goes back to an earlier from_step, by name, resetting it and every later step that ran', async () => {
    const b = await failedAt5();
    expect((await tx((em) => sut.retry(em, b.runId, 'build'))).fromStep).toBe(3);
    expect((await steps(b.runId)).map((s) => s.status)).toEqual(['completed', 'completed', 'pending', 'pending', 'pending', 'pending']);
  });

  it('refuses a from_step after the failed one (422), and a build not failed (409), changing nothing', async () => {
    const b = await failedAt5();
    const running = await ctx.factory.makeBuild({ status: 'running' });
    const before = await stateSnapshot(ctx.db);
    expect(await refusal(tx((em) => sut.retry(em, b.runId, 6)))).toEqual({ code: 'VALIDATION_FAILED', message: expect.stringContaining('would skip it') });
    expect(await refusal(tx((em) => sut.retry(em, b.runId, 'launch')))).toEqual({ code: 'VALIDATION_FAILED', message: expect.stringContaining('from_step must be 1-6') });
    expect(await refusal(tx((em) => sut.retry(em, running.runId)))).toMatchObject({ code: 'INVALID_TRANSITION' });
    expect(await stateSnapshot(ctx.db)).toEqual(before);
  });
});

describe('BuildService.complete and fail', () => {
  it('completes a running build with its URL; fails one with the step and error', async () => {
    const ok = await ctx.factory.makeBuild({ status: 'running' });
    expect(await tx((em) => sut.complete(em, ok.runId, { deploymentUrl: 'https://hats.example' }))).toMatchObject({ status: 'completed', deploymentUrl: 'https://hats.example' });
    const bad = await ctx.factory.makeBuild({ status: 'running' });
    expect(await tx((em) => sut.fail(em, bad.runId, { step: 4, error: 'tests failed' }))).toMatchObject({ status: 'failed', error: 'tests failed' });
    expect(await events(bad.runId)).toEqual([{ from: 'running', to: 'failed', step: 4, error: 'tests failed' }]);
    expect(await refusal(tx((em) => sut.complete(em, ok.runId)))).toMatchObject({ code: 'INVALID_TRANSITION' });
  });
});

describe('BuildService.statusView and list', () => {
  it('answers a schema-valid status with the current step and an estimate from earlier builds', async () => {
    // History: only this test's builds; an earlier build's step 3 took 100 s (the default would be 600 s).
    await ctx.db.query('DELETE FROM builds');
    await ctx.factory.makeBuild({ status: 'completed', steps: { 3: { status: 'completed', startedSecondsAgo: 1000, completedSecondsAgo: 900 } } });
    const b = await ctx.factory.makeBuild({
      status: 'running',
      dropletId: 'hats',
      steps: {
        1: { status: 'completed', startedSecondsAgo: 200, completedSecondsAgo: 140 },
        2: { status: 'completed', startedSecondsAgo: 140, completedSecondsAgo: 130 },
        3: { status: 'running', startedSecondsAgo: 50 },
      },
    });
    const view = BuildStatusResponseSchema.parse(await sut.statusView(b.runId));
    expect(view).toMatchObject({ build_id: b.runId, droplet_id: 'hats', droplet_name: null, status: 'running', current_phase: 'Build', completed_at: null });
    expect(view).not.toHaveProperty('checkpoint');
    expect(view).not.toHaveProperty('error');
    expect(view.phases.map((p) => [p.name, p.status])).toEqual([
      ['SPEC Generation', 'completed'],
      ['Package', 'completed'],
      ['Build', 'running'],
      ['Verify', 'pending'],
      ['Deploy', 'pending'],
      ['Register', 'pending'],
    ]);
    // Medians from the history: step 1 ran 60 s, step 2 10 s (both builds), step 3 100 s.
    // Left: 50 s of step 3, then 120 + 60 + 5 by default.
    expect(view.estimated_time_remaining).toBe(50 + 120 + 60 + 5);
    expect(view.progress_percent).toBe(Math.floor((100 * (60 + 10 + 50)) / (60 + 10 + 100 + 120 + 60 + 5)));
  });

  it('shows the checkpoint, error and URL only when set; 404 for an unknown build', async () => {
    const waiting = await ctx.factory.makeBuild({ status: 'awaiting_approval', checkpoint: 'spec_generated', steps: { 1: { status: 'completed', startedSecondsAgo: 9, completedSecondsAgo: 1 } } });
    expect(BuildStatusResponseSchema.parse(await sut.statusView(waiting.runId))).toMatchObject({ checkpoint: 'spec_generated', current_phase: 'SPEC Generation' });
    const failed = await ctx.factory.makeBuild({ status: 'failed', error: 'boom', steps: { 1: { status: 'failed', startedSecondsAgo: 9 } } });
    expect(BuildStatusResponseSchema.parse(await sut.statusView(failed.runId))).toMatchObject({ error: 'boom', current_phase: 'SPEC Generation', estimated_time_remaining: 0 });
    expect(await refusal(sut.statusView('no-such-build'))).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('lists builds newest first, by status and creation time', async () => {
    const first = await ctx.factory.makeBuild({ status: 'failed' });
    await ctx.db.query(`UPDATE builds SET created_at = now() - interval '1 hour' WHERE run_id = $1`, [first.runId]);
    const second = await ctx.factory.makeBuild({ status: 'failed' });
    const failed = await sut.list({ status: 'failed' });
    expect(failed.every((b) => b.status === 'failed')).toBe(true);
    const ids = failed.map((b) => b.build_id);
    expect(ids.indexOf(second.runId)).toBeLessThan(ids.indexOf(first.runId));
    const recent = await sut.list({ since: new Date(Date.now() - 10 * 60_000).toISOString() });
    expect(recent.map((b) => b.build_id)).toContain(second.runId);
    expect(recent.map((b) => b.build_id)).not.toContain(first.runId);
    const older = await sut.list({ until: new Date(Date.now() - 10 * 60_000).toISOString() });
    expect(older.map((b) => b.build_id)).toEqual([first.runId]);
    for (const b of failed) BuildStatusResponseSchema.parse(b);
  });
});

describe('where promotion moved the base branch (BuildRepository)', () => {
  const promotion = (runId: string) => ctx.db.query('SELECT promoted_from, promoted_to, promotion_started FROM builds WHERE run_id = $1', [runId]).then((r) => r[0]);
  const A = 'a'.repeat(40);
  const B = 'b'.repeat(40);

  it('keeps the base recorded before the move when a resumed attempt reports the moved branch as its start', async () => {
    const run = await ctx.factory.makeRun();
    await tx((em) => sut.create(em, run.runId, BuildDropletRequestSchema.parse({ architect_intent: 'x' })));
    const repo = ctx.get(BuildRepository);
    expect(await tx((em) => repo.startPromotion(em, run.runId, A))).toBe(true);
    // The executor died after moving the branch; its next attempt sees the branch at B already.
    expect(await tx((em) => repo.startPromotion(em, run.runId, B))).toBe(false);
    expect(await tx((em) => repo.setPromotion(em, run.runId, B, B))).toBe(true);
    expect(await promotion(run.runId)).toEqual({ promoted_from: A, promoted_to: B, promotion_started: true });
    // Reported again: the first report stands.
    expect(await tx((em) => repo.setPromotion(em, run.runId, A, A))).toBe(false);
    expect(await promotion(run.runId)).toEqual({ promoted_from: A, promoted_to: B, promotion_started: true });
  });

  it('records a base branch that did not exist (null), and a new generation forgets the promotion', async () => {
    const run = await ctx.factory.makeRun();
    await tx((em) => sut.create(em, run.runId, BuildDropletRequestSchema.parse({ architect_intent: 'x' })));
    const repo = ctx.get(BuildRepository);
    await tx((em) => repo.startPromotion(em, run.runId, null));
    await tx((em) => repo.setPromotion(em, run.runId, B, B));
    expect(await promotion(run.runId)).toEqual({ promoted_from: null, promoted_to: B, promotion_started: true });
    await tx((em) => repo.nextGeneration(em, run.runId, { forgetPromotion: true }));
    expect(await promotion(run.runId)).toEqual({ promoted_from: null, promoted_to: null, promotion_started: false });
  });
});
