import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import type { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { z } from 'zod';
import { ErrorBodySchema } from '@app/contracts';
import { API_ROUTE_METADATA, type ApiRouteSpec, type ExtraApiRoute, type NamedSchema } from './api-route.js';
import { NULL_IS_NOT_ABSENT } from './validation.js';

/** A route as Nest registered it, with the schemas registered on its handler. */
export interface DocumentedRoute {
  method: 'get' | 'post' | 'put' | 'delete' | 'patch';
  /** Express-style path (`/runs/:run_id`). */
  path: string;
  spec: ApiRouteSpec;
}

const METHODS: Partial<Record<RequestMethod, DocumentedRoute['method']>> = {
  [RequestMethod.GET]: 'get',
  [RequestMethod.POST]: 'post',
  [RequestMethod.PUT]: 'put',
  [RequestMethod.DELETE]: 'delete',
  [RequestMethod.PATCH]: 'patch',
};

const joinPath = (...parts: unknown[]) =>
  '/' +
  parts
    .flatMap((p) => (typeof p === 'string' ? [p] : []))
    .map((p) => p.replace(/^\/+|\/+$/g, ''))
    .filter(Boolean)
    .join('/');

/**
 * Every route handler of the app's controllers with the schemas registered on it by
 * `@ApiRoute`, plus the routes served outside Nest's router (`extra`). Throws, naming them,
 * when a handler has no registered schemas or its path parameters and `params` disagree: the
 * document is built at boot, so such a route stops the supervisor from starting.
 */
export function collectApiRoutes(discovery: DiscoveryService, scanner: MetadataScanner, extra: readonly ExtraApiRoute[] = []): DocumentedRoute[] {
  const routes: DocumentedRoute[] = [];
  const problems: string[] = [];
  for (const wrapper of discovery.getControllers()) {
    const controller = wrapper.metatype as (new (...args: never[]) => unknown) | null;
    if (!controller) continue;
    const base: unknown = Reflect.getMetadata(PATH_METADATA, controller);
    for (const name of scanner.getAllMethodNames(controller.prototype as object)) {
      const handler = (controller.prototype as Record<string, unknown>)[name] as object;
      const paths: unknown = Reflect.getMetadata(PATH_METADATA, handler);
      if (paths === undefined) continue; // not a route handler
      const method = METHODS[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod];
      const spec = Reflect.getMetadata(API_ROUTE_METADATA, handler) as ApiRouteSpec | undefined;
      for (const sub of Array.isArray(paths) ? paths : [paths]) {
        const path = joinPath(base, sub);
        if (!method) problems.push(`${controller.name}.${name} (${path}): a method the document cannot describe`);
        else if (!spec) problems.push(`${controller.name}.${name} (${method.toUpperCase()} ${path}): no @ApiRoute schemas`);
        else routes.push({ method, path, spec });
      }
    }
  }
  for (const { method, path, ...spec } of extra) routes.push({ method, path, spec });
  for (const r of routes) {
    const inPath = [...r.path.matchAll(/:(\w+)/g)].map((m) => m[1]).sort();
    const declared = Object.keys(r.spec.params?.shape ?? {}).sort();
    if (inPath.join() !== declared.join()) problems.push(`${r.method.toUpperCase()} ${r.path}: path parameters [${inPath.join(', ')}] but params [${declared.join(', ')}]`);
  }
  if (problems.length) throw new Error(`routes without a complete OpenAPI registration:\n${problems.join('\n')}`);
  return routes;
}

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

/** Builds the OpenAPI 3.1 document of `routes` (see `collectApiRoutes`). */
export function buildOpenApiDocument(version: string, routes: readonly DocumentedRoute[]): Record<string, unknown> {
  const components: Record<string, unknown> = { Error: schemaOf(ErrorBodySchema, 'output') };
  const registered = new Map<string, z.ZodType>([['Error', ErrorBodySchema]]);
  const ref = ({ name, schema }: NamedSchema, io: 'input' | 'output', nullAsAbsent = false) => {
    const seen = registered.get(name);
    if (seen && seen !== schema) throw new Error(`two different schemas are named ${name} in the OpenAPI document`);
    if (!seen) {
      registered.set(name, schema);
      components[name] = nullAsAbsent ? optionalsAcceptNull(schemaOf(schema, io)) : schemaOf(schema, io);
    }
    return { $ref: `#/components/schemas/${name}` };
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const { method, path: expressPath, spec: r } of routes) {
    const path = expressPath.replace(/:(\w+)/g, '{$1}');
    const params: Record<string, unknown>[] = Object.entries(r.params?.shape ?? {}).map(([name, field]) => ({ name, in: 'path', required: true, schema: schemaOf(field as z.ZodType, 'input') }));
    if (r.idempotent) {
      params.push({ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,200}$', maxLength: 200 } });
    }
    for (const [name, field] of Object.entries(r.query?.shape ?? {})) {
      params.push({ name, in: 'query', required: false, schema: schemaOf(field as z.ZodType, 'input') });
    }
    const body = r.response instanceof z.ZodType ? schemaOf(r.response, 'output') : ref(r.response, 'output');
    const responses: Record<string, unknown> = {
      [String(r.success ?? 200)]: { description: 'success', content: { [r.contentType ?? 'application/json']: { schema: body } } },
    };
    for (const [code, description] of Object.entries(r.extraSuccess ?? {})) responses[code] = { description };
    for (const code of r.errors ?? []) responses[String(code)] = { description: 'coded error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    paths[path] ??= {};
    paths[path][method] = {
      tags: [r.tag],
      summary: r.summary,
      operationId: `${method}_${path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '')}`,
      ...(params.length ? { parameters: params } : {}),
      ...(r.body ? { requestBody: { required: !r.bodyOptional, content: { 'application/json': { schema: ref(r.body, 'input', r.nullAsAbsent) } } } } : {}),
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
