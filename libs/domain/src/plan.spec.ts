import type { PhaseCreate, TierCreate } from '@app/contracts';
import {
  type Plan,
  type PlanValidationContext,
  isKnownCategory,
  planProblemsFeedback,
  planWorstCase,
  planningCategories,
  scopePathProblem,
  validatePlan,
} from './plan.js';
import { HIGH_RISK_CATEGORY_DEFAULTS, NORMAL_CATEGORY_DEFAULTS, categoryDefaults } from './strategy.js';

const tier = (patch: Partial<TierCreate> = {}): TierCreate => ({ tier_id: 't1', tier_index: 0, name: 'Service', ...patch });
const phase = (patch: Partial<PhaseCreate> = {}): PhaseCreate => ({
  phase_id: 'p1',
  phase_index: 0,
  tier_id: 't1',
  name: 'HTTP service',
  task_category: 'feature_scaffolding',
  ...patch,
});
const plan = (tiers: TierCreate[], phases: PhaseCreate[]): Plan => ({ tiers, phases });
const ample: PlanValidationContext = { budgets: { tokensLeft: 50_000_000, costLeftUsd: null, maxPhases: 25 } };
const ctx = (patch: Partial<PlanValidationContext> = {}): PlanValidationContext => ({ ...ample, ...patch });

const GENERIC_CAP = categoryDefaults(undefined).incidentTokenCap;
const FEATURE_CAP = NORMAL_CATEGORY_DEFAULTS.feature_scaffolding.incidentTokenCap;
const SECURITY_CAP = HIGH_RISK_CATEGORY_DEFAULTS.security_auth_change.incidentTokenCap;

function problemsOf(p: Plan, c: PlanValidationContext = ample): string[] {
  const r = validatePlan(p, c);
  return r.ok ? [] : r.problems;
}

