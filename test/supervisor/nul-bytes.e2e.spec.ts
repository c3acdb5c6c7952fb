import WebSocket from 'ws';
import { SupervisorClient } from '../../apps/executor/src/supervisor-client.js';
import { mapError } from '../../apps/supervisor/src/http/error-mapping.js';
import { http, samplePlan, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { stateSnapshot } from '../support/database.js';

/**
 * PostgreSQL stores no NUL byte (U+0000) in text or jsonb. Every text a client can send, on
 * every route, is refused with a coded 422 NUL_BYTE naming where it is, and nothing changes;
 * the executor's client sends NUL bytes escaped, so its reports are accepted.
 */
let sup: TestSupervisor;
let lease: string;
const RUN = 'nul-run';
const P = `/runs/${RUN}/phases/p1`;
const NUL = 'before\u0000after';

const snapshot = () => stateSnapshot(sup.db);

beforeAll(async () => {
  sup = await startTestSupervisor();
  expect((await http(sup.url, 'POST', '/runs/start', samplePlan(RUN))).status).toBe(201);
  const claim = await http(sup.url, 'POST', '/phases/claim', { executor_id: 'e1', run_id: RUN });
  expect(claim.status).toBe(200);
  lease = claim.body.lease_token;
});
afterAll(async () => sup?.close());

const issue = () => ({ issue_key: 'k1', severity: 'minor', source: 'builder', category: 'style', description: 'd', location: 'a.ts:1', evidence_refs: ['e'] });
const llmCall = () => ({ role: 'builder', provider: 'openai', model: 'm', prompt_tokens: 1, completion_tokens: 1, duration_ms: 1, outcome: 'error', detail: 'x' });

/** Valid bodies (but for the NUL) of every route that takes one, with the text fields a client fills. */
const ROUTES: { method: string; path: string; body: () => Record<string, unknown>; fields: string[] }[] = [
  {
    method: 'POST',
    path: `${P}/builder_result`,
    body: () => ({
      lease_token: lease,
      status: 'failed',
      patch_content: 'p',
      files_changed: ['a.ts'],
      probe_results: [{ probe_type: 't', exit_code: 1, stdout: 'o', stderr: 'e', duration_seconds: 1 }],
      suggested_issues: [issue()],
      notes: 'n',
      failure_reason: 'r',
      feedback: 'f',
      edits_hash: 'h',
      usage: { model: 'm', prompt_tokens: 1, completion_tokens: 1 },
      llm_calls: [llmCall()],
      run_type: 'project_build',
      allowed_paths: ['src/'],
    }),
    fields: [
      'failure_reason',
      'feedback',
      'notes',
      'patch_content',
      'edits_hash',
      'files_changed.0',
      'suggested_issues.0.issue_key',
      'suggested_issues.0.source',
      'suggested_issues.0.category',
      'suggested_issues.0.description',
      'suggested_issues.0.location',
      'suggested_issues.0.evidence_refs.0',
      'probe_results.0.probe_type',
      'probe_results.0.stdout',
      'probe_results.0.stderr',
      'usage.model',
      'llm_calls.0.model',
      'llm_calls.0.detail',
      'run_type',
      'allowed_paths.0',
      'lease_token',
    ],
  },
  {
    method: 'POST',
    path: `${P}/auditor_request`,
    body: () => ({ lease_token: lease, tier_id: 't1', builder_result: { notes: 'n', nested: ['x'] }, failure_context: 'c', review_focus: 'general', auditor_profile: 'a', ci: { passed: false, exit_code: 1, output_tail: 't' } }),
    fields: ['failure_context', 'review_focus', 'auditor_profile', 'tier_id', 'builder_result.notes', 'builder_result.nested.0', 'ci.output_tail'],
  },
  {
    method: 'POST',
    path: `${P}/auditor_result`,
    body: () => ({
      lease_token: lease,
      recommendation: 'revise',
      review_notes: 'r',
      issues_found: [issue()],
      suggested_patches: [{ description: 'd', patch_content: 'p', files_affected: ['a.ts'] }],
      feedback: 'f',
      edits_hash: 'h',
      usage: { model: 'm', prompt_tokens: 1, completion_tokens: 1 },
      llm_calls: [llmCall()],
    }),
    fields: ['review_notes', 'feedback', 'edits_hash', 'issues_found.0.issue_key', 'issues_found.0.description', 'issues_found.0.evidence_refs.0', 'suggested_patches.0.description', 'suggested_patches.0.patch_content', 'suggested_patches.0.files_affected.0', 'usage.model', 'llm_calls.0.detail'],
  },
  {
    method: 'POST',
    path: `${P}/update_status`,
    body: () => ({ lease_token: lease, state: 'FAILED', failure_reason: 'r', feedback: 'f', edits_hash: 'h', usage: { model: 'm', prompt_tokens: 1, completion_tokens: 1 } }),
    fields: ['failure_reason', 'feedback', 'edits_hash', 'usage.model', 'state'],
  },
  {
    method: 'POST',
    path: `${P}/record_issue`,
    body: () => ({ lease_token: lease, ...issue(), task_category: 'docs' }),
    fields: ['issue_key', 'category', 'description', 'location', 'evidence_refs.0', 'task_category', 'source'],
  },
  { method: 'POST', path: `${P}/heartbeat`, body: () => ({ lease_token: lease }), fields: ['lease_token'] },
  { method: 'POST', path: `${P}/reserve_budget`, body: () => ({ lease_token: lease, tokens: 10, purpose: 'builder' }), fields: ['lease_token', 'purpose'] },
  { method: 'POST', path: '/phases/claim', body: () => ({ executor_id: 'e2', run_id: RUN, capabilities: { version: '1' } }), fields: ['executor_id', 'run_id', 'capabilities.version'] },
  {
    method: 'POST',
    path: '/runs/start',
    body: () => {
      const plan = samplePlan('nul-new', { repo_url: 'https://example.com/r.git', base_branch: 'main' }) as { run: object; tiers: object[]; phases: object[] };
      plan.tiers[0] = { ...plan.tiers[0], description: 'd' };
      plan.phases[0] = { ...plan.phases[0], description: 'd', acceptance_criteria: ['a'], ci: { command: 'npm test' }, scope: { paths: ['src/'], read_only_context: ['docs/'] } };
      return plan as unknown as Record<string, unknown>;
    },
    fields: ['run.run_id', 'run.repo_url', 'run.base_branch', 'tiers.0.tier_id', 'tiers.0.name', 'tiers.0.description', 'phases.0.name', 'phases.0.description', 'phases.0.acceptance_criteria.0', 'phases.0.ci.command', 'phases.0.scope.paths.0', 'phases.0.scope.read_only_context.0', 'phases.0.task_category'],
  },
  { method: 'POST', path: `/runs/${RUN}/approve`, body: () => ({ approved: true, notes: 'n' }), fields: ['notes'] },
  { method: 'POST', path: `/runs/${RUN}/cancel`, body: () => ({ reason: 'r' }), fields: ['reason'] },
  { method: 'PUT', path: '/projects/nul-project/ruleset', body: () => ({ categories: { docs: { auditor_profile: 'a' } } }), fields: ['categories.docs.auditor_profile'] },
];

/** A copy of `body` with `value` at the dotted `path`. */
function withValue(body: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(body);
  const keys = path.split('.');
  let at = copy as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
  at[keys[keys.length - 1]] = value;
  return copy;
}

const CASES = ROUTES.flatMap((r) => r.fields.map((field) => [`${r.method} ${r.path.replace(P, '…/p1')}`, field, r] as const));

describe('a NUL byte in a request', () => {
  it.each(CASES)('%s with a NUL in %s -> 422 NUL_BYTE naming the field, nothing changed', async (_route, field, r) => {
    const before = await snapshot();
    const res = await http(sup.url, r.method, r.path, withValue(r.body(), field, NUL));
    expect({ field, status: res.status, code: res.body?.error?.code }).toEqual({ field, status: 422, code: 'NUL_BYTE' });
    expect(res.body.error.details).toEqual({ location: 'body', field });
    expect(typeof res.body.error.message).toBe('string');
    expect(await snapshot()).toEqual(before);
  });

  it.each([
    ['POST', `${P}/builder_result`, { lease_token: '', status: 'failed', suggested_issues: [], ['evil\u0000key']: 1 }, 'evil\\0key'],
    ['POST', `${P}/auditor_request`, { lease_token: '', builder_result: { ['k\u0000']: 'v' } }, 'builder_result.k\\0'],
    ['PUT', '/projects/nul-project/ruleset', { categories: { ['do\u0000cs']: {} } }, 'categories.do\\0cs'],
  ])('%s %s with a NUL in an object key -> 422 NUL_BYTE', async (method, path, body, field) => {
    const before = await snapshot();
    const res = await http(sup.url, method, path, body);
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: 'NUL_BYTE', details: { location: 'body', field } });
    expect(await snapshot()).toEqual(before);
  });

  it.each([
    ['GET', '/runs/%00', 'path'],
    ['GET', `/runs/${RUN}%00`, 'path'],
    ['GET', `/runs/${RUN}/issues/index%00`, 'path'],
    ['GET', `/reports/run_summary/${RUN}%00x`, 'path'],
    ['GET', `/runs/${RUN}/events?follow=false&after=%00`, 'query'],
    ['GET', '/runs?state=%00', 'query'],
    ['GET', '/project/issues/backlog?project_id=a%00b', 'query'],
    ['GET', '/metrics/runs?sta%00tus=x', 'query'],
    ['POST', `/runs/${RUN}%00/phases/p1/builder_result`, 'path'],
    ['POST', `/runs/${RUN}/phases/p1%00/heartbeat`, 'path'],
    ['POST', `/runs/${RUN}/phases/p1/update_status?x=%00`, 'query'],
    ['POST', `/runs/${RUN}%00/cancel`, 'path'],
    ['POST', `/runs/${RUN}%00/approve`, 'path'],
    ['PUT', '/projects/a%00/ruleset', 'path'],
  ])('%s %s -> 422 NUL_BYTE (%s), nothing changed', async (method, path, location) => {
    const before = await snapshot();
    const body = method === 'GET' ? undefined : path.includes('ruleset') ? { categories: {} } : path.includes('approve') ? { approved: true } : { lease_token: lease, status: 'failed', state: 'FAILED' };
    const res = await http(sup.url, method, path, body);
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: 'NUL_BYTE', details: { location } });
    expect(await snapshot()).toEqual(before);
  });

  it.each(['%00', `${RUN}%00`, '%E0%A4%A'])('WebSocket /runs/%s/stream -> 404, and the supervisor keeps serving', async (id) => {
    const ws = new WebSocket(`${sup.url.replace('http', 'ws')}/runs/${id}/stream`);
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    expect(status).toBe(404);
    expect((await http(sup.url, 'GET', '/health')).status).toBe(200);
  });

  it('leaves the lease and the phase as they were', async () => {
    expect((await http(sup.url, 'POST', `${P}/heartbeat`, { lease_token: lease })).status).toBe(200);
    const run = (await http(sup.url, 'GET', `/runs/${RUN}`)).body;
    expect(run.phases.find((p: { phase_id: string }) => p.phase_id === 'p1')).toMatchObject({ state: 'EXECUTING', attempts_used: 1, last_failure_reason: null });
    expect((await http(sup.url, 'GET', '/runs/nul-new')).status).toBe(404);
  });
});

