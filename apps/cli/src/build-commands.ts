import {
  ApproveRequestSchema,
  BuildAcceptedResponseSchema,
  BuildApproveRequestSchema,
  type BuildDropletRequest,
  BuildDropletRequestSchema,
  BuildListResponseSchema,
  type BuildStatusResponse,
  BuildStatusResponseSchema,
  NOTIFY_CHANNEL_TYPES,
  type NotifyChannel,
  NotifyChannelSchema,
  RunResponseSchema,
} from '@app/contracts';
import { AdminApi, ApiAnswerError, ApiBadAnswerError, ApiUnreachableError, displayUrl, isAbsoluteHttpUrl } from './admin-api.js';

/*
 * `autopack build`, `autopack builds` and `autopack approve`: the supervisor's droplet build
 * API (and a run's approval gate) from a terminal. Exit codes: 0 done, 1 bad usage or a 4xx
 * answer (its code and message printed), 2 the supervisor unreachable, failing (5xx) or not
 * answering as one, 3 `build --wait` saw the build fail or be cancelled.
 */

/** Where output goes; every line passes through here, so the API key can be kept out of it. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

/** The flags every admin command takes. */
export interface ApiFlags {
  apiUrl?: string;
  apiKey?: string;
}

export interface BuildFlags extends ApiFlags {
  intent: string;
  dropletId?: string;
  dropletName?: string;
  approvalMode?: string;
  auto?: boolean;
  deploy?: boolean;
  /** A string, or an array when given more than once. */
  notify?: string | readonly string[];
  wait?: boolean;
  pollInterval?: number;
  json?: boolean;
}

export interface BuildsFlags extends ApiFlags {
  status?: string;
  json?: boolean;
}

export interface ApproveFlags extends ApiFlags {
  id: string;
  reject?: boolean;
  notes?: string;
  checkpoint?: string;
}

/** Exit codes of the admin commands. */
export const EXIT = { done: 0, usage: 1, unreachable: 2, buildFailed: 3 } as const;

/** How long `build --wait` keeps polling a supervisor that stopped answering before it gives up. */
export const WAIT_UNREACHABLE_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** stdout and stderr, with `secret` (when long enough to be one) replaced by `***`. */
export function processIo(secret?: string): CliIo {
  const redact = (s: string) => (secret && secret.length >= 6 ? s.split(secret).join('***') : s);
  return {
    out: (line) => void process.stdout.write(`${redact(line)}\n`),
    err: (line) => void process.stderr.write(`${redact(line)}\n`),
  };
}

const nonEmpty = (v: string | undefined) => (v !== undefined && v.trim() !== '' ? v.trim() : undefined);

/** The client the flags and environment describe, or the usage problems that stop it. */
export function apiFrom(flags: ApiFlags, env: NodeJS.ProcessEnv): { api?: AdminApi; problems: string[]; apiKey?: string } {
  const fromFlag = flags.apiUrl !== undefined;
  const url = fromFlag ? (flags.apiUrl ?? '').trim() : (nonEmpty(env.AUTOPACK_API_URL) ?? 'http://localhost:8000');
  const apiKey = flags.apiKey !== undefined ? nonEmpty(flags.apiKey) : nonEmpty(env.AUTOPACK_API_KEY);
  if (!isAbsoluteHttpUrl(url)) return { problems: [`${fromFlag ? '--api-url' : 'AUTOPACK_API_URL'}: must be an http(s) URL`], apiKey };
  return { api: new AdminApi({ baseUrl: url, apiKey }), problems: [], apiKey };
}

/** The exit code of an error a command met, after printing it; anything else is rethrown. */
export function reported(prefix: string, io: CliIo, err: unknown): number {
  if (err instanceof ApiAnswerError) {
    io.err(`${prefix}: ${err.code}: ${err.message} (HTTP ${err.status})`);
    return err.status < 500 ? EXIT.usage : EXIT.unreachable;
  }
  if (err instanceof ApiUnreachableError || err instanceof ApiBadAnswerError) {
    io.err(`${prefix}: ${err.message}`);
    return EXIT.unreachable;
  }
  throw err;
}

