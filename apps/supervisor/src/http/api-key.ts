import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** SHA-256 of an API key: what is compared, and what names a key without holding it (rate-limit buckets). */
export const apiKeyDigest = (key: string): Buffer => createHash('sha256').update(key).digest();

/**
 * The one API-key check (HTTP routes and the WebSocket upgrade alike): the key comes in
 * `X-API-Key` or `Authorization: Bearer`, and is compared in constant time over SHA-256
 * digests, so neither its content nor its length leaks. Undefined when no key is configured
 * (every request is let in).
 */
export function apiKeyCheck(apiKey: string | undefined): ((headers: IncomingHttpHeaders) => boolean) | undefined {
  if (!apiKey) return undefined;
  const expected = apiKeyDigest(apiKey);
  return (headers) => {
    const header = headers['x-api-key'];
    const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1];
    const given = typeof header === 'string' ? header : bearer;
    return !!given && timingSafeEqual(apiKeyDigest(given), expected);
  };
}
