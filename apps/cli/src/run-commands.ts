import { readFile } from 'node:fs/promises';
import {
  PhaseWriteResponseSchema,
  type RunListResponse,
  RunListResponseSchema,
  type RunResponse,
  RunResponseSchema,
  type RunStartRequest,
  RunStartRequestSchema,
  type RunSummaryResponse,
  RunSummaryResponseSchema,
  TERMINAL_RUN_STATES,
} from '@app/contracts';
import { load as loadYaml } from 'js-yaml';
import { RunProgressBar, changeLines, runLine } from '../../executor/src/run-progress.js';
import { type AdminApi, ApiAnswerError, ApiUnreachableError } from './admin-api.js';
import { type ApiFlags, type CliIo, EXIT, WAIT_UNREACHABLE_MS, shortTime, withApi } from './build-commands.js';

/*
 * `autopack start`, `runs`, `status [--watch]`, `cancel`, `retry` and `report` (CONTRACT.md
 * section 10): a run's life from a terminal. Exit codes as for the build commands: 0 done,
 * 1 bad usage or a 4xx answer (its code and message printed), 2 the supervisor unreachable
 * or failing, 3 `status --watch` saw the run end other than DONE_SUCCESS (as `build --wait`).
 */

export interface StartFlags extends ApiFlags {
  plan: string;
  runId?: string;
}
export interface RunsFlags extends ApiFlags {
  state?: string;
  json?: boolean;
}
export interface StatusFlags extends ApiFlags {
  id: string;
  watch?: boolean;
  json?: boolean;
}
export interface IdFlags extends ApiFlags {
  id: string;
}
export interface RetryFlags extends ApiFlags {
  runId: string;
  phaseId: string;
}
export interface ReportFlags extends IdFlags {
  json?: boolean;
}

/** How often `status --watch` looks at the run. */
const WATCH_POLL_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const runPath = (id: string) => `/runs/${encodeURIComponent(id)}`;
const isTerminal = (state: string) => (TERMINAL_RUN_STATES as readonly string[]).includes(state);

// ---------------------------------------------------------------- the plan file

/** The first problem of a zod result as one line, with how many more there are. */
function firstIssue(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>): string {
  const [first] = issues;
  const where = first.path.length ? `${first.path.map(String).join('.')}: ` : '';
  return `${where}${first.message}${issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : ''}`;
}

/**
 * The body of `POST /runs/start` a plan file holds (JSON, or YAML for .yaml/.yml), with
 * `runId` as run.run_id when given; or the one problem that stops it.
 */
