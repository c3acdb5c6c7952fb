import {
  type BuildAcceptedResponse,
  BuildAcceptedResponseSchema,
  BuildApproveRequestSchema,
  BuildDropletRequestSchema,
  BuildListResponseSchema,
  type BuildStatusResponse,
  BuildStatusResponseSchema,
  type ErrorBody,
  type RunResponse,
  RunResponseSchema,
} from '@app/contracts';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Finished, runCli } from '../support/processes.js';

/**
 * `autopack build`, `builds` and `approve` (CONTRACT.md sections 8 and 10), through the built
 * CLI (`node bin/autopack.js ...`) against a fake supervisor served here: only the build
 * routes and the run approval route, answering what the contract schemas describe, and
 * recording every request with its headers and body.
 */

const API_KEY = 'sekret-key-7f3a9c1e';
const T0 = '2026-11-30T12:00:00.000Z';

interface Received {
  method: string;
  url: string;
  apiKey: string | undefined;
  body: unknown;
}

const received: Received[] = [];
let server: Server;
let url: string;

/** A build status answer, valid against BuildStatusResponseSchema. */
function status(id: string, over: Partial<BuildStatusResponse> = {}): BuildStatusResponse {
  return BuildStatusResponseSchema.parse({
    build_id: id,
    droplet_id: id,
    droplet_name: null,
    status: 'queued',
    current_phase: null,
    progress_percent: 0,
    estimated_time_remaining: 600,
    phases: [],
    created_at: T0,
    completed_at: null,
    ...over,
  });
}

/** What each build's status polls answer, in turn (the last one stays). */
const scripts: Record<string, BuildStatusResponse[]> = {
  'b-ok': [
    status('b-ok'),
    status('b-ok', { status: 'running', current_phase: 'SPEC Generation', progress_percent: 5 }),
    // The same again: no new line.
    status('b-ok', { status: 'running', current_phase: 'SPEC Generation', progress_percent: 5 }),
    status('b-ok', { status: 'awaiting_approval', current_phase: 'SPEC Generation', checkpoint: 'spec_generated', progress_percent: 17 }),
    status('b-ok', { status: 'running', current_phase: 'Build', progress_percent: 50 }),
    status('b-ok', { status: 'completed', progress_percent: 100, deployment_url: 'https://ok.example/app', completed_at: '2026-11-30T12:10:00.000Z' }),
  ],
  'b-bad': [
    status('b-bad', { status: 'running', current_phase: 'Verify', progress_percent: 60 }),
    status('b-bad', { status: 'failed', current_phase: 'Verify', progress_percent: 66, error: 'npm test failed 3 times' }),
  ],
  'b-wait': [status('b-wait', { status: 'awaiting_approval', current_phase: 'Verify', checkpoint: 'built', progress_percent: 67 })],
  'b-done': [status('b-done', { status: 'completed', progress_percent: 100, deployment_url: 'https://done.example', completed_at: T0 })],
};
const polls: Record<string, number> = {};

/** A run waiting for approval, valid against RunResponseSchema. */
const run = (approved: boolean): RunResponse =>
  RunResponseSchema.parse({
    id: 'run-1',
    run_id: 'run-1',
    state: approved ? 'DONE_SUCCESS' : 'DONE_FAILED_REQUIRES_HUMAN_REVIEW',
    safety_profile: 'normal',
    run_scope: 'multi_tier',
    approval_mode: 'final',
    base_branch: 'main',
    integration_branch: 'autonomous/run-1',
    repo_url: null,
    created_at: T0,
    started_at: T0,
    completed_at: T0,
    tokens_used: 0,
    token_cap: 5_000_000,
    ci_runs_used: 0,
    minor_issues_count: 0,
    major_issues_count: 0,
    max_minor_issues_total: 3,
    promotion_eligible_to_main: 'no',
    promotion_eligible: false,
    approval_state: approved ? 'approved' : 'rejected',
    project_id: 'p',
    max_parallel_phases: 1,
    debt_status: null,
    failure_reason: null,
    budgets: {
      tokens_used: 0, token_cap: 5_000_000, tokens_left: 5_000_000, cost_used_usd: 0, cost_cap_usd: null, cost_left_usd: null,
      phases: 1, max_phases: 25, ci_runs_used: 0, minor_issues_count: 0, max_minor_issues_total: 3, elapsed_minutes: 1, max_duration_minutes: 120, minutes_left: 119,
    },
    tiers: [],
    phases: [],
  });

