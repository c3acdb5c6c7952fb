import { MetricsService } from '../../../apps/supervisor/src/services/metrics.service.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let metrics: MetricsService;
beforeAll(async () => {
  ctx = await createMediumContext();
  metrics = ctx.get(MetricsService);
});
afterAll(() => ctx?.close());

/** The `autopack_*` samples of a scrape (process metrics left out), by `name{labels}`. */
async function scrape(): Promise<Record<string, number>> {
  const { contentType, body } = await metrics.render();
  expect(contentType).toMatch(/^text\/plain/);
  const samples: Record<string, number> = {};
  for (const line of body.split('\n')) {
    const m = /^(autopack_(?!process_)[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) samples[m[1]] = Number(m[2]);
  }
  return samples;
}

describe('MetricsService', () => {
  it('reads runs and phases by state, usage and active leases from the database at scrape time', async () => {
    expect(await scrape()).toMatchObject({ autopack_llm_tokens_used: 0, autopack_llm_cost_usd: 0, autopack_active_leases: 0 });

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
      autopack_llm_tokens_used: 1501,
      autopack_llm_cost_usd: 0.75,
      autopack_active_leases: 2,
    });
  });

  it('forgets a state nothing is in any more', async () => {
    await ctx.db.query(`UPDATE runs SET state = 'CANCELLED', completed_at = now() WHERE state = 'PHASE_EXECUTION'`);
    const samples = await scrape();
    expect(samples['autopack_runs{state="CANCELLED"}']).toBe(2);
    expect(samples).not.toHaveProperty(['autopack_runs{state="PHASE_EXECUTION"}']);
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
