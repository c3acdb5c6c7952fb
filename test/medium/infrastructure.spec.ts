/**
 * The medium tier's own machinery: the template database holds the migrated schema, each
 * context gets a database of its own, and the factories write rows the schema accepts with
 * the leases and strategy the services expect.
 */
import { RunService } from '../../apps/supervisor/src/services/run.service.js';
import { type MediumContext, createMediumContext } from './support/medium.js';
import { templateName } from './support/template-database.js';

let ctx: MediumContext;
beforeAll(async () => {
  ctx = await createMediumContext();
});
afterAll(() => ctx?.close());

describe('medium tier infrastructure', () => {
  it('clones a database that already has every migration, from a template named by the migrations', async () => {
    expect(templateName()).toMatch(/^autopack_template_[0-9a-f]{12}$/);
    expect(ctx.db.name).not.toBe(templateName());
    const applied = await ctx.db.query<{ name: string }>('SELECT name FROM migrations ORDER BY id');
    expect(applied.map((m) => m.name)).toEqual(ctx.ds.migrations.map((m) => m.name));
    expect(await ctx.ds.showMigrations()).toBe(false); // nothing pending
    expect(await ctx.db.query('SELECT * FROM runs')).toEqual([]);
  });

  it('gives each context its own database', async () => {
    const other = await createMediumContext();
    try {
      await ctx.factory.makeRun({ runId: 'only-here' });
      expect(other.db.name).not.toBe(ctx.db.name);
      expect(await other.db.query('SELECT run_id FROM runs')).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('makes a phase in a leased state with a live lease, or an expired one on request, and none otherwise', async () => {
    const run = await ctx.factory.makeRun();
    const live = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
    const expired = await ctx.factory.makePhase({ runId: run.runId, state: 'GATE', lease: { owner: 'ex-9', expiresInSeconds: -30 } });
    const queued = await ctx.factory.makePhase({ runId: run.runId });
    const [{ now }] = await ctx.db.query<{ now: Date }>('SELECT now() AS now');
    expect(live.leaseToken).toMatch(/^[0-9a-f-]{36}$/);
    expect(live.leaseExpiresAt!.getTime()).toBeGreaterThan(now.getTime());
    expect(live.attemptsUsed).toBe(1);
    expect(expired).toMatchObject({ state: 'GATE', leaseOwner: 'ex-9' });
    expect(expired.leaseExpiresAt!.getTime()).toBeLessThan(now.getTime());
    expect(queued).toMatchObject({ state: 'QUEUED', leaseToken: null, attemptsUsed: 0 });
    // All three landed in one tier that the factory made, in index order.
    expect(new Set([live.tierId, expired.tierId, queued.tierId]).size).toBe(1);
    expect([live.phaseIndex, expired.phaseIndex, queued.phaseIndex]).toEqual([0, 1, 2]);
  });

  it('numbers attempts after the last one and reads events back with their database id and time', async () => {
    const run = await ctx.factory.makeRun();
    const phase = await ctx.factory.makePhase({ runId: run.runId, state: 'EXECUTING' });
    const first = await ctx.factory.makeAttempt({ runId: run.runId, phaseId: phase.phaseId, outcome: 'auditor_revise', feedback: 'add a test' });
    const second = await ctx.factory.makeAttempt({ runId: run.runId, phaseId: phase.phaseId });
    expect([first.attempt, first.outcome, first.feedback, second.attempt, second.outcome]).toEqual([1, 'auditor_revise', 'add a test', 2, 'failed']);
    const event = await ctx.factory.makeEvent({ runId: run.runId, phaseId: phase.phaseId, type: 'phase_state', payload: { to: 'EXECUTING' } });
    expect(event).toMatchObject({ runId: run.runId, type: 'phase_state', payload: { to: 'EXECUTING' }, createdAt: expect.any(Date) });
    expect(Number(event.id)).toBeGreaterThan(0);
  });

  it('keeps the schema honest: a lease outside a leased state is refused', async () => {
    const run = await ctx.factory.makeRun();
    await expect(ctx.factory.makePhase({ runId: run.runId, state: 'QUEUED', lease: {} })).rejects.toThrow(/check constraint/);
  });

  it("keeps the run's strategy covering its plan, so the services read it as after POST /runs/start", async () => {
    const run = await ctx.factory.makeRun({ tokenCap: 123_456 });
    const tier = await ctx.factory.makeTier({ runId: run.runId, tierId: 'T1' });
    await ctx.factory.makePhase({ runId: run.runId, tierId: tier.tierId, phaseId: 'p-sec', taskCategory: 'security_auth_change' });
    const view = await ctx.get(RunService).get(run.runId);
    expect(view).toMatchObject({ run_id: run.runId, state: 'PHASE_EXECUTION', token_cap: 123_456 });
    expect(view.tiers.map((t) => t.tier_id)).toEqual(['T1']);
    const stored = (await ctx.db.query<{ strategy: { phases: Record<string, { high_risk: boolean }>; tiers: Record<string, unknown> } }>('SELECT strategy FROM runs WHERE run_id = $1', [run.runId]))[0].strategy;
    expect(Object.keys(stored.tiers)).toEqual(['T1']);
    expect(stored.phases['p-sec'].high_risk).toBe(true);
  });
});
