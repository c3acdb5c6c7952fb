import { randomUUID } from 'node:crypto';
import { http, samplePlan, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { prng, recordReliability } from './harness.js';

const KEY = 'flood-key-3b9f27c1d8e4';
const SEED = Number(process.env.AUTOPACK_FLOOD_SEED ?? 20261123);
let sup: TestSupervisor;
let lease: string;

const TABLES = ['runs', 'tiers', 'phases', 'phase_attempts', 'phase_issues', 'project_backlog', 'project_rulesets', 'budget_reservations', 'usage_reports', 'idempotency_keys'];
async function snapshot(): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const t of TABLES) out[t] = await sup.db.query(`SELECT * FROM ${t} ORDER BY 1, 2`);
  out.events = await sup.db.query(`SELECT count(*)::int AS n, max(id)::text AS last FROM events`);
  return out;
}

beforeAll(async () => {
  sup = await startTestSupervisor({ apiKey: KEY, rateLimitPerSecond: 0, maxBodyBytes: 256 * 1024 });
  const auth = { 'x-api-key': KEY };
  expect((await http(sup.url, 'POST', '/runs/start', samplePlan('victim'), auth)).status).toBe(201);
  lease = (await http(sup.url, 'POST', '/phases/claim', { executor_id: 'holder', run_id: 'victim' }, auth)).body.lease_token;
});
afterAll(async () => sup?.close());

type Body = unknown;
const ODD_IDS = ['..%2F..%2Fetc%2Fpasswd', '%2e%2e', "1'%20OR%20'1'%3D'1", '%E2%98%83%F0%9F%92%A3', '%00', 'a'.repeat(300), '-leading', 'x.lock', 'a..b', '%20', 'CON', 'victim%3Bdrop'];
const P = '/runs/victim/phases/p1';

/** Bodies that no route accepts: each breaks the schema in a different way. */
function invalidBodies(valid: Record<string, unknown>, required: string[], rnd: () => number): Body[] {
  const keys = Object.keys(valid);
  const pick = () => keys[Math.floor(rnd() * keys.length)];
  const req = required[Math.floor(rnd() * required.length)];
  const deep = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
  const k = pick();
  return [
    '{"unterminated": ',
    '[]',
    'null',
    '"just a string"',
    '12345',
    'true',
    { ...valid, [`unknown_${Math.floor(rnd() * 1000)}`]: 1 },
    JSON.parse(`{"__proto__": {"polluted": true}, ${JSON.stringify(valid).slice(1)}`),
    { ...valid, constructor: { prototype: { polluted: true } } },
    { ...valid, [k]: typeof valid[k] === 'number' ? 'NaN' : 12345 },
    { ...valid, [k]: null },
    // A NUL byte (PostgreSQL stores none) in a field's text, and in a key.
    { ...valid, [k]: typeof valid[k] === 'string' ? `${valid[k] as string}\u0000` : { text: 'nul\u0000byte' } },
    { ...valid, ['nul\u0000key']: 'x' },
    { ...valid, [k]: [valid[k]] },
    { ...valid, [k]: { $gt: '' } },
    // SQL in a string field, always past its length limit; in any other field, a type error.
    { ...valid, [k]: typeof valid[k] === 'string' ? `'; DROP TABLE runs; --${'x'.repeat(5000)}` : "1; DROP TABLE runs; --" },
    deep(2000 + Math.floor(rnd() * 5000)),
    JSON.stringify({ pad: 'z'.repeat(300 * 1024) }),
    ...(req ? [Object.fromEntries(keys.filter((x) => x !== req).map((x) => [x, valid[x]]))] : []),
  ];
}

/** Required fields of each route's body (removing one must be refused). */
const REQUIRED: Record<string, string[]> = {
  '/runs/start': ['run', 'tiers', 'phases'],
  '/phases/claim': ['executor_id'],
  [`${P}/builder_result`]: ['lease_token', 'status'],
  [`${P}/auditor_result`]: ['lease_token', 'recommendation'],
  [`${P}/update_status`]: ['state'],
  [`${P}/record_issue`]: ['issue_key', 'severity', 'category'],
  [`${P}/reserve_budget`]: ['lease_token', 'tokens'],
  ['/runs/victim/approve']: ['approved'],
};

