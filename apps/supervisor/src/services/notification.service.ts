import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { NotificationEventName, NotifyChannel, NotifyChannelType, WebhookNotification } from '@app/contracts';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import { AppLogger } from '../http/logger.js';
import { type DeliveryKey, DeliveryService } from './delivery.service.js';

/** A build event to notify (CONTRACT.md section 8: on `awaiting_approval`, `completed` and `failed`). */
export interface BuildNotification {
  event: NotificationEventName;
  status: WebhookNotification['status'];
  checkpoint?: string;
  deployment_url?: string;
  error?: string;
  /**
   * Tells repeated notifications of one event apart (a retried build failing again): one
   * notification is sent per (build, event, checkpoint, occurrence) and channel.
   */
  occurrence?: number;
}

/** What `notify` did with each channel. */
export interface NotifyResult {
  /** Deliveries requested now, or already requested earlier with the same key. */
  deliveries: { channel: NotifyChannelType; key: DeliveryKey; created: boolean }[];
  /** Channels without a target (no URL or address given, none configured), with the reason. */
  skipped: { channel: NotifyChannelType; reason: string }[];
}

/** Attempts of a notification after the first. */
const NOTIFY_RETRIES = 5;
/** Timeout of one notification attempt. */
const NOTIFY_TIMEOUT_S = 15;

const short = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);

/** The one-line summary used by Slack and as the email subject. */
export function notificationSummary(buildId: string, n: BuildNotification): string {
  switch (n.event) {
    case 'awaiting_approval':
      return `Autopack build ${buildId} is waiting for approval${n.checkpoint ? ` at ${n.checkpoint}` : ''}`;
    case 'completed':
      return `Autopack build ${buildId} completed${n.deployment_url ? `: ${n.deployment_url}` : ''}`;
    case 'failed':
      return `Autopack build ${buildId} failed${n.error ? `: ${n.error}` : ''}`;
  }
}

/**
 * Notifications of build events to the build's channels (`webhook`, `slack`, `email`), each
 * a durable delivery: stored with its job in the caller's transaction, retried with backoff,
 * every attempt recorded. A channel given by kind alone takes its target from the
 * configuration (`AUTOPACK_NOTIFY_WEBHOOK_URL`, `AUTOPACK_SLACK_WEBHOOK_URL`,
 * `AUTOPACK_NOTIFY_EMAIL` with `AUTOPACK_SMTP_URL`).
 */
@Injectable()
export class NotificationService {
  constructor(
    private readonly deliveries: DeliveryService,
    private readonly log: AppLogger,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {}

  /**
   * The channels of a build whose request names none: each kind whose target is configured
   * (`AUTOPACK_NOTIFY_WEBHOOK_URL`, `AUTOPACK_SLACK_WEBHOOK_URL`, `AUTOPACK_SMTP_URL` with
   * `AUTOPACK_NOTIFY_EMAIL`).
   */
  configuredChannels(): NotifyChannelType[] {
    const channels: NotifyChannelType[] = [];
    if (this.config.notifyWebhookUrl) channels.push('webhook');
    if (this.config.slackWebhookUrl) channels.push('slack');
    if (this.config.smtpUrl && this.config.notifyEmail) channels.push('email');
    return channels;
  }

  /**
   * Requests one delivery per channel in `em`'s transaction (call it in the transaction that
   * records the event). Notifying the same event again changes nothing.
   */
  async notify(em: EntityManager, buildId: string, channels: readonly NotifyChannel[], n: BuildNotification): Promise<NotifyResult> {
    if (!em.queryRunner?.isTransactionActive) return em.transaction((tx) => this.notify(tx, buildId, channels, n));
    const result: NotifyResult = { deliveries: [], skipped: [] };
    const step = `notify:${n.event}${n.checkpoint ? `:${n.checkpoint}` : ''}${n.occurrence ? `#${n.occurrence}` : ''}`;
    for (const channel of channels) {
      const type = typeof channel === 'string' ? channel : channel.type;
      const given: { url?: string; to?: string } = typeof channel === 'string' ? {} : channel;
      if (type === 'email') {
        const to = given.to ?? this.config.notifyEmail;
        if (!to || !this.config.smtpUrl) {
          result.skipped.push({ channel: type, reason: !to ? 'no recipient (AUTOPACK_NOTIFY_EMAIL)' : 'no SMTP server (AUTOPACK_SMTP_URL)' });
          continue;
        }
        const key = { subjectId: buildId, step, kind: `email:${short(to)}` };
        const created = await this.deliveries.request(em, key, { channel: 'email', to, subject: notificationSummary(buildId, n), text: this.emailText(buildId, n), timeoutS: NOTIFY_TIMEOUT_S, retries: NOTIFY_RETRIES });
        result.deliveries.push({ channel: type, key, created });
        continue;
      }
      const url = given.url ?? (type === 'slack' ? this.config.slackWebhookUrl : this.config.notifyWebhookUrl);
      if (!url) {
        result.skipped.push({ channel: type, reason: `no URL (${type === 'slack' ? 'AUTOPACK_SLACK_WEBHOOK_URL' : 'AUTOPACK_NOTIFY_WEBHOOK_URL'})` });
        continue;
      }
      const body = type === 'slack' ? { text: notificationSummary(buildId, n) } : this.webhookBody(buildId, n);
      const key = { subjectId: buildId, step, kind: `${type}:${short(url)}` };
      const created = await this.deliveries.request(em, key, {
        channel: 'http',
        call: { url, method: 'POST', headers: {}, body, expectStatus: null, timeoutS: NOTIFY_TIMEOUT_S, retries: NOTIFY_RETRIES },
        urlIsSecret: type === 'slack',
      });
      result.deliveries.push({ channel: type, key, created });
    }
    for (const s of result.skipped) this.log.warn({ build_id: buildId, channel: s.channel, reason: s.reason }, 'notification channel skipped');
    return result;
  }

  private webhookBody(buildId: string, n: BuildNotification): WebhookNotification {
    return {
      event: n.event,
      build_id: buildId,
      status: n.status,
      ...(n.checkpoint ? { checkpoint: n.checkpoint } : {}),
      ...(n.deployment_url ? { deployment_url: n.deployment_url } : {}),
      ...(n.error ? { error: n.error } : {}),
    };
  }

  private emailText(buildId: string, n: BuildNotification): string {
    return [
      notificationSummary(buildId, n),
      '',
      `build_id: ${buildId}`,
      `event: ${n.event}`,
      `status: ${n.status}`,
      ...(n.checkpoint ? [`checkpoint: ${n.checkpoint}`] : []),
      ...(n.deployment_url ? [`deployment_url: ${n.deployment_url}`] : []),
      ...(n.error ? [`error: ${n.error}`] : []),
    ].join('\n');
  }
}
