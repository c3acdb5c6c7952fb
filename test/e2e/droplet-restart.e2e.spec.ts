import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { headCommit } from '@app/git';
import { type LlmScriptInput, startScriptedLlmServer } from '@app/testing';
import { DROPLET_INTENT, dropletScript } from '../../apps/cli/src/demo-droplet.js';
import { type TestDatabase, createTestDatabase } from '../support/database.js';
import { dropletHooks, emptyRepository, executorEnv, startBuildExecutor, startDropletTargets, waitForBuild } from '../support/droplet.js';
import { type HookTarget, freePort, startHookTarget, startSmtpTarget } from '../support/hook-target.js';
import { type Finished, runCli } from '../support/processes.js';
import { http } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';

/**
 * Issue 13, "Done when": a droplet build survives its supervisor being SIGKILLed (a separate
 * process, started again on the same port and database) during Build and during Deploy, with
 * each hook having its effect once; and the `completed` notification reaches every channel,
 * also when the supervisor dies while a webhook delivery is waiting to be retried.
 */

/** How long the scripted builder takes to answer: the supervisor is killed meanwhile. */
const BUILDER_DELAY_MS = 4000;
/** How long the deploy target takes to answer: the supervisor is killed meanwhile. */
const DEPLOY_DELAY_MS = 3000;

interface SupervisorProcess {
  child: ChildProcess;
  done: Promise<Finished>;
}

/** What each test started, stopped after it whatever happened. */
let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

/** A scratch directory, a scratch database and a free port for one test's supervisor. */
async function scratch() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-droplet-restart-'));
  cleanups.push(async () => rmSync(tmp, { recursive: true, force: true }));
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  const port = await freePort();
  return { tmp, db, port, api: `http://127.0.0.1:${port}` };
}

/** The supervisor's environment: quick queue polling and maintenance, quick delivery retries. */
function supervisorEnv(db: TestDatabase, port: number, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    DATABASE_URL: db.url,
    PORT: String(port),
    HOST: '127.0.0.1',
    AUTOPACK_LEASE_SECONDS: '20',
    AUTOPACK_LOG_LEVEL: 'warn',
    AUTOPACK_QUEUE_POLL_SECONDS: '0.5',
    AUTOPACK_QUEUE_MAINTENANCE_SECONDS: '1',
    AUTOPACK_DELIVERY_RETRY_DELAY_SECONDS: '1',
    ...extra,
  };
}

/** Starts the supervisor as its own process and waits until it is healthy. */
async function startSupervisor(env: NodeJS.ProcessEnv, api: string): Promise<SupervisorProcess> {
  const s = runCli(['supervisor'], env, 240_000);
  cleanups.push(async () => {
    s.child.kill('SIGKILL');
    await s.done;
  });
  let exited: Finished | undefined;
  void s.done.then((f) => (exited = f));
  const up = await waitFor('supervisor health', async () => (exited ? 'exited' : (await http(api, 'GET', '/health')).status === 200 ? 'up' : undefined), { timeoutMs: 60_000 });
  if (up === 'exited') throw new Error(`supervisor exited ${exited!.code}: ${exited!.stderr.slice(-2000)}`);
  return s;
}

/** SIGKILLs the supervisor and waits until it is gone. */
async function killSupervisor(s: SupervisorProcess): Promise<void> {
  s.child.kill('SIGKILL');
  const f = await s.done;
  expect({ code: f.code, signal: s.child.signalCode }).toEqual({ code: null, signal: 'SIGKILL' });
}

/** The droplet script with a slow builder reply. */
function slowBuilderScript(): LlmScriptInput {
  const script = dropletScript();
  return { replies: script.replies.map((r) => (r.tool === 'submit_changes' ? { ...r, delay_ms: BUILDER_DELAY_MS } : r)) };
}

/** A build's executor (kept waiting for the supervisor across its restart), stopped after the test. */
function startExecutor(buildId: string, repo: string, api: string, tmp: string, llm: { openaiBaseUrl: string; anthropicBaseUrl: string }) {
  const e = startBuildExecutor(buildId, repo, api, { ...executorEnv(tmp, llm), AUTOPACK_SUPERVISOR_RETRY_SECONDS: '120' });
  cleanups.push(async () => {
    e.child.kill('SIGKILL');
    await e.done;
  });
  return e;
}

