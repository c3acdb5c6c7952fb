import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { LlmError, isSdkError, scrubSecrets, toLlmError } from './index.js';

describe('scrubSecrets', () => {
  it('removes configured keys and anything that looks like a key', () => {
    const key = 'my-custom-gateway-key-42';
    const out = scrubSecrets(
      `key ${key}; sk-proj-abc123DEF; masked sk-ant-****wxyz and abcd*****wxyz; Authorization: Bearer tok123; {"x-api-key": "k999"}`,
      [key],
    );
    expect(out).not.toContain(key);
    for (const leak of ['abc123DEF', 'wxyz', 'tok123', 'k999']) expect(out).not.toContain(leak);
    expect(out).toContain('key [REDACTED]');
    expect(out).toContain('Bearer [REDACTED]');
  });

  it('leaves ordinary text alone', () => {
    expect(scrubSecrets('429 Rate limit reached for requests', ['sk-secret'])).toBe('429 Rate limit reached for requests');
  });
});

describe('toLlmError', () => {
  const headers = new Headers({ 'retry-after': '7' });
  it.each([
    [new OpenAI.RateLimitError(429, { message: 'slow down' }, undefined, headers), 'RATE_LIMITED', 429, true],
    [new OpenAI.InternalServerError(503, { message: 'down' }, undefined, headers), 'PROVIDER_UNAVAILABLE', 503, true],
    [new OpenAI.BadRequestError(400, { message: 'bad' }, undefined, headers), 'BAD_REQUEST', 400, false],
    [new Anthropic.PermissionDeniedError(403, { type: 'error', error: { type: 'permission_error', message: 'no' } }, undefined, headers), 'PERMISSION', 403, false],
    [new OpenAI.AuthenticationError(401, { message: 'Incorrect API key provided' }, undefined, headers), 'AUTHENTICATION', 401, false],
    [new Anthropic.NotFoundError(404, { type: 'error', error: { type: 'not_found_error', message: 'model: claude-x' } }, undefined, headers), 'MODEL_NOT_FOUND', 404, false],
    [new OpenAI.NotFoundError(404, { message: 'The model `gpt-x` does not exist', code: 'model_not_found' }, undefined, headers), 'MODEL_NOT_FOUND', 404, false],
    // An exhausted quota arrives as a 429 but is no rate limit: waiting does not mend it.
    [new OpenAI.RateLimitError(429, { message: 'You exceeded your current quota', type: 'insufficient_quota', code: 'insufficient_quota' }, undefined, headers), 'QUOTA_EXHAUSTED', 429, false],
    [new Anthropic.APIError(402, { type: 'error', error: { type: 'billing_error', message: 'credit balance too low' } }, undefined, headers), 'QUOTA_EXHAUSTED', 402, false],
    [new Anthropic.RequestTimeoutError(408, undefined, undefined, headers), 'TIMEOUT', 408, true],
    [new Anthropic.APIConnectionTimeoutError(), 'TIMEOUT', undefined, true],
    [new Anthropic.APIUserAbortError(), 'ABORTED', undefined, false],
    [new OpenAI.APIConnectionError({ message: 'ECONNREFUSED' }), 'PROVIDER_UNAVAILABLE', undefined, true],
  ] as const)('maps %s', (err, code, status, retryable) => {
    const e = toLlmError(err, 'openai', []);
    expect(e).toBeInstanceOf(LlmError);
    expect([e.code, e.status, e.retryable]).toEqual([code, status, retryable]);
  });

  it('tells configuration problems from transient ones, and says which in one line', () => {
    const refused = toLlmError(new OpenAI.AuthenticationError(401, { message: 'bad key' }, undefined, headers), 'openai', []);
    expect(refused.kind).toBe('configuration');
    expect(refused.describe('gpt-x')).toBe('openai refused the API key (HTTP 401, model gpt-x)');
    const down = toLlmError(new Anthropic.InternalServerError(503, { type: 'error', error: { type: 'overloaded_error', message: 'x' } }, undefined, headers), 'anthropic', []);
    expect(down.kind).toBe('transient');
    expect(down.describe()).toBe('anthropic unavailable after retries (HTTP 503)');
    expect(toLlmError(new Anthropic.APIUserAbortError(), 'anthropic', []).kind).toBe('aborted');
  });

  it('maps mid-stream Anthropic error events by their type and reads retry-after', () => {
    const overloaded = new Anthropic.APIError(undefined, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, undefined, undefined);
    expect(toLlmError(overloaded, 'anthropic', []).code).toBe('PROVIDER_UNAVAILABLE');
    const limited = new Anthropic.APIError(undefined, { type: 'error', error: { type: 'rate_limit_error', message: 'x' } }, undefined, undefined);
    expect(toLlmError(limited, 'anthropic', []).code).toBe('RATE_LIMITED');
    const withHeader = toLlmError(new OpenAI.RateLimitError(429, undefined, 'x', new Headers({ 'retry-after': '7' })), 'openai', []);
    expect(withHeader.retryAfterMs).toBe(7000);
  });

  it('passes an LlmError through and scrubs other errors', () => {
    const original = new LlmError('NO_PROVIDER', 'none', { provider: 'anthropic' });
    expect(toLlmError(original, 'anthropic', [])).toBe(original);
    const e = toLlmError(new Error('boom with secret-key-123'), 'anthropic', ['secret-key-123']);
    expect(e.code).toBe('BAD_REQUEST');
    expect(e.message).toBe('anthropic BAD_REQUEST: boom with [REDACTED]');
    expect(e.toJSON()).toEqual({ code: 'BAD_REQUEST', message: e.message, provider: 'anthropic', status: undefined });
  });
});

describe('isSdkError', () => {
  it("tells each SDK's error classes (and their subclasses) apart by name, without importing the SDKs", () => {
    const timeout = new OpenAI.APIConnectionTimeoutError();
    expect([isSdkError(timeout, 'APIConnectionTimeoutError'), isSdkError(timeout, 'APIConnectionError'), isSdkError(timeout, 'APIError')]).toEqual([true, true, true]);
    expect(isSdkError(timeout, 'APIUserAbortError')).toBe(false);
    const limited = new Anthropic.RateLimitError(429, undefined, 'x', new Headers());
    expect([isSdkError(limited, 'RateLimitError'), isSdkError(limited, 'APIError'), isSdkError(limited, 'InternalServerError')]).toEqual([true, true, false]);
  });

  it('refuses look-alikes that do not derive from an SDK root error', () => {
    class APIError extends Error {}
    expect(isSdkError(new APIError('x'), 'APIError')).toBe(false);
    expect(isSdkError(new Error('x'), 'APIError')).toBe(false);
    expect(isSdkError({ name: 'APIError' }, 'APIError')).toBe(false);
    expect(isSdkError(undefined, 'APIError')).toBe(false);
  });
});
