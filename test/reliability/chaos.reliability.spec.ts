import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { createSampleRepository, worktreeChanges } from '@app/git';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { createSupervisorApp } from '../../apps/supervisor/src/bootstrap.js';
import { loadSupervisorConfig } from '../../apps/supervisor/src/config.js';
import { type Finished, gitFsck, pathWithoutGit, runCli } from '../support/processes.js';
import { http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { commitsByPhase, countDoubleClaims, notesPlan, notesScript, prng, recordReliability } from './harness.js';

const SEED = Number(process.env.AUTOPACK_CHAOS_SEED ?? 7);
const PHASES = 20;
const RUNS = ['chaos-a', 'chaos-b', 'chaos-c'];
const KILLS = 6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let sup: TestSupervisor;
let replica: INestApplication;
let replicaUrl: string;
let llm: ScriptedLlmServer;
let tmp: string;
const live = new Map<string, { child: { kill: (s: NodeJS.Signals) => boolean }; done: Promise<Finished> }>();

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-chaos-'));
  sup = await startTestSupervisor({ leaseSeconds: 3 });
  // A second supervisor replica on the same database.
  replica = await createSupervisorApp(loadSupervisorConfig({ AUTOPACK_LOG_LEVEL: 'silent' }, { port: 0, leaseSeconds: 3 }), sup.db.url);
  await replica.listen(0, '127.0.0.1');
  replicaUrl = `http://127.0.0.1:${(replica.getHttpServer().address() as { port: number }).port}`;
  llm = await startScriptedLlmServer({ script: notesScript(RUNS, PHASES) });
});
afterAll(async () => {
  for (const e of live.values()) e.child.kill('SIGKILL');
  await llm?.close();
  await replica?.close();
  await sup?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('executors killed at random points', () => {
  it(`4 executors, 3 runs x ${PHASES} phases, 2 supervisor replicas, ${KILLS} SIGKILLs (seed ${SEED})`, async () => {
    const rnd = prng(SEED);
    const repos: Record<string, string> = {};
    for (const runId of RUNS) {
      repos[runId] = path.join(tmp, runId);
      await createSampleRepository(repos[runId], { 'README.md': `# ${runId}\n`, 'notes/.keep': '' }, { author: { name: 'T', email: 't@example.com' }, message: 'init' });
      expect((await http(sup.url, 'POST', '/runs/start', notesPlan(runId, PHASES))).status).toBe(201);
    }
    // Executor e4 shares run A's workspace with e1 (the workspace lock serializes them).
    const executors: Record<string, { runId: string; api: string }> = {
      e1: { runId: 'chaos-a', api: sup.url },
      e2: { runId: 'chaos-b', api: sup.url },
      e3: { runId: 'chaos-c', api: replicaUrl },
      e4: { runId: 'chaos-a', api: replicaUrl },
    };
    const env = {
      PATH: pathWithoutGit(),
      HOME: tmp,
      OPENAI_API_KEY: 'sk-chaos-openai-0001',
      ANTHROPIC_API_KEY: 'sk-ant-chaos-0001',
      OPENAI_BASE_URL: llm.openaiBaseUrl,
      ANTHROPIC_BASE_URL: llm.anthropicBaseUrl,
      AUTOPACK_LOG_LEVEL: 'warn',
    };
    const start = (id: string) => {
      const e = executors[id];
      // No --exit-when-idle: an executor stays until its run is terminal (a dead peer's lease may still come back).
      live.set(id, runCli(['executor', '--run-id', e.runId, '--workspace', repos[e.runId], '--api-url', e.api, '--poll-interval', '1', '--executor-id', id], env, 240_000));
    };
    Object.keys(executors).forEach(start);

    const states = async () => Promise.all(RUNS.map(async (r) => (await http(sup.url, 'GET', `/runs/${r}`)).body));
    const allTerminal = async () => (await states()).every((r) => r.completed_at !== null);
    let kills = 0;
    const killed: string[] = [];
    while (kills < KILLS && !(await allTerminal())) {
      await sleep(400 + rnd() * 1600);
      const victim = Object.keys(executors)[Math.floor(rnd() * 4)];
      live.get(victim)!.child.kill('SIGKILL');
      await live.get(victim)!.done;
      kills++;
      killed.push(victim);
      await sleep(200);
      start(victim);
    }
    const deadline = Date.now() + 180_000;
    while (!(await allTerminal())) {
      if (Date.now() > deadline) throw new Error(`runs not terminal: ${JSON.stringify((await states()).map((r) => [r.run_id, r.state]))}`);
      await sleep(250);
    }
    const exits = await Promise.all([...live.values()].map((e) => e.done));
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0, 0]);

    const runs = await states();
    const phases = runs.flatMap((r) => r.phases as { phase_id: string; state: string }[]);
    expect(phases).toHaveLength(RUNS.length * PHASES);
    const terminal = phases.filter((p) => ['COMPLETE', 'FAILED', 'SKIPPED'].includes(p.state));
    expect(terminal).toHaveLength(phases.length);

    let duplicateCommits = 0;
    let commitsOfUnfinished = 0;
    let completed = 0;
    let strayTempFiles = 0;
    for (const r of runs) {
      const commits = await commitsByPhase(repos[r.run_id], r.run_id);
      for (const p of r.phases as { phase_id: string; state: string }[]) {
        const n = commits.get(p.phase_id) ?? 0;
        if (p.state === 'COMPLETE') {
          completed++;
          if (n !== 1) duplicateCommits++;
        } else if (n > 0) commitsOfUnfinished++;
      }
      const fsck = gitFsck(repos[r.run_id]);
      expect({ run: r.run_id, ok: fsck.ok, output: fsck.ok ? '' : fsck.output }).toEqual({ run: r.run_id, ok: true, output: '' });
      expect((await worktreeChanges(repos[r.run_id])).clean).toBe(true);
      // A writer killed between write and rename leaves a temporary file; the next executor on
      // the workspace removes it.
      strayTempFiles += readdirSync(path.join(repos[r.run_id], '.git')).filter((n) => n.startsWith('autopack-tmp-')).length;
    }
    expect(strayTempFiles).toBe(0);
    const events = await sup.db.query<{ phase_id: string | null; type: string; payload: { to?: string } }>(`SELECT phase_id, type, payload FROM events ORDER BY id`);
    const doubleClaims = countDoubleClaims(events);
    const expired = (await sup.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM phase_attempts WHERE outcome = 'lease_expired'`))[0].n;
    expect(doubleClaims).toBe(0);
    expect(duplicateCommits).toBe(0);
    expect(commitsOfUnfinished).toBe(0);
    recordReliability('executors SIGKILLed at random', {
      seed: SEED,
      executors: 4,
      supervisor_replicas: 2,
      runs: RUNS.length,
      phases: phases.length,
      phases_terminal: terminal.length,
      phases_complete: completed,
      sigkills: kills,
      leases_reclaimed: expired,
      double_claims: doubleClaims,
      phases_with_not_exactly_one_commit: duplicateCommits + commitsOfUnfinished,
      stray_temp_files: strayTempFiles,
    });
  }, 150_000);
});