const error = (code: string, message: string): ErrorBody => ({ error: { code, message } });

function send(res: ServerResponse, code: number, body: unknown) {
  res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : undefined;
}

/** The fake supervisor's routes. */
async function handle(req: IncomingMessage, res: ServerResponse) {
  const body = await readBody(req);
  const apiKey = req.headers['x-api-key'] as string | undefined;
  received.push({ method: req.method!, url: req.url!, apiKey, body });
  // Echoing the key is what a supervisor must never do; here it shows the CLI would not print it anyway.
  if (apiKey !== API_KEY) return send(res, 401, error('UNAUTHORIZED', `missing or wrong API key (got ${apiKey})`));
  const u = new URL(req.url!, 'http://x');
  const m = /^\/executor\/builds\/([^/]+)\/(status|approve)$/.exec(u.pathname);
  if (req.method === 'POST' && u.pathname === '/executor/build-droplet') {
    const parsed = BuildDropletRequestSchema.safeParse(body);
    if (!parsed.success) return send(res, 422, error('VALIDATION_FAILED', parsed.error.issues[0].message));
    const id = parsed.data.droplet_id ?? 'b-new';
    if (id === 'b-taken') return send(res, 409, error('RUN_EXISTS', `run ${id} already exists`));
    const accepted: BuildAcceptedResponse = { build_id: id, status: 'queued', estimated_completion: T0, stream_url: `/executor/builds/${id}/stream`, status_url: `/executor/builds/${id}/status` };
    return send(res, 202, BuildAcceptedResponseSchema.parse(accepted));
  }
  if (req.method === 'GET' && u.pathname === '/executor/builds') {
    const wanted = u.searchParams.get('status');
    const builds = Object.values(scripts)
      .map((s) => s[s.length - 1])
      .filter((b) => !wanted || b.status === wanted);
    return send(res, 200, BuildListResponseSchema.parse({ builds }));
  }
  if (m && req.method === 'GET' && m[2] === 'status') {
    const script = scripts[m[1]];
    if (!script) return send(res, 404, error('NOT_FOUND', `build ${m[1]} not found`));
    const i = Math.min(polls[m[1]] ?? 0, script.length - 1);
    polls[m[1]] = i + 1;
    return send(res, 200, script[i]);
  }
  if (m && req.method === 'POST' && m[2] === 'approve') {
    const parsed = BuildApproveRequestSchema.safeParse(body);
    if (!parsed.success) return send(res, 422, error('VALIDATION_FAILED', parsed.error.issues[0].message));
    const current = scripts[m[1]]?.at(-1);
    if (!current) return send(res, 404, error('NOT_FOUND', `build ${m[1]} not found`));
    if (current.status !== 'awaiting_approval' || (parsed.data.checkpoint && parsed.data.checkpoint !== current.checkpoint)) {
      return send(res, 409, error('INVALID_TRANSITION', `build ${m[1]} is not waiting for approval${parsed.data.checkpoint ? ` at ${parsed.data.checkpoint}` : ''}`));
    }
    const next = parsed.data.approved ? status(m[1], { status: 'running', current_phase: 'Deploy', progress_percent: 70 }) : status(m[1], { status: 'failed', current_phase: 'Verify', progress_percent: 67, error: 'rejected' });
    return send(res, 200, next);
  }
  if (req.method === 'POST' && u.pathname === '/runs/run-1/approve') {
    return send(res, 200, run((body as { approved: boolean }).approved));
  }
  return send(res, 404, error('ROUTE_NOT_FOUND', `no route ${req.method} ${u.pathname}`));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    handle(req, res).catch((err) => send(res, 500, error('INTERNAL_ERROR', String(err))));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});
beforeEach(() => {
  received.length = 0;
});

const lines = (text: string) => text.split('\n').filter((l) => l.trim());
/** Every CLI run here: the key is never printed, whatever the outcome. */
async function autopack(args: string[], env: NodeJS.ProcessEnv = { AUTOPACK_API_URL: url, AUTOPACK_API_KEY: API_KEY }): Promise<Finished> {
  const r = await runCli(args, { PATH: process.env.PATH, ...env }, 15_000).done;
  expect(r.stdout + r.stderr).not.toContain(API_KEY);
  return r;
}
const sent = (method: string, path: string) => received.filter((r) => r.method === method && r.url === path);

