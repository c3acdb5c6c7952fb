import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { RouteParamtypes } from '@nestjs/common/internal.js';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { z } from 'zod';
import { API_ROUTE_METADATA, type ApiRouteSpec } from '../../apps/supervisor/src/http/api-route.js';
import { claimNext, completeNext, http, samplePlan, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

/*
 * One source for the API: every route the app serves is in /openapi.json with its method, the
 * schemas of what it takes, and the schema of what it answers; and what it answers fits them.
 * The routes come from Express's router and Nest's handler metadata, never from a list here.
 * (That a handler without @ApiRoute stops the boot is shown in apps/supervisor/src/http/openapi.spec.ts.)
 */

let sup: TestSupervisor;
beforeAll(async () => {
  sup = await startTestSupervisor();
});
afterAll(async () => sup?.close());

interface Operation {
  parameters?: { name: string; in: string; schema?: unknown }[];
  requestBody?: { content: Record<string, { schema?: unknown }> };
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
type Doc = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, JsonSchema> } };
type JsonSchema = { $ref?: string; type?: string | string[]; properties?: Record<string, JsonSchema>; additionalProperties?: boolean | JsonSchema; items?: JsonSchema; prefixItems?: JsonSchema[]; anyOf?: JsonSchema[]; allOf?: JsonSchema[] };

/** `METHOD /express/:path` of every route Express dispatches to. */
function servedRoutes(): { method: string; path: string }[] {
  const router = (sup.app.getHttpAdapter().getInstance() as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router;
  return router.stack.filter((l) => l.route).flatMap((l) => Object.keys(l.route!.methods).map((m) => ({ method: m, path: l.route!.path })));
}

/** The Nest handler behind each route, with what its parameters read and the schemas registered on it. */
function handlers(): Map<string, { reads: Set<RouteParamtypes>; spec: ApiRouteSpec | undefined }> {
  const found = new Map<string, { reads: Set<RouteParamtypes>; spec: ApiRouteSpec | undefined }>();
  const scanner = sup.app.get(MetadataScanner);
  for (const wrapper of sup.app.get(DiscoveryService).getControllers()) {
    const controller = wrapper.metatype as { prototype: Record<string, object> };
    const prefix = String(Reflect.getMetadata(PATH_METADATA, controller) ?? '').replace(/^\/|\/$/g, '');
    const proto = controller.prototype;
    for (const name of scanner.getAllMethodNames(proto)) {
      const own: unknown = Reflect.getMetadata(PATH_METADATA, proto[name]);
      if (typeof own !== 'string') continue;
      const path = [prefix, own.replace(/^\//, '')].filter(Boolean).join('/');
      const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, proto[name]) as RequestMethod].toLowerCase();
      const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, proto.constructor, name) ?? {}) as Record<string, unknown>;
      const reads = new Set(Object.keys(args).map((k) => Number(k.split(':')[0]) as RouteParamtypes));
      found.set(`${method} /${path}`, { reads, spec: Reflect.getMetadata(API_ROUTE_METADATA, proto[name]) as ApiRouteSpec | undefined });
    }
  }
  return found;
}

const toOpenApi = (path: string) => path.replace(/:(\w+)/g, '{$1}');
const schemaOf = (content: Record<string, { schema?: unknown }> | undefined) => Object.values(content ?? {})[0]?.schema;
const isNonEmptySchema = (s: unknown) => typeof s === 'object' && s !== null && Object.keys(s).length > 0;

/** Paths of `value` holding object keys its JSON Schema does not declare (a field the document does not know). */
function undeclaredKeys(doc: Doc, schema: JsonSchema, value: unknown, at = '(body)'): string[] {
  if (schema.$ref) return undeclaredKeys(doc, doc.components.schemas[schema.$ref.replace('#/components/schemas/', '')], value, at);
  if (schema.anyOf) {
    const tries = schema.anyOf.map((s) => undeclaredKeys(doc, s, value, at));
    return tries.find((t) => t.length === 0) ?? tries[0];
  }
  if (Array.isArray(value)) {
    return value.flatMap((v, i) => {
      const item = schema.prefixItems?.[i] ?? schema.items;
      return item ? undeclaredKeys(doc, item, v, `${at}.${i}`) : [];
    });
  }
  if (value === null || typeof value !== 'object' || (!schema.properties && schema.additionalProperties === undefined)) return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const field = schema.properties?.[k] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
    if (field) return undeclaredKeys(doc, field, v, `${at}.${k}`);
    return schema.additionalProperties === true ? [] : [`${at}.${k}`];
  });
}

