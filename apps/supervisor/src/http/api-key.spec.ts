import { apiKeyCheck } from './api-key.js';

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
