import type { z } from 'zod';
import { DomainError, IdSchema } from '@app/contracts';
import type { ApiRouteSpec, NamedSchema } from './api-route.js';

function issuesOf(error: z.ZodError): { path: string; message: string; code: string }[] {
  return error.issues.slice(0, 50).map((i) => ({ path: i.path.join('.') || '(body)', message: i.message, code: i.code }));
}

/** The parts of a zod schema's definition that `nullsAsAbsent` walks. */
interface WalkedDef {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  valueType?: z.ZodType;
  getter?: () => z.ZodType;
}

/**
 * Optional fields whose absence means something a null must not come to mean by accident:
 * a write without a lease token is an operator's, unfenced, so a null token (an executor that
 * lost its lease) stays a 422 instead of silently dropping the fence.
 */
export const NULL_IS_NOT_ABSENT: ReadonlySet<string> = new Set(['lease_token']);

/**
 * A copy of `value` without the object keys whose value is `null` where the schema has an
 * optional field (or one with a default) that does not itself accept `null`: such a null means
 * "absent", as Python clients of the original Autopack send `None`. Nested objects, arrays and
 * records are walked too. Nothing else changes: a null in a required field, a field where null
 * has its own meaning (`.nullable()`) or in `NULL_IS_NOT_ABSENT`, unknown keys and wrong types are
 * left for the schema to judge.
 */
export function nullsAsAbsent(schema: z.ZodType, value: unknown): unknown {
  const def = schema._zod.def as unknown as WalkedDef;
  switch (def.type) {
    case 'optional':
    case 'default':
    case 'prefault':
    case 'nullable':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return def.innerType ? nullsAsAbsent(def.innerType, value) : value;
    case 'pipe':
      return def.in ? nullsAsAbsent(def.in, value) : value;
    case 'lazy':
      return def.getter ? nullsAsAbsent(def.getter(), value) : value;
    case 'array':
      return Array.isArray(value) && def.element ? value.map((v) => nullsAsAbsent(def.element as z.ZodType, v)) : value;
    case 'object':
    case 'record': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
      const out: Record<string, unknown> = {};
      // defineProperty: a `__proto__` key stays an own key (for the strict schema to refuse), not a prototype.
      const set = (key: string, v: unknown) => Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      for (const [key, v] of Object.entries(value)) {
        const field = def.type === 'object' ? (Object.hasOwn(def.shape ?? {}, key) ? def.shape?.[key] : undefined) : def.valueType;
        if (!field) {
          set(key, v); // unknown: the strict schema refuses it
        } else if (v === null && def.type === 'object' && field._zod.optin !== undefined && !NULL_IS_NOT_ABSENT.has(key) && !field.safeParse(null).success) {
          continue; // null for an optional field: absent
        } else {
          set(key, nullsAsAbsent(field, v));
        }
      }
      return out;
    }
    default:
      return value;
  }
}

/** Options of `parseBody`. */
export interface ParseBodyOptions {
  /** Treat `null` in optional fields as absent (the Autopack-compatible routes; see `nullsAsAbsent`). */
  nullAsAbsent?: boolean;
}

/** Parses a JSON body against a contract schema; failures are 422 VALIDATION_FAILED with the offending paths. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, opts: ParseBodyOptions = {}): z.infer<S> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new DomainError('VALIDATION_FAILED', 'the request body must be a JSON object');
  }
  const parsed = schema.safeParse(opts.nullAsAbsent ? nullsAsAbsent(schema, body) : body);
  if (!parsed.success) throw new DomainError('VALIDATION_FAILED', 'the request body is invalid', { issues: issuesOf(parsed.error) });
  return parsed.data;
}

/** Parses a query string object. */
export function parseQuery<S extends z.ZodType>(schema: S, query: unknown): z.infer<S> {
  const parsed = schema.safeParse(query ?? {});
  if (!parsed.success) throw new DomainError('VALIDATION_FAILED', 'the query string is invalid', { issues: issuesOf(parsed.error) });
  return parsed.data;
}

/** A path id that cannot exist (traversal, odd characters) is simply not found. */
export function parseId(value: string, what: 'run' | 'phase' | 'build'): string {
  if (!IdSchema.safeParse(value).success) throw new DomainError('NOT_FOUND', `${what} not found`);
  return value;
}

/** Parses a route's body with the schema registered on it by `@ApiRoute`, under the route's null-as-absent rule. */
export function parseRouteBody<S extends z.ZodType>(route: ApiRouteSpec & { body: NamedSchema<S> }, body: unknown): z.infer<S> {
  return parseBody(route.body.schema, body, { nullAsAbsent: route.nullAsAbsent === true });
}

/** Parses a route's query string with the schema registered on it by `@ApiRoute`. */
export function parseRouteQuery<S extends z.ZodObject>(route: ApiRouteSpec & { query: S }, query: unknown): z.infer<S> {
  return parseQuery(route.query, query);
}