describe(validatePlan.name, () => {
  it('accepts a valid plan and returns it with its worst case', () => {
    const p = plan([tier(), tier({ tier_id: 't2', tier_index: 1 })], [phase(), phase({ phase_id: 'p2', tier_id: 't2', task_category: 'tests', scope: { paths: ['test/'] } })]);
    expect(validatePlan(p, ample)).toEqual({
      ok: true,
      plan: p,
      worstCase: { tokens: FEATURE_CAP + NORMAL_CATEGORY_DEFAULTS.tests.incidentTokenCap, costUsd: null, phases: 2 },
    });
  });

  describe('ids are unique, and not taken by the run', () => {
    it.each<[string, Plan, PlanValidationContext, string]>([
      ['a repeated tier id', plan([tier(), tier({ tier_index: 1 })], [phase()]), ample, 'tier id "t1" is used by more than one tier'],
      ['a repeated tier index', plan([tier(), tier({ tier_id: 't2' })], [phase()]), ample, 'tier index 0 is used by more than one tier (t1, t2)'],
      ['a repeated phase id', plan([tier()], [phase(), phase({ phase_index: 1 })]), ample, 'phase id "p1" is used by more than one phase'],
      ['a tier id the run uses', plan([tier({ tier_id: 'planning' })], [phase({ tier_id: 'planning' })]), ctx({ takenIds: { tierIds: ['planning'] } }), 'tier id "planning" is already used by the run'],
      ['a phase id the run uses', plan([tier()], [phase({ phase_id: 'spec' })]), ctx({ takenIds: { phaseIds: ['spec'] } }), 'phase id "spec" is already used by the run'],
    ])('names %s', (_what, p, c, problem) => {
      expect(problemsOf(p, c)).toEqual([problem]);
    });
  });

  it.each([
    ['t9', ['phase p1: tier "t9" is not in the plan']],
    ['t1', []],
  ])('checks that the tier %s of a phase exists', (tierId, problems) => {
    expect(problemsOf(plan([tier()], [phase({ tier_id: tierId })]))).toEqual(problems);
  });

  describe('task categories are known', () => {
    it.each([['feature_scaffolding'], ['docs'], ['security_auth_change'], ['security_auth'], ['schema_change'], ['generic'], [undefined]])('accepts %p', (category) => {
      expect(problemsOf(plan([tier()], [phase({ task_category: category, ci: { command: 'npm test' } })]))).toEqual([]);
    });

    it.each([['frontend'], ['feature']])('names the unknown category %p and lists the known ones', (category) => {
      const [problem, ...rest] = problemsOf(plan([tier()], [phase({ task_category: category })]));
      expect(rest).toEqual([]);
      expect(problem).toMatch(new RegExp(`^phase p1: unknown task category "${category}" \\(known: feature_scaffolding, docs, .*, generic\\)$`));
    });
  });

  describe('scope paths are relative paths inside the repository', () => {
    it.each([['src/'], ['src/server.ts'], ['README.md'], ['a/b/c/'], ['.github/workflows/ci.yml']])('accepts %p', (path) => {
      expect(problemsOf(plan([tier()], [phase({ scope: { paths: [path], read_only_context: [path] } })]))).toEqual([]);
    });

    it.each([
      ['/etc/passwd', 'must be a relative path with "/"'],
      ['C:/x', 'must be a relative path with "/"'],
      ['src\\a.ts', 'must be a relative path with "/"'],
      ['../outside', 'must not contain ".."'],
      ['src/../../x', 'must not contain ".."'],
      ['.git/hooks/pre-commit', 'must not touch .git'],
      ['.GIT/config', 'must not touch .git'],
      ['.git./config', 'must not touch .git'],
      ['git~1/config', 'must not touch .git'],
      ['src//a.ts', 'must not contain an empty segment'],
      ['./src', 'must not contain a "." segment'],
    ])('names %p in paths and in read_only_context (%s)', (path, why) => {
      const problems = problemsOf(plan([tier()], [phase({ scope: { paths: [path], read_only_context: [path] } })]));
      expect(problems).toEqual([
        `phase p1: scope.paths ${JSON.stringify(path)} is not a relative path inside the repository: ${why}`,
        `phase p1: scope.read_only_context ${JSON.stringify(path)} is not a relative path inside the repository: ${why}`,
      ]);
    });
  });

  describe('CI commands where the category CI profile needs one', () => {
    const strictCategories = Object.keys(HIGH_RISK_CATEGORY_DEFAULTS);
    it.each(strictCategories)('needs a CI command for the strict category %s', (category) => {
      expect(problemsOf(plan([tier()], [phase({ task_category: category })]))).toEqual([
        `phase p1: category ${category} has the strict CI profile and needs a CI command (ci)`,
      ]);
    });

    it.each<[string, Partial<PhaseCreate>, PlanValidationContext, string[]]>([
      ['a phase command', { task_category: 'security_auth_change', ci: { command: 'npm test' } }, ample, []],
      ["the run's command", { task_category: 'security_auth_change' }, ctx({ runCi: { command: 'npm test' } }), []],
      ['an alias of a strict category', { task_category: 'security_auth' }, ample, ['phase p1: category security_auth has the strict CI profile and needs a CI command (ci)']],
      ['a normal category without CI', { task_category: 'docs' }, ample, []],
      [
        'a normal category made strict by the ruleset',
        { task_category: 'docs' },
        ctx({ ruleset: { docs: { ciProfile: 'strict' } } }),
        ['phase p1: category docs has the strict CI profile and needs a CI command (ci)'],
      ],
      ['a strict category made normal by the ruleset', { task_category: 'security_auth_change' }, ctx({ ruleset: { security_auth_change: { ciProfile: 'normal' } } }), []],
    ])('with %s', (_what, patch, c, problems) => {
      expect(problemsOf(plan([tier()], [phase(patch)]), c)).toEqual(problems);
    });

    it.each<[string, PhaseCreate[], PlanValidationContext, number]>([
      ['no command anywhere', [phase()], ctx({ requireCi: true }), 1],
      ['one phase with a command', [phase(), phase({ phase_id: 'p2', phase_index: 1, ci: { command: 'npm test' } })], ctx({ requireCi: true }), 0],
      ["the run's command", [phase()], ctx({ requireCi: true, runCi: { command: 'npm test' } }), 0],
      ['no command, not required', [phase()], ample, 0],
    ])('with requireCi: %s', (_what, phases, c, count) => {
      const problems = problemsOf(plan([tier()], phases), c);
      expect(problems).toHaveLength(count);
      if (count) expect(problems[0]).toMatch(/^the plan has no CI command/);
    });
  });

  describe('the worst case fits the run budgets', () => {
    const twoPhases = plan([tier()], [phase(), phase({ phase_id: 'p2', phase_index: 1, task_category: undefined })]);
    const worst = FEATURE_CAP + GENERIC_CAP;

    it.each<[string, PlanValidationContext, string[]]>([
      ['tokens left exactly the worst case', ctx({ budgets: { tokensLeft: worst, costLeftUsd: null, maxPhases: 2 } }), []],
      [
        'one token less',
        ctx({ budgets: { tokensLeft: worst - 1, costLeftUsd: null, maxPhases: 2 } }),
        [`the plan's worst case is ${worst} tokens (the sum of its phases' incident token caps), more than the ${worst - 1} tokens left of the run's token_cap`],
      ],
      ['phases within max_phases', ctx({ budgets: { tokensLeft: worst, costLeftUsd: null, maxPhases: 2 } }), []],
      ['one phase too many', ctx({ budgets: { tokensLeft: worst, costLeftUsd: null, maxPhases: 1 } }), ["the plan has 2 phases, more than the 1 the run's max_phases allows"]],
      ['a cost that fits', ctx({ budgets: { tokensLeft: worst, costLeftUsd: 10, maxPhases: 2 }, worstCaseUsdPerMTok: 10 }), []],
      [
        'a cost that does not fit',
        ctx({ budgets: { tokensLeft: worst, costLeftUsd: 9.99, maxPhases: 2 }, worstCaseUsdPerMTok: 10 }),
        ["the plan's worst case costs $10.0000 (1000000 tokens at $10 per million), more than the $9.9900 left of the run's cost_cap_usd"],
      ],
      ['a cost cap without a price (not checked)', ctx({ budgets: { tokensLeft: worst, costLeftUsd: 0, maxPhases: 2 } }), []],
      ['a price without a cost cap', ctx({ budgets: { tokensLeft: worst, costLeftUsd: null, maxPhases: 2 }, worstCaseUsdPerMTok: 1000 }), []],
    ])('%s', (_what, c, problems) => {
      expect(worst).toBe(1_000_000);
      expect(problemsOf(twoPhases, c)).toEqual(problems);
    });

    it('counts the incident caps as the ruleset changes them', () => {
      const c = ctx({ budgets: { tokensLeft: 150_000, costLeftUsd: null, maxPhases: 5 }, ruleset: { feature_scaffolding: { incidentTokenCap: 50_000 } } });
      expect(problemsOf(plan([tier()], [phase(), phase({ phase_id: 'p2', phase_index: 1 }), phase({ phase_id: 'p3', phase_index: 2 })]), c)).toEqual([]);
      expect(problemsOf(plan([tier()], [phase(), phase({ phase_id: 'p2', phase_index: 1 }), phase({ phase_id: 'p3', phase_index: 2 }), phase({ phase_id: 'p4', phase_index: 3 })]), c)).toEqual([
        "the plan's worst case is 200000 tokens (the sum of its phases' incident token caps), more than the 150000 tokens left of the run's token_cap",
      ]);
    });
  });

  it('names every problem of a plan, not only the first', () => {
    const p = plan(
      [tier(), tier(), tier({ tier_id: 't3', tier_index: 2 })],
      [
        phase({ scope: { paths: ['../x'] } }),
        phase({ phase_index: 1, tier_id: 'nowhere', task_category: 'frontend' }),
        phase({ phase_id: 'p3', phase_index: 2, task_category: 'security_auth_change', scope: { read_only_context: ['.git/config'] } }),
      ],
    );
    const problems = problemsOf(p, ctx({ budgets: { tokensLeft: 1_000_000, costLeftUsd: null, maxPhases: 2 } }));
    expect(problems).toEqual([
      'tier id "t1" is used by more than one tier',
      'tier index 0 is used by more than one tier (t1, t1)',
      'phase id "p1" is used by more than one phase',
      'phase p1: tier "nowhere" is not in the plan',
      expect.stringMatching(/^phase p1: unknown task category "frontend"/),
      'phase p1: scope.paths "../x" is not a relative path inside the repository: must not contain ".."',
      'phase p3: scope.read_only_context ".git/config" is not a relative path inside the repository: must not touch .git',
      'phase p3: category security_auth_change has the strict CI profile and needs a CI command (ci)',
      "the plan has 3 phases, more than the 2 the run's max_phases allows",
      `the plan's worst case is ${2 * FEATURE_CAP + SECURITY_CAP} tokens (the sum of its phases' incident token caps), more than the 1000000 tokens left of the run's token_cap`,
    ]);
    expect(planProblemsFeedback(problems).split('\n')).toHaveLength(problems.length + 1);
  });
});

