import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSampleRepository, worktreeChanges } from '@app/git';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { pathWithoutGit, runCli } from '../support/processes.js';
import { http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { notesPlan, notesScript, recordReliability } from './harness.js';

let sup: TestSupervisor;
let llm: ScriptedLlmServer;
let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-graceful-'));
  sup = await startTestSupervisor({ leaseSeconds: 60 });
});
afterAll(async () => {
  await llm?.close();
  await sup?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('graceful shutdown', () => {
  it('SIGTERM mid-attempt hands the lease back at once (no wait for expiry) and costs no attempt', async () => {
    const runId = 'graceful';
    const script = notesScript([runId], 2);
    // The builder takes a while, so the signal lands during the call.
    llm = await startScriptedLlmServer({ script: { replies: script.replies.map((r) => (r.tool === 'submit_changes' ? { ...r, delay_ms: 3000 } : r)) } });
    const repo = path.join(tmp, 'repo');
    await createSampleRepository(repo, { 'README.md': '# g\n', 'notes/.keep': '' }, { author: { name: 'T', email: 't@example.com' }, message: 'init' });
    expect((await http(sup.url, 'POST', '/runs/start', notesPlan(runId, 2))).status).toBe(201);
    const env = { PATH: pathWithoutGit(), HOME: tmp, OPENAI_API_KEY: 'sk-g-0001', OPENAI_BASE_URL: llm.openaiBaseUrl, AUTOPACK_LOG_LEVEL: 'info' };
    const args = ['executor', '--run-id', runId, '--workspace', repo, '--api-url', sup.url, '--poll-interval', '1', '--exit-when-idle'];
    const first = runCli(args, env);
    await waitFor('the builder call', async () => (llm!.requests.length > 0 ? true : undefined), { timeoutMs: 30_000, everyMs: 50 });
    expect(llm.requests).toHaveLength(1);
    const signalled = Date.now();
    first.child.kill('SIGTERM');
    const stopped = await first.done;
    const stopMs = Date.now() - signalled;
    expect(stopped.code).toBe(0);
    const run = (await http(sup.url, 'GET', `/runs/${runId}`)).body;
    expect(run.phases[0]).toMatchObject({ state: 'QUEUED', lease_owner: null, attempts_used: 0, max_attempts: 3 });
    expect((await worktreeChanges(repo)).clean).toBe(true);
    // The interrupted builder call is still in the audit trail, reported with the hand-back.
    const interrupted: { payload: { role: string; outcome: string; attempt: number } }[] = await sup.db.query(
      `SELECT payload FROM events WHERE run_id = $1 AND type = 'llm_call' ORDER BY id`,
      [runId],
    );
    expect(interrupted.map((e) => [e.payload.role, e.payload.outcome, e.payload.attempt])).toEqual([['builder', 'error', 1]]);

    // Another executor continues right away: the phase did not wait for a 60 s lease to expire.
    const second = await runCli(args, env).done;
    expect(second.code).toBe(0);
    const done = (await http(sup.url, 'GET', `/runs/${runId}`)).body;
    expect(done.state).toBe('DONE_SUCCESS');
    expect(done.phases[0]).toMatchObject({ attempts_used: 1, state: 'COMPLETE' });
    recordReliability('graceful SIGTERM', { stop_ms: stopMs, lease_handed_back: true, attempts_charged: 0 });
  });
});
