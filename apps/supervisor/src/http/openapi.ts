import { z } from 'zod';
import {
  ApproveRequestSchema,
  AuditorRequestSchema,
  AuditorResultRequestSchema,
  BuilderResultRequestSchema,
  CancelRequestSchema,
  ClaimRequestSchema,
  ClaimResponseSchema,
  ErrorBodySchema,
  HeartbeatRequestSchema,
  HeartbeatResponseSchema,
  ListRunsQuerySchema,
  PhaseWriteResponseSchema,
  ProjectRulesetSchema,
  RecordIssueRequestSchema,
  ReserveBudgetRequestSchema,
  ReserveBudgetResponseSchema,
  RunResponseSchema,
  RunStartRequestSchema,
  RunStateSchema,
  UpdateStatusRequestSchema,
} from '@app/contracts';
import { NULL_IS_NOT_ABSENT } from './validation.js';

/** One documented route. Paths use OpenAPI `{param}` syntax. */
export interface RouteDoc {
  method: 'get' | 'post' | 'put';
  path: string;
  summary: string;
  tag: string;
  body?: [string, z.ZodType];
  response?: [string, z.ZodType];
  query?: z.ZodObject;
  success?: number;
  extraSuccess?: Record<number, string>;
  errors?: number[];
  contentType?: string;
  auth?: false;
  /** Honours an `Idempotency-Key` header (a retry with the same key and body replays the first answer). */
  idempotent?: true;
  /** Autopack-compatible body: `null` in an optional field is taken as absent (see `nullsAsAbsent`). */
  nullAsAbsent?: true;
}

const json = (name: string, schema: z.ZodType): [string, z.ZodType] => [name, schema];
const runParam = '{run_id}';
const phasePath = (action: string) => `/runs/${runParam}/phases/{phase_id}/${action}`;
const write = [400, 401, 404, 409, 413, 415, 422];

/**
 * Every route the supervisor serves. The request and response schemas are the zod schemas
 * the supervisor validates with and the executor parses with, so the document cannot drift
 * from the code (a test compares this list with the routes Nest registered).
 */
