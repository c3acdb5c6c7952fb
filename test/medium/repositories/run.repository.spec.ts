import { RunEntity } from '../../../apps/supervisor/src/entities/index.js';
import { RunRepository } from '../../../apps/supervisor/src/repositories/index.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

describe(RunRepository.name, () => {
  let ctx: MediumContext;
  let runs: RunRepository;

  beforeAll(async () => {
    ctx = await createMediumContext();
    runs = ctx.get(RunRepository);
  });
  afterAll(() => ctx.close());

  it('refreshAfterWrite reads the run as the write left it, the strategy kept from the lock', async () => {
    const made = await ctx.factory.makeRun({ tokensUsed: 5, costUsedUsd: 0.25 });
    const refreshed = await ctx.ds.transaction(async (em) => {
      const locked = (await runs.lock(em, made.runId))!;
      await runs.addUsage(em, made.runId, 100, 0.5);
      await runs.transition(em, made.runId, locked.state, 'PHASE_EXECUTION');
      return { locked, after: await runs.refreshAfterWrite(em, locked), read: (await runs.find(made.runId, em))! };
    });
    expect(refreshed.after).toEqual(refreshed.read);
    expect(refreshed.after).toBeInstanceOf(RunEntity);
    expect(refreshed.after).toMatchObject({ tokensUsed: 105, costUsedUsd: 0.75, state: 'PHASE_EXECUTION' });
    expect(refreshed.after.strategy).toBe(refreshed.locked.strategy);
  });

  it('refreshAfterWrite reads the strategy again when the transaction replaced it', async () => {
    const made = await ctx.factory.makeRun();
    const after = await ctx.ds.transaction(async (em) => {
      const locked = (await runs.lock(em, made.runId))!;
      await runs.setStrategy(em, made.runId, { ...locked.strategy, phases: { added: locked.strategy.phases[Object.keys(locked.strategy.phases)[0]] ?? ({} as never) } });
      return runs.refreshAfterWrite(em, locked);
    });
    expect(Object.keys(after.strategy.phases)).toEqual(['added']);
  });
});