/** Runs `body` with the supervisor client, turning usage problems and API errors into exit codes. */
export async function withApi(command: string, flags: ApiFlags, env: NodeJS.ProcessEnv, io: CliIo | undefined, body: (api: AdminApi, io: CliIo) => Promise<number | string[]>): Promise<number> {
  const prefix = `autopack ${command}`;
  const { api, problems, apiKey } = apiFrom(flags, env);
  const out = io ?? processIo(apiKey);
  if (!api) {
    for (const p of problems) out.err(`${prefix}: ${p}`);
    return EXIT.usage;
  }
  try {
    const result = await body(api, out);
    if (typeof result === 'number') return result;
    for (const p of result) out.err(`${prefix}: ${p}`);
    return EXIT.usage;
  } catch (err) {
    return reported(prefix, out, err);
  }
}

// ---------------------------------------------------------------- parsing the flags

/** One `--notify` value: a channel kind, or a JSON object `{type, url?, to?}`. */
export function parseNotify(value: string): { channel?: NotifyChannel; problem?: string } {
  const v = value.trim();
  let candidate: unknown = v;
  if (v.startsWith('{')) {
    try {
      candidate = JSON.parse(v);
    } catch (err) {
      return { problem: `--notify: not valid JSON (${(err as Error).message})` };
    }
  } else if (!(NOTIFY_CHANNEL_TYPES as readonly string[]).includes(v)) {
    return { problem: `--notify: must be ${NOTIFY_CHANNEL_TYPES.join(', ')} or a JSON object such as {"type":"webhook","url":"https://..."} (got ${JSON.stringify(value)})` };
  }
  const parsed = NotifyChannelSchema.safeParse(candidate);
  if (parsed.success) return { channel: parsed.data };
  const issue = parsed.error.issues[0];
  return { problem: `--notify: ${issue?.path.length ? `${issue.path.join('.')}: ` : ''}${issue?.message ?? 'invalid channel'}` };
}

/** What a request field is called on the command line. */
const FIELD_FLAGS: Readonly<Record<string, string>> = {
  architect_intent: 'the intent',
  droplet_id: '--droplet-id',
  droplet_name: '--droplet-name',
  approval_mode: '--approval-mode',
  notify_channels: '--notify',
};

/** The body of `POST /executor/build-droplet` the flags ask for, or the problems with them. */
export function buildRequestOf(flags: BuildFlags): { body?: Partial<BuildDropletRequest>; problems: string[] } {
  const problems: string[] = [];
  if (flags.auto && flags.approvalMode !== undefined && flags.approvalMode !== 'auto') problems.push(`--auto: contradicts --approval-mode ${flags.approvalMode}`);
  if (flags.pollInterval !== undefined && !(flags.pollInterval > 0)) problems.push('--poll-interval: must be a number > 0');
  const channels: NotifyChannel[] = [];
  for (const value of flags.notify === undefined ? [] : ([] as string[]).concat(flags.notify)) {
    const { channel, problem } = parseNotify(value);
    if (problem) problems.push(problem);
    else if (channel !== undefined) channels.push(channel);
  }
  const body: Partial<BuildDropletRequest> = { architect_intent: flags.intent };
  if (flags.dropletId !== undefined) body.droplet_id = flags.dropletId;
  if (flags.dropletName !== undefined) body.droplet_name = flags.dropletName;
  const mode = flags.auto ? 'auto' : flags.approvalMode;
  if (mode !== undefined) body.approval_mode = mode as BuildDropletRequest['approval_mode'];
  if (flags.deploy === false) body.auto_deploy = false;
  if (channels.length) body.notify_channels = channels;
  const checked = BuildDropletRequestSchema.safeParse(body);
  if (!checked.success) {
    for (const issue of checked.error.issues) {
      const field = String(issue.path[0] ?? '');
      problems.push(`${FIELD_FLAGS[field] ?? field}: ${issue.message}`);
    }
  }
  return problems.length ? { problems: [...new Set(problems)] } : { body, problems };
}

