import { RunStartRequestSchema } from '@app/contracts';
import { ProjectService } from '../../../apps/supervisor/src/services/project.service.js';
import { RunService } from '../../../apps/supervisor/src/services/run.service.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let projects: ProjectService;
beforeAll(async () => {
  ctx = await createMediumContext();
  projects = ctx.get(ProjectService);
});
afterAll(() => ctx?.close());

describe('ProjectService', () => {
  it('has no overrides for a project nobody configured', async () => {
    expect(await projects.getRuleset('fresh')).toEqual({ project_id: 'fresh', categories: {} });
  });

  it('stores overrides under the canonical category in the domain shape, and reads them back in the API shape', async () => {
    const answer = await projects.putRuleset('proj', { categories: { docs: { max_builder_attempts: 6, auto_apply: false } } });
    expect(answer).toEqual({ project_id: 'proj', categories: { docs: { max_builder_attempts: 6, auto_apply: false } } });
    expect(await ctx.db.query(`SELECT ruleset FROM project_rulesets WHERE project_id = 'proj'`)).toEqual([{ ruleset: { docs: { maxBuilderAttempts: 6, autoApply: false } } }]);
    // A run of that project compiles its strategy with them.
    await ctx.get(RunService).start(
      RunStartRequestSchema.parse({
        run: { run_id: 'uses-ruleset', project_id: 'proj' },
        tiers: [{ tier_id: 't', tier_index: 0, name: 'T' }],
        phases: [{ phase_id: 'd', phase_index: 0, tier_id: 't', name: 'Docs', task_category: 'docs' }],
      }),
    );
    expect(await ctx.db.query(`SELECT max_attempts, (SELECT approval_state FROM runs WHERE run_id = 'uses-ruleset') AS approval FROM phases WHERE run_id = 'uses-ruleset'`)).toEqual([
      { max_attempts: 6, approval: 'pending' },
    ]);
  });

  it('replaces the whole ruleset on every put', async () => {
    await projects.putRuleset('proj-2', { categories: { docs: { max_builder_attempts: 2 } } });
    expect(await projects.putRuleset('proj-2', { categories: { tests: { complexity: 'high' } } })).toEqual({ project_id: 'proj-2', categories: { tests: { complexity: 'high' } } });
  });

  it('refuses an unknown category and keeps what was stored', async () => {
    await projects.putRuleset('proj-3', { categories: { docs: { max_builder_attempts: 4 } } });
    await expect(projects.putRuleset('proj-3', { categories: { not_a_category: { max_builder_attempts: 1 } } })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { known: expect.arrayContaining(['docs', 'generic', 'security_auth_change']) },
    });
    expect((await projects.getRuleset('proj-3')).categories).toEqual({ docs: { max_builder_attempts: 4 } });
  });
});
