import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import express from 'express';
import { DomainError } from '@app/contracts';
import type { Logger } from 'pino';
import { mapError } from './error-mapping.js';

function send(res: Response, err: DomainError): void {
  const mapped = mapError(err);
  res.status(mapped.status).json(mapped.body);
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * `X-API-Key` (or `Authorization: Bearer`) check, before anything reads the body.
 * Compared in constant time over digests so neither content nor length leaks.
 */
export function apiKeyMiddleware(apiKey: string | undefined) {
  const expected = apiKey ? digest(apiKey) : undefined;
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!expected || (req.method === 'GET' && (req.path === '/health' || req.path === '/executor/health'))) return next();
    const header = req.headers['x-api-key'];
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const given = typeof header === 'string' ? header : bearer;
    if (!given || !timingSafeEqual(digest(given), expected)) {
      return send(res, new DomainError('UNAUTHORIZED', 'missing or invalid API key'));
    }
    next();
  };
}

/** JSON body parsing with a size limit; parse errors become coded 4xx instead of HTML pages. */
export function jsonBodyMiddleware(limitBytes: number) {
  const parser = express.json({ limit: limitBytes, strict: true, type: ['application/json', 'application/*+json'] });
  return (req: Request, res: Response, next: NextFunction): void => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && ['POST', 'PUT', 'PATCH'].includes(req.method) && !req.is(['application/json', 'application/*+json'])) {
      return send(res, new DomainError('UNSUPPORTED_MEDIA_TYPE', 'request bodies must be application/json'));
    }
    parser(req, res, (err?: unknown) => {
      if (!err) return next();
      const e = err as { type?: string; status?: number };
      if (e.type === 'entity.too.large') return send(res, new DomainError('PAYLOAD_TOO_LARGE', `request body exceeds ${limitBytes} bytes`));
      if (e.type === 'entity.parse.failed') return send(res, new DomainError('INVALID_JSON', 'request body is not valid JSON'));
      return send(res, new DomainError('VALIDATION_FAILED', 'request body could not be read'));
    });
  };
}

/** One structured line per request with a correlation id (echoed as `X-Request-Id`). Never logs headers or bodies. */
export function requestLogMiddleware(log: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && /^[\w.-]{1,100}$/.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.info({ req_id: id, method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    });
    next();
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
    const key = typeof req.headers['x-api-key'] === 'string' ? `k:${digest(req.headers['x-api-key']).toString('hex')}` : `a:${req.socket.remoteAddress ?? 'unknown'}`;
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
