import { MetricsService } from '../../../apps/supervisor/src/services/metrics.service.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let metrics: MetricsService;
beforeAll(async () => {
  ctx = await createMediumContext();
  metrics = ctx.get(MetricsService);
});
afterAll(() => ctx?.close());

/** The `autopack_*` samples of a scrape, by `name{labels}`. */
async function scrape(): Promise<Record<string, number>> {
  const { contentType, body } = await metrics.render();
  expect(contentType).toMatch(/^text\/plain/);
  const samples: Record<string, number> = {};
  for (const line of body.split('\n')) {
    const m = /^(autopack_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) samples[m[1]] = Number(m[2]);
  }
  return samples;
}

describe('MetricsService', () => {
  it('reads runs and phases by state, queue depth and active leases from the database at scrape time', async () => {
    expect(await scrape()).toMatchObject({ autopack_phases_queued: 0, autopack_active_leases: 0 });

    const a = await ctx.factory.makeRun({ tokensUsed: 1200, costUsedUsd: 0.5 });
    await ctx.factory.makeRun({ tokensUsed: 300, costUsedUsd: 0.25 });
    await ctx.factory.makeRun({ state: 'DONE_SUCCESS', tokensUsed: 1 });
    await ctx.factory.makePhase({ runId: a.runId, state: 'EXECUTING' });
    await ctx.factory.makePhase({ runId: a.runId, state: 'CI_RUNNING' });
    await ctx.factory.makePhase({ runId: a.runId });
    await ctx.factory.makePhase({ runId: a.runId });

    const samples = await scrape();
    expect(samples).toMatchObject({
      'autopack_runs{state="PHASE_EXECUTION"}': 2,
      'autopack_runs{state="DONE_SUCCESS"}': 1,
      'autopack_phases{state="QUEUED"}': 2,
      'autopack_phases{state="EXECUTING"}': 1,
      'autopack_phases{state="CI_RUNNING"}': 1,
      autopack_phases_queued: 2,
      autopack_active_leases: 2,
    });
  });

  it('forgets a state nothing is in any more', async () => {
    await ctx.db.query(`UPDATE runs SET state = 'CANCELLED', completed_at = now() WHERE state = 'PHASE_EXECUTION'`);
    const samples = await scrape();
    expect(samples['autopack_runs{state="CANCELLED"}']).toBe(2);
    expect(samples).not.toHaveProperty(['autopack_runs{state="PHASE_EXECUTION"}']);
  });

  it('names default process metrics the standard way (process_*, nodejs_*)', async () => {
    const { body } = await metrics.render();
    expect(body).toMatch(/^process_cpu_seconds_total \S+$/m);
    expect(body).toMatch(/^nodejs_heap_size_total_bytes \S+$/m);
    expect(body).not.toMatch(/^autopack_process_/m);
  });

  it('counts LLM usage by provider, model and kind, and cost by provider and model', async () => {
    metrics.recordLlmUsage({ provider: 'openai', model: 'm1', promptTokens: 10, completionTokens: 5, costUsd: 0.5 });
    metrics.recordLlmUsage({ provider: 'openai', model: 'm1', promptTokens: 1, completionTokens: 0, costUsd: 0 });
    metrics.recordLlmUsage({ promptTokens: 2, completionTokens: 3, costUsd: 0 });
    expect(await scrape()).toMatchObject({
      'autopack_llm_tokens_total{provider="openai",model="m1",kind="prompt"}': 11,
      'autopack_llm_tokens_total{provider="openai",model="m1",kind="completion"}': 5,
      'autopack_llm_tokens_total{provider="unknown",model="unknown",kind="completion"}': 3,
      'autopack_llm_cost_usd_total{provider="openai",model="m1"}': 0.5,
    });
  });

  it('exposes the counters the HTTP edge and the claim long-poll observe', async () => {
    metrics.httpRequests.inc({ method: 'POST', route: '/runs/start', status: '201' });
    metrics.claimWakeups.inc({ reason: 'notify' });
    metrics.claimWakeups.inc({ reason: 'notify' });
    metrics.claimsWaiting.inc();
    expect(await scrape()).toMatchObject({
      'autopack_http_requests_total{method="POST",route="/runs/start",status="201"}': 1,
      'autopack_claim_wakeups_total{reason="notify"}': 2,
      autopack_claims_waiting: 1,
    });
  });
});
