/**
 * The planning stage through the real SDKs (LlmClient) against the scripted LLM server: a
 * forced `submit_plan` call in both wire formats, streamed and not, answered by a script keyed
 * by the tool name, as the demo and the end-to-end tests will drive it.
 */
import type { SubmitPlanArgs } from '@app/contracts';
import { LlmClient, type Provider } from '@app/llm';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { FakeSupervisor, bothProviders, makeClaim, silentLog, steppingClock } from '../../../../test/executor/attempt-fakes.js';
import { MeteredLlm } from './metered-llm.js';
import { PLANNER_TOOL, planBuild } from './plan.js';

const plan: SubmitPlanArgs = {
  tiers: [{ tier_id: 'service', tier_index: 0, name: 'Service' }],
  phases: [
    {
      phase_id: 'http-service',
      phase_index: 0,
      tier_id: 'service',
      name: 'HTTP service',
      task_category: 'feature_scaffolding',
      scope: { paths: ['server.js', 'server.test.js'] },
      acceptance_criteria: ['GET /health answers 200'],
      ci: { command: 'node --test' },
    },
  ],
};
const intent = 'A tiny HTTP service with a health route.';

let server: ScriptedLlmServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe.each<[Provider, boolean]>([
  ['openai', false],
  ['openai', true],
  ['anthropic', false],
  ['anthropic', true],
])('planning through %s (stream=%s)', (provider, stream) => {
  it('answers the forced submit_plan call with the scripted plan', async () => {
    server = await startScriptedLlmServer({
      script: { replies: [{ tool: 'submit_plan', provider, match: 'health route', arguments: plan as unknown as Record<string, unknown>, usage: { input_tokens: 900, output_tokens: 250 } }] },
    });
    const client = new LlmClient({
      openaiApiKey: 'sk-test-openai-0123456789abcdef',
      anthropicApiKey: 'sk-ant-test-0123456789abcdef',
      openaiBaseUrl: server.openaiBaseUrl,
      anthropicBaseUrl: server.anthropicBaseUrl,
      maxRetries: 0,
    });
    const routing = bothProviders();
    routing.defaults.planner = { provider, model: provider === 'openai' ? 'gpt-5.6-sol' : 'claude-opus-5-5' };
    const claim = makeClaim({ phase_id: 'plan' });
    // The stage leaves streaming to the client; a wrapper forces it both ways here.
    const llm = { callTool: (req: Parameters<LlmClient['callTool']>[0]) => client.callTool({ ...req, stream }), hasProvider: (p: Provider) => client.hasProvider(p) };
    const metered = new MeteredLlm({ llm, supervisor: new FakeSupervisor(), routing, clock: steppingClock(), log: silentLog }, claim);

    const result = await planBuild({ llm: metered, routing, log: silentLog }, claim, { intent, repository: { files: [], truncated: false }, budgets: { tokensLeft: 4_000_000, costLeftUsd: null, maxPhases: 10 } }, { signal: new AbortController().signal });

    expect(result).toMatchObject({ kind: 'planned', plan, usage: { provider, prompt_tokens: 900, completion_tokens: 250 } });
    const [request] = server.requestsFor('submit_plan');
    expect(request).toMatchObject({ provider, tool: 'submit_plan', stream, status: 200 });
    const body = request.body as { tools: { function?: { parameters: unknown }; input_schema?: unknown }[] };
    expect(body.tools).toHaveLength(1);
    expect(body.tools[0].function?.parameters ?? body.tools[0].input_schema).toEqual(PLANNER_TOOL.inputSchema);
  });
});