export const ROUTES: RouteDoc[] = [
  { method: 'post', nullAsAbsent: true, idempotent: true, path: '/runs/start', tag: 'runs', summary: 'Create a run from tiers and phases', body: json('RunStartRequest', RunStartRequestSchema), response: json('Run', RunResponseSchema), success: 201, errors: write },
  { method: 'get', path: '/runs', tag: 'runs', summary: 'List runs (filter by state, paging)', query: ListRunsQuerySchema, errors: [401, 422] },
  { method: 'get', path: `/runs/${runParam}`, tag: 'runs', summary: 'A run with tiers[].phases[], flat phases[], budgets and promotion eligibility', response: json('Run', RunResponseSchema), errors: [401, 404] },
  { method: 'post', idempotent: true, path: '/phases/claim', tag: 'executor', summary: 'Claim the next phase (long poll up to wait_ms)', body: json('ClaimRequest', ClaimRequestSchema), response: json('ClaimResponse', ClaimResponseSchema), success: 200, extraSuccess: { 204: 'nothing claimable within wait_ms' }, errors: write },
  { method: 'post', path: phasePath('heartbeat'), tag: 'executor', summary: 'Extend a lease', body: json('HeartbeatRequest', HeartbeatRequestSchema), response: json('HeartbeatResponse', HeartbeatResponseSchema), errors: write },
  { method: 'post', nullAsAbsent: true, path: phasePath('builder_result'), tag: 'executor', summary: 'Builder outcome of the current attempt', body: json('BuilderResultRequest', BuilderResultRequestSchema), response: json('PhaseWriteResponse', PhaseWriteResponseSchema), errors: write },
  { method: 'post', nullAsAbsent: true, path: phasePath('auditor_request'), tag: 'executor', summary: 'Move the phase to GATE for review', body: json('AuditorRequest', AuditorRequestSchema), response: json('PhaseWriteResponse', PhaseWriteResponseSchema), errors: write },
  { method: 'post', nullAsAbsent: true, path: phasePath('auditor_result'), tag: 'executor', summary: 'Review outcome: approve, revise or escalate', body: json('AuditorResultRequest', AuditorResultRequestSchema), response: json('PhaseWriteResponse', PhaseWriteResponseSchema), errors: write },
  { method: 'post', nullAsAbsent: true, path: phasePath('update_status'), tag: 'executor', summary: 'State change checked against the phase state machine', body: json('UpdateStatusRequest', UpdateStatusRequestSchema), response: json('PhaseWriteResponse', PhaseWriteResponseSchema), errors: write },
  { method: 'post', nullAsAbsent: true, idempotent: true, path: phasePath('record_issue'), tag: 'issues', summary: 'Record an issue into the phase, the run index and the project backlog', body: json('RecordIssueRequest', RecordIssueRequestSchema), response: json('PhaseWriteResponse', PhaseWriteResponseSchema), errors: write },
  { method: 'post', idempotent: true, path: phasePath('reserve_budget'), tag: 'executor', summary: 'Reserve the worst case of an LLM call before making it (409 BUDGET_EXHAUSTED if it does not fit)', body: json('ReserveBudgetRequest', ReserveBudgetRequestSchema), response: json('ReserveBudgetResponse', ReserveBudgetResponseSchema), errors: write },
  { method: 'post', path: phasePath('retry'), tag: 'operator', summary: 'Re-queue a FAILED phase', response: json('PhaseWriteResponse', PhaseWriteResponseSchema), errors: [401, 404, 409] },
  { method: 'get', path: `/runs/${runParam}/issues/index`, tag: 'issues', summary: 'Run issue index', errors: [401, 404] },
  { method: 'get', path: '/project/issues/backlog', tag: 'issues', summary: 'Project backlog with aging', query: z.strictObject({ project_id: z.string().optional() }), errors: [401, 422] },
  { method: 'get', path: `/runs/${runParam}/integration_status`, tag: 'runs', summary: '{branch, exists, commits_ahead_of_base, current_commit}', errors: [401, 404] },
  { method: 'get', path: '/metrics/runs', tag: 'metrics', summary: 'Run metrics', query: z.strictObject({ status: RunStateSchema.optional() }), errors: [401, 422] },
  { method: 'get', path: `/metrics/tiers/${runParam}`, tag: 'metrics', summary: 'Tier metrics of a run', errors: [401, 404] },
  { method: 'get', path: '/reports/issue_backlog_summary', tag: 'reports', summary: 'Backlog summary: aging, needs cleanup', query: z.strictObject({ project_id: z.string().optional() }), errors: [401] },
  { method: 'get', path: '/reports/budget_analysis', tag: 'reports', summary: 'Budget utilization and budget-exhausted runs', errors: [401] },
  { method: 'get', path: `/reports/run_summary/${runParam}`, tag: 'reports', summary: 'Run summary', errors: [401, 404] },
  { method: 'post', path: `/runs/${runParam}/cancel`, tag: 'operator', summary: 'Cancel a run', body: json('CancelRequest', CancelRequestSchema), response: json('Run', RunResponseSchema), errors: [401, 404, 409] },
  { method: 'post', path: `/runs/${runParam}/approve`, tag: 'operator', summary: 'Answer an approval gate', body: json('ApproveRequest', ApproveRequestSchema), response: json('Run', RunResponseSchema), errors: [401, 404, 409, 422] },
  { method: 'get', path: `/runs/${runParam}/events`, tag: 'events', summary: 'Server-Sent Events of the run (supports Last-Event-ID, ?after=, ?follow=false)', contentType: 'text/event-stream', errors: [401, 404] },
  { method: 'get', path: `/runs/${runParam}/stream`, tag: 'events', summary: 'WebSocket (Upgrade: websocket): the same events as /events', contentType: 'application/json', success: 101, errors: [401, 404] },
  { method: 'get', path: '/projects/{project_id}/ruleset', tag: 'operator', summary: 'Strategy overrides of a project', errors: [401] },
  { method: 'put', path: '/projects/{project_id}/ruleset', tag: 'operator', summary: 'Replace the strategy overrides of a project', body: json('ProjectRuleset', ProjectRulesetSchema), errors: [401, 422] },
  { method: 'get', path: '/metrics', tag: 'metrics', summary: 'Prometheus text format', contentType: 'text/plain', errors: [401] },
  { method: 'get', path: '/capabilities', tag: 'meta', summary: 'Approval modes, providers, limits, version', errors: [401] },
  { method: 'get', path: '/health', tag: 'meta', summary: '{status, database, version}; 503 when the database is unreachable', extraSuccess: { 503: 'database unreachable' }, auth: false },
  { method: 'get', path: '/openapi.json', tag: 'meta', summary: 'This document', errors: [401] },
  { method: 'get', path: '/docs', tag: 'meta', summary: 'This document, rendered', contentType: 'text/html', errors: [401] },
];

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const s = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete s.$schema;
  return s;
}

