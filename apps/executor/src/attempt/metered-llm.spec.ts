import { LlmError, estimateTokens } from '@app/llm';
import { FakeLlm, FakeSupervisor, bothProviders, makeClaim, silentLog, steppingClock } from '../../../../test/executor/attempt-fakes.js';
import { SupervisorError } from '../supervisor-client.js';
import { BudgetRefusedError, MeteredLlm, type MeteredRequest } from './metered-llm.js';

const routing = bothProviders();
const builder = routing.defaults.builder;
const claim = makeClaim();
const tool = { name: 'submit_changes', description: 'd', inputSchema: { type: 'object' } };
const req: MeteredRequest = { system: 'system text', prompt: 'prompt text', tool, maxTokens: 500 };

function setup(replies: ConstructorParameters<typeof FakeLlm>[0], providers?: ('openai' | 'anthropic')[]) {
  const supervisor = new FakeSupervisor();
  const llm = new FakeLlm(replies, providers);
  const metered = new MeteredLlm({ llm, supervisor, routing, clock: steppingClock(40), log: silentLog }, claim);
  return { supervisor, llm, metered };
}

describe(MeteredLlm.name, () => {
  it('reserves the worst case under the lease before the call, and records the call for the next report', async () => {
    const { supervisor, llm, metered } = setup([{ toolInput: { ok: true } }]);
    const { result, reservationId } = await metered.call('builder', builder, req);
    expect(reservationId).toBe('res-1');
    expect(result.toolInput).toEqual({ ok: true });
    expect(supervisor.calls.map((c) => c.method)).toEqual(['reserveBudget']);
    const reserved = supervisor.bodies('reserveBudget')[0] as { lease_token: string; tokens: number; cost_usd: number; purpose: string };
    expect(reserved).toMatchObject({ lease_token: claim.lease_token, tokens: estimateTokens('system text' + 'prompt text') + 500, purpose: 'builder' });
    expect(reserved.cost_usd).toBeGreaterThan(0);
    expect(llm.requests).toEqual([{ ...req, ...builder }]);
    expect(metered.drainCalls()).toEqual({
      llm_calls: [{ role: 'builder', provider: builder.provider, model: builder.model, prompt_tokens: 1000, completion_tokens: 200, cached_tokens: 100, cost_usd: expect.any(Number), duration_ms: 7, outcome: 'tool_call' }],
    });
    expect(metered.drainCalls()).toEqual({});
  });

  it('reserves auditor calls as auditor spending', async () => {
    const { supervisor, metered } = setup([{ toolInput: {} }]);
    await metered.call('secondary_auditor', routing.defaults.auditor, req);
    expect(supervisor.bodies('reserveBudget')[0]).toMatchObject({ purpose: 'auditor' });
  });

  it('reserves planner calls as planner spending, and records them as the planner', async () => {
    const { supervisor, metered } = setup([{ toolInput: {} }]);
    await metered.call('planner', routing.defaults.planner, req);
    expect(supervisor.bodies('reserveBudget')[0]).toMatchObject({ purpose: 'planner' });
    expect(metered.drainCalls().llm_calls?.map((c) => c.role)).toEqual(['planner']);
  });

  it('makes no call the budget refuses', async () => {
    const { supervisor, llm, metered } = setup([{ toolInput: {} }]);
    supervisor.failWith.reserveBudget = new SupervisorError(409, 'BUDGET_EXHAUSTED', 'phase tokens spent');
    const err = await metered.call('builder', builder, req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BudgetRefusedError);
    expect((err as Error).message).toBe(`builder call (${builder.model}) not admitted: phase tokens spent`);
    expect(llm.requests).toHaveLength(0);
    expect(metered.drainCalls()).toEqual({});
  });

  it('calls the fallback once, under a reservation of its own, when the provider stays down', async () => {
    const { supervisor, llm, metered } = setup([new LlmError('PROVIDER_UNAVAILABLE', 'overloaded', { provider: 'openai', status: 503 }), { toolInput: { ok: 1 } }]);
    const { result, reservationId } = await metered.call('builder', builder, req);
    expect(reservationId).toBe('res-2');
    expect(result.provider).toBe('anthropic');
    expect(supervisor.calls.map((c) => c.method)).toEqual(['reserveBudget', 'reserveBudget']);
    expect(llm.requests.map((r) => r.provider)).toEqual(['openai', 'anthropic']);
    const records = metered.drainCalls().llm_calls ?? [];
    expect(records.map((r) => [r.provider, r.outcome])).toEqual([
      ['openai', 'error'],
      ['anthropic', 'tool_call'],
    ]);
    expect(records[0]).toMatchObject({ prompt_tokens: 0, cost_usd: 0, duration_ms: 40, detail: 'PROVIDER_UNAVAILABLE: overloaded' });
  });

  it('does not fall back from a configuration error, nor to a provider without a key', async () => {
    const refused = setup([new LlmError('AUTHENTICATION', 'bad key', { provider: 'openai', status: 401 })]);
    await expect(refused.metered.call('builder', builder, req)).rejects.toMatchObject({ code: 'AUTHENTICATION' });
    expect(refused.llm.requests).toHaveLength(1);
    expect(refused.metered.lastUnreportedModel()).toBe(builder.model);

    const alone = setup([new LlmError('PROVIDER_UNAVAILABLE', 'down', { provider: 'openai', status: 503 })], ['openai']);
    await expect(alone.metered.call('builder', builder, req)).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    expect(alone.supervisor.calls).toHaveLength(1);
  });

  it('records malformed and truncated replies as such', async () => {
    const { metered } = setup([{ malformedReason: 'no tool call in reply' }, { truncated: true, toolInput: undefined, malformedReason: 'cut off' }]);
    await metered.call('builder', builder, req);
    await metered.call('builder', builder, req);
    expect(metered.drainCalls().llm_calls?.map((r) => [r.outcome, r.detail])).toEqual([
      ['malformed', 'no tool call in reply'],
      ['truncated', 'cut off'],
    ]);
  });

  it('prices usage from the routing, and an unknown model at zero', async () => {
    const { metered } = setup([{ toolInput: {} }, { toolInput: {} }]);
    const known = await metered.call('builder', builder, req);
    expect(metered.usageOf(known.result, 'r1:p1:1:builder')).toEqual({
      report_id: 'r1:p1:1:builder',
      provider: builder.provider,
      model: builder.model,
      prompt_tokens: 1000,
      completion_tokens: 200,
      cached_tokens: 100,
      cost_usd: expect.any(Number),
      calls: 1,
    });
    expect(metered.usageOf(known.result).cost_usd).toBeGreaterThan(0);
    const unknown = await metered.call('builder', { provider: 'openai', model: 'no-such-model' }, req);
    expect(metered.usageOf(unknown.result)).not.toHaveProperty('report_id');
    expect(metered.usageOf(unknown.result).cost_usd).toBe(0);
  });

  it('keys an attempt\'s usage by run, phase, attempt and role, with the reservation it settles', async () => {
    const { metered } = setup([{ toolInput: {} }]);
    const { result, reservationId } = await metered.call('planner', builder, req);
    expect(metered.attemptUsage(result, { run_id: 'r1', phase_id: 'spec', attempt: 3 }, 'planner', reservationId)).toEqual({
      ...metered.usageOf(result, 'r1:spec:3:planner'),
      reservation_id: reservationId,
    });
  });

  it('sums the calls not yet reported into a usage report of their own, once', async () => {
    const { metered } = setup([{ toolInput: {} }, { toolInput: {} }]);
    expect(metered.unreportedUsage()).toEqual({});
    await metered.call('builder', builder, req);
    await metered.call('auditor', routing.defaults.auditor, req);
    const owed = metered.unreportedUsage();
    expect(owed.llm_calls).toHaveLength(2);
    expect(owed.usage).toEqual({
      prompt_tokens: 2000,
      completion_tokens: 400,
      cached_tokens: 200,
      cost_usd: (owed.llm_calls ?? []).reduce((n, r) => n + r.cost_usd, 0),
      calls: 2,
      report_id: 'r1:p1:1:unreported',
    });
    expect(metered.unreportedUsage()).toEqual({});
  });
});
