import { RunStartRequestSchema } from './runs.contract.js';
import { SubmitPlanArgsSchema, TOOL_NAMES, toolInputJsonSchema } from './tools.contract.js';

const plan = {
  tiers: [{ tier_id: 't1', tier_index: 0, name: 'Service' }],
  phases: [
    {
      phase_id: 'p1',
      phase_index: 0,
      tier_id: 't1',
      name: 'HTTP service',
      task_category: 'feature_scaffolding',
      scope: { paths: ['src/'] },
      ci: { command: 'npm test' },
    },
  ],
};

describe('submit_plan arguments', () => {
  it('is named submit_plan (CONTRACT.md section 4)', () => {
    expect(TOOL_NAMES.planner).toBe('submit_plan');
  });

  it('accepts exactly what POST /runs/start accepts, without run', () => {
    expect(SubmitPlanArgsSchema.parse(plan)).toEqual(plan);
    expect(RunStartRequestSchema.safeParse({ run: { run_id: 'r1' }, ...plan }).success).toBe(true);
  });

  it.each([
    ['a run part', { ...plan, run: { run_id: 'r1' } }],
    ['no tiers', { ...plan, tiers: [] }],
    ['no phases', { ...plan, phases: [] }],
    ['an unknown phase field', { ...plan, phases: [{ ...plan.phases[0], owner: 'me' }] }],
    ['a bad id', { ...plan, tiers: [{ ...plan.tiers[0], tier_id: '../t1' }] }],
    ['a scope path with ..', { ...plan, phases: [{ ...plan.phases[0], scope: { paths: ['../outside'] } }] }],
    ['a category that is not snake_case', { ...plan, phases: [{ ...plan.phases[0], task_category: 'Feature Work' }] }],
  ])('refuses %s', (_what, args) => {
    expect(SubmitPlanArgsSchema.safeParse(args).success).toBe(false);
  });

  it('gives the providers a JSON Schema of tiers and phases, strict, without run', () => {
    const json = toolInputJsonSchema(SubmitPlanArgsSchema);
    expect(json).toMatchObject({ type: 'object', required: ['tiers', 'phases'], additionalProperties: false });
    expect(Object.keys(json.properties as object)).toEqual(['tiers', 'phases']);
    expect(json).not.toHaveProperty('$schema');
    const phase = (json.properties as { phases: { items: { properties: Record<string, unknown>; required: string[] } } }).phases.items;
    expect(phase.required).toEqual(expect.arrayContaining(['phase_id', 'phase_index', 'tier_id', 'name']));
    expect(Object.keys(phase.properties)).toEqual(expect.arrayContaining(['task_category', 'scope', 'ci', 'acceptance_criteria']));
  });
});
