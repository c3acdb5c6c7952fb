import { ConfigError, loadSupervisorConfig } from './config.js';

/** The problems a bad environment is refused with. */
function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadSupervisorConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('the environment was accepted');
}

describe('loadSupervisorConfig: deliveries and notifications', () => {
  it('has defaults for everything: no channel targets, no hooks, the queue settings', () => {
    expect(loadSupervisorConfig({})).toMatchObject({
      smtpUrl: undefined,
      notifyEmail: undefined,
      notifyFrom: 'Autopack <autopack@localhost>',
      slackWebhookUrl: undefined,
      notifyWebhookUrl: undefined,
      hooks: {},
      queueConcurrency: 4,
      queuePollSeconds: 1,
      queueMaintenanceSeconds: 30,
      deliveryRetryDelaySeconds: 5,
    });
  });

  it('reads the channel targets, the hooks and the queue settings; empty means unset', () => {
    const c = loadSupervisorConfig({
      AUTOPACK_SMTP_URL: 'smtp://user:pw@mail.example:2525',
      AUTOPACK_NOTIFY_EMAIL: 'ops@example.test',
      AUTOPACK_NOTIFY_FROM: '',
      AUTOPACK_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/X',
      AUTOPACK_NOTIFY_WEBHOOK_URL: '',
      AUTOPACK_HOOKS: JSON.stringify({ deploy: { url: 'https://d.example/{{build_id}}', headers: { Authorization: 'Bearer x' } }, health_check: { url: '{{deployment_url}}/health' } }),
      AUTOPACK_QUEUE_CONCURRENCY: '2',
      AUTOPACK_QUEUE_POLL_SECONDS: '0.5',
      AUTOPACK_DELIVERY_RETRY_DELAY_SECONDS: '1',
    });
    expect(c).toMatchObject({
      smtpUrl: 'smtp://user:pw@mail.example:2525',
      notifyEmail: 'ops@example.test',
      notifyFrom: 'Autopack <autopack@localhost>',
      slackWebhookUrl: 'https://hooks.slack.com/services/T/B/X',
      notifyWebhookUrl: undefined,
      hooks: { deploy: { url: 'https://d.example/{{build_id}}', headers: { Authorization: 'Bearer x' } }, health_check: { url: '{{deployment_url}}/health' } },
      queueConcurrency: 2,
      queuePollSeconds: 0.5,
      deliveryRetryDelaySeconds: 1,
    });
  });

  it('refuses bad values, naming each variable and never echoing a value', () => {
    const found = problems({
      AUTOPACK_SMTP_URL: 'http://user:s3cret@mail.example',
      AUTOPACK_SLACK_WEBHOOK_URL: 'ftp://hooks.example/s3cret',
      AUTOPACK_HOOKS: JSON.stringify({ deploy: { url: 'https://d.example', headers: { Authorization: 'Bearer s3cret' }, retries: -1 }, other: {} }),
      AUTOPACK_QUEUE_POLL_SECONDS: '0.1',
    });
    expect(found.map((p) => p.split(':')[0])).toEqual(
      expect.arrayContaining(['AUTOPACK_SMTP_URL', 'AUTOPACK_SLACK_WEBHOOK_URL', 'AUTOPACK_HOOKS', 'AUTOPACK_QUEUE_POLL_SECONDS']),
    );
    expect(found.join('\n')).toMatch(/AUTOPACK_HOOKS: deploy\.retries/);
    expect(found.join('\n')).not.toContain('s3cret');
    expect(problems({ AUTOPACK_HOOKS: '{not json' })).toEqual(['AUTOPACK_HOOKS: must be a JSON object']);
  });
});

describe('loadSupervisorConfig: builds', () => {
  it('runs three builds at once by default and reads AUTOPACK_MAX_CONCURRENT_BUILDS', () => {
    expect(loadSupervisorConfig({}).maxConcurrentBuilds).toBe(3);
    expect(loadSupervisorConfig({ AUTOPACK_MAX_CONCURRENT_BUILDS: '7' }).maxConcurrentBuilds).toBe(7);
  });

  it('refuses a cap that is not a positive whole number', () => {
    for (const bad of ['0', '-1', '1.5', 'many']) {
      expect(problems({ AUTOPACK_MAX_CONCURRENT_BUILDS: bad }).map((p) => p.split(':')[0])).toEqual(['AUTOPACK_MAX_CONCURRENT_BUILDS']);
    }
  });
});
