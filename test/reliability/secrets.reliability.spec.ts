import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { branchLog, createSampleRepository } from '@app/git';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { findFreePort } from '../../apps/supervisor/src/database/embedded-postgres.js';
import { type TestDatabase, createTestDatabase } from '../support/database.js';
import { pathWithoutGit, runCli } from '../support/processes.js';
import { http } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { recordReliability } from './harness.js';

const SECRETS = {
  AUTOPACK_API_KEY: 'apk-7f3c9e21d4b86a50',
  OPENAI_API_KEY: 'sk-proj-leakcheck-5c1a9f7e3b',
  ANTHROPIC_API_KEY: 'sk-ant-leakcheck-0e8d4c2a61',
  MY_SERVICE_TOKEN: 'tok-leakcheck-93b1f0c7e5',
  DB_PASSWORD: 'pw-leakcheck-4e7a2c9d13',
  SOME_SECRET: 'sec-leakcheck-b6d08f2e71',
};
let tmp: string;
let db: TestDatabase;
let llm: ScriptedLlmServer;
const kill: (() => void)[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-secrets-'));
  chmodSync(tmp, 0o755);
  db = await createTestDatabase();
});
afterAll(async () => {
  kill.forEach((k) => k());
  await llm?.close();
  await db?.drop();
  rmSync(tmp, { recursive: true, force: true });
});

function filesUnder(dir: string, skip: (rel: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const st = statSync(path.join(dir, r));
      if (st.isDirectory()) walk(r);
      else out.push(readFileSync(path.join(dir, r), 'latin1'));
    }
  };
  walk('');
  return out;
}

