import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createSampleRepository, worktreeChanges } from '@app/git';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { type EmbeddedPostgresHandle, findFreePort, startEmbeddedPostgres } from '../../apps/supervisor/src/database/embedded-postgres.js';
import { gitFsck, pathWithoutGit, runCli } from '../support/processes.js';
import { http } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { commitsByPhase, countDoubleClaims, notesPlan, notesScript, recordReliability } from './harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let tmp: string;
let db: EmbeddedPostgresHandle | undefined;
let llm: ScriptedLlmServer | undefined;
const children: { kill: (s: NodeJS.Signals) => boolean }[] = [];

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-restarts-'));
  // The embedded cluster runs as the unprivileged postgres user when tests run as root.
  chmodSync(tmp, 0o755);
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await llm?.close();
  await db?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('restarts mid-run', () => {
  it('a supervisor restart and a PostgreSQL restart lose no phase and no usage', async () => {
    // A dedicated embedded cluster: this test restarts it, which a shared server must not suffer.
    const pgDir = path.join(tmp, 'pg');
    db = await startEmbeddedPostgres({ dir: pgDir, database: 'restarts', fast: true });
    const pgPort = db.port;
    const port = await findFreePort();
    const api = `http://127.0.0.1:${port}`;
    const supervisorEnv = { PATH: process.env.PATH, DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', AUTOPACK_LEASE_SECONDS: '30', AUTOPACK_LOG_LEVEL: 'warn' };
    const startSupervisor = async () => {
      const s = runCli(['supervisor'], supervisorEnv, 300_000);
      children.push(s.child);
      await waitFor('supervisor health', async () => ((await http(api, 'GET', '/health')).status === 200 ? true : undefined));
      return s;
    };
    let supervisor = await startSupervisor();

    const runId = 'restarts';
    const n = 12;
    llm = await startScriptedLlmServer({ script: notesScript([runId], n) });
    // Slow the builder a little so the restarts land mid-run.
    llm.setScript({ replies: notesScript([runId], n).replies.map((r) => (r.tool === 'submit_changes' ? { ...r, delay_ms: 150 } : r)) });
    const repo = path.join(tmp, 'repo');
    await createSampleRepository(repo, { 'README.md': '# restarts\n', 'notes/.keep': '' }, { author: { name: 'T', email: 't@example.com' }, message: 'init' });
    expect((await http(api, 'POST', '/runs/start', notesPlan(runId, n))).status).toBe(201);

    const executor = runCli(
      ['executor', '--run-id', runId, '--workspace', repo, '--api-url', api, '--poll-interval', '1', '--exit-when-idle', '--executor-id', 'survivor'],
      {
        PATH: pathWithoutGit(),
        HOME: tmp,
        OPENAI_API_KEY: 'sk-restart-openai-0001',
        ANTHROPIC_API_KEY: 'sk-ant-restart-0001',
        OPENAI_BASE_URL: llm.openaiBaseUrl,
        ANTHROPIC_BASE_URL: llm.anthropicBaseUrl,
        AUTOPACK_SUPERVISOR_RETRY_SECONDS: '90',
        AUTOPACK_LOG_LEVEL: 'warn',
      },
      300_000,
    );
    children.push(executor.child);
    const completed = async () => ((await http(api, 'GET', `/runs/${runId}`)).body.phases as { state: string }[]).filter((p) => p.state === 'COMPLETE').length;

    // 1. Kill the supervisor (SIGKILL) mid-run and start it again on the same port.
    await waitFor('3 phases', async () => ((await completed()) >= 3 ? true : undefined));
    supervisor.child.kill('SIGKILL');
    await supervisor.done;
    const supervisorDownAt = Date.now();
    await sleep(1500);
    supervisor = await startSupervisor();
    const supervisorOutageMs = Date.now() - supervisorDownAt;

    // 2. Stop PostgreSQL under load: /health answers 503 meanwhile; the supervisor recovers by itself.
    await waitFor('7 phases', async () => ((await completed()) >= 7 ? true : undefined));
    const pidBefore = (supervisor.child as unknown as { pid: number }).pid;
    await db.stop();
    const pgDownAt = Date.now();
    const health503 = await waitFor('503 from /health', async () => {
      const h = await http(api, 'GET', '/health');
      return h.status === 503 ? h.body : undefined;
    });
    expect(health503).toMatchObject({ database: 'down' });
    await sleep(1500);
    db = await startEmbeddedPostgres({ dir: pgDir, database: 'restarts', fast: true, port: pgPort });
    await waitFor('healthy again', async () => ((await http(api, 'GET', '/health')).status === 200 ? true : undefined));
    const pgOutageMs = Date.now() - pgDownAt;
    expect((supervisor.child as unknown as { pid: number }).pid).toBe(pidBefore);

    const result = await executor.done;
    if (result.code !== 0) {
      // Put the supervisor's errors next to the executor's tail: they say why it gave up.
      supervisor.child.kill('SIGTERM');
      const supervisorErrors = (await supervisor.done).stderr.split('\n').filter((l) => /"level":(50|60)/.test(l));
      expect({ code: result.code, tail: result.stderr.slice(-2000), supervisorErrors: supervisorErrors.join('\n').slice(-4000) }).toEqual({ code: 0 });
    }
    const run = (await http(api, 'GET', `/runs/${runId}`)).body;
    expect(run.state).toBe('DONE_SUCCESS');
    expect(run.phases.every((p: { state: string }) => p.state === 'COMPLETE')).toBe(true);

    // No phase lost or run twice: one commit per phase, clean history.
    const commits = await commitsByPhase(repo, runId);
    expect([...commits.values()]).toEqual(Array(n).fill(1));
    expect(gitFsck(repo).ok).toBe(true);
    expect((await worktreeChanges(repo)).clean).toBe(true);

    // No usage lost or double counted: the run's tokens are exactly what the LLM server served.
    const served = llm.requests.filter((r) => r.status === 200).length * 550;
    expect(run.tokens_used).toBe(served);

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const events = (await client.query(`SELECT phase_id, type, payload FROM events WHERE run_id = $1 ORDER BY id`, [runId])).rows;
    await client.end();
    const doubleClaims = countDoubleClaims(events);
    expect(doubleClaims).toBe(0);
    supervisor.child.kill('SIGTERM');
    await supervisor.done;
    recordReliability('supervisor and PostgreSQL restarts', {
      phases: n,
      phases_complete: run.phases.length,
      commits: [...commits.values()].reduce((a, b) => a + b, 0),
      lost_phases: n - run.phases.filter((p: { state: string }) => p.state === 'COMPLETE').length,
      tokens_reported: run.tokens_used,
      tokens_served: served,
      double_claims: doubleClaims,
      supervisor_outage_ms: supervisorOutageMs,
      postgres_outage_ms: pgOutageMs,
    });
  }, 150_000);
});