/** Hooks on a local target: a deploy answering `{url}` (after `deployDelayMs`), a health check and a register, all recorded. */
async function startHooks(deployDelayMs: number): Promise<{ target: HookTarget; hooks: Record<string, unknown>; serviceUrl: () => string }> {
  let base = '';
  const target = await startHookTarget((req) => (req.url.startsWith('/deploy') ? { delayMs: deployDelayMs, json: { url: `${base}/service`, deployment_id: 'd-1' } } : {}));
  base = target.url;
  cleanups.push(() => target.close());
  const body = { build_id: '{{build_id}}', commit_sha: '{{commit_sha}}' };
  return {
    target,
    serviceUrl: () => `${base}/service`,
    hooks: {
      deploy: { url: `${base}/deploy`, body, timeout_s: 5, retries: 3 },
      health_check: { url: `${base}/service/health`, expect_status: 200, timeout_s: 10 },
      register: { url: `${base}/register`, body: { ...body, deployment_url: '{{deployment_url}}' }, retries: 3 },
    },
  };
}

const ALL_STEPS_COMPLETED = [1, 2, 3, 4, 5, 6].map((step) => [step, 'completed']);
const stepsOf = (status: { phases: { step: number; status: string }[] }) => status.phases.map((p) => [p.step, p.status]);

