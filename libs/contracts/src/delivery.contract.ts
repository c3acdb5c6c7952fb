import { z } from 'zod';

/** HTTP methods a hook may use. */
export const HOOK_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/** An HTTP header name (RFC 9110 token). */
const HeaderNameSchema = z.string().min(1).max(200).regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid header name');

/**
 * An outbound HTTP call made by the supervisor for a build step (CONTRACT.md section 8):
 * `deploy`, `register`, `rollback`. In `url` and in every string of `body`, the template
 * variables (`{{build_id}}`, `{{droplet_id}}`, `{{commit_sha}}`, `{{branch}}`,
 * `{{deployment_url}}`) are replaced before the call.
 */
export const HookSchema = z.strictObject({
  url: z.string().min(1).max(2000),
  method: z.enum(HOOK_METHODS).optional(),
  headers: z.record(HeaderNameSchema, z.string().max(8000)).optional(),
  /** Sent as JSON; any JSON value. */
  body: z.unknown().optional(),
  /** The status that counts as success; any 2xx when absent. */
  expect_status: z.number().int().min(100).max(599).optional(),
  timeout_s: z.number().int().min(1).max(600).optional(),
  /** Further attempts after a failed one (retries are only for failed deliveries). */
  retries: z.number().int().min(0).max(20).optional(),
});
/** A hook as written in a build request or the supervisor's configuration. */
export type Hook = z.infer<typeof HookSchema>;

/** What a hook's absent fields mean. */
export const HOOK_DEFAULTS = { method: 'POST', timeout_s: 30, retries: 3 } as const satisfies Partial<Hook>;

/** The health check of a deploy: `url` must answer `expect_status` (200) within `timeout_s` (60). */
export const HealthCheckSchema = z.strictObject({
  url: z.string().min(1).max(2000),
  expect_status: z.number().int().min(100).max(599).optional(),
  timeout_s: z.number().int().min(1).max(3600).optional(),
});
/** A health check as written in a build request. */
export type HealthCheck = z.infer<typeof HealthCheckSchema>;

/** What a health check's absent fields mean. */
export const HEALTH_CHECK_DEFAULTS = { expect_status: 200, timeout_s: 60 } as const satisfies Partial<HealthCheck>;

/** The names a hook template may use, each written `{{name}}`. */
export const TEMPLATE_VARIABLES = ['build_id', 'droplet_id', 'commit_sha', 'branch', 'deployment_url'] as const;
/** A template variable name. */
export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number];
/** Values of the template variables; an unknown one is replaced by the empty string. */
export type TemplateVars = Partial<Record<TemplateVariable, string | null>>;

/** The notification channel kinds. */
export const NOTIFY_CHANNEL_TYPES = ['slack', 'email', 'webhook'] as const;
/** A notification channel kind. */
export type NotifyChannelType = (typeof NOTIFY_CHANNEL_TYPES)[number];

/**
 * A notification channel of a build: a kind alone (its target comes from the supervisor's
 * configuration) or `{type, url?, to?}` (`url` for `slack` and `webhook`, `to` for `email`).
 */
export const NotifyChannelSchema = z.union([
  z.enum(NOTIFY_CHANNEL_TYPES),
  z.strictObject({
    type: z.enum(NOTIFY_CHANNEL_TYPES),
    url: z.url({ protocol: /^https?$/ }).max(2000).optional(),
    to: z.string().min(3).max(1000).optional(),
  }),
]);
/** A notification channel. */
export type NotifyChannel = z.infer<typeof NotifyChannelSchema>;

/** The build events that notify the build's channels. */
export const NOTIFICATION_EVENTS = ['awaiting_approval', 'completed', 'failed'] as const;
/** A notified build event. */
export type NotificationEventName = (typeof NOTIFICATION_EVENTS)[number];

/** The body POSTed to a `webhook` channel (CONTRACT.md section 8). */
export const WebhookNotificationSchema = z.strictObject({
  event: z.enum(NOTIFICATION_EVENTS),
  build_id: z.string(),
  status: z.enum(['queued', 'running', 'awaiting_approval', 'completed', 'failed', 'cancelled']),
  checkpoint: z.string().optional(),
  deployment_url: z.string().optional(),
  error: z.string().optional(),
});
/** A webhook notification body. */
export type WebhookNotification = z.infer<typeof WebhookNotificationSchema>;

/** States of an outbound delivery: waiting or being retried, then delivered or failed for good. */
export const DELIVERY_STATES = ['pending', 'delivered', 'failed'] as const;
/** A delivery state. */
export type DeliveryState = (typeof DELIVERY_STATES)[number];