export async function readPlan(file: string, runId?: string): Promise<{ body?: RunStartRequest; problem?: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { problem: `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  const yaml = /\.ya?ml$/i.test(file);
  let plan: unknown;
  try {
    plan = yaml ? loadYaml(text) : JSON.parse(text);
  } catch (err) {
    const e = err as Error & { reason?: string; mark?: { line: number; column: number } };
    const why = e.reason && e.mark ? `${e.reason} at line ${e.mark.line + 1}, column ${e.mark.column + 1}` : e.message.split('\n')[0];
    return { problem: `${file}: not valid ${yaml ? 'YAML' : 'JSON'} (${why})` };
  }
  if (typeof plan !== 'object' || plan === null || Array.isArray(plan)) return { problem: `${file}: must hold an object {run, tiers, phases}` };
  if (runId !== undefined) {
    const run = (plan as { run?: unknown }).run;
    (plan as { run: unknown }).run = { ...(typeof run === 'object' && run !== null ? run : {}), run_id: runId };
  }
  const parsed = RunStartRequestSchema.safeParse(plan);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (runId !== undefined && issue.path.join('.') === 'run.run_id') return { problem: `--run-id: ${issue.message}` };
    return { problem: `${file}: ${firstIssue(parsed.error.issues)}` };
  }
  return { body: parsed.data };
}

// ---------------------------------------------------------------- formatting

/** Runs as a table: id, state, phases done, current phase, tokens, created. */
export function runsTable(list: RunListResponse): string[] {
  if (!list.runs.length) return ['no runs'];
  const rows = [
    ['RUN ID', 'STATE', 'PHASES', 'CURRENT PHASE', 'TOKENS', 'CREATED'],
    ...list.runs.map((r) => [r.run_id, r.state, `${r.phases_completed}/${r.phases_total}`, r.current_phase_name ?? '-', `${r.tokens_used}/${r.token_cap}`, shortTime(r.created_at)]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const out = rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  '));
  if (list.total > list.runs.length) out.push(`(${list.runs.length} of ${list.total} runs shown)`);
  return out;
}

/** A run in a few lines: state, approval, budgets, then each tier with its phases. */
export function statusLines(r: RunResponse): string[] {
  const b = r.budgets;
  const lines = [
    runLine(r),
    `approval: ${r.approval_mode} (${r.approval_state}); branch ${r.integration_branch} from ${r.base_branch}`,
    `budgets: tokens ${b.tokens_used}/${b.token_cap}, cost $${b.cost_used_usd.toFixed(2)}${b.cost_cap_usd !== null ? `/$${b.cost_cap_usd.toFixed(2)}` : ''}, ${b.elapsed_minutes.toFixed(1)}/${b.max_duration_minutes} min, minor issues ${b.minor_issues_count}/${b.max_minor_issues_total}`,
  ];
  if (r.failure_reason) lines.push(`failure: ${r.failure_reason}`);
  for (const t of r.tiers) {
    lines.push(`tier ${t.tier_id} (${t.name}): ${t.state}`);
    for (const p of t.phases) {
      const extra = [`attempts ${p.attempts_used}/${p.max_attempts}`];
      if (p.commit_sha) extra.push(`commit ${p.commit_sha.slice(0, 12)}`);
      if (p.lease_owner) extra.push(`leased by ${p.lease_owner}`);
      if (p.last_failure_reason && p.state !== 'COMPLETE') extra.push(`last failure: ${p.last_failure_reason}`);
      lines.push(`  ${p.phase_id} (${p.name}): ${p.state}, ${extra.join(', ')}`);
    }
  }
  return lines;
}

/** A run summary report in a few lines. */
export function reportLines(s: RunSummaryResponse): string[] {
  const b = s.budgets;
  const lines = [
    `run ${s.run_id}: ${s.state} (approval ${s.approval_mode}, ${s.approval_state})${s.failure_reason ? `: ${s.failure_reason}` : ''}`,
    `started ${s.started_at ? shortTime(s.started_at) : '-'}, completed ${s.completed_at ? shortTime(s.completed_at) : '-'}`,
    `budgets: tokens ${b.tokens_used}/${b.token_cap} (${Math.round(b.token_utilization * 100)}%), cost $${b.cost_used_usd.toFixed(2)}${b.cost_cap_usd !== null ? `/$${b.cost_cap_usd.toFixed(2)}` : ''}, phases ${b.phase_count}/${b.max_phases}, CI runs ${b.ci_runs_used}`,
    `llm: ${s.llm.calls} calls, ${s.llm.prompt_tokens} prompt + ${s.llm.completion_tokens} completion tokens, $${s.llm.cost_usd.toFixed(4)}`,
    ...s.llm_calls_by_model.map((m) => `  ${m.role} ${m.provider}/${m.model}: ${m.calls} calls (${m.failed_calls} failed), $${m.cost_usd.toFixed(4)}`),
    `issues: ${s.issues.minor_count} minor, ${s.issues.major_count} major, ${s.issues.distinct_issues} distinct`,
  ];
  for (const p of s.phases) {
    const extra = [`attempts ${p.attempts}/${p.max_attempts}`, `${p.tokens_used} tokens`];
    if (p.commit_sha) extra.push(`commit ${p.commit_sha.slice(0, 12)}`);
    if (p.last_failure_reason && p.state !== 'COMPLETE') extra.push(`last failure: ${p.last_failure_reason}`);
    lines.push(`  ${p.phase_id} (${p.name}): ${p.state}, ${extra.join(', ')}`);
  }
  return lines;
}

// ---------------------------------------------------------------- the live view

/** How a watch shows changes: plain lines, JSON lines, or a progress bar in a terminal. */
interface WatchView {
  show(prev: RunResponse | undefined, now: RunResponse): void;
  stop(): void;
}

function lineView(io: CliIo): WatchView {
  return { show: (prev, now) => changeLines(prev, now).forEach((l) => io.out(l)), stop: () => undefined };
}

function jsonView(io: CliIo): WatchView {
  return { show: (_prev, now) => io.out(JSON.stringify(now)), stop: () => undefined };
}

/** The live bar; Ctrl-C restores the terminal, then leaves as a shell would (130). */
function barView(stream: NodeJS.WriteStream): WatchView {
  const bar = new RunProgressBar(stream);
  const interrupted = () => process.exit(130);
  process.once('SIGINT', interrupted);
  return {
    show: (_prev, now) => bar.show(now),
    stop() {
      process.removeListener('SIGINT', interrupted);
      bar.stop();
    },
  };
}

/** The key that tells two polls apart: the run's state and each phase's state and attempts. */
const changeKey = (r: RunResponse) => JSON.stringify([r.state, r.approval_state, r.phases.map((p) => [p.phase_id, p.state, p.attempts_used])]);

/**
 * Follows a run to its end, showing each change; 0 on DONE_SUCCESS, 3 on any other end.
 *
 * Polling GET /runs/{id}, not the SSE stream /runs/{id}/events: each poll is the whole run
 * (phases, attempts, budgets) so nothing has to be rebuilt from events, and a supervisor that
 * restarts or a dropped connection costs one missed poll instead of a reconnect-and-resume
 * protocol. Changes between two polls are shown together; the end state is never missed.
 * As for `build --wait`, a supervisor that stops answering is polled on for
 * WAIT_UNREACHABLE_MS before exit code 2.
 */
async function watchRun(api: AdminApi, id: string, view: WatchView, intervalMs: number, io: CliIo): Promise<number> {
  let prev: RunResponse | undefined;
  let lastKey = '';
  let unreachableSince: number | undefined;
  try {
    for (;;) {
      let now: RunResponse;
      try {
        now = await api.call(RunResponseSchema, 'GET', runPath(id));
        unreachableSince = undefined;
      } catch (err) {
        const transient = err instanceof ApiUnreachableError || (err instanceof ApiAnswerError && [502, 503, 504].includes(err.status));
        unreachableSince ??= Date.now();
        if (!prev || !transient || Date.now() - unreachableSince > WAIT_UNREACHABLE_MS) throw err;
        await sleep(intervalMs);
        continue;
      }
      const key = changeKey(now);
      if (key !== lastKey) {
        view.show(prev, now);
        prev = now;
        lastKey = key;
      }
      if (isTerminal(now.state)) {
        view.stop();
        if (now.state === 'DONE_SUCCESS') return EXIT.done;
        io.err(`autopack status: run ${id} ended ${now.state}${now.failure_reason ? `: ${now.failure_reason}` : ''}`);
        return EXIT.buildFailed;
      }
      await sleep(intervalMs);
    }
  } finally {
    view.stop();
  }
}

// ---------------------------------------------------------------- the commands

/** `autopack start <plan.json|plan.yaml> [--run-id ID]`. */
export async function runStartCommand(flags: StartFlags, env: NodeJS.ProcessEnv = process.env, io?: CliIo): Promise<number> {
  return withApi('start', flags, env, io, async (api, out) => {
    const { body, problem } = await readPlan(flags.plan, flags.runId);
    if (!body) return [problem ?? 'invalid plan'];
    const run = await api.call(RunResponseSchema, 'POST', '/runs/start', body);
    out.out(`run ${run.run_id} started: ${run.state}, ${run.tiers.length} tiers, ${run.phases.length} phases`);
    out.out(`follow it: autopack status ${run.run_id} --watch`);
    return EXIT.done;
  });
}

/** `autopack runs [--state S] [--json]`. */
export async function runRunsCommand(flags: RunsFlags, env: NodeJS.ProcessEnv = process.env, io?: CliIo): Promise<number> {
  return withApi('runs', flags, env, io, async (api, out) => {
    const query = new URLSearchParams({ limit: '100', ...(flags.state ? { state: flags.state } : {}) });
    const list = await api.call(RunListResponseSchema, 'GET', `/runs?${query}`);
    if (flags.json) out.out(JSON.stringify(list));
    else for (const line of runsTable(list)) out.out(line);
    return EXIT.done;
  });
}

/** `autopack status <id> [--watch] [--json]`. */
export async function runStatusCommand(flags: StatusFlags, env: NodeJS.ProcessEnv = process.env, io?: CliIo): Promise<number> {
  return withApi('status', flags, env, io, async (api, out) => {
    const id = flags.id.trim();
    if (!id) return ['<id>: must not be empty'];
    if (flags.watch) {
      // The bar only where a person looks at it; lines (or JSON) wherever output is kept.
      const view = flags.json ? jsonView(out) : !io && process.stdout.isTTY ? barView(process.stdout) : lineView(out);
      return watchRun(api, id, view, WATCH_POLL_MS, out);
    }
    const run = await api.call(RunResponseSchema, 'GET', runPath(id));
    if (flags.json) out.out(JSON.stringify(run));
    else for (const line of statusLines(run)) out.out(line);
    return EXIT.done;
  });
}

/** `autopack cancel <id>`. */
export async function runCancelCommand(flags: IdFlags, env: NodeJS.ProcessEnv = process.env, io?: CliIo): Promise<number> {
  return withApi('cancel', flags, env, io, async (api, out) => {
    const id = flags.id.trim();
    if (!id) return ['<id>: must not be empty'];
    const run = await api.call(RunResponseSchema, 'POST', `${runPath(id)}/cancel`, {});
    out.out(`run ${run.run_id} cancelled`);
    out.out(runLine(run));
    return EXIT.done;
  });
}

/** `autopack retry <run_id> <phase_id>`. */
export async function runRetryCommand(flags: RetryFlags, env: NodeJS.ProcessEnv = process.env, io?: CliIo): Promise<number> {
  return withApi('retry', flags, env, io, async (api, out) => {
    const [runId, phaseId] = [flags.runId.trim(), flags.phaseId.trim()];
    if (!runId || !phaseId) return [`${runId ? '<phase_id>' : '<run_id>'}: must not be empty`];
    const r = await api.call(PhaseWriteResponseSchema, 'POST', `${runPath(runId)}/phases/${encodeURIComponent(phaseId)}/retry`);
    out.out(`phase ${r.phase_id} of run ${r.run_id} retried: ${r.phase_state}, ${r.attempts_left} attempts left; run ${r.run_state}`);
    return EXIT.done;
  });
}

/** `autopack report <id> [--json]`. */
export async function runReportCommand(flags: ReportFlags, env: NodeJS.ProcessEnv = process.env, io?: CliIo): Promise<number> {
  return withApi('report', flags, env, io, async (api, out) => {
    const id = flags.id.trim();
    if (!id) return ['<id>: must not be empty'];
    const summary = await api.call(RunSummaryResponseSchema, 'GET', `/reports/run_summary/${encodeURIComponent(id)}`);
    if (flags.json) out.out(JSON.stringify(summary));
    else for (const line of reportLines(summary)) out.out(line);
    return EXIT.done;
  });
}
