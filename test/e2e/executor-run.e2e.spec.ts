import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { branchLog, createSampleRepository, worktreeChanges } from '@app/git';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { DEMO_REPO_FILES, DEMO_SCRIPT, demoPlan } from '../../apps/cli/src/demo-fixture.js';
import { gitFsck, pathWithoutGit, runCli } from '../support/processes.js';
import { http, startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

let sup: TestSupervisor;
let llm: ScriptedLlmServer;
let tmp: string;

beforeAll(async () => {
  sup = await startTestSupervisor({ leaseSeconds: 20 });
  llm = await startScriptedLlmServer({ script: DEMO_SCRIPT });
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-e2e-'));
});
afterAll(async () => {
  await llm?.close();
  await sup?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('executor process end to end (no git on PATH)', () => {
  it('runs 2 tiers / 4 phases to DONE_SUCCESS with one commit per phase and a CI-failure retry', async () => {
    const repo = path.join(tmp, 'repo');
    await createSampleRepository(repo, DEMO_REPO_FILES, { author: { name: 'T', email: 't@example.com' }, message: 'init' });
    const runId = 'e2e-run';
    expect((await http(sup.url, 'POST', '/runs/start', demoPlan(runId))).status).toBe(201);

    const env = {
      PATH: pathWithoutGit(),
      HOME: tmp,
      OPENAI_API_KEY: 'sk-e2e-openai-key-000',
      ANTHROPIC_API_KEY: 'sk-ant-e2e-key-000',
      OPENAI_BASE_URL: llm.openaiBaseUrl,
      ANTHROPIC_BASE_URL: llm.anthropicBaseUrl,
      AUTOPACK_LOG_LEVEL: 'info',
    };
    const { done } = runCli(['executor', '--run-id', runId, '--workspace', repo, '--api-url', sup.url, '--poll-interval', '1', '--exit-when-idle', '--executor-id', 'e2e'], env);
    const result = await done;
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });

    const run = (await http(sup.url, 'GET', `/runs/${runId}`)).body;
    expect(run.state).toBe('DONE_SUCCESS');
    expect(run.phases.map((p: { phase_id: string; attempts_used: number }) => [p.phase_id, p.attempts_used])).toEqual([
      ['math-multiply', 1],
      ['math-divide', 2],
      ['cli', 1],
      ['docs-readme', 1],
    ]);

    // Exactly one commit per phase, with the contract's message and trailers, in phase order.
    const log = await branchLog(repo, `autonomous/${runId}`, { depth: 10 });
    const phaseCommits = log.filter((c) => c.trailers['Autopack-Run'] === runId).reverse();
    expect(phaseCommits.map((c) => [c.message.split('\n')[0].split(':')[0], c.trailers['Autopack-Phase'], c.trailers['Autopack-Attempt']])).toEqual([
      ['[Autopack] math-multiply', 'math-multiply', '1'],
      ['[Autopack] math-divide', 'math-divide', '2'],
      ['[Autopack] cli', 'cli', '1'],
      ['[Autopack] docs-readme', 'docs-readme', '1'],
    ]);
    expect(run.phases.map((p: { commit_sha: string }) => p.commit_sha)).toEqual(phaseCommits.map((c) => c.sha));
    expect((await worktreeChanges(repo)).clean).toBe(true);
    expect(readFileSync(path.join(repo, 'src/math.js'), 'utf8')).toContain("throw new RangeError('division by zero')");
    const fsck = gitFsck(repo);
    expect(fsck.ok ? '' : fsck.output).toBe('');

    // The retry's prompt carried the CI failure; builders went to OpenAI, auditors to Anthropic.
    const builds = llm.requestsFor('submit_changes');
    const divide = builds.filter((r) => r.text.includes('# Phase math-divide:'));
    expect(divide).toHaveLength(2);
    expect(divide[0].text).not.toContain('Feedback from earlier attempts');
    expect(divide[1].text).toContain('Feedback from earlier attempts');
    expect(divide[1].text).toContain('FAIL divide.test.js refusesDivisionByZero');
    expect(new Set(builds.map((r) => r.provider))).toEqual(new Set(['openai']));
    expect(new Set(llm.requestsFor('submit_review').map((r) => r.provider))).toEqual(new Set(['anthropic']));
    expect(llm.remainingReplies()).toHaveLength(0);

    // No key reached the logs.
    for (const secret of [env.OPENAI_API_KEY, env.ANTHROPIC_API_KEY]) expect(result.stderr + result.stdout).not.toContain(secret);
    expect(run.tokens_used).toBeGreaterThan(0);
    expect(run.ci_runs_used).toBe(5);

    // The durable audit trail has one llm_call event per request the LLM server saw.
    const calls: { payload: { role: string; provider: string; outcome: string; duration_ms: number; prompt_tokens: number } }[] = await sup.db.query(
      `SELECT payload FROM events WHERE run_id = $1 AND type = 'llm_call' ORDER BY id`,
      [runId],
    );
    expect(calls).toHaveLength(llm.requests.length);
    expect(calls.map((c) => c.payload.role)).toEqual(llm.requests.map((r) => (r.tool === 'submit_changes' ? 'builder' : 'auditor')));
    expect(calls.every((c) => c.payload.outcome === 'tool_call' && c.payload.duration_ms >= 0 && c.payload.prompt_tokens > 0)).toBe(true);
    // ...and the run summary explains them per role and model.
    const byModel: { role: string; provider: string; calls: number; failed_calls: number; prompt_tokens: number; duration_ms: number }[] = (
      (await (await fetch(`${sup.url}/reports/run_summary/${runId}`)).json()) as { llm_calls_by_model: never }
    ).llm_calls_by_model;
    const summed = (role: string) => byModel.filter((m) => m.role === role).reduce((n, m) => n + m.calls, 0);
    expect(summed('builder')).toBe(builds.length);
    expect(summed('auditor')).toBe(llm.requestsFor('submit_review').length);
    expect(byModel.map((m) => [m.role, m.provider, m.failed_calls])).toEqual([
      ['auditor', 'anthropic', 0],
      ['builder', 'openai', 0],
    ]);
    expect(byModel.reduce((n, m) => n + m.prompt_tokens, 0)).toBe(calls.reduce((n, c) => n + c.payload.prompt_tokens, 0));
    // Usage: the run's tokens equal what the LLM server reported for every call.
    const served = llm.requests.reduce((n, r) => {
      const usage = (DEMO_SCRIPT.replies[r.replyIndex!] as { usage: { input_tokens: number; output_tokens: number } }).usage;
      return n + usage.input_tokens + usage.output_tokens;
    }, 0);
    expect(run.tokens_used).toBe(served);
  });

  it('exits 1 with a clear message on bad configuration, and 2 when the supervisor is unreachable', async () => {
    const noKey = await runCli(['executor', '--workspace', tmp], { PATH: process.env.PATH }).done;
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('no LLM provider key');
    expect(noKey.stderr).not.toMatch(/\n\s+at /);

    const notRepo = await runCli(['executor', '--workspace', tmp, '--api-url', sup.url, '--run-id', 'x'], { PATH: process.env.PATH, OPENAI_API_KEY: 'k' }).done;
    expect(notRepo.code).toBe(1);
    expect(notRepo.stderr).toContain('not a git repository');

    const badFlag = await runCli(['executor', '--poll-interval', 'soon'], { PATH: process.env.PATH, OPENAI_API_KEY: 'k' }).done;
    expect(badFlag.code).toBe(1);

    const repo = path.join(tmp, 'repo2');
    await createSampleRepository(repo, { 'a.txt': 'a\n' }, { author: { name: 'T', email: 't@example.com' }, message: 'init' });
    const unreachable = await runCli(['executor', '--workspace', repo, '--api-url', 'http://127.0.0.1:9', '--poll-interval', '1'], {
      PATH: process.env.PATH,
      OPENAI_API_KEY: 'k',
      AUTOPACK_SUPERVISOR_RETRY_SECONDS: '1',
    }).done;
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toContain('unreachable');
  });
});