describe(planWorstCase.name, () => {
  it('prices the summed incident caps at the price bound', () => {
    const p = plan([tier()], [phase({ task_category: 'docs' }), phase({ phase_id: 'p2', phase_index: 1, task_category: 'schema_change' })]);
    const tokens = NORMAL_CATEGORY_DEFAULTS.docs.incidentTokenCap + HIGH_RISK_CATEGORY_DEFAULTS.schema_contract_change.incidentTokenCap;
    expect(planWorstCase(p, { worstCaseUsdPerMTok: 2 })).toEqual({ tokens, costUsd: (tokens / 1e6) * 2, phases: 2 });
    expect(planWorstCase(p, {}).costUsd).toBeNull();
  });
});

describe(planningCategories.name, () => {
  it('lists every category of the strategy table, with aliases, CI needs and caps, then generic', () => {
    const table = planningCategories();
    expect(table.map((c) => c.category)).toEqual([...Object.keys(NORMAL_CATEGORY_DEFAULTS), ...Object.keys(HIGH_RISK_CATEGORY_DEFAULTS), 'generic']);
    expect(table.find((c) => c.category === 'security_auth_change')).toEqual({
      category: 'security_auth_change',
      aliases: ['security_auth'],
      highRisk: true,
      complexity: 'high',
      ciProfile: 'strict',
      needsCi: true,
      maxBuilderAttempts: 2,
      incidentTokenCap: SECURITY_CAP,
    });
    expect(table.find((c) => c.category === 'docs')).toMatchObject({ aliases: [], highRisk: false, needsCi: false });
  });

  it('applies the project ruleset', () => {
    expect(planningCategories({ docs: { ciProfile: 'strict', incidentTokenCap: 1234 } }).find((c) => c.category === 'docs')).toMatchObject({ needsCi: true, incidentTokenCap: 1234 });
  });
});

describe('category and path rules', () => {
  it.each([
    ['docs', true],
    ['bulk_operation', true],
    ['generic', true],
    ['Docs', false],
    ['unknown_thing', false],
  ])('isKnownCategory(%p) is %p', (category, known) => {
    expect(isKnownCategory(category)).toBe(known);
  });

  it.each([
    ['src/', null],
    ['a.txt', null],
    ['', expect.any(String)],
    ['src/./a', 'must not contain a "." segment'],
  ])('scopePathProblem(%p)', (path, problem) => {
    expect(scopePathProblem(path)).toEqual(problem);
  });
});
