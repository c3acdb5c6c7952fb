import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** SHA-256 of an API key: what is compared, and what names a key without holding it (rate-limit buckets). */
export const apiKeyDigest = (key: string): Buffer => createHash('sha256').update(key).digest();

/** Name of the dashboard's session cookie (set by `POST /dashboard/session`). */
export const SESSION_COOKIE = 'autopack_session';

/**
 * The dashboard session token of an API key: HMAC-SHA256 keyed with the API key over a fixed
 * label, base64url. The cookie never holds the key itself, and every replica sharing the key
 * derives the same token (no session store). Changing the key ends every session.
 */
export const dashboardSessionToken = (apiKey: string): string => createHmac('sha256', apiKey).update('autopack-dashboard-session').digest('base64url');

/** The value of cookie `name` in a `Cookie` header, or undefined (the first one when repeated). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Whether `headers` carry the dashboard session cookie of `apiKey`. Compared in constant
 * time over SHA-256 digests, so neither the token's content nor its length leaks.
 */
export function sessionCookieCheck(
  apiKey: string,
  /** The comparison (a seam for the test that shows it only ever sees equal-length digests). */
  equal: (a: Buffer, b: Buffer) => boolean = timingSafeEqual,
): (headers: IncomingHttpHeaders) => boolean {
  const expected = apiKeyDigest(dashboardSessionToken(apiKey));
  return (headers) => {
    const given = readCookie(headers.cookie, SESSION_COOKIE);
    return !!given && equal(apiKeyDigest(given), expected);
  };
}

/**
 * The one API-key check (HTTP routes and the WebSocket upgrade alike): the key comes in
 * `X-API-Key` or `Authorization: Bearer`, or the dashboard's session cookie stands for it
 * (see `dashboardSessionToken`). Keys are compared in constant time over SHA-256 digests, so
 * neither their content nor their length leaks. Undefined when no key is configured (every
 * request is let in).
 */
export function apiKeyCheck(apiKey: string | undefined): ((headers: IncomingHttpHeaders) => boolean) | undefined {
  if (!apiKey) return undefined;
  const expected = apiKeyDigest(apiKey);
  const cookieMatches = sessionCookieCheck(apiKey);
  return (headers) => {
    const header = headers['x-api-key'];
    const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1];
    const given = typeof header === 'string' ? header : bearer;
    if (given !== undefined) return !!given && timingSafeEqual(apiKeyDigest(given), expected);
    return cookieMatches(headers);
  };
}
