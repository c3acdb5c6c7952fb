import { hostname } from 'node:os';
import path from 'node:path';
import { CapabilitySchema, DEFAULT_CAPABILITIES, ExecutorIdSchema, ID_PATTERN } from '@app/contracts';

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
  /** Sent with every claim: only phases whose `requires` these cover are handed out. */
  capabilities: string[];
  exitWhenIdle: boolean;
  modelsFile: string | undefined;
  logLevel: string;
  /** How long to keep retrying an unreachable supervisor before exiting with code 2. */
  supervisorRetrySeconds: number;
}

/**
 * A configuration problem: exit code 1 with a clear message. The message holds one problem
 * per line, every line after the first starting with "autopack executor: ", because main.ts
 * prints `autopack executor: <message>`: each problem then reads as a line of its own.
 */
export class ExecutorConfigError extends Error {
  readonly exitCode = 1;
  /** The problems, each once, without the prefix. */
  readonly problems: readonly string[];
  constructor(problems: string | readonly string[]) {
    const list = typeof problems === 'string' ? [problems] : [...new Set(problems)];
    super(list.join('\nautopack executor: '));
    this.name = 'ExecutorConfigError';
    this.problems = list;
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
  capabilities?: string;
  exitWhenIdle?: boolean;
}

const nonEmpty = (v: string | undefined) => (v && v.trim() ? v.trim() : undefined);
/** A flag's text, or undefined when absent, empty or not text (yargs gives an array for a repeated flag). */
const text = (v: unknown) => (typeof v === 'string' ? nonEmpty(v) : undefined);


/** The capabilities of `--capabilities a,b` (default builder), deduplicated and sorted. */
function capabilitiesOf(flag: unknown): string[] {
  const listed = typeof flag === 'string' ? flag.split(',').map((c) => c.trim()).filter(Boolean) : [];
  return [...new Set(listed.length ? listed : DEFAULT_CAPABILITIES)].sort();
}

/**
 * An absolute http:// or https:// URL with a host: what --api-url must be. Stricter than
 * `isHttpUrl` of libs/git, which only tells an http(s) `repo_url` from a path.
 */
function isAbsoluteHttpUrl(v: string): boolean {
  if (!/^https?:\/\/[^/]/i.test(v)) return false;
  try {
    return ['http:', 'https:'].includes(new URL(v).protocol);
  } catch {
    return false;
  }
}

/**
 * Every problem with the flags and the environment, once each, naming the flag as it is
 * typed on the command line (or the variable the value came from).
 */
function problemsOf(flags: ExecutorFlags, config: ExecutorConfig, apiUrlFrom: string): string[] {
  const problems: string[] = [];
  const once = (value: unknown, flag: string) => {
    if (!Array.isArray(value)) return true;
    problems.push(`${flag}: given more than once`);
    return false;
  };
  if (flags.runId !== undefined && once(flags.runId, '--run-id')) {
    if (!config.runId) problems.push('--run-id: must not be empty');
    else if (config.runId.length > 100 || !ID_PATTERN.test(config.runId)) {
      problems.push('--run-id: must be at most 100 letters, digits, "_", "-" and single dots, starting with a letter or digit');
    }
  }
  if ((flags.apiUrl === undefined || once(flags.apiUrl, '--api-url')) && !isAbsoluteHttpUrl(config.apiUrl)) problems.push(`${apiUrlFrom}: must be an http(s) URL`);
  if (flags.pollInterval !== undefined && once(flags.pollInterval, '--poll-interval')) {
    const v = config.pollIntervalSeconds;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) problems.push('--poll-interval: must be a number > 0');
    else if (v > 3600) problems.push('--poll-interval: must be at most 3600 (seconds)');
  }
  if (flags.maxIterations !== undefined && once(flags.maxIterations, '--max-iterations')) {
    const v = config.maxIterations;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) problems.push('--max-iterations: must be a positive integer');
  }
  if (flags.executorId !== undefined && once(flags.executorId, '--executor-id')) {
    if (!text(flags.executorId)) problems.push('--executor-id: must not be empty');
    else if (!ExecutorIdSchema.safeParse(config.executorId).success) problems.push('--executor-id: must be at most 200 printable characters without spaces');
  }
  if (flags.capabilities !== undefined && once(flags.capabilities, '--capabilities')) {
    const listed = String(flags.capabilities).split(',').map((c) => c.trim());
    const bad = listed.filter((c) => !CapabilitySchema.safeParse(c).success);
    if (bad.length) problems.push(`--capabilities: ${bad.map((c) => JSON.stringify(c)).join(', ')} is not a capability (lower-case letters, digits, - and _, comma-separated)`);
  }
  if (!config.openaiKey && !config.anthropicKey) {
    problems.push('no LLM provider key: set OPENAI_API_KEY or ANTHROPIC_API_KEY (or --openai-key / --anthropic-key)');
  }
  return problems;
}

/** Builds the configuration; throws ExecutorConfigError listing every problem. */
export function loadExecutorConfig(flags: ExecutorFlags, env: NodeJS.ProcessEnv = process.env): ExecutorConfig {
  // An --api-url given but empty is a problem, not a silent fall-back to the default.
  const apiUrlFlag = flags.apiUrl === undefined ? undefined : (text(flags.apiUrl) ?? '');
  const apiUrlEnv = nonEmpty(env.AUTOPACK_API_URL);
  const config: ExecutorConfig = {
    runId: text(flags.runId),
    apiUrl: apiUrlFlag ?? apiUrlEnv ?? 'http://localhost:8000',
    apiKey: text(flags.apiKey) ?? nonEmpty(env.AUTOPACK_API_KEY),
    openaiKey: text(flags.openaiKey) ?? nonEmpty(env.OPENAI_API_KEY),
    anthropicKey: text(flags.anthropicKey) ?? nonEmpty(env.ANTHROPIC_API_KEY),
    openaiBaseUrl: nonEmpty(env.OPENAI_BASE_URL),
    anthropicBaseUrl: nonEmpty(env.ANTHROPIC_BASE_URL),
    workspace: path.resolve(flags.workspace ?? '.'),
    pollIntervalSeconds: flags.pollInterval ?? 10,
    maxIterations: flags.maxIterations,
    dualAuditor: flags.dualAuditor ?? true,
    executorId: text(flags.executorId) ?? `${hostname()}-${process.pid}`,
    capabilities: capabilitiesOf(flags.capabilities),
    exitWhenIdle: flags.exitWhenIdle ?? false,
    modelsFile: nonEmpty(env.AUTOPACK_MODELS),
    logLevel: nonEmpty(env.AUTOPACK_LOG_LEVEL) ?? 'info',
    supervisorRetrySeconds: Number(env.AUTOPACK_SUPERVISOR_RETRY_SECONDS ?? 120) || 120,
  };
  const apiUrlFrom = apiUrlFlag === undefined && apiUrlEnv !== undefined ? 'AUTOPACK_API_URL' : '--api-url';
  const problems = problemsOf(flags, config, apiUrlFrom);
  if (problems.length) throw new ExecutorConfigError(problems);
  return config;
}
