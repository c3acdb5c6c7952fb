import type { z } from 'zod';
import { DomainError, IdSchema } from '@app/contracts';

function issuesOf(error: z.ZodError): { path: string; message: string; code: string }[] {
  return error.issues.slice(0, 50).map((i) => ({ path: i.path.join('.') || '(body)', message: i.message, code: i.code }));
}

/** Parses a JSON body against a contract schema; failures are 422 VALIDATION_FAILED with the offending paths. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new DomainError('VALIDATION_FAILED', 'the request body must be a JSON object');
  }
  const parsed = schema.safeParse(body);
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
