import { http, samplePlan, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { stateSnapshot } from '../support/database.js';

let sup: TestSupervisor;
let lease: string;
const RUN = 'bad-input-run';

const snapshot = () => stateSnapshot(sup.db);

beforeAll(async () => {
  sup = await startTestSupervisor({ maxBodyBytes: 64 * 1024 });
  expect((await http(sup.url, 'POST', '/runs/start', samplePlan(RUN))).status).toBe(201);
  const claim = await http(sup.url, 'POST', '/phases/claim', { executor_id: 'e1', run_id: RUN });
  lease = claim.body.lease_token;
});
afterAll(async () => sup?.close());

const P = `/runs/${RUN}/phases/p1`;
const POST_ROUTES = [
  '/runs/start',
  '/phases/claim',
  `${P}/heartbeat`,
  `${P}/builder_result`,
  `${P}/auditor_request`,
  `${P}/auditor_result`,
  `${P}/update_status`,
  `${P}/record_issue`,
  `${P}/reserve_budget`,
  `/runs/${RUN}/approve`,
];

const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
const BAD_BODIES: [string, string | unknown][] = [
  ['invalid JSON', '{"run": '],
  ['a JSON array', '[]'],
  ['a JSON string', '"hello"'],
  ['null', 'null'],
  ['a number', '42'],
  ['an empty object', {}],
  ['unknown fields only', { surprise: true }],
  ['wrong types', { run: 'x', tiers: 1, phases: 'no', lease_token: 5, executor_id: 7, state: 9, status: [] }],
  ['a stale/forged lease token', { lease_token: '00000000-0000-4000-8000-000000000000', status: 'success', recommendation: 'approve', state: 'COMPLETE' }],
  ['a lease token that is not a uuid', { lease_token: "' OR 1=1 --", state: 'COMPLETE' }],
  ['deeply nested', deep(5000)],
  ['huge', JSON.stringify({ pad: 'x'.repeat(200 * 1024) })],
  ['extra field next to valid ones', { lease_token: '', executor_id: 'e', state: 'COMPLETE', status: 'failed', recommendation: 'approve', run: { run_id: 'r' }, tiers: [], phases: [], admin: true }],
];

describe('hostile input', () => {
  it.each(POST_ROUTES.flatMap((route) => BAD_BODIES.map(([name, body]) => [route, name, body] as const)))('%s with %s -> coded 4xx, nothing changed', async (route, _name, body) => {
    const before = await snapshot();
    const r = await http(sup.url, 'POST', route, body);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.body.error.code).toMatch(/^[A-Z_]+$/);
    expect(typeof r.body.error.message).toBe('string');
    expect(JSON.stringify(r.body)).not.toMatch(/\n\s+at |node_modules/);
    expect(await snapshot()).toEqual(before);
  });

  it.each([
    ['GET', '/runs/..%2F..%2Fetc%2Fpasswd'],
    ['GET', "/runs/1'%20OR%20'1'%3D'1"],
    ['GET', '/runs/%E2%98%83'],
    ['GET', '/runs/%00'],
    ['GET', `/runs/${'a'.repeat(5000)}`],
    ['GET', '/runs?limit=-1'],
    ['GET', '/runs?limit=abc&offset=2'],
    ['GET', '/runs?state=NOPE'],
    ['GET', '/runs?unexpected=1'],
    ['POST', `/runs/${RUN}/phases/..%2Fp1/heartbeat`],
    ['POST', `/runs/nope/phases/p1/update_status`],
    ['POST', `/runs/${RUN}/phases/nope/retry`],
    ['DELETE', `/runs/${RUN}`],
    ['PUT', '/runs/start'],
    ['GET', '/phases/claim'],
    ['GET', '/no/such/route'],
    ['GET', '/metrics/runs?status=BOGUS'],
    ['GET', '/metrics/tiers/..%2F..'],
    ['GET', '/reports/run_summary/%27%3B%20DROP%20TABLE%20runs%3B--'],
    ['GET', '/project/issues/backlog?project_id=../../etc'],
    ['GET', `/runs/${RUN}/events?after=-5`],
    ['GET', '/projects/%2E%2E/ruleset'],
  ])('%s %s -> coded 4xx', async (method, path) => {
    const before = await snapshot();
    const r = await http(sup.url, method, path, method === 'POST' ? { lease_token: lease, state: 'COMPLETE' } : undefined);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.body.error.code).toMatch(/^[A-Z_]+$/);
    expect(await snapshot()).toEqual(before);
  });

  it.each(BAD_BODIES)('PUT /projects/x/ruleset with %s -> coded 4xx', async (_name, body) => {
    const r = await http(sup.url, 'PUT', '/projects/x/ruleset', body);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.body.error.code).toMatch(/^[A-Z_]+$/);
  });

  it.each([[{ reason: 5 }], [{ reason: 'x', force: true }], ['[1]'], ['"text"']])('POST cancel with %j -> coded 4xx, nothing changed', async (body) => {
    const before = await snapshot();
    const r = await http(sup.url, 'POST', `/runs/${RUN}/cancel`, body);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(await snapshot()).toEqual(before);
  });

  it('refuses a non-JSON content type with 415', async () => {
    const res = await fetch(`${sup.url}/runs/start`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'run_id=x' });
    expect(res.status).toBe(415);
    expect(((await res.json()) as any).error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
  });

  it('answers an oversized body with 413 PAYLOAD_TOO_LARGE', async () => {
    const r = await http(sup.url, 'POST', '/runs/start', JSON.stringify({ pad: 'x'.repeat(100 * 1024) }));
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('still works for the real lease holder afterwards', async () => {
    const r = await http(sup.url, 'POST', `${P}/heartbeat`, { lease_token: lease });
    expect(r.status).toBe(200);
  });
});

describe('API key', () => {
  let secured: TestSupervisor;
  const KEY = 'test-key-7c1f0e9a';
  beforeAll(async () => {
    secured = await startTestSupervisor({ apiKey: KEY });
  });
  afterAll(async () => secured?.close());

  it('requires X-API-Key or Bearer on every route but GET /health', async () => {
    expect((await http(secured.url, 'GET', '/health')).status).toBe(200);
    for (const [method, path] of [
      ['GET', '/runs'],
      ['GET', '/runs/x'],
      ['POST', '/runs/start'],
      ['POST', '/phases/claim'],
    ]) {
      const none = await http(secured.url, method, path, method === 'POST' ? {} : undefined);
      expect(none.status).toBe(401);
      expect(none.body.error.code).toBe('UNAUTHORIZED');
      const wrong = await http(secured.url, method, path, method === 'POST' ? {} : undefined, { 'x-api-key': `${KEY}x` });
      expect(wrong.status).toBe(401);
      expect(JSON.stringify(wrong.body)).not.toContain(KEY);
    }
    expect((await http(secured.url, 'GET', '/runs', undefined, { 'x-api-key': KEY })).status).toBe(200);
    expect((await http(secured.url, 'GET', '/runs', undefined, { authorization: `Bearer ${KEY}` })).status).toBe(200);
    // Auth is checked before the body is read: garbage with a wrong key is 401, not 400.
    expect((await http(secured.url, 'POST', '/runs/start', '{garbage', { 'x-api-key': 'nope' })).status).toBe(401);
  });
});
