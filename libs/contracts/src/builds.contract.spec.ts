import { BuildApproveRequestSchema, BuildDropletRequestSchema, BuildRetryRequestSchema, ListBuildsQuerySchema } from './builds.contract.js';

describe('BuildDropletRequestSchema', () => {
  it('fills the defaults of CONTRACT.md section 8', () => {
    expect(BuildDropletRequestSchema.parse({ architect_intent: '  a tiny HTTP service that says hello  ' })).toEqual({
      architect_intent: 'a tiny HTTP service that says hello',
      approval_mode: 'auto',
      auto_deploy: true,
      base_branch: 'main',
    });
  });

  it('takes every documented field', () => {
    const body = {
      architect_intent: 'hello service',
      droplet_id: 'hello-1',
      droplet_name: 'Hello',
      approval_mode: 'checkpoints',
      auto_deploy: false,
      base_branch: 'trunk',
      repo_url: 'http://127.0.0.1:9/repo.git',
      notify_channels: ['slack', { type: 'email', to: 'ops@example.com' }, { type: 'webhook', url: 'http://127.0.0.1:9/hook' }],
      deploy: { url: 'http://127.0.0.1:9/deploy/{{build_id}}', body: { sha: '{{commit_sha}}' }, retries: 2 },
      health_check: { url: 'http://127.0.0.1:9/health', expect_status: 204, timeout_s: 5 },
      register: { url: 'http://127.0.0.1:9/register', method: 'PUT' },
      rollback: { url: 'http://127.0.0.1:9/rollback' },
    };
    expect(BuildDropletRequestSchema.parse(body)).toEqual(body);
  });

  it.each([
    ['no intent', {}],
    ['an empty intent', { architect_intent: '   ' }],
    ['an unknown approval mode', { architect_intent: 'x', approval_mode: 'manual' }],
    ['a droplet id that is no id', { architect_intent: 'x', droplet_id: '../etc' }],
    ['an unknown field', { architect_intent: 'x', deploy_now: true }],
    ['a health check without url', { architect_intent: 'x', health_check: { url: '' } }],
    ['an unknown channel', { architect_intent: 'x', notify_channels: ['pager'] }],
    ['a hook without url', { architect_intent: 'x', deploy: { method: 'POST' } }],
  ])('refuses %s', (_name, body) => {
    expect(BuildDropletRequestSchema.safeParse(body).success).toBe(false);
  });
});

describe('the other build bodies', () => {
  it.each([
    [{ approved: true }, true],
    [{ approved: false, notes: 'no', checkpoint: 'built' }, true],
    [{ approved: true, checkpoint: 'deployed' }, false],
    [{}, false],
  ])('approve %j: %s', (body, ok) => {
    expect(BuildApproveRequestSchema.safeParse(body).success).toBe(ok);
  });

  it.each([
    [{}, true],
    [{ from_step: 3 }, true],
    [{ from_step: 'Deploy' }, true],
    [{ from_step: 0 }, false],
    [{ from_step: 7 }, false],
    [{ from_step: '' }, false],
  ])('retry %j: %s', (body, ok) => {
    expect(BuildRetryRequestSchema.safeParse(body).success).toBe(ok);
  });

  it.each([
    [{}, true],
    [{ status: 'queued', since: '2026-11-30T00:00:00Z', until: '2026-12-01T00:00:00+01:00' }, true],
    [{ status: 'done' }, false],
    [{ since: 'yesterday' }, false],
  ])('list query %j: %s', (query, ok) => {
    expect(ListBuildsQuerySchema.safeParse(query).success).toBe(ok);
  });
});
