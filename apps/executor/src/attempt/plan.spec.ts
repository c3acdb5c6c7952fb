import type { AttemptRecord, SubmitPlanArgs } from '@app/contracts';
import { planProblemsFeedback } from '@app/domain';
import { FakeLlm, type FakeReply, FakeSupervisor, bothProviders, makeClaim, silentLog, steppingClock } from '../../../../test/executor/attempt-fakes.js';
import { resolveModelRouting } from '../models.js';
import { renderSpecMarkdown } from '../spec-markdown.js';
import { MeteredLlm } from './metered-llm.js';
import { PLANNER_TOOL, type PlanningInput, planBuild } from './plan.js';

const routing = bothProviders();
const intent = 'A tiny HTTP service that answers GET /health with {"ok":true}, with a test.';
const validPlan: SubmitPlanArgs = {
  tiers: [{ tier_id: 'service', tier_index: 0, name: 'Service' }],
  phases: [
    {
      phase_id: 'http-service',
      phase_index: 0,
      tier_id: 'service',
      name: 'HTTP service',
      description: 'Write server.js and its test.',
      task_category: 'feature_scaffolding',
      scope: { paths: ['server.js', 'test/'] },
      acceptance_criteria: ['GET /health answers 200 {"ok":true}'],
      ci: { command: 'npm test' },
    },
  ],
};
const input = (patch: Partial<PlanningInput> = {}): PlanningInput => ({
  intent,
  repository: { files: [], truncated: false },
  budgets: { tokensLeft: 4_000_000, costLeftUsd: null, maxPhases: 20 },
  ...patch,
});
const planningClaim = (patch: Parameters<typeof makeClaim>[0] = {}) => makeClaim({ phase_id: 'plan', phase: { phase_id: 'plan', name: 'SPEC Generation', task_category: null }, ...patch });

async function run(reply: FakeReply, opts: { claim?: ReturnType<typeof makeClaim>; input?: PlanningInput; routing?: typeof routing } = {}) {
  const r = opts.routing ?? routing;
  const claim = opts.claim ?? planningClaim();
  const llm = new FakeLlm([reply]);
  const supervisor = new FakeSupervisor();
  const metered = new MeteredLlm({ llm, supervisor, routing: r, clock: steppingClock(), log: silentLog }, claim);
  const result = await planBuild({ llm: metered, routing: r, log: silentLog }, claim, opts.input ?? input(), { signal: new AbortController().signal });
  return { result, request: llm.requests[0], supervisor, metered };
}

