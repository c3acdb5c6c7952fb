import express, { type NextFunction, type Request, type Response } from 'express';
import { DomainError } from '@app/contracts';
import { apiKeyCheck, apiKeyDigest } from './api-key.js';
import { isPublicDashboardPath } from './dashboard.js';
import { mapError } from './error-mapping.js';

function send(res: Response, err: DomainError): void {
  const mapped = mapError(err);
  res.status(mapped.status).json(mapped.body);
}

/**
 * `X-API-Key` (or `Authorization: Bearer`, or the dashboard's session cookie) check, before
 * anything reads the body (see `apiKeyCheck`). Health checks, and the dashboard's shell, code
 * and login route (no data), are let through.
 */
export function apiKeyMiddleware(apiKey: string | undefined) {
  const keyMatches = apiKeyCheck(apiKey);
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!keyMatches || (req.method === 'GET' && (req.path === '/health' || req.path === '/executor/health')) || isPublicDashboardPath(req.method, req.path)) return next();
    if (!keyMatches(req.headers)) {
      return send(res, new DomainError('UNAUTHORIZED', 'missing or invalid API key'));
    }
    next();
  };
}

/** How a path names a JSON object key holding a NUL byte (the NUL itself is shown as the text `\0`). */
const visibleKey = (key: string) => key.replace(/\0/g, '\\0');

/**
 * Where the first NUL byte (U+0000) of a parsed JSON value is, in document order: the dotted
 * path of the string or object key holding it (`suggested_issues.0.description`, `(body)`
 * for the value itself), or undefined. PostgreSQL stores no NUL in text or jsonb, so such
 * input is refused at the edge. Iterative: a deeply nested body cannot overflow the stack.
 */
export function findNulByte(value: unknown): string | undefined {
  // Each node keeps a link to its parent: the path is only built for the offender (no quadratic copying).
  interface Node {
    value: unknown;
    key?: string;
    parent?: Node;
  }
  const pathOf = (node: Node | undefined, last?: string): string => {
    const parts = last === undefined ? [] : [last];
    for (let n = node; n?.key !== undefined; n = n.parent) parts.unshift(n.key);
    return parts.join('.') || '(body)';
  };
  const stack: Node[] = [{ value }];
  while (stack.length > 0) {
    const node = stack.pop() as Node;
    const v = node.value;
    if (typeof v === 'string') {
      if (v.includes('\0')) return pathOf(node);
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: String(i), parent: node });
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v);
      for (const [key] of entries) if (key.includes('\0')) return pathOf(node, visibleKey(key));
      for (let i = entries.length - 1; i >= 0; i--) stack.push({ value: entries[i][1], key: entries[i][0], parent: node });
    }
  }
  return undefined;
}

/** The first NUL byte of a request URL once decoded: `{location: 'path'}` or `{location: 'query', field}`. */
function urlNulByte(url: string): { location: 'path' | 'query'; field?: string } | undefined {
  if (!/%00/i.test(url)) return undefined; // a raw NUL never gets past Node's HTTP parser; %00 is the only way in
  const q = url.indexOf('?');
  if (/%00/i.test(q < 0 ? url : url.slice(0, q))) return { location: 'path' };
  for (const [key, value] of new URLSearchParams(url.slice(q + 1))) {
    if (key.includes('\0') || value.includes('\0')) return { location: 'query', field: visibleKey(key) };
  }
  return { location: 'query' };
}

function nulByteError(location: 'body' | 'path' | 'query', field?: string): DomainError {
  const where = location === 'path' ? 'the URL path' : location === 'query' ? `query parameter ${field ?? '(unknown)'}` : `field ${field}`;
  return new DomainError('NUL_BYTE', `${where} contains a NUL byte (U+0000), which cannot be stored; send it escaped (e.g. as the text "\\u0000" or "␀")`, { location, ...(field !== undefined ? { field } : {}) });
}

/**
 * JSON body parsing with a size limit; parse errors become coded 4xx instead of HTML pages.
 * A NUL byte anywhere in the decoded URL or in a string (or key) of the body is a 422
 * `NUL_BYTE` naming where it is, for every route, before anything reaches the database.
 */
export function jsonBodyMiddleware(limitBytes: number) {
  const parser = express.json({ limit: limitBytes, strict: true, type: ['application/json', 'application/*+json'] });
  return (req: Request, res: Response, next: NextFunction): void => {
    const inUrl = urlNulByte(req.originalUrl ?? req.url);
    if (inUrl) return send(res, nulByteError(inUrl.location, inUrl.field));
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && ['POST', 'PUT', 'PATCH'].includes(req.method) && !req.is(['application/json', 'application/*+json'])) {
      return send(res, new DomainError('UNSUPPORTED_MEDIA_TYPE', 'request bodies must be application/json'));
    }
    parser(req, res, (err?: unknown) => {
      if (!err) {
        const field = findNulByte(req.body);
        return field === undefined ? next() : send(res, nulByteError('body', field));
      }
      const e = err as { type?: string; status?: number };
      if (e.type === 'entity.too.large') return send(res, new DomainError('PAYLOAD_TOO_LARGE', `request body exceeds ${limitBytes} bytes`));
      if (e.type === 'entity.parse.failed') return send(res, new DomainError('INVALID_JSON', 'request body is not valid JSON'));
      return send(res, new DomainError('VALIDATION_FAILED', 'request body could not be read'));
    });
  };
}

/**
 * Token-bucket rate limit on writes (POST/PUT/PATCH/DELETE), per API key when one is sent,
 * else per client address. Reads and health checks are never limited. Per process: with
 * several replicas the effective limit is the sum.
 */
export function writeRateLimitMiddleware(perSecond: number, burst: number) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (req: Request, res: Response, next: NextFunction): void => {
    if (perSecond <= 0 || !['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method)) return next();
    const key = typeof req.headers['x-api-key'] === 'string' ? `k:${apiKeyDigest(req.headers['x-api-key']).toString('hex')}` : `a:${req.socket.remoteAddress ?? 'unknown'}`;
    const now = Date.now();
    const b = buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
    b.at = now;
    if (b.tokens < 1) {
      buckets.set(key, b);
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil((1 - b.tokens) / perSecond))));
      return send(res, new DomainError('RATE_LIMITED', 'too many write requests; retry later'));
    }
    b.tokens -= 1;
    buckets.set(key, b);
    if (buckets.size > 10_000) buckets.clear(); // bounded memory under address churn
    next();
  };
}
