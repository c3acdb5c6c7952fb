import { z } from 'zod';
import { HealthCheckSchema, HookSchema, LIMITS, LOG_FORMATS, type LogFormat } from '@app/contracts';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** An optional variable: unset and empty both mean absent. */
const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : v));
const httpUrl = z.url({ protocol: /^https?$/ });

/** The build hooks a build request may leave out, as configured (`AUTOPACK_HOOKS`, JSON). */
const ConfiguredHooksSchema = z.strictObject({
  deploy: HookSchema.optional(),
  health_check: HealthCheckSchema.optional(),
  register: HookSchema.optional(),
  rollback: HookSchema.optional(),
});
/** Build hooks from the configuration. */
export type ConfiguredHooks = z.infer<typeof ConfiguredHooksSchema>;

/** `AUTOPACK_HOOKS`: a JSON object parsed and checked here, at the edge; its values are never echoed (headers may hold keys). */
const hooksJson = optionalText.transform((text, ctx): ConfiguredHooks => {
  if (text === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object' });
    return z.NEVER;
  }
  const parsed = ConfiguredHooksSchema.safeParse(value);
  if (!parsed.success) {
    for (const i of parsed.error.issues) ctx.addIssue({ code: 'custom', message: `${i.path.join('.') || '(root)'}: ${i.message}` });
    return z.NEVER;
  }
  return parsed.data;
});

const EnvSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  HOST: z.string().min(1).default('127.0.0.1'),
  AUTOPACK_API_KEY: z.string().min(1).optional().or(z.literal('').transform(() => undefined)),
  AUTOPACK_LEASE_SECONDS: z.coerce.number().int().min(2).max(24 * 3600).default(60),
  AUTOPACK_DATA_DIR: z.string().min(1).default('.autopack'),
  AUTOPACK_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(LIMITS.defaultMaxBodyBytes),
  AUTOPACK_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  AUTOPACK_LOG_FORMAT: optionalText.pipe(z.enum(LOG_FORMATS).optional()),
  AUTOPACK_PG_FAST: z.enum(['0', '1']).default('0'),
  AUTOPACK_RATE_LIMIT_PER_SEC: z.coerce.number().min(0).max(100_000).default(100),
  AUTOPACK_RATE_LIMIT_BURST: z.coerce.number().int().min(1).max(1_000_000).default(400),
  AUTOPACK_SMTP_URL: optionalText.pipe(z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional()),
  AUTOPACK_NOTIFY_EMAIL: optionalText,
  AUTOPACK_NOTIFY_FROM: optionalText,
  AUTOPACK_SLACK_WEBHOOK_URL: optionalText.pipe(httpUrl.optional()),
  AUTOPACK_NOTIFY_WEBHOOK_URL: optionalText.pipe(httpUrl.optional()),
  AUTOPACK_HOOKS: hooksJson,
  AUTOPACK_QUEUE_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  AUTOPACK_QUEUE_POLL_SECONDS: z.coerce.number().min(0.5).max(60).default(1),
  AUTOPACK_QUEUE_MAINTENANCE_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  AUTOPACK_DELIVERY_RETRY_DELAY_SECONDS: z.coerce.number().int().min(1).max(3600).default(5),
  AUTOPACK_MAX_CONCURRENT_BUILDS: z.coerce.number().int().min(1).max(1000).default(3),
});

