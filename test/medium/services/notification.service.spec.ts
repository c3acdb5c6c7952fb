import { DeliveryService } from '../../../apps/supervisor/src/services/delivery.service.js';
import { NotificationService } from '../../../apps/supervisor/src/services/notification.service.js';
import { type HookTarget, startHookTarget, startSmtpTarget } from '../../support/hook-target.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
let sut: NotificationService;
let deliveries: DeliveryService;
let target: HookTarget;
let smtp: Awaited<ReturnType<typeof startSmtpTarget>>;

beforeAll(async () => {
  target = await startHookTarget((req, nth) => (req.url.startsWith('/flaky') && nth === 0 ? { status: 502 } : {}));
  smtp = await startSmtpTarget();
  ctx = await createMediumContext({
    init: true,
    config: {
      queuePollSeconds: 0.5,
      deliveryRetryDelaySeconds: 1,
      smtpUrl: smtp.url,
      notifyEmail: 'ops@example.test',
      slackWebhookUrl: `${target.url}/services/T000/B000/slack-s3cret`,
      notifyWebhookUrl: `${target.url}/configured-webhook`,
    },
  });
  sut = ctx.get(NotificationService);
  deliveries = ctx.get(DeliveryService);
});
afterAll(async () => {
  await ctx?.close();
  await target?.close();
  await smtp?.close();
});

const settleAll = async (keys: { key: { subjectId: string; step: string; kind: string } }[]) => Promise.all(keys.map((d) => deliveries.waitForOutcome(d.key, { timeoutMs: 30_000 })));

describe('NotificationService.notify', () => {
  it('posts the webhook body, the Slack text and an email, each once, to the build channels', async () => {
    const r = await sut.notify(ctx.ds.manager, 'b-7', [{ type: 'webhook', url: `${target.url}/hooks/b7` }, 'slack', { type: 'email', to: 'lead@example.test' }], {
      event: 'completed',
      status: 'completed',
      deployment_url: 'http://127.0.0.1:6100',
    });
    expect(r.skipped).toEqual([]);
    expect(r.deliveries.map((d) => [d.channel, d.created])).toEqual([
      ['webhook', true],
      ['slack', true],
      ['email', true],
    ]);
    expect((await settleAll(r.deliveries)).map((o) => o.state)).toEqual(['delivered', 'delivered', 'delivered']);

    expect(target.to('/hooks/b7').map((x) => x.body)).toEqual([{ event: 'completed', build_id: 'b-7', status: 'completed', deployment_url: 'http://127.0.0.1:6100' }]);
    expect(target.to('/services/T000/B000/slack-s3cret').map((x) => x.body)).toEqual([{ text: 'Autopack build b-7 completed: http://127.0.0.1:6100' }]);
    const mails = smtp.received.filter((m) => m.to.includes('lead@example.test'));
    expect(mails).toHaveLength(1);
    expect(mails[0].from).toBe('autopack@localhost');
    expect(mails[0].data).toContain('Subject: Autopack build b-7 completed: http://127.0.0.1:6100');
    expect(mails[0].data).toContain('deployment_url: http://127.0.0.1:6100');
    // The email attempt recorded the SMTP reply code; the Slack URL is a credential and is recorded redacted.
    const email = r.deliveries.find((d) => d.channel === 'email');
    expect((await deliveries.outcomeOf(email!.key))?.responseStatus).toBe(250);
    const slack = r.deliveries.find((d) => d.channel === 'slack');
    expect((await deliveries.outcomeOf(slack!.key))?.request.url).toBe(`${target.url}/[redacted]`);
    expect(JSON.stringify(await ctx.db.query('SELECT * FROM deliveries'))).not.toContain('slack-s3cret');
  });

  it('uses the configured targets for channels given by kind, and notifies an event once', async () => {
    expect(sut.configuredChannels()).toEqual(['webhook', 'slack', 'email']);
    const event = { event: 'awaiting_approval', status: 'awaiting_approval', checkpoint: 'spec_generated' } as const;
    const first = await sut.notify(ctx.ds.manager, 'b-8', ['webhook', 'email'], event);
    const again = await sut.notify(ctx.ds.manager, 'b-8', ['webhook', 'email'], event);
    expect(again.deliveries.map((d) => d.created)).toEqual([false, false]);
    await settleAll(first.deliveries);
    expect(target.to('/configured-webhook').filter((x) => (x.body as { build_id: string }).build_id === 'b-8').map((x) => x.body)).toEqual([
      { event: 'awaiting_approval', build_id: 'b-8', status: 'awaiting_approval', checkpoint: 'spec_generated' },
    ]);
    const mails = smtp.received.filter((m) => m.to.includes('ops@example.test') && m.data.includes('b-8'));
    expect(mails).toHaveLength(1);
    expect(mails[0].data).toContain('checkpoint: spec_generated');
    // Another occurrence of the same event (a retried build failing again) is a new notification.
    const retried = await sut.notify(ctx.ds.manager, 'b-8', ['webhook'], { ...event, occurrence: 2 });
    expect(retried.deliveries.map((d) => d.created)).toEqual([true]);
    await settleAll(retried.deliveries);
    expect(target.to('/configured-webhook').filter((x) => (x.body as { build_id: string }).build_id === 'b-8')).toHaveLength(2);
  });

  it('retries a failed notification with backoff and records both attempts', async () => {
    const r = await sut.notify(ctx.ds.manager, 'b-9', [{ type: 'webhook', url: `${target.url}/flaky` }], { event: 'failed', status: 'failed', error: 'verify: tests failed' });
    const [outcome] = await settleAll(r.deliveries);
    expect(outcome).toMatchObject({ state: 'delivered', attempts: 2 });
    expect((await deliveries.attemptsOf(r.deliveries[0].key)).map((a) => [a.outcome, a.responseStatus])).toEqual([
      ['failed', 502],
      ['succeeded', 200],
    ]);
    expect(target.to('/flaky').map((x) => x.body)).toEqual([
      { event: 'failed', build_id: 'b-9', status: 'failed', error: 'verify: tests failed' },
      { event: 'failed', build_id: 'b-9', status: 'failed', error: 'verify: tests failed' },
    ]);
  });

  it('skips a channel without a target and says why', async () => {
    const bare = await createMediumContext({ config: { smtpUrl: undefined, notifyEmail: undefined, slackWebhookUrl: undefined, notifyWebhookUrl: undefined } });
    try {
      expect(bare.get(NotificationService).configuredChannels()).toEqual([]);
      const r = await bare.get(NotificationService).notify(bare.ds.manager, 'b-10', ['slack', 'webhook', 'email'], { event: 'completed', status: 'completed' });
      expect(r.deliveries).toEqual([]);
      expect(r.skipped).toEqual([
        { channel: 'slack', reason: 'no URL (AUTOPACK_SLACK_WEBHOOK_URL)' },
        { channel: 'webhook', reason: 'no URL (AUTOPACK_NOTIFY_WEBHOOK_URL)' },
        { channel: 'email', reason: 'no recipient (AUTOPACK_NOTIFY_EMAIL)' },
      ]);
      expect(await bare.db.query('SELECT count(*)::int AS n FROM deliveries')).toEqual([{ n: 0 }]);
    } finally {
      await bare.close();
    }
  });
});