describe('the OpenAPI document', () => {
  it('has every route the app serves, with its method, request schemas and a response schema', async () => {
    const doc = (await http(sup.url, 'GET', '/openapi.json')).body as Doc;
    const nest = handlers();
    const served = servedRoutes();
    expect(served.length).toBeGreaterThan(25);
    const problems: string[] = [];
    for (const { method, path } of served) {
      const route = `${method.toUpperCase()} ${path}`;
      const op = doc.paths[toOpenApi(path)]?.[method];
      if (!op) {
        problems.push(`${route}: not documented`);
        continue;
      }
      const handler = nest.get(`${method} ${path}`);
      if (!handler) {
        problems.push(`${route}: no Nest handler found`);
        continue;
      }
      const pathParams = [...path.matchAll(/:(\w+)/g)].map((m) => m[1]);
      for (const p of pathParams) {
        if (!op.parameters?.some((x) => x.name === p && x.in === 'path' && isNonEmptySchema(x.schema))) problems.push(`${route}: path parameter ${p} without a schema`);
      }
      if (handler.reads.has(RouteParamtypes.BODY) && !isNonEmptySchema(schemaOf(op.requestBody?.content))) problems.push(`${route}: reads a body but documents no body schema`);
      if (handler.reads.has(RouteParamtypes.QUERY) && !op.parameters?.some((x) => x.in === 'query' && isNonEmptySchema(x.schema))) problems.push(`${route}: reads the query but documents no query parameter`);
      const success = Object.entries(op.responses).find(([code]) => /^(1|2)\d\d$/.test(code));
      if (!success || !isNonEmptySchema(schemaOf(success[1].content))) problems.push(`${route}: no success response schema`);
    }
    expect(problems).toEqual([]);
    // Documented but not in Express's router: only the WebSocket upgrade, served beside it.
    const servedKeys = new Set(served.map((r) => `${r.method} ${toOpenApi(r.path)}`));
    const extra = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`)).filter((r) => !servedKeys.has(r));
    expect(extra.sort()).toEqual(['get /executor/builds/{build_id}/stream', 'get /runs/{run_id}/stream']);
  });

  it('describes what the routes answer: live answers parse with the registered schemas and have no undocumented field', async () => {
    const runId = 'oa-run';
    const started = await http(sup.url, 'POST', '/runs/start', samplePlan(runId, { project_id: 'oa' }));
    expect(started.status).toBe(201);
    await completeNext(sup.url, runId, { issues: [{ issue_key: 'lint', severity: 'minor', category: 'style' }], tokens: 500 });
    const claim = await claimNext(sup.url, runId);
    const base = `/runs/${runId}/phases/${claim.phase_id}`;
    await http(sup.url, 'POST', `${base}/record_issue`, { lease_token: claim.lease_token, issue_key: 'flaky', severity: 'major', category: 'test' });
    await http(sup.url, 'PUT', '/projects/oa/ruleset', { categories: { docs: { auditor_profile: 'strict', max_builder_attempts: 3 } } });
    const doc = (await http(sup.url, 'GET', '/openapi.json')).body as Doc;
    const nest = handlers();
    const answers: { route: string; body: unknown }[] = [
      { route: 'post /runs/start', body: started.body },
      { route: 'post /phases/claim', body: claim },
      { route: 'post /runs/:run_id/phases/:phase_id/heartbeat', body: (await http(sup.url, 'POST', `${base}/heartbeat`, { lease_token: claim.lease_token })).body },
      { route: 'post /runs/:run_id/phases/:phase_id/reserve_budget', body: (await http(sup.url, 'POST', `${base}/reserve_budget`, { lease_token: claim.lease_token, tokens: 10 })).body },
    ];
    const accepted = await http(sup.url, 'POST', '/executor/build-droplet', { architect_intent: 'Build a tiny service', droplet_id: 'oa-build' });
    expect(accepted.status).toBe(202);
    answers.push({ route: 'post /executor/build-droplet', body: accepted.body });
    const values: Record<string, string> = { run_id: runId, phase_id: claim.phase_id, project_id: 'oa', build_id: 'oa-build' };
    for (const { method, path } of servedRoutes()) {
      const spec = nest.get(`${method} ${path}`)?.spec;
      if (method !== 'get' || (spec?.contentType ?? 'application/json') !== 'application/json') continue;
      const res = await http(sup.url, 'GET', path.replace(/:(\w+)/g, (_, p: string) => values[p]) + (path === '/runs/:run_id/events' ? '?follow=false' : ''));
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
      answers.push({ route: `get ${path}`, body: res.body });
    }
    expect(answers.length).toBeGreaterThan(15);
    for (const { route, body } of answers) {
      const [method, path] = route.split(' ');
      const spec = nest.get(route)?.spec;
      const response = spec?.response;
      if (!response) throw new Error(`${route}: no registered response schema`);
      const schema = response instanceof z.ZodType ? response : response.schema;
      const parsed = schema.safeParse(body);
      expect({ route, issues: parsed.success ? [] : parsed.error.issues.slice(0, 5) }).toEqual({ route, issues: [] });
      const documented = schemaOf(doc.paths[toOpenApi(path)][method].responses[String(spec.success ?? 200)].content) as JsonSchema;
      expect({ route, undeclared: undeclaredKeys(doc, documented, body) }).toEqual({ route, undeclared: [] });
    }
  });

  it('streams events that fit the documented event union', async () => {
    const runId = 'oa-events';
    await http(sup.url, 'POST', '/runs/start', samplePlan(runId));
    await completeNext(sup.url, runId, { issues: [{ issue_key: 'k', severity: 'minor', category: 'c' }] });
    const text = await (await fetch(`${sup.url}/runs/${runId}/events?follow=false`)).text();
    const events = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as unknown);
    expect(events.length).toBeGreaterThan(3);
    const { StreamedEventSchema } = await import('@app/contracts');
    for (const e of events) expect(StreamedEventSchema.safeParse(e).error?.issues ?? []).toEqual([]);
  });
});