describe(planBuild.name, () => {
  it('plans with the forced submit_plan tool on the planner model, and renders the SPEC', async () => {
    const { result, request, supervisor, metered } = await run({ toolInput: validPlan });
    expect(request).toMatchObject({ ...routing.defaults.planner, maxTokens: routing.plannerMaxTokens, tool: { name: 'submit_plan', inputSchema: PLANNER_TOOL.inputSchema } });
    expect(request.system).toMatch(/^You are the Planner of Autopack/);
    expect(request.prompt).toContain(intent);
    expect(result).toEqual({
      kind: 'planned',
      plan: validPlan,
      specMarkdown: renderSpecMarkdown(intent, validPlan),
      usage: expect.objectContaining({ report_id: 'r1:plan:1:planner', reservation_id: 'res-1', prompt_tokens: 1000, completion_tokens: 200 }),
    });
    expect(supervisor.bodies('reserveBudget')[0]).toMatchObject({ purpose: 'planner', tokens: expect.any(Number) });
    expect(metered.drainCalls().llm_calls?.map((c) => c.role)).toEqual(['planner']);
  });

  it('climbs the planner escalation chain after failed attempts', async () => {
    const withChain = { ...routing, escalation: { planner: [{ provider: 'openai' as const, model: 'plan-small' }, { provider: 'anthropic' as const, model: 'plan-big' }] } };
    const failedBefore: AttemptRecord = { attempt: 1, outcome: 'builder_failed', reason: 'invalid plan', feedback: 'Your previous plan was rejected; fix every problem:\n- phase p1: tier "x" is not in the plan', edits_hash: null, created_at: '2026-01-01T00:00:00Z' };
    const { request } = await run({ toolInput: validPlan }, { routing: withChain, claim: planningClaim({ attempt: 2, previous_attempts: [failedBefore] }) });
    expect(request).toMatchObject({ provider: 'openai', model: 'plan-small' });
    expect(request.prompt).toContain('- phase p1: tier "x" is not in the plan');
  });

  it('fails a reply without a tool call', async () => {
    const { result } = await run({ toolInput: undefined, malformedReason: 'no tool call in reply' });
    expect(result).toEqual({
      kind: 'plan_failed',
      reason: 'malformed reply: no tool call in reply',
      feedback: 'Your previous reply was rejected: no tool call in reply. Reply only by calling submit_plan with arguments that match its schema.',
      usage: expect.objectContaining({ report_id: 'r1:plan:1:planner' }),
    });
  });

  it('fails arguments that do not match the schema, naming each problem', async () => {
    const { result } = await run({ toolInput: { tiers: [], phases: [{ ...validPlan.phases[0], scope: { paths: ['../x'] } }], run: { run_id: 'r' } } });
    expect(result).toMatchObject({ kind: 'plan_failed', reason: 'malformed reply: arguments fail the submit_plan schema' });
    const feedback = result.kind === 'plan_failed' ? result.feedback.split('\n') : [];
    expect(feedback[0]).toBe('Your previous submit_plan call had invalid arguments:');
    expect(feedback.slice(1)).toEqual(expect.arrayContaining([expect.stringMatching(/^- tiers: /), expect.stringMatching(/^- phases\.0\.scope\.paths\.0: must not contain "\.\."/), expect.stringMatching(/^- \(arguments\): .*run/)]));
  });

  it('fails a plan that breaks the rules, with feedback naming every problem', async () => {
    const broken: SubmitPlanArgs = {
      tiers: validPlan.tiers,
      phases: [
        { ...validPlan.phases[0], tier_id: 'elsewhere' },
        { ...validPlan.phases[0], phase_index: 1, task_category: 'security_auth_change', ci: undefined },
      ],
    };
    const { result } = await run({ toolInput: broken });
    const problems = [
      'phase id "http-service" is used by more than one phase',
      'phase http-service: tier "elsewhere" is not in the plan',
      'phase http-service: category security_auth_change has the strict CI profile and needs a CI command (ci)',
    ];
    expect(result).toEqual({
      kind: 'plan_failed',
      reason: `invalid plan: 3 problem(s): ${problems.join('; ')}`,
      feedback: planProblemsFeedback(problems),
      usage: expect.objectContaining({ report_id: 'r1:plan:1:planner' }),
    });
  });

  it('checks the validation context it is given: budgets, taken ids, required CI and the run CI of the claim', async () => {
    const tight = input({
      budgets: { tokensLeft: 100, costLeftUsd: null, maxPhases: 0 },
      validation: { takenIds: { phaseIds: ['http-service'] }, requireCi: true },
    });
    const noCi = { ...validPlan, phases: [{ ...validPlan.phases[0], ci: undefined }] };
    const { result } = await run({ toolInput: noCi }, { input: tight });
    expect(result.kind === 'plan_failed' && planProblemLines(result.feedback)).toEqual([
      'phase id "http-service" is already used by the run',
      expect.stringMatching(/^the plan has no CI command/),
      "the plan has 1 phase, more than the 0 the run's max_phases allows",
      expect.stringMatching(/^the plan's worst case is 500000 tokens .* more than the 100 tokens left of the run's token_cap$/),
    ]);
    // The claimed run's CI command counts as the plan's.
    const withRunCi = await run({ toolInput: noCi }, { claim: planningClaim({ run: { ci: { command: 'npm test' } } }), input: input({ validation: { requireCi: true } }) });
    expect(withRunCi.result.kind).toBe('planned');
  });

  it("prices the plan's worst case at the routing's highest price unless told otherwise", async () => {
    const pricey = resolveModelRouting({ openai: true, anthropic: true });
    pricey.prices = { ...pricey.prices, [pricey.defaults.builder.model]: { inputPerMTok: 1, outputPerMTok: 100 } };
    const capped = input({ budgets: { tokensLeft: 4_000_000, costLeftUsd: 49, maxPhases: 20 } });
    const refused = await run({ toolInput: validPlan }, { routing: pricey, input: capped });
    expect(refused.result.kind === 'plan_failed' && planProblemLines(refused.result.feedback)).toEqual([
      "the plan's worst case costs $50.0000 (500000 tokens at $100 per million), more than the $49.0000 left of the run's cost_cap_usd",
    ]);
    const toldOtherwise = await run({ toolInput: validPlan }, { routing: pricey, input: { ...capped, validation: { worstCaseUsdPerMTok: 10 } } });
    expect(toldOtherwise.result.kind).toBe('planned');
  });
});

function planProblemLines(feedback: string): string[] {
  return feedback
    .split('\n')
    .slice(1)
    .map((l) => l.replace(/^- /, ''));
}
