import { hostname } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/** Executor configuration: defaults < environment < command-line flags, validated once. */
export interface ExecutorConfig {
  runId: string | undefined;
  apiUrl: string;
  apiKey: string | undefined;
  openaiKey: string | undefined;
  anthropicKey: string | undefined;
  openaiBaseUrl: string | undefined;
  anthropicBaseUrl: string | undefined;
  workspace: string;
  pollIntervalSeconds: number;
  maxIterations: number | undefined;
  dualAuditor: boolean;
  executorId: string;
  exitWhenIdle: boolean;
  modelsFile: string | undefined;
  logLevel: string;
  /** How long to keep retrying an unreachable supervisor before exiting with code 2. */
  supervisorRetrySeconds: number;
}

/** A configuration problem: exit code 1 with a clear message. */
export class ExecutorConfigError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'ExecutorConfigError';
  }
}

/** The command-line flags as yargs delivers them. */
export interface ExecutorFlags {
  runId?: string;
  apiUrl?: string;
  apiKey?: string;
  openaiKey?: string;
  anthropicKey?: string;
  workspace?: string;
  pollInterval?: number;
  maxIterations?: number;
  dualAuditor?: boolean;
  executorId?: string;
  exitWhenIdle?: boolean;
}

const nonEmpty = (v: string | undefined) => (v && v.trim() ? v.trim() : undefined);

const Schema = z.object({
  runId: z
    .string()
    .regex(/^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.))*$/, 'letters, digits, "_", "-" and single dots')
    .max(100)
    .optional(),
  apiUrl: z.string().url('must be an http(s) URL').regex(/^https?:\/\//, 'must be an http(s) URL'),
  pollIntervalSeconds: z.number().min(0.1, 'must be at least 0.1').max(3600),
  maxIterations: z.number().int().min(1, 'must be at least 1').optional(),
  executorId: z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'printable characters without spaces'),
});

/** Builds the configuration; throws ExecutorConfigError listing every problem. */
export function loadExecutorConfig(flags: ExecutorFlags, env: NodeJS.ProcessEnv = process.env): ExecutorConfig {
  const config: ExecutorConfig = {
    runId: nonEmpty(flags.runId),
    apiUrl: nonEmpty(flags.apiUrl) ?? nonEmpty(env.AUTOPACK_API_URL) ?? 'http://localhost:8000',
    apiKey: nonEmpty(flags.apiKey) ?? nonEmpty(env.AUTOPACK_API_KEY),
    openaiKey: nonEmpty(flags.openaiKey) ?? nonEmpty(env.OPENAI_API_KEY),
    anthropicKey: nonEmpty(flags.anthropicKey) ?? nonEmpty(env.ANTHROPIC_API_KEY),
    openaiBaseUrl: nonEmpty(env.OPENAI_BASE_URL),
    anthropicBaseUrl: nonEmpty(env.ANTHROPIC_BASE_URL),
    workspace: path.resolve(flags.workspace ?? '.'),
    pollIntervalSeconds: flags.pollInterval ?? 10,
    maxIterations: flags.maxIterations,
    dualAuditor: flags.dualAuditor ?? true,
    executorId: nonEmpty(flags.executorId) ?? `${hostname()}-${process.pid}`,
    exitWhenIdle: flags.exitWhenIdle ?? false,
    modelsFile: nonEmpty(env.AUTOPACK_MODELS),
    logLevel: nonEmpty(env.AUTOPACK_LOG_LEVEL) ?? 'info',
    supervisorRetrySeconds: Number(env.AUTOPACK_SUPERVISOR_RETRY_SECONDS ?? 120) || 120,
  };
  const parsed = Schema.safeParse(config);
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => `--${String(i.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${i.message}`);
  if (!config.openaiKey && !config.anthropicKey) {
    problems.push('no LLM provider key: set OPENAI_API_KEY or ANTHROPIC_API_KEY (or --openai-key / --anthropic-key)');
  }
  if (problems.length) throw new ExecutorConfigError(`invalid executor configuration:\n  ${problems.join('\n  ')}`);
  return config;
}