describe("the executor's client", () => {
  it('sends a reason holding a NUL escaped: the report is accepted and the next attempt still learns why', async () => {
    const client = new SupervisorClient({ baseUrl: sup.url, retryForMs: 2_000 });
    const written = await client.updateStatus(RUN, 'p1', {
      lease_token: lease,
      state: 'FAILED',
      failure_reason: 'scope: refused path "src/evil\u0000.ts"',
      feedback: 'Do not write src/evil\u0000.ts: the path holds a NUL byte.',
    });
    expect(written).toMatchObject({ phase_state: 'QUEUED' });
    const next = await http(sup.url, 'POST', '/phases/claim', { executor_id: 'e1', run_id: RUN });
    expect(next.status).toBe(200);
    expect(next.body.previous_attempts).toEqual([
      expect.objectContaining({ attempt: 1, reason: 'scope: refused path "src/evil\u2400.ts"', feedback: 'Do not write src/evil\u2400.ts: the path holds a NUL byte.' }),
    ]);
    lease = next.body.lease_token;
  });
});

describe('the database safety net', () => {
  it("maps PostgreSQL's refusals of a NUL (22021 in text, 22P05 in jsonb) to 422 NUL_BYTE", async () => {
    const textErr = await sup.db.query('SELECT $1::text AS t', ['a\u0000b']).catch((e: unknown) => e);
    const jsonErr = await sup.db.query('SELECT $1::jsonb AS j', ['{"a":"\\u0000"}']).catch((e: unknown) => e);
    expect((textErr as { code?: string }).code).toBe('22021');
    expect((jsonErr as { code?: string }).code).toBe('22P05');
    for (const err of [textErr, jsonErr, { name: 'QueryFailedError', message: 'x', driverError: { code: '22021' } }]) {
      const mapped = mapError(err);
      expect(mapped).toMatchObject({ status: 422, unexpected: false, body: { error: { code: 'NUL_BYTE' } } });
    }
  });
});
