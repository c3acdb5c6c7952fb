import { createHmac, timingSafeEqual } from 'node:crypto';
import { SESSION_COOKIE, apiKeyCheck, dashboardSessionToken, readCookie, sessionCookieCheck } from './api-key.js';

describe(apiKeyCheck.name, () => {
  const sut = apiKeyCheck('s3cret-key');

  it('lets everything in when no key is configured', () => {
    expect(apiKeyCheck(undefined)).toBeUndefined();
    expect(apiKeyCheck('')).toBeUndefined();
  });

  it.each([
    [{ 'x-api-key': 's3cret-key' }, true],
    [{ authorization: 'Bearer s3cret-key' }, true],
    [{ authorization: 'bearer s3cret-key' }, true],
    [{ 'x-api-key': 's3cret-key', authorization: 'Bearer wrong' }, true],
    [{ 'x-api-key': 'wrong', authorization: 'Bearer s3cret-key' }, false],
    [{ 'x-api-key': 's3cret-ke' }, false],
    [{ 'x-api-key': 's3cret-key ' }, false],
    [{ authorization: 's3cret-key' }, false],
    [{ 'x-api-key': ['s3cret-key'] }, false],
    [{}, false],
  ])('%p -> %p', (headers, allowed) => {
    expect(sut?.(headers as never)).toBe(allowed);
  });
});

describe('the dashboard session cookie', () => {
  const key = 's3cret-key';
  const token = dashboardSessionToken(key);
  const cookie = (v: string) => ({ cookie: `theme=dark; ${SESSION_COOKIE}=${v}; other=1` });

  it('is an HMAC of the key, never the key itself, and the same on every replica', () => {
    expect(token).toBe(createHmac('sha256', key).update('autopack-dashboard-session').digest('base64url'));
    expect(token).not.toContain(key);
    expect(dashboardSessionToken(key)).toBe(token);
    expect(dashboardSessionToken('other-key')).not.toBe(token);
  });

  it.each([
    [cookie(token), true],
    [{ cookie: `${SESSION_COOKIE}=${token}` }, true],
    [cookie(token.slice(0, -1)), false],
    [cookie(`${token}x`), false],
    [cookie(key), false],
    [cookie(''), false],
    [{ cookie: `x${SESSION_COOKIE}=${token}` }, false],
    [{ cookie: 'theme=dark' }, false],
    [{}, false],
  ])('%p -> %p', (headers, allowed) => {
    expect(sessionCookieCheck(key)(headers as never)).toBe(allowed);
    expect(apiKeyCheck(key)?.(headers as never)).toBe(allowed);
  });

  it('does not rescue a wrong key sent in a header', () => {
    expect(apiKeyCheck(key)?.({ 'x-api-key': 'wrong', ...cookie(token) } as never)).toBe(false);
    expect(apiKeyCheck(key)?.({ 'x-api-key': key, ...cookie('stale') } as never)).toBe(true);
  });

  it('compares in constant time, over fixed-length digests whatever the cookie holds', () => {
    const compared: [number, number][] = [];
    const check = sessionCookieCheck(key, (a, b) => {
      compared.push([a.length, b.length]);
      return timingSafeEqual(a, b);
    });
    for (const v of [token, 'a', 'a'.repeat(5000), token.slice(1)]) check(cookie(v) as never);
    expect(compared).toEqual(Array(4).fill([32, 32]));
    // The real comparison throws on unequal lengths: any cookie length is answered, never thrown.
    expect(() => sessionCookieCheck(key)(cookie('x'.repeat(10_000)) as never)).not.toThrow();
  });

  it('reads one cookie out of a Cookie header', () => {
    expect(readCookie('a=1; b=2', 'b')).toBe('2');
    expect(readCookie('a=1;b = 2', 'b')).toBe('2');
    expect(readCookie('ab=1', 'b')).toBeUndefined();
    expect(readCookie(undefined, 'b')).toBeUndefined();
  });
});