const VALID: Record<string, Record<string, unknown>> = {
  '/runs/start': samplePlan('never-created') as unknown as Record<string, unknown>,
  '/phases/claim': { executor_id: 'flood', run_id: 'victim', wait_ms: 0 },
  [`${P}/heartbeat`]: { lease_token: randomUUID() },
  [`${P}/builder_result`]: { lease_token: randomUUID(), status: 'success', usage: { prompt_tokens: 5, completion_tokens: 5 } },
  [`${P}/auditor_request`]: { lease_token: randomUUID() },
  [`${P}/auditor_result`]: { lease_token: randomUUID(), recommendation: 'approve', commit_sha: 'a'.repeat(40) },
  [`${P}/update_status`]: { lease_token: randomUUID(), state: 'COMPLETE' },
  [`${P}/record_issue`]: { lease_token: randomUUID(), issue_key: 'k', severity: 'minor', category: 'c' },
  [`${P}/reserve_budget`]: { lease_token: randomUUID(), tokens: 10 },
  ['/runs/victim/approve']: { approved: true },
  ['/runs/victim/cancel']: { reason: 'flood' },
};
const GETS = ['/runs', '/runs/{id}', '/runs/{id}/issues/index', '/runs/{id}/integration_status', '/metrics/tiers/{id}', '/reports/run_summary/{id}', '/project/issues/backlog', '/metrics/runs', '/reports/budget_analysis', '/reports/issue_backlog_summary', '/capabilities', '/projects/{id}/ruleset', '/runs/{id}/events?follow=false'];
const QUERIES = ['?limit=-1', '?limit=1e309', '?offset=abc', '?state=%27%3B--', '?status=NOPE', '?project_id=../../x', '?after=-1', '?follow=maybe', '?limit[]=1', '?__proto__[x]=1', '?project_id=a%00b', '?state=%00'];

describe('hostile HTTP flood (seeded)', () => {
  it(`answers every malformed request with a coded 4xx and changes nothing (seed ${SEED})`, async () => {
    const rnd = prng(SEED);
    const auth = { 'x-api-key': KEY };
    const before = await snapshot();
    const tally = { requests: 0, status5xx: 0, status4xx: 0, uncoded: 0 };
    const statuses: Record<string, number> = {};
    const send = async (method: string, path: string, body: Body | undefined, headers: Record<string, string>) => {
      const r = await http(sup.url, method, path, body, headers);
      tally.requests++;
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (r.status >= 500) tally.status5xx++;
      else if (r.status >= 400) tally.status4xx++;
      if (r.status >= 400 && !(typeof r.body?.error?.code === 'string' && /^[A-Z_]+$/.test(r.body.error.code))) tally.uncoded++;
      return r;
    };

    // 1. Every write route with every kind of invalid body, authenticated.
    for (const [route, valid] of Object.entries(VALID)) {
      for (const body of invalidBodies(valid, REQUIRED[route] ?? [], rnd)) {
        const r = await send('POST', route, body, auth);
        expect({ route, status: r.status < 400 || r.status >= 500 ? r.status : 'coded 4xx' }).toEqual({ route, status: 'coded 4xx' });
      }
    }
    // 2. Bad auth on every route, with otherwise valid bodies.
    const badAuth: Record<string, string>[] = [{}, { 'x-api-key': '' }, { 'x-api-key': KEY.toUpperCase() }, { authorization: `Basic ${KEY}` }, { authorization: 'Bearer ' }, { authorization: `Bearer ${KEY.slice(0, -1)}` }];
    for (const [route, valid] of Object.entries(VALID)) {
      for (const h of badAuth) expect((await send('POST', route, valid, h)).status).toBe(401);
    }
    // 3. Odd ids and query strings on every read route; wrong methods everywhere.
    for (const tpl of GETS) {
      for (const id of ODD_IDS) await send('GET', tpl.replace('{id}', id), undefined, auth);
      for (const q of QUERIES) await send('GET', tpl.replace('{id}', 'victim').split('?')[0] + q, undefined, auth);
    }
    for (const route of [...Object.keys(VALID), ...GETS.map((g) => g.replace('{id}', 'victim'))]) {
      for (const method of ['DELETE', 'PATCH', 'PUT', 'OPTIONS'].filter((m) => !(m === 'PUT' && route.startsWith('/projects')))) {
        await send(method, route.split('?')[0], method === 'OPTIONS' ? undefined : {}, auth);
      }
    }
    // 4. Ids no route accepts on write routes (path traversal, SQL, unicode) with valid bodies.
    for (const id of ODD_IDS.filter((x) => x !== 'CON')) {
      await send('POST', `/runs/${id}/phases/p1/update_status`, { lease_token: lease, state: 'COMPLETE' }, auth);
      await send('POST', `/runs/victim/phases/${id}/heartbeat`, { lease_token: lease }, auth);
      await send('POST', `/runs/${id}/cancel`, {}, auth);
      await send('PUT', `/projects/${id}/ruleset`, { categories: {} }, auth);
    }
    // 5. Content types the API does not speak.
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']) {
      const res = await fetch(`${sup.url}/runs/start`, { method: 'POST', headers: { 'content-type': type, ...auth }, body: 'run_id=x' });
      tally.requests++;
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status >= 500) tally.status5xx++;
      expect(res.status).toBe(415);
    }

    expect(tally.requests).toBeGreaterThanOrEqual(500);
    expect(tally.status5xx).toBe(0);
    expect(tally.uncoded).toBe(0);
    expect(await snapshot()).toEqual(before);
    // The legitimate lease holder is unaffected.
    expect((await http(sup.url, 'POST', `${P}/heartbeat`, { lease_token: lease }, auth)).status).toBe(200);
    recordReliability('hostile HTTP flood', { seed: SEED, requests: tally.requests, responses_5xx: tally.status5xx, responses_4xx: tally.status4xx, uncoded_errors: tally.uncoded, state_changes: 0 });
  });
});
