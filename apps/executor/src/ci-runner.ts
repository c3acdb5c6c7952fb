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
 * anything named like a secret. A variable whose value contains a known secret (the keys the
 * executor was given) is dropped too, whatever its name, and so is one whose value equals
 * the value of a secret-named variable (a copy under an innocent name).
 */
export function scrubbedEnvironment(env: NodeJS.ProcessEnv, knownSecrets: string[] = []): NodeJS.ProcessEnv {
  const secrets = knownSecrets.filter((s) => s.length >= 6);
  // Equality only: secret-named variables also hold ordinary values (paths, modes) that a
  // containment test would match inside PATH and the like.
  const secretValues = new Set(
    Object.entries(env)
      .filter(([name, value]) => value !== undefined && value.length >= 8 && SECRET_NAME.test(name))
      .map(([, value]) => value as string),
  );
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || SECRET_NAME.test(name) || ALWAYS_REMOVED.has(name)) continue;
    if (secretValues.has(value) || secrets.some((s) => value.includes(s))) continue;
    out[name] = value;
  }
  out.CI = 'true';
  return out;
}

/**
 * Lines that report a failure in the output of common test runners: Jest (`FAIL`, `✕`),
 * Vitest (`×`), TAP and node:test (`not ok`), mocha-style reporters (`✗`), and uncaught
 * errors (`Error: ...`, `TypeError: ...`, `SyntaxError: ...`).
 */
const FAILURE_LINE = /^(FAIL\b|not ok\b|✕|✗|×|[A-Za-z]*Error\b)/;

/** The failure lines of a CI output, normalized so that timings do not make them differ between runs. */
export function failureLines(output: string): string[] {
  const found = new Set<string>();
  for (const raw of output.split(/\r?\n/)) {
    const line = raw.trim();
    if (!FAILURE_LINE.test(line)) continue;
    found.add(line.replace(/\(\d+(\.\d+)?\s*m?s\)/g, '').replace(/\s+/g, ' ').trim());
  }
  return [...found];
}

/** Whether an attempt's CI result is acceptable, given the CI result of the unchanged branch head. */
export interface CiVerdict {
  accepted: boolean;
  /** The baseline (branch head before the change) failed too. */
  baselineFailed: boolean;
  /** Failure lines of the attempt's output that the baseline's output did not have. */
  newFailures: string[];
}

/**
 * Judges an attempt's CI result against the baseline. A zero exit code passes. When the
 * branch head already failed CI, the attempt cannot be asked to make it pass; it passes if it
 * adds no failure: it did not time out, and no failure line of its output (see `failureLines`)
 * is missing from the baseline's output. Nothing else is parsed, so any test runner works and
 * an unknown output format errs on the side of "no new failure found".
 */
export function judgeCi(attempt: CiResult, baseline: CiResult | undefined): CiVerdict {
  const baselineFailed = baseline !== undefined && !baseline.passed;
  if (attempt.passed) return { accepted: true, baselineFailed, newFailures: [] };
  const known = new Set(baseline ? failureLines(baseline.outputTail) : []);
  const newFailures = failureLines(attempt.outputTail).filter((l) => !known.has(l));
  return { accepted: baselineFailed && !attempt.timedOut && newFailures.length === 0, baselineFailed, newFailures };
}

/**
 * CI results of unchanged branch heads, per (head commit, command), for the executor's
 * lifetime: a phase's attempts all start from the same head, so its baseline runs once.
 */
export class CiBaselineCache {
  private readonly results = new Map<string, Promise<CiResult>>();

  constructor(private readonly maxEntries = 64) {}

  /** Records `result` as the baseline of `headSha` and `command` (CI already ran on exactly that tree). */
  remember(headSha: string, command: string, result: CiResult): void {
    this.get(headSha, command, () => Promise.resolve(result));
  }

  /** The cached baseline of `headSha` and `command`, running `run` on a miss. */
  get(headSha: string, command: string, run: () => Promise<CiResult>): Promise<CiResult> {
    const key = `${headSha}\0${command}`;
    let result = this.results.get(key);
    if (!result) {
      result = run();
      this.results.set(key, result);
      // A failed or aborted run must not be remembered as the baseline.
      const started = result;
      result.catch(() => {
        if (this.results.get(key) === started) this.results.delete(key);
      });
      if (this.results.size > this.maxEntries) this.results.delete(this.results.keys().next().value as string);
    }
    return result;
  }
}

/** How long output already written is still read after the CI process exited and its group was killed. */
const OUTPUT_DRAIN_MS = 300;

/**
 * Runs a CI command with `sh -c` in its own process group, so a timeout kills the whole
 * tree (test runners love to spawn workers). Output is captured up to a cap; the tail is
 * kept because that is where test runners print failures.
 *
 * CI is judged when its process exits, not when its output closes: a background child that
 * keeps stdout open (`sleep 300 & exit 1`) must not turn a failure into a timeout. On exit
 * the process group is killed, what is already buffered is drained for a short grace, and
 * the pipes are then destroyed whatever still holds them.
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
    let settled = false;
    const finish = (exitCode: number | null) => {
      if (settled) return;
      settled = true;
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
    child.on('exit', (code) => {
      clearTimeout(timer);
      // Grandchildren die with the group; then the pipes reach end-of-file and 'close' follows.
      killGroup();
      const done = () => {
        clearTimeout(drain);
        // A process that left the group may still hold the pipes: stop reading them.
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code);
      };
      const drain = setTimeout(done, OUTPUT_DRAIN_MS);
      child.once('close', done);
    });
  });
}
