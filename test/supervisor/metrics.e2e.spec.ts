import { LeaseSweeperService } from '../../apps/supervisor/src/services/lease-sweeper.service.js';
import { type Scrape, parsePrometheus, sumOf } from '../support/prometheus.js';
import { claimNext, flatPlan, http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';

/**
 * GET /metrics after a real run: claims and phase writes over HTTP on an in-process
 * supervisor, usage reported with provider and model, then the scrape parsed and its counters
 * compared with what the run did (and with the run's own usage in the database).
 */
let sup: TestSupervisor;
beforeAll(async () => {
  sup = await startTestSupervisor({ leaseSeconds: 3 });
});
afterAll(async () => sup?.close());

const call = (method: string, path: string, body?: unknown) => http(sup.url, method, path, body);
const scrape = async (): Promise<Scrape> => {
  const res = await fetch(`${sup.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return parsePrometheus(await res.text());
};
const SHA = 'c'.repeat(40);

/** One LLM call of the audit trail matching a usage report. */
const callRecord = (u: { provider: string; model: string; prompt_tokens: number; completion_tokens: number; cost_usd: number }) => ({
  role: 'builder',
  ...u,
  cached_tokens: 0,
  duration_ms: 12,
  outcome: 'tool_call',
});

describe('GET /metrics after a run', () => {
  let m: Scrape;
  let runTokens: number;
  let runCost: number;

  beforeAll(async () => {
    expect((await call('POST', '/runs/start', flatPlan('mx', 3))).status).toBe(201);
    const P = (phase: string) => `/runs/mx/phases/${phase}`;
    const gpt = { provider: 'openai', model: 'gpt-test' };
    const claude = { provider: 'anthropic', model: 'claude-test' };

    // p1: one attempt, completed by the builder's result (commit).
    let c = await claimNext(sup.url, 'mx');
    let u = { ...gpt, prompt_tokens: 100, completion_tokens: 40, cost_usd: 0.25 };
    let r = await call('POST', `${P(c.phase_id)}/builder_result`, { lease_token: c.lease_token, status: 'success', commit_sha: SHA, usage: { ...u, report_id: 'report-mx-p1-1' }, llm_calls: [callRecord(u)] });
    expect(r.status).toBe(200);
    // A write that is refused (the lease is gone) counts nothing, though it reports usage.
    r = await call('POST', `${P(c.phase_id)}/builder_result`, { lease_token: c.lease_token, status: 'success', usage: { ...u, report_id: 'report-mx-p1-2' } });
    expect(r.status).toBe(409);

    // p2: a failed attempt, then a completed one.
    c = await claimNext(sup.url, 'mx');
    u = { ...claude, prompt_tokens: 30, completion_tokens: 10, cost_usd: 0.125 };
    r = await call('POST', `${P(c.phase_id)}/builder_result`, { lease_token: c.lease_token, status: 'failed', failure_reason: 'tests failed', usage: { ...u, report_id: 'report-mx-p2-1' }, llm_calls: [callRecord(u)] });
    expect(r.status).toBe(200);
    c = await claimNext(sup.url, 'mx');
    expect(c.phase_id).toBe('p2');
    u = { ...claude, prompt_tokens: 20, completion_tokens: 5, cost_usd: 0.125 };
    r = await call('POST', `${P(c.phase_id)}/builder_result`, { lease_token: c.lease_token, status: 'success', usage: { ...u, report_id: 'report-mx-p2-2' }, llm_calls: [callRecord(u)] });
    expect(r.status).toBe(200);
    // The same report again (a retry after a lost response) is not counted twice.
    r = await call('POST', `${P(c.phase_id)}/builder_result`, { lease_token: c.lease_token, status: 'success', usage: { ...u, report_id: 'report-mx-p2-2' } });
    expect(r.status).toBe(200);
    r = await call('POST', `${P(c.phase_id)}/update_status`, { lease_token: c.lease_token, state: 'COMPLETE', commit_sha: SHA });
    expect(r.status).toBe(200);

    // p3: completed; usage in two reports.
    c = await claimNext(sup.url, 'mx');
    u = { ...gpt, prompt_tokens: 7, completion_tokens: 3, cost_usd: 0.5 };
    r = await call('POST', `${P(c.phase_id)}/builder_result`, { lease_token: c.lease_token, status: 'success', commit_sha: SHA, usage: { ...u, report_id: 'report-mx-p3-1' }, llm_calls: [callRecord(u)] });
    expect(r.status).toBe(200);

    const run = (await call('GET', '/runs/mx')).body;
    expect(run.state).toBe('DONE_SUCCESS');
    runTokens = run.budgets.tokens_used;
    runCost = run.budgets.cost_used_usd;

    // A lease that expires: the sweeper reclaims it.
    expect((await call('POST', '/runs/start', flatPlan('ex', 1))).status).toBe(201);
    await claimNext(sup.url, 'ex');
    const sweeper = sup.app.get(LeaseSweeperService);
    await waitFor('the lease to expire and be reclaimed', async () => {
      await sweeper.sweep();
      return sumOf(await scrape(), 'autopack_lease_expiries_total') >= 1 ? true : undefined;
    }, { timeoutMs: 20_000, everyMs: 500 });

    m = await scrape();
  });

  it('counts LLM tokens and cost by provider and model, as the run reported them', () => {
    expect(sumOf(m, 'autopack_llm_tokens_total', { provider: 'openai', model: 'gpt-test', kind: 'prompt' })).toBe(107);
    expect(sumOf(m, 'autopack_llm_tokens_total', { provider: 'openai', model: 'gpt-test', kind: 'completion' })).toBe(43);
    expect(sumOf(m, 'autopack_llm_tokens_total', { provider: 'anthropic', model: 'claude-test', kind: 'prompt' })).toBe(50);
    expect(sumOf(m, 'autopack_llm_tokens_total', { provider: 'anthropic', model: 'claude-test', kind: 'completion' })).toBe(15);
    expect(sumOf(m, 'autopack_llm_cost_usd_total', { provider: 'openai', model: 'gpt-test' })).toBe(0.75);
    expect(sumOf(m, 'autopack_llm_cost_usd_total', { provider: 'anthropic', model: 'claude-test' })).toBe(0.25);
    // The same totals as the run's budget in the database.
    expect(runTokens).toBe(215);
    expect(sumOf(m, 'autopack_llm_tokens_total')).toBe(runTokens);
    expect(sumOf(m, 'autopack_llm_cost_usd_total')).toBeCloseTo(runCost, 9);
    expect(m.types.autopack_llm_tokens_total).toBe('counter');
    expect(m.types.autopack_llm_cost_usd_total).toBe('counter');
  });

  it('observes each ended attempt in the phase-duration histogram by outcome', () => {
    expect(m.types.autopack_phase_duration_seconds).toBe('histogram');
    expect(sumOf(m, 'autopack_phase_duration_seconds_count', { outcome: 'complete' })).toBe(3);
    expect(sumOf(m, 'autopack_phase_duration_seconds_count', { outcome: 'builder_failed' })).toBe(1);
    expect(sumOf(m, 'autopack_phase_duration_seconds_count', { outcome: 'lease_expired' })).toBe(1);
    // The expired attempt lasted at least its lease.
    expect(sumOf(m, 'autopack_phase_duration_seconds_sum', { outcome: 'lease_expired' })).toBeGreaterThanOrEqual(3);
    expect(sumOf(m, 'autopack_phase_duration_seconds_bucket', { outcome: 'complete', le: '+Inf' })).toBe(3);
  });

  it('counts lease expiries, claim waits and HTTP latency by route pattern', () => {
    expect(sumOf(m, 'autopack_lease_expiries_total')).toBe(1);
    expect(sumOf(m, 'autopack_claim_wait_seconds_count', { result: 'claimed' })).toBe(5);
    const claims = sumOf(m, 'autopack_http_request_duration_seconds_count', { method: 'POST', route: '/phases/claim', status: '200' });
    expect(claims).toBe(5);
    expect(sumOf(m, 'autopack_http_request_duration_seconds_bucket', { method: 'POST', route: '/phases/claim', status: '200', le: '+Inf' })).toBe(claims);
    expect(sumOf(m, 'autopack_http_requests_total', { method: 'POST', route: '/runs/:run_id/phases/:phase_id/builder_result', status: '409' })).toBe(1);
    // Ids never become label values.
    expect(m.samples.filter((s) => s.labels.route?.includes('mx'))).toEqual([]);
  });

  it('reports queue depth and leases from the database', () => {
    expect(m.types.autopack_phases_queued).toBe('gauge');
    // The expired attempt's phase waits to be claimed again; nothing is leased.
    expect(sumOf(m, 'autopack_phases_queued')).toBe(1);
    expect(sumOf(m, 'autopack_active_leases')).toBe(0);
    expect(sumOf(m, 'autopack_runs', { state: 'DONE_SUCCESS' })).toBe(1);
  });

  it('names default metrics the standard way, and every counter ends in _total', () => {
    const names = new Set(m.samples.map((s) => s.name));
    for (const name of ['process_cpu_seconds_total', 'process_start_time_seconds', 'process_resident_memory_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect([name, names.has(name)]).toEqual([name, true]);
    }
    expect([...names].filter((n) => n.startsWith('autopack_process_'))).toEqual([]);
    const counters = Object.entries(m.types).filter(([, t]) => t === 'counter').map(([n]) => n);
    expect(counters.length).toBeGreaterThan(3);
    expect(counters.filter((n) => !n.endsWith('_total'))).toEqual([]);
  });
});