describe('a droplet build across supervisor SIGKILLs (separate supervisor process, same port and database)', () => {
  it('killed during Build: the build completes, deployed once and registered once', async () => {
    const { tmp, db, port, api } = await scratch();
    const repo = await emptyRepository(path.join(tmp, 'repo'));
    const llm = await startScriptedLlmServer({ script: slowBuilderScript() });
    cleanups.push(() => llm.close());
    const targets = await startDropletTargets(tmp, [repo]);
    cleanups.push(() => targets.close());
    const env = supervisorEnv(db, port);
    const sup = await startSupervisor(env, api);

    const id = 'restart-build';
    const accepted = await http(api, 'POST', '/executor/build-droplet', { architect_intent: DROPLET_INTENT, droplet_id: id, ...dropletHooks(targets, repo) });
    expect(accepted.status).toBe(202);
    const executor = startExecutor(id, repo, api, tmp, llm);

    // Step 3 running, the builder's call in flight (its reply is held BUILDER_DELAY_MS).
    const during = await waitFor(
      'Build with the builder call in flight',
      async () => {
        const s = (await http(api, 'GET', `/executor/builds/${id}/status`)).body;
        return s?.current_phase === 'Build' && llm.requestsFor('submit_changes').length > 0 ? s : undefined;
      },
      { timeoutMs: 120_000, everyMs: 100 },
    );
    await killSupervisor(sup);
    expect(stepsOf(during)).toEqual([
      [1, 'completed'],
      [2, 'completed'],
      [3, 'running'],
      [4, 'pending'],
      [5, 'pending'],
      [6, 'pending'],
    ]);
    expect(targets.deployer.deployments()).toEqual([]);
    await sleep(1000);
    await startSupervisor(env, api);

    const done = await waitForBuild(api, id, ['completed', 'failed', 'cancelled'], 150_000);
    const exit = await executor.done;
    expect({ status: done.status, error: done.error ?? null, exit: exit.code, stderr: exit.code === 0 ? '' : exit.stderr.slice(-3000) }).toEqual({ status: 'completed', error: null, exit: 0, stderr: '' });
    expect(stepsOf(done)).toEqual(ALL_STEPS_COMPLETED);

    // One deployment of the promoted head, one registry entry, and the service answers.
    const head = await headCommit(repo, `autonomous/${id}`);
    expect(await headCommit(repo, 'main')).toBe(head);
    expect(targets.deployer.deployments().map((d) => [d.build_id, d.commit_sha, d.status])).toEqual([[id, head, 'running']]);
    expect(done.deployment_url).toBe(targets.deployer.deployments()[0].url);
    expect((await fetch(`${done.deployment_url}/health`)).status).toBe(200);
    expect(targets.registry.entries().map((e) => [e.build_id, e.commit_sha, e.deployment_url])).toEqual([[id, head, done.deployment_url]]);
    // Each hook delivered once, at its first attempt.
    const deliveries = await db.query<{ kind: string; state: string; attempts: number }>(`SELECT kind, state, attempts FROM deliveries WHERE subject_id = $1 AND step = 'g0' ORDER BY created_at`, [id]);
    expect(deliveries.map((d) => [d.kind, d.state, d.attempts])).toEqual([
      ['deploy', 'delivered', 1],
      ['health_check', 'delivered', 1],
      ['register', 'delivered', 1],
    ]);
  }, 180_000);

  it('killed while the deploy request is in flight: the build completes, one deploy (by Idempotency-Key), register called once', async () => {
    const { tmp, db, port, api } = await scratch();
    const repo = await emptyRepository(path.join(tmp, 'repo'));
    const llm = await startScriptedLlmServer({ script: dropletScript() });
    cleanups.push(() => llm.close());
    const { target, hooks, serviceUrl } = await startHooks(DEPLOY_DELAY_MS);
    const env = supervisorEnv(db, port);
    const sup = await startSupervisor(env, api);

    const id = 'restart-deploy';
    expect((await http(api, 'POST', '/executor/build-droplet', { architect_intent: DROPLET_INTENT, droplet_id: id, ...hooks })).status).toBe(202);
    const executor = startExecutor(id, repo, api, tmp, llm);

    // The deploy request arrived; its answer is held DEPLOY_DELAY_MS: kill the supervisor now.
    const first = await waitFor('the deploy request', async () => target.to('/deploy')[0], { timeoutMs: 150_000, everyMs: 50 });
    await killSupervisor(sup);
    const killedAt = Date.now();
    expect(killedAt - first.at).toBeLessThan(DEPLOY_DELAY_MS);
    expect(target.to('/register')).toEqual([]);
    await sleep(1000);
    await startSupervisor(env, api);

    // The cut-off attempt's job stays active until its expiry (the hook's timeout_s + 60 s,
    // DeliveryService's margin against calling twice), then the queue retries it: about 65 s.
    const done = await waitForBuild(api, id, ['completed', 'failed', 'cancelled'], 150_000);
    const exit = await executor.done;
    expect({ status: done.status, error: done.error ?? null, exit: exit.code }).toEqual({ status: 'completed', error: null, exit: 0 });
    expect(stepsOf(done)).toEqual(ALL_STEPS_COMPLETED);
    expect(done.deployment_url).toBe(serviceUrl());

    // Every deploy request (the cut-off one and its repeat) carries one Idempotency-Key: one deployment.
    const head = await headCommit(repo, 'main');
    const deploys = target.to('/deploy');
    const keys = new Set(deploys.map((r) => r.headers['idempotency-key']));
    expect([...keys]).toEqual([`${id}/g0/deploy`]);
    expect(deploys.map((r) => r.body)).toEqual(deploys.map(() => ({ build_id: id, commit_sha: head })));
    // The cut-off attempt is recorded without an outcome; a later one delivered.
    const attempts = await db.query<{ attempt: number; outcome: string | null }>(`SELECT attempt, outcome FROM delivery_attempts WHERE subject_id = $1 AND kind = 'deploy' ORDER BY attempt`, [id]);
    expect(attempts[0]).toEqual({ attempt: 1, outcome: null });
    expect(attempts.at(-1)!.outcome).toBe('succeeded');
    // Register called exactly once, after the deploy, with its URL.
    expect(target.to('/register').map((r) => r.body)).toEqual([{ build_id: id, commit_sha: head, deployment_url: serviceUrl() }]);
  }, 180_000);

  it('notifies completed on webhook, slack and email; a webhook delivery pending across a SIGKILL is still delivered', async () => {
    const { tmp, db, port, api } = await scratch();
    const repo = await emptyRepository(path.join(tmp, 'repo'));
    const llm = await startScriptedLlmServer({ script: dropletScript() });
    cleanups.push(() => llm.close());
    const { hooks, serviceUrl } = await startHooks(0);
    // The webhook answers 500 until the supervisor has been killed.
    let failing = true;
    const answered: { status: number; at: number }[] = [];
    const webhook = await startHookTarget(() => {
      const status = failing ? 500 : 200;
      answered.push({ status, at: Date.now() });
      return { status };
    });
    cleanups.push(() => webhook.close());
    const slack = await startHookTarget();
    cleanups.push(() => slack.close());
    const smtp = await startSmtpTarget();
    cleanups.push(() => smtp.close());
    const env = supervisorEnv(db, port, {
      AUTOPACK_SMTP_URL: smtp.url,
      AUTOPACK_NOTIFY_EMAIL: 'ops@example.com',
      AUTOPACK_NOTIFY_FROM: 'Autopack <autopack@example.com>',
      // A failed attempt waits at least this long before its retry: the kill lands in between.
      AUTOPACK_DELIVERY_RETRY_DELAY_SECONDS: '3',
    });
    const sup = await startSupervisor(env, api);

    const id = 'restart-notify';
    const channels = [{ type: 'webhook', url: `${webhook.url}/hook` }, { type: 'slack', url: `${slack.url}/services/T0/B0/secret` }, 'email'];
    expect((await http(api, 'POST', '/executor/build-droplet', { architect_intent: DROPLET_INTENT, droplet_id: id, notify_channels: channels, ...hooks })).status).toBe(202);
    const executor = startExecutor(id, repo, api, tmp, llm);
    const done = await waitForBuild(api, id, ['completed', 'failed', 'cancelled'], 150_000);
    expect({ status: done.status, error: done.error ?? null }).toEqual({ status: 'completed', error: null });
    expect((await executor.done).code).toBe(0);

    // Slack and email get the completed notification.
    const slackPosts = await waitFor('the slack notification', async () => (slack.to('/services/T0/B0/secret').length > 0 ? slack.to('/services/T0/B0/secret') : undefined), { timeoutMs: 30_000 });
    expect(slackPosts.map((r) => r.body)).toEqual([{ text: `Autopack build ${id} completed: ${serviceUrl()}` }]);
    const mails = await waitFor('the email notification', async () => (smtp.received.length > 0 ? smtp.received : undefined), { timeoutMs: 30_000 });
    expect(mails.map((m) => [m.from, m.to])).toEqual([['autopack@example.com', ['ops@example.com']]]);
    expect(mails[0].data).toContain(`Subject: Autopack build ${id} completed`);
    expect(mails[0].data).toContain(`deployment_url: ${serviceUrl()}`);

    // The webhook's first attempt failed (500) and its retry waits in the queue: kill the supervisor then.
    const pendingRetry = async () => {
      const rows = await db.query<{ state: string; attempts: number; job_state: string | null }>(
        `SELECT d.state, d.attempts, j.state AS job_state FROM deliveries d LEFT JOIN pgboss.job j ON j.id = d.job_id WHERE d.subject_id = $1 AND d.kind LIKE 'webhook:%'`,
        [id],
      );
      return rows.length === 1 && rows[0].state === 'pending' && rows[0].attempts >= 1 && rows[0].job_state === 'retry' ? rows[0] : undefined;
    };
    await waitFor('the failed webhook attempt waiting for its retry', pendingRetry, { timeoutMs: 30_000, everyMs: 50 });
    await killSupervisor(sup);
    expect(await pendingRetry()).toBeDefined();
    const failedBefore = answered.length;
    expect(failedBefore).toBeGreaterThanOrEqual(1);
    expect(answered.every((a) => a.status === 500)).toBe(true);
    failing = false;
    await sleep(1000);
    const restartedAt = Date.now();
    await startSupervisor(env, api);

    // Delivered by the restarted supervisor: the webhook body, one Idempotency-Key over every attempt.
    await waitFor('the webhook notification delivered', async () => (answered.some((a) => a.status === 200) ? true : undefined), { timeoutMs: 60_000 });
    expect(answered.slice(failedBefore).map((a) => a.status)).toEqual([200]);
    expect(answered[failedBefore].at).toBeGreaterThan(restartedAt);
    const posts = webhook.to('/hook');
    expect(posts.map((r) => r.body)).toEqual(posts.map(() => ({ event: 'completed', build_id: id, status: 'completed', deployment_url: serviceUrl() })));
    expect(new Set(posts.map((r) => r.headers['idempotency-key'])).size).toBe(1);
    const row = await waitFor('the webhook delivery settled', async () => {
      const [d] = await db.query<{ state: string; attempts: number }>(`SELECT state, attempts FROM deliveries WHERE subject_id = $1 AND kind LIKE 'webhook:%'`, [id]);
      return d?.state === 'pending' ? undefined : d;
    });
    expect(row).toEqual({ state: 'delivered', attempts: failedBefore + 1 });
    // Nothing else was notified twice.
    expect(slack.received).toHaveLength(1);
    expect(smtp.received).toHaveLength(1);
  }, 180_000);
});
