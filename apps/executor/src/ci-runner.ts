import { spawn } from 'node:child_process';

/** Result of one CI run. */
export interface CiResult {
  passed: boolean;
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  /** Last part of the combined output (what a retry prompt needs). */
  outputTail: string;
  outputBytes: number;
}

/** Environment variable names that never reach the CI subprocess. */
const SECRET_NAME = /(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|AUTH|SESSION|COOKIE)/i;
const ALWAYS_REMOVED = new Set(['DATABASE_URL', 'AUTOPACK_API_URL', 'OPENAI_BASE_URL', 'ANTHROPIC_BASE_URL', 'OPENAI_ORG_ID', 'OPENAI_PROJECT_ID', 'AUTOPACK_MODELS']);

/**
 * The CI subprocess's environment: the executor's, minus provider keys, API keys and
 * anything named like a secret. Values that equal a known secret are dropped too, whatever
 * their name.
 */
export function scrubbedEnvironment(env: NodeJS.ProcessEnv, knownSecrets: string[] = []): NodeJS.ProcessEnv {
  const secrets = new Set(knownSecrets.filter((s) => s.length >= 6));
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || SECRET_NAME.test(name) || ALWAYS_REMOVED.has(name)) continue;
    if ([...secrets].some((s) => value.includes(s))) continue;
    out[name] = value;
  }
  out.CI = 'true';
  return out;
}

/**
 * Runs a CI command with `sh -c` in its own process group, so a timeout kills the whole
 * tree (test runners love to spawn workers). Output is captured up to a cap; the tail is
 * kept because that is where test runners print failures.
 */
export async function runCi(opts: {
  command: string;
  cwd: string;
  timeoutMs: number;
  env: NodeJS.ProcessEnv;
  maxOutputBytes?: number;
  signal?: AbortSignal;
}): Promise<CiResult> {
  const cap = opts.maxOutputBytes ?? 64 * 1024;
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', opts.command], { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = Buffer.alloc(0);
    let bytes = 0;
    let timedOut = false;
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      tail = Buffer.concat([tail, chunk]);
      if (tail.length > cap) tail = tail.subarray(tail.length - cap);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, opts.timeoutMs);
    const onAbort = () => killGroup();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (exitCode: number | null) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      // Leftover grandchildren of the group must not outlive the attempt.
      killGroup();
      const text = tail.toString('utf8');
      resolve({
        passed: !timedOut && exitCode === 0,
        exitCode,
        timedOut,
        durationMs: Date.now() - started,
        outputTail: timedOut ? `${text}\n[autopack] CI timed out after ${Math.round(opts.timeoutMs / 1000)} s and was killed` : text,
        outputBytes: bytes,
      });
    };
    child.on('error', (err) => {
      tail = Buffer.from(`[autopack] could not start CI: ${err.message}`);
      finish(null);
    });
    child.on('close', (code) => finish(code));
  });
}