// ---------------------------------------------------------------- formatting

const buildPath = (id: string, action: string) => `/executor/builds/${encodeURIComponent(id)}/${action}`;

/** An absolute URL for a path the supervisor answered (URLs it gave whole are kept). */
export function absoluteUrl(base: string, pathOrUrl: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(pathOrUrl)) return pathOrUrl;
  return `${displayUrl(base)}${pathOrUrl.startsWith('/') ? '' : '/'}${pathOrUrl}`;
}

/** One line saying where a build is: `build b1: running, Build, 45%`. */
export function statusLine(s: BuildStatusResponse): string {
  const parts: string[] = [s.status === 'awaiting_approval' && s.checkpoint ? `awaiting_approval at ${s.checkpoint}` : s.status];
  if (s.current_phase) parts.push(s.current_phase);
  parts.push(`${s.progress_percent}%`);
  return `build ${s.build_id}: ${parts.join(', ')}`;
}

/** What tells two polls apart: status, step, progress, checkpoint. */
const changeKey = (s: BuildStatusResponse) => JSON.stringify([s.status, s.current_phase, s.progress_percent, s.checkpoint ?? null]);

/** How to answer a build that waits. */
export function approvalHint(s: BuildStatusResponse): string {
  return `build ${s.build_id} waits for approval at ${s.checkpoint ?? 'a checkpoint'}: approve with \`autopack approve ${s.build_id}\` (or reject with --reject)`;
}

/** An ISO time as `2026-11-30 19:12:57Z`. */
export const shortTime = (iso: string) => iso.replace('T', ' ').replace(/\.\d+(?=Z|[+-]\d\d:?\d\d$)/, '');