/** Supervisor configuration, parsed once from the environment at the edge. */
export interface SupervisorConfig {
  databaseUrl: string | undefined;
  port: number;
  host: string;
  apiKey: string | undefined;
  leaseSeconds: number;
  dataDir: string;
  maxBodyBytes: number;
  logLevel: z.infer<typeof EnvSchema>['AUTOPACK_LOG_LEVEL'];
  /** `pretty` or `json`; unset: pretty when stderr is a terminal. */
  logFormat?: LogFormat;
  /** Embedded Postgres without fsync (tests and demos only). */
  embeddedPgFast: boolean;
  /** Write requests per second per client (0 = unlimited) and the burst allowed. */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  /** SMTP server of the `email` channel (`smtp://user:pass@host:port`); email is off without it. */
  smtpUrl: string | undefined;
  /** Recipient of the `email` channel when the build names none. */
  notifyEmail: string | undefined;
  /** Sender address of notification emails. */
  notifyFrom: string;
  /** Incoming-webhook URL of the `slack` channel when the build names none. */
  slackWebhookUrl: string | undefined;
  /** URL of the `webhook` channel when the build names none. */
  notifyWebhookUrl: string | undefined;
  /** Hooks (`deploy`, `health_check`, `register`, `rollback`) for builds whose request leaves them out. */
  hooks: ConfiguredHooks;
  /** Jobs of the durable queue (pg-boss) worked on at once by this process. */
  queueConcurrency: number;
  /** How often an idle queue worker looks for jobs. */
  queuePollSeconds: number;
  /** How often the queue's maintenance runs (expires jobs of a crashed process, archives). */
  queueMaintenanceSeconds: number;
  /** First retry delay of a failed delivery; each further retry waits about twice as long. */
  deliveryRetryDelaySeconds: number;
  /** Builds running or awaiting approval at once; later ones wait queued, first come first served. */
  maxConcurrentBuilds: number;
}

/** A configuration problem, reported with every bad variable at once and without values. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the supervisor's environment. Values are never echoed in errors because
 * `DATABASE_URL`, `AUTOPACK_API_KEY`, `AUTOPACK_SMTP_URL` and the
 * webhook URLs may hold secrets.
 */
export function loadSupervisorConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<SupervisorConfig> = {}): SupervisorConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const config: SupervisorConfig = {
    databaseUrl: e.DATABASE_URL,
    port: e.PORT,
    host: e.HOST,
    apiKey: e.AUTOPACK_API_KEY,
    leaseSeconds: e.AUTOPACK_LEASE_SECONDS,
    dataDir: e.AUTOPACK_DATA_DIR,
    maxBodyBytes: e.AUTOPACK_MAX_BODY_BYTES,
    logLevel: e.AUTOPACK_LOG_LEVEL,
    logFormat: e.AUTOPACK_LOG_FORMAT,
    embeddedPgFast: e.AUTOPACK_PG_FAST === '1',
    rateLimitPerSecond: e.AUTOPACK_RATE_LIMIT_PER_SEC,
    rateLimitBurst: e.AUTOPACK_RATE_LIMIT_BURST,
    smtpUrl: e.AUTOPACK_SMTP_URL,
    notifyEmail: e.AUTOPACK_NOTIFY_EMAIL,
    notifyFrom: e.AUTOPACK_NOTIFY_FROM ?? 'Autopack <autopack@localhost>',
    slackWebhookUrl: e.AUTOPACK_SLACK_WEBHOOK_URL,
    notifyWebhookUrl: e.AUTOPACK_NOTIFY_WEBHOOK_URL,
    hooks: e.AUTOPACK_HOOKS,
    queueConcurrency: e.AUTOPACK_QUEUE_CONCURRENCY,
    queuePollSeconds: e.AUTOPACK_QUEUE_POLL_SECONDS,
    queueMaintenanceSeconds: e.AUTOPACK_QUEUE_MAINTENANCE_SECONDS,
    deliveryRetryDelaySeconds: e.AUTOPACK_DELIVERY_RETRY_DELAY_SECONDS,
    maxConcurrentBuilds: e.AUTOPACK_MAX_CONCURRENT_BUILDS,
    ...overrides,
  };
  if (!config.apiKey && !LOOPBACK.has(config.host)) {
    throw new ConfigError([`HOST: refusing to listen on a non-loopback address without AUTOPACK_API_KEY`]);
  }
  return config;
}

/** Injection token of the configuration. */
export const SUPERVISOR_CONFIG = Symbol('SUPERVISOR_CONFIG');
