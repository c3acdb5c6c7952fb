import { SetMetadata } from '@nestjs/common';
import type { z } from 'zod';

/** A zod schema with the name it has under `components.schemas` in the OpenAPI document. */
export interface NamedSchema<S extends z.ZodType = z.ZodType> {
  name: string;
  schema: S;
}

/** Names a schema for the OpenAPI document. */
export const named = <S extends z.ZodType>(name: string, schema: S): NamedSchema<S> => ({ name, schema });

/**
 * What a route takes and answers, as the zod schemas its handler parses with. Registered on the
 * handler with `@ApiRoute`; the method and path come from Nest's own `@Get`/`@Post` metadata,
 * so the OpenAPI document (built from every registered handler) cannot disagree with them.
 */
export interface ApiRouteSpec {
  summary: string;
  tag: 'runs' | 'executor' | 'issues' | 'operator' | 'metrics' | 'reports' | 'events' | 'meta' | 'builds' | 'coordinator';
  /** Path parameters, one zod schema per `:name` in the path. */
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: NamedSchema;
  /** The body may be left out (`POST /runs/{id}/cancel`). */
  bodyOptional?: true;
  /** Autopack-compatible body: `null` in an optional field is taken as absent (see `nullsAsAbsent`). */
  nullAsAbsent?: true;
  /** Honours an `Idempotency-Key` header (a retry with the same key and body replays the first answer). */
  idempotent?: true;
  /** The success body: a named JSON schema, or the schema of a non-JSON body of `contentType`. */
  response: NamedSchema | z.ZodType;
  /** Content type of the success body (default `application/json`). */
  contentType?: string;
  /** Success status (default 200). */
  success?: number;
  /** Other non-error answers, with what they mean. */
  extraSuccess?: Record<number, string>;
  /** Error statuses, each answered with the `{"error": …}` body. */
  errors?: number[];
  /** Served without the API key. */
  auth?: false;
}

/** Metadata key of an `ApiRouteSpec` on a handler. */
export const API_ROUTE_METADATA = 'autopack:api-route';

/** Registers a handler's schemas (request and response) for validation and the OpenAPI document. */
export const ApiRoute = (spec: ApiRouteSpec): MethodDecorator => SetMetadata(API_ROUTE_METADATA, spec);

/** The spec of a route served outside Nest's router (the WebSocket upgrade), with its method and path. */
export interface ExtraApiRoute extends ApiRouteSpec {
  method: 'get';
  /** Express-style path (`/runs/:run_id/stream`). */
  path: string;
}