/** Builds as a table: id, status, current phase, progress, deployment URL, created. */
export function buildsTable(builds: readonly BuildStatusResponse[]): string[] {
  if (!builds.length) return ['no builds'];
  const rows = [
    ['ID', 'STATUS', 'CURRENT PHASE', 'PROGRESS', 'DEPLOYMENT URL', 'CREATED'],
    ...builds.map((b) => [
      b.build_id,
      b.status === 'awaiting_approval' && b.checkpoint ? `awaiting_approval (${b.checkpoint})` : b.status,
      b.current_phase ?? '-',
      `${b.progress_percent}%`,
      b.deployment_url ?? '-',
      shortTime(b.created_at),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  '));
}

// ---------------------------------------------------------------- the commands

/** `autopack build "<intent>" ...`. */
export async function runBuildCommand(flags: BuildFlags, env: NodeJS.ProcessEnv = process.env, io?: CliIo): Promise<number> {
  return withApi('build', flags, env, io, async (api, out) => {
    const { body, problems } = buildRequestOf(flags);
    if (!body) return problems;
    const accepted = await api.call(BuildAcceptedResponseSchema, 'POST', '/executor/build-droplet', body);
    if (flags.json) out.out(JSON.stringify(accepted));
    else {
      out.out(`build ${accepted.build_id} ${accepted.status}`);
      out.out(`status: ${absoluteUrl(api.base, accepted.status_url)}`);
    }
    if (!flags.wait) return EXIT.done;
    return followBuild(api, accepted.build_id, (flags.pollInterval ?? 2) * 1000, Boolean(flags.json), out);
  });
}

/**
 * Polls a build's status until it ends, printing one line (or, with `json`, one status) per
 * change; 0 when it completed, 3 when it failed or was cancelled. A supervisor that stops
 * answering (a restart) is polled on for WAIT_UNREACHABLE_MS before exit code 2.
 */
async function followBuild(api: AdminApi, id: string, intervalMs: number, json: boolean, io: CliIo): Promise<number> {
  let last = '';
  let unreachableSince: number | undefined;
  for (;;) {
    let s: BuildStatusResponse;
    try {
      s = await api.call(BuildStatusResponseSchema, 'GET', buildPath(id, 'status'));
      unreachableSince = undefined;
    } catch (err) {
      const transient = err instanceof ApiUnreachableError || (err instanceof ApiAnswerError && [502, 503, 504].includes(err.status));
      unreachableSince ??= Date.now();
      if (!transient || Date.now() - unreachableSince > WAIT_UNREACHABLE_MS) throw err;
      await sleep(intervalMs);
      continue;
    }
    const key = changeKey(s);
    if (key !== last) {
      last = key;
      if (json) io.out(JSON.stringify(s));
      else {
        io.out(statusLine(s));
        if (s.status === 'awaiting_approval') io.out(approvalHint(s));
        if (s.status === 'completed' && s.deployment_url) io.out(`deployed at ${s.deployment_url}`);
      }
    }
    if (s.status === 'completed') return EXIT.done;
    if (s.status === 'failed' || s.status === 'cancelled') {
      io.err(`autopack build: build ${id} ${s.status}${s.current_phase ? ` at ${s.current_phase}` : ''}: ${s.error ?? 'no error recorded'}`);
      return EXIT.buildFailed;
    }
    await sleep(intervalMs);
  }
}

/** `autopack builds [--status S] [--json]`. */
export async function runBuildsCommand(flags: BuildsFlags, env: NodeJS.ProcessEnv = process.env, io?: CliIo): Promise<number> {
  return withApi('builds', flags, env, io, async (api, out) => {
    const query = flags.status ? `?${new URLSearchParams({ status: flags.status })}` : '';
    const list = await api.call(BuildListResponseSchema, 'GET', `/executor/builds${query}`);
    if (flags.json) out.out(JSON.stringify(list));
    else for (const line of buildsTable(list.builds)) out.out(line);
    return EXIT.done;
  });
}

/**
 * `autopack approve <id> [--reject] [--notes T] [--checkpoint C]`: a build's gate when the id
 * names a build, else the run's (`POST /runs/{id}/approve`).
 */
export async function runApproveCommand(flags: ApproveFlags, env: NodeJS.ProcessEnv = process.env, io?: CliIo): Promise<number> {
  return withApi('approve', flags, env, io, async (api, out) => {
    const id = flags.id.trim();
    if (!id) return ['<id>: must not be empty'];
    const approved = !flags.reject;
    const verb = approved ? 'approved' : 'rejected';
    const probe = await api.send('GET', buildPath(id, 'status'));
    if (probe.status !== 404) {
      api.parse(BuildStatusResponseSchema, probe, `GET ${buildPath(id, 'status')}`);
      const body = BuildApproveRequestSchema.safeParse({ approved, notes: flags.notes, checkpoint: flags.checkpoint });
      if (!body.success) return body.error.issues.map((i) => `--${String(i.path[0] ?? 'notes')}: ${i.message}`);
      const answer = await api.send('POST', buildPath(id, 'approve'), body.data);
      if (answer.status >= 400) api.parse(BuildStatusResponseSchema, answer, `POST ${buildPath(id, 'approve')}`);
      // The answer is the build's status; should it be anything else, ask for the status.
      const now = BuildStatusResponseSchema.safeParse(answer.body);
      const status = now.success ? now.data : await api.call(BuildStatusResponseSchema, 'GET', buildPath(id, 'status'));
      out.out(`build ${id} ${verb}${flags.checkpoint ? ` at ${flags.checkpoint}` : ''}`);
      out.out(statusLine(status));
      return EXIT.done;
    }
    const body = ApproveRequestSchema.safeParse({ approved, notes: flags.notes });
    if (!body.success) return body.error.issues.map((i) => `--${String(i.path[0] ?? 'notes')}: ${i.message}`);
    if (flags.checkpoint !== undefined) out.err(`autopack approve: --checkpoint ignored: ${id} is a run, not a build`);
    const run = await api.call(RunResponseSchema, 'POST', `/runs/${encodeURIComponent(id)}/approve`, body.data);
    out.out(`run ${run.run_id} ${verb}`);
    out.out(`run ${run.run_id}: ${run.state} (approval ${run.approval_state})`);
    return EXIT.done;
  });
}