describe('secrets never leak', () => {
  it('planted secrets appear in no log, response, event, database row, CI environment or commit', async () => {
    const secrets = { ...SECRETS };
    const dbPassword = decodeURIComponent(new URL(db.url).password);
    const allSecrets = [...Object.values(secrets), ...(dbPassword.length >= 6 ? [dbPassword] : [])];
    const auth = { 'x-api-key': secrets.AUTOPACK_API_KEY };

    llm = await startScriptedLlmServer({
      apiKey: undefined,
      script: {
        replies: [
          // The provider answers 401 and echoes the key, as real providers partly do.
          { tool: 'submit_changes', error: { status: 401, message: `Incorrect API key provided: ${secrets.OPENAI_API_KEY}` } },
          {
            tool: 'submit_changes',
            arguments: { summary: 'Add a note', edits: [{ path: 'notes.md', action: 'create', content: '# notes\n' }] },
            usage: { input_tokens: 100, output_tokens: 10 },
          },
          { tool: 'submit_review', arguments: { approved: true, summary: 'ok', confidence: 'high', issues: [] }, usage: { input_tokens: 100, output_tokens: 10 }, times: 5 },
        ],
      },
    });

    const port = await findFreePort();
    const api = `http://127.0.0.1:${port}`;
    const supervisor = runCli(['supervisor'], { PATH: process.env.PATH, DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', AUTOPACK_LOG_LEVEL: 'debug', ...secrets }, 120_000);
    kill.push(() => supervisor.child.kill('SIGKILL'));
    await waitFor('supervisor health', async () => ((await http(api, 'GET', '/health')).status === 200 ? true : undefined), { timeoutMs: 20_000 });

    const repo = path.join(tmp, 'repo');
    await createSampleRepository(repo, { 'README.md': '# secrets\n' }, { author: { name: 'T', email: 't@example.com' }, message: 'init' });
    const envDump = path.join(tmp, 'ci-env.txt');
    const runId = 'secrets';
    const plan = {
      run: { run_id: runId },
      tiers: [{ tier_id: 't1', tier_index: 0, name: 'T' }],
      phases: [{ phase_id: 'p1', phase_index: 0, tier_id: 't1', name: 'Note', task_category: 'feature_scaffolding', scope: { paths: ['notes.md'] }, ci: { command: `node -e "require('fs').writeFileSync(process.env.CI_DUMP_FILE, Object.entries(process.env).map(([k, v]) => k + '=' + v).join('\\n'))"` } }],
    };
    expect((await http(api, 'POST', '/runs/start', plan, auth)).status).toBe(201);
    const executorArgs = ['executor', '--run-id', runId, '--workspace', repo, '--api-url', api, '--poll-interval', '1', '--exit-when-idle'];
    const executorEnvironment = {
      PATH: pathWithoutGit(),
      HOME: tmp,
      OPENAI_BASE_URL: llm.openaiBaseUrl,
      ANTHROPIC_BASE_URL: llm.anthropicBaseUrl,
      AUTOPACK_LOG_LEVEL: 'debug',
      CI_DUMP_FILE: envDump,
      // A harmless-looking name carrying a secret value.
      BUILD_LABEL: secrets.OPENAI_API_KEY,
      ...secrets,
    };
    // The provider's 401 (echoing the key) is a configuration problem: the executor hands the
    // phase back uncharged and exits 1; the next executor finishes the run.
    const refused = await runCli(executorArgs, executorEnvironment).done;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('openai refused the API key');
    const executor = await runCli(executorArgs, executorEnvironment).done;
    expect({ code: executor.code, tail: executor.code === 0 ? '' : executor.stderr.slice(-2000) }).toEqual({ code: 0, tail: '' });

    // Everything the outside world can read back.
    const responses: string[] = [];
    for (const route of ['/runs', `/runs/${runId}`, `/runs/${runId}/issues/index`, '/project/issues/backlog', `/runs/${runId}/integration_status`, '/metrics/runs', `/metrics/tiers/${runId}`, '/reports/issue_backlog_summary', '/reports/budget_analysis', `/reports/run_summary/${runId}`, '/capabilities', '/openapi.json', '/health']) {
      responses.push(JSON.stringify((await http(api, 'GET', route, undefined, auth)).body));
    }
    responses.push(await (await fetch(`${api}/runs/${runId}/events?follow=false`, { headers: auth })).text());
    responses.push(await (await fetch(`${api}/metrics`, { headers: auth })).text());
    responses.push(JSON.stringify((await http(api, 'GET', '/runs', undefined, { 'x-api-key': 'wrong' })).body));
    supervisor.child.kill('SIGTERM');
    const supervisorOut = await supervisor.done;

    const tables = await db.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`);
    const rows: string[] = [];
    for (const t of tables) rows.push(JSON.stringify(await db.query(`SELECT * FROM "${t.table_name}"`)));
    const ciEnv = readFileSync(envDump, 'utf8');
    const commits = (await branchLog(repo, `autonomous/${runId}`, { depth: 10 })).map((c) => c.message);
    const repoFiles = filesUnder(repo, (r) => r === '.git');

    const places: Record<string, string[]> = {
      'supervisor logs': [supervisorOut.stdout, supervisorOut.stderr],
      'executor logs': [refused.stdout, refused.stderr, executor.stdout, executor.stderr],
      'API responses': responses,
      'database rows (incl. events)': rows,
      'CI subprocess environment': [ciEnv],
      'commits and repository files': [...commits, ...repoFiles],
      'LLM server records': [JSON.stringify(llm.requests)],
    };
    const leaks: string[] = [];
    for (const [where, texts] of Object.entries(places)) {
      for (const secret of allSecrets) if (texts.some((t) => t.includes(secret))) leaks.push(`${where}: ${secret.slice(0, 6)}...`);
    }
    expect(leaks).toEqual([]);
    // The checks looked at real material: the CI env was captured and the failure was recorded.
    expect(ciEnv).toContain('CI_DUMP_FILE=');
    expect(ciEnv).not.toMatch(/^(OPENAI_API_KEY|ANTHROPIC_API_KEY|AUTOPACK_API_KEY|MY_SERVICE_TOKEN|DB_PASSWORD|SOME_SECRET|BUILD_LABEL)=/m);
    expect(rows.join('\n')).toContain('AUTHENTICATION');
    expect(executor.stderr.length).toBeGreaterThan(1000);
    recordReliability('planted secrets', {
      secrets_planted: allSecrets.length,
      places_searched: Object.keys(places).length,
      texts_searched: Object.values(places).reduce((n, t) => n + t.length, 0),
      leaks: leaks.length,
    });
  });
});