describe('autopack build', () => {
  it('POSTs the intent with the flags as the contract names them, sends the key as X-API-Key, prints id and status URL', async () => {
    const r = await autopack([
      'build', 'A URL shortener', '--droplet-id', 'b-new', '--droplet-name', 'Shortener', '--approval-mode', 'checkpoints', '--no-deploy',
      '--notify', 'slack', '--notify', '{"type":"webhook","url":"https://hooks.example/x"}',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(sent('POST', '/executor/build-droplet').map((q) => q.body)).toEqual([
      {
        architect_intent: 'A URL shortener',
        droplet_id: 'b-new',
        droplet_name: 'Shortener',
        approval_mode: 'checkpoints',
        auto_deploy: false,
        notify_channels: ['slack', { type: 'webhook', url: 'https://hooks.example/x' }],
      },
    ]);
    expect(received.map((q) => q.apiKey)).toEqual([API_KEY]);
    expect(lines(r.stdout)).toEqual(['build b-new queued', `status: ${url}/executor/builds/b-new/status`]);
  });

  it('--auto is approval_mode auto; the defaults are left to the supervisor; --json prints the raw 202 answer; --api-key wins', async () => {
    const r = await autopack(['build', 'x', '--auto', '--json', '--api-key', API_KEY], { AUTOPACK_API_URL: url, AUTOPACK_API_KEY: 'other-key-123' });
    expect(r.code).toBe(0);
    expect(sent('POST', '/executor/build-droplet').map((q) => q.body)).toEqual([{ architect_intent: 'x', approval_mode: 'auto' }]);
    expect(received[0].apiKey).toBe(API_KEY);
    expect(JSON.parse(r.stdout)).toEqual({ build_id: 'b-new', status: 'queued', estimated_completion: T0, stream_url: '/executor/builds/b-new/stream', status_url: '/executor/builds/b-new/status' });
  });

  it('bad flags are exit 1 and nothing is sent', async () => {
    const r = await autopack(['build', 'x', '--notify', 'pager', '--notify', '{"type":"webhook","url":"ftp://x"}', '--approval-mode', 'sometimes']);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual(['autopack build: --approval-mode: must be one of auto, checkpoints, final (got "sometimes")']);
    const notify = await autopack(['build', 'x', '--notify', 'pager', '--notify', '{"type":"webhook","url":"ftp://x"}']);
    expect(notify.code).toBe(1);
    expect(lines(notify.stderr)).toEqual([
      expect.stringMatching(/^autopack build: --notify: must be slack, email, webhook or a JSON object .*\(got "pager"\)$/),
      expect.stringMatching(/^autopack build: --notify: url: /),
    ]);
    const missing = await autopack(['build']);
    expect(missing.code).toBe(1);
    expect(lines(missing.stderr)).toEqual(['autopack build: missing <intent>']);
    expect(received).toEqual([]);
  });

  it('a 409 prints its code and message and exits 1', async () => {
    const r = await autopack(['build', 'again', '--droplet-id', 'b-taken']);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual(['autopack build: RUN_EXISTS: run b-taken already exists (HTTP 409)']);
    expect(r.stdout).toBe('');
  });

  it('--wait prints one line per change, says how to approve, and exits 0 on completed', async () => {
    polls['b-ok'] = 0;
    const r = await autopack(['build', 'ok', '--droplet-id', 'b-ok', '--wait', '--poll-interval', '0.05']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual([
      'build b-ok queued',
      `status: ${url}/executor/builds/b-ok/status`,
      'build b-ok: queued, 0%',
      'build b-ok: running, SPEC Generation, 5%',
      'build b-ok: awaiting_approval at spec_generated, SPEC Generation, 17%',
      'build b-ok waits for approval at spec_generated: approve with `autopack approve b-ok` (or reject with --reject)',
      'build b-ok: running, Build, 50%',
      'build b-ok: completed, 100%',
      'deployed at https://ok.example/app',
    ]);
    expect(sent('GET', '/executor/builds/b-ok/status')).toHaveLength(6);
  });

  it('--wait exits 3 on failed, printing the error', async () => {
    polls['b-bad'] = 0;
    const r = await autopack(['build', 'bad', '--droplet-id', 'b-bad', '--wait', '--poll-interval', '0.05']);
    expect(r.code).toBe(3);
    expect(lines(r.stdout).slice(2)).toEqual(['build b-bad: running, Verify, 60%', 'build b-bad: failed, Verify, 66%']);
    expect(lines(r.stderr)).toEqual(['autopack build: build b-bad failed at Verify: npm test failed 3 times']);
  });
});

describe('autopack builds', () => {
  it('prints a table: id, status, current phase, progress, deployment URL, created', async () => {
    const r = await autopack(['builds']);
    expect(r.code).toBe(0);
    const [head, ...rows] = lines(r.stdout);
    expect(head.split(/\s{2,}/)).toEqual(['ID', 'STATUS', 'CURRENT PHASE', 'PROGRESS', 'DEPLOYMENT URL', 'CREATED']);
    expect(rows.map((row) => row.split(/\s{2,}/))).toEqual([
      ['b-ok', 'completed', '-', '100%', 'https://ok.example/app', '2026-11-30 12:00:00Z'],
      ['b-bad', 'failed', 'Verify', '66%', '-', '2026-11-30 12:00:00Z'],
      ['b-wait', 'awaiting_approval (built)', 'Verify', '67%', '-', '2026-11-30 12:00:00Z'],
      ['b-done', 'completed', '-', '100%', 'https://done.example', '2026-11-30 12:00:00Z'],
    ]);
  });

  it('--status filters on the server; --json prints the answer', async () => {
    const r = await autopack(['builds', '--status', 'failed', '--json']);
    expect(r.code).toBe(0);
    expect(received.map((q) => `${q.method} ${q.url}`)).toEqual(['GET /executor/builds?status=failed']);
    const list = BuildListResponseSchema.parse(JSON.parse(r.stdout));
    expect(list.builds.map((b) => b.build_id)).toEqual(['b-bad']);
  });
});

describe('autopack approve', () => {
  it('a build: POST /executor/builds/{id}/approve with checkpoint and notes, prints the new status', async () => {
    const r = await autopack(['approve', 'b-wait', '--checkpoint', 'built', '--notes', 'looks good']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(received.map((q) => `${q.method} ${q.url}`)).toEqual(['GET /executor/builds/b-wait/status', 'POST /executor/builds/b-wait/approve']);
    expect(received[1].body).toEqual({ approved: true, notes: 'looks good', checkpoint: 'built' });
    expect(lines(r.stdout)).toEqual(['build b-wait approved at built', 'build b-wait: running, Deploy, 70%']);
  });

  it('a 409 (the build is not waiting there) prints code and message and exits 1', async () => {
    const r = await autopack(['approve', 'b-done', '--reject']);
    expect(r.code).toBe(1);
    expect(sent('POST', '/executor/builds/b-done/approve').map((q) => q.body)).toEqual([{ approved: false }]);
    expect(lines(r.stderr)).toEqual(['autopack approve: INVALID_TRANSITION: build b-done is not waiting for approval (HTTP 409)']);
    expect(r.stdout).toBe('');
  });

  it('not a build (404): falls back to the run route POST /runs/{id}/approve', async () => {
    const r = await autopack(['approve', 'run-1', '--reject', '--notes', 'not this way']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(received.map((q) => `${q.method} ${q.url}`)).toEqual(['GET /executor/builds/run-1/status', 'POST /runs/run-1/approve']);
    expect(received[1].body).toEqual({ approved: false, notes: 'not this way' });
    expect(lines(r.stdout)).toEqual(['run run-1 rejected', 'run run-1: DONE_FAILED_REQUIRES_HUMAN_REVIEW (approval rejected)']);
  });

  it('a wrong key is a 401: exit 1, and the key is not printed even when the answer quotes it', async () => {
    const r = await autopack(['approve', 'b-wait', '--api-key', 'wrong-key-42'], { AUTOPACK_API_URL: url });
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual(['autopack approve: UNAUTHORIZED: missing or wrong API key (got ***) (HTTP 401)']);
    expect(r.stdout + r.stderr).not.toContain('wrong-key-42');
    expect(received.map((q) => q.apiKey)).toEqual(['wrong-key-42']);
  });
});

describe('nothing listening', () => {
  it('each command exits 2 and says the supervisor is unreachable at the URL', async () => {
    // A port that was free a moment ago.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const dead = `http://127.0.0.1:${port}`;
    for (const args of [['build', 'x', '--wait'], ['builds'], ['approve', 'b-1']]) {
      const r = await autopack([...args, '--api-url', dead], { AUTOPACK_API_KEY: API_KEY });
      expect(r.code).toBe(2);
      expect(lines(r.stderr)).toEqual([`autopack ${args[0]}: supervisor unreachable at ${dead} (ECONNREFUSED)`]);
    }
  });
});
