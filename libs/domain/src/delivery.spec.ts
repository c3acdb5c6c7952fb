import {
  REDACTED,
  deploymentUrlOf,
  fillTemplate,
  fillTemplateDeep,
  isSecretHeader,
  redactHeaders,
  redactUrl,
  renderHook,
  scrubSecrets,
  secretValuesOf,
  statusMeetsExpectation,
} from './delivery.js';

const vars = { build_id: 'b-1', droplet_id: 'shop', commit_sha: 'abc123', branch: 'main', deployment_url: 'http://127.0.0.1:4000' };

describe('fillTemplate', () => {
  it('replaces every known variable, each as often as it appears', () => {
    expect(fillTemplate('{{build_id}}/{{droplet_id}}/{{commit_sha}}/{{branch}}/{{deployment_url}}/{{build_id}}', vars)).toBe(
      'b-1/shop/abc123/main/http://127.0.0.1:4000/b-1',
    );
  });
  it('allows spaces inside the braces', () => expect(fillTemplate('{{ build_id }}-{{branch  }}', vars)).toBe('b-1-main'));
  it('replaces a variable without a value by the empty string', () => {
    expect(fillTemplate('sha={{commit_sha}};url={{deployment_url}}', { commit_sha: null })).toBe('sha=;url=');
  });
  it('leaves unknown placeholders and single braces as written', () => {
    expect(fillTemplate('{{unknown}} {build_id} {{ BUILD_ID }}', vars)).toBe('{{unknown}} {build_id} {{ BUILD_ID }}');
  });
  it('does not expand placeholders found inside values', () => {
    expect(fillTemplate('{{branch}}', { branch: '{{build_id}}', build_id: 'x' })).toBe('{{build_id}}');
  });
});

describe('fillTemplateDeep', () => {
  it('fills every string of a JSON value, nested in objects and arrays, and leaves keys and other values alone', () => {
    const body = { name: '{{droplet_id}}', '{{build_id}}': 1, nested: { list: ['{{commit_sha}}', 2, true, null, { u: '{{deployment_url}}/health' }] } };
    expect(fillTemplateDeep(body, vars)).toEqual({
      name: 'shop',
      '{{build_id}}': 1,
      nested: { list: ['abc123', 2, true, null, { u: 'http://127.0.0.1:4000/health' }] },
    });
    expect(body.name).toBe('{{droplet_id}}'); // the input is not changed
  });
});

describe('renderHook', () => {
  it('applies the defaults: POST, any 2xx, 30 s, 3 retries, no body', () => {
    expect(renderHook({ url: 'https://d.example/{{build_id}}' }, vars)).toEqual({
      url: 'https://d.example/b-1',
      method: 'POST',
      headers: {},
      expectStatus: null,
      timeoutS: 30,
      retries: 3,
    });
  });
  it('keeps what the hook says and fills the url and the body, not the headers', () => {
    expect(
      renderHook(
        { url: '{{deployment_url}}/register', method: 'PUT', headers: { 'X-Tag': '{{build_id}}' }, body: { sha: '{{commit_sha}}' }, expect_status: 201, timeout_s: 5, retries: 0 },
        vars,
      ),
    ).toEqual({ url: 'http://127.0.0.1:4000/register', method: 'PUT', headers: { 'X-Tag': '{{build_id}}' }, body: { sha: 'abc123' }, expectStatus: 201, timeoutS: 5, retries: 0 });
  });
});

describe('statusMeetsExpectation', () => {
  it.each([
    [200, null, true],
    [204, null, true],
    [299, null, true],
    [199, null, false],
    [301, null, false],
    [500, null, false],
    [201, 201, true],
    [200, 201, false],
    [404, 404, true],
  ] as const)('%d against %s: %s', (status, expected, ok) => expect(statusMeetsExpectation(status, expected)).toBe(ok));
});

describe('secret headers', () => {
  it.each(['Authorization', 'authorization', 'X-API-Key', 'Proxy-Authorization', 'X-Auth-Token', 'X-Secret', 'Api-Token', 'Cookie', 'X-Hub-Signature'])('%s is secret', (h) =>
    expect(isSecretHeader(h)).toBe(true),
  );
  it.each(['Content-Type', 'Accept', 'X-Request-Id', 'User-Agent'])('%s is not', (h) => expect(isSecretHeader(h)).toBe(false));
  it('redacts the values of secret headers only', () => {
    expect(redactHeaders({ Authorization: 'Bearer s3cr3t', 'X-API-Key': 'k', Accept: 'application/json' })).toEqual({
      Authorization: REDACTED,
      'X-API-Key': REDACTED,
      Accept: 'application/json',
    });
  });
});

describe('redactUrl', () => {
  it('leaves a plain URL as it is', () => expect(redactUrl('https://deploy.example/v1/deploy?env=prod')).toBe('https://deploy.example/v1/deploy?env=prod'));
  it('redacts user info and credential-named query parameters', () => {
    expect(redactUrl('https://bob:pw@deploy.example/x?token=abc&env=prod&api_key=k')).toBe('https://redacted@deploy.example/x?token=[redacted]&env=prod&api_key=[redacted]');
  });
  it('redacts the whole path of a URL that is itself a credential', () => {
    expect(redactUrl('https://hooks.slack.com/services/T0/B0/XXXX', true)).toBe('https://hooks.slack.com/[redacted]');
  });
  it('redacts a string that is not a URL whole', () => expect(redactUrl('not a url')).toBe(REDACTED));
});

describe('secretValuesOf and scrubSecrets', () => {
  it('lists secret header values and the secret parts of the URL', () => {
    expect(secretValuesOf('https://u:pw12@h.example/p?token=tok123', { Authorization: 'Bearer abcd', Accept: 'x' }).sort()).toEqual(
      ['Bearer abcd', 'https://u:pw12@h.example/p?token=tok123', 'pw12', 'tok123'].sort(),
    );
    expect(secretValuesOf('https://h.example/p', { Accept: 'x' })).toEqual([]);
    expect(secretValuesOf('https://hooks.slack.com/services/T0/B0/XXXX', {}, true)).toEqual(['https://hooks.slack.com/services/T0/B0/XXXX', '/services/T0/B0/XXXX']);
  });
  it('removes every secret from a text, longest first, and ignores values too short to be secrets', () => {
    expect(scrubSecrets('failed: Bearer abcd (abcd) at https://h/x?token=tok123 ok', ['abcd', 'Bearer abcd', 'tok123', 'ok'])).toBe(
      'failed: [redacted] ([redacted]) at https://h/x?token=[redacted] ok',
    );
  });
});

describe('deploymentUrlOf', () => {
  it.each([
    [{ url: 'http://127.0.0.1:5000' }, 'http://127.0.0.1:5000'],
    [{ url: '' }, null],
    [{ url: 42 }, null],
    [{ other: 'x' }, null],
    [['http://x'], null],
    ['http://x', null],
    [null, null],
  ] as const)('%j -> %s', (answer, url) => expect(deploymentUrlOf(answer)).toBe(url));
});