const acceptsNull = (p: unknown): boolean => {
  const s = p as { type?: unknown; anyOf?: unknown[] };
  return s.type === 'null' || (Array.isArray(s.type) && s.type.includes('null')) || (s.anyOf ?? []).some(acceptsNull);
};

/** A body's JSON Schema in which every optional property also takes `null` (read as absent). */
function optionalsAcceptNull(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(optionalsAcceptNull);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === 'properties' ? v : optionalsAcceptNull(v);
  if (out.properties && typeof out.properties === 'object') {
    const required = new Set(Array.isArray(out.required) ? (out.required as string[]) : []);
    const props: Record<string, unknown> = {};
    for (const [name, p] of Object.entries(out.properties as Record<string, unknown>)) {
      const inner = optionalsAcceptNull(p);
      props[name] = required.has(name) || NULL_IS_NOT_ABSENT.has(name) || acceptsNull(inner) ? inner : { anyOf: [inner, { type: 'null' }] };
    }
    out.properties = props;
  }
  return out;
}

/** Builds the OpenAPI 3.1 document. */
export function buildOpenApiDocument(version: string): Record<string, unknown> {
  const components: Record<string, unknown> = { Error: schemaOf(ErrorBodySchema, 'output') };
  const ref = (name: string, schema: z.ZodType, io: 'input' | 'output', nullAsAbsent = false) => {
    const key = name;
    if (!(key in components)) components[key] = nullAsAbsent ? optionalsAcceptNull(schemaOf(schema, io)) : schemaOf(schema, io);
    return { $ref: `#/components/schemas/${key}` };
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', maxLength: 100 } }));
    if (r.idempotent) {
      params.push({ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,200}$', maxLength: 200 } });
    }
    if (r.query) {
      for (const [name, field] of Object.entries(r.query.shape)) {
        params.push({ name, in: 'query', required: false, schema: schemaOf(field as z.ZodType, 'input') as never });
      }
    }
    const responses: Record<string, unknown> = {
      [String(r.success ?? 200)]: {
        description: 'success',
        content: { [r.contentType ?? 'application/json']: r.response ? { schema: ref(r.response[0], r.response[1], 'output') } : {} },
      },
    };
    for (const [code, description] of Object.entries(r.extraSuccess ?? {})) responses[code] = { description };
    for (const code of r.errors ?? []) responses[String(code)] = { description: 'coded error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    paths[r.path] ??= {};
    paths[r.path][r.method] = {
      tags: [r.tag],
      summary: r.summary,
      operationId: `${r.method}_${r.path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '')}`,
      ...(params.length ? { parameters: params } : {}),
      ...(r.body ? { requestBody: { required: r.body[0] !== 'CancelRequest', content: { 'application/json': { schema: ref(r.body[0], r.body[1], 'input', r.nullAsAbsent) } } } } : {}),
      responses,
      ...(r.auth === false ? { security: [] } : {}),
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Autopack supervisor', version, description: 'Runs, tiers and phases as enforced state machines; executors claim phases with leases. Errors are {"error": {"code", "message", "details"}}.' },
    servers: [{ url: '/' }],
    security: [{ apiKey: [] }, { bearer: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' }, bearer: { type: 'http', scheme: 'bearer' } },
    },
  };
}

/** The `/docs` page: Swagger UI (swagger-ui-dist, served locally; no CDN). */
export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Autopack API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>`;

/** Swagger UI initializer (a separate file, so a strict CSP needs no inline script). */
export const DOCS_INIT_JS = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });`;
