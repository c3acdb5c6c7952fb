import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { worktreeChanges } from '@app/git';
import { type ScriptedLlmServer, startScriptedLlmServer } from '@app/testing';
import { runCli } from '../support/processes.js';
import { startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';
import { CI, DEMO_REPO_FILES, approveReply, builderReply, createRepo, executorEnv, getRun, phase, phaseCommits, plan, runExecutor, startRun } from './harness.js';

let tmp: string;
let llm: ScriptedLlmServer | undefined;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'autopack-budget-'));
});
afterEach(async () => {
  await llm?.close();
  llm = undefined;
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const README_EDIT = (text: string) => ({ path: 'README.md', action: 'replace', content: `# demo-calc\n\n${text}\n` });

describe('budget admission (real executor process)', () => {
  let sup: TestSupervisor;
  beforeAll(async () => {
    sup = await startTestSupervisor();
  });
  afterAll(async () => sup?.close());

  it.each([
    ['token', { token_cap: 5_000 }, /budget: builder call .* not admitted: the call's worst case does not fit the token_cap budget/],
    ['cost', { cost_cap_usd: 0.000001 }, /budget: builder call .* not admitted: the call's worst case does not fit the cost_cap_usd budget/],
  ])('never sends a call whose worst case would cross the run %s budget', async (name, run, reason) => {
    const repo = path.join(tmp, `repo-${name}`);
    await createRepo(repo, DEMO_REPO_FILES);
    const runId = `budget-${name}`;
    await startRun(sup.url, plan(runId, [phase('docs', 0, { scope: { paths: ['README.md'] } })], run));
    llm = await startScriptedLlmServer({ script: { replies: [builderReply('docs', { edits: [README_EDIT('x')] }, { times: 5 }), approveReply(5)] } });
    const result = await runExecutor(sup.url, repo, runId, executorEnv(tmp, llm));
    expect(result.code).toBe(3); // the run it served failed
    expect(llm.requests).toHaveLength(0);
    const state = await getRun(sup.url, runId);
    expect(state.phases[0]).toMatchObject({ state: 'FAILED', attempts_used: 3 });
    expect(state.phases[0].last_failure_reason).toMatch(reason);
    expect(state.tokens_used).toBe(0);
    expect(await phaseCommits(repo, runId)).toEqual([]);
  });
});

describe('dual audit of high-risk phases', () => {
  let sup: TestSupervisor;
  beforeAll(async () => {
    sup = await startTestSupervisor();
  });
  afterAll(async () => sup?.close());

  it('asks both providers, and a major issue from either one blocks the commit', async () => {
    const repo = path.join(tmp, 'repo-dual');
    await createRepo(repo, DEMO_REPO_FILES);
    const runId = 'dual';
    await startRun(sup.url, plan(runId, [phase('auth', 0, { task_category: 'security_auth', scope: { paths: ['README.md'] }, ci: CI })]));
    const major = { approved: true, summary: 'Mostly fine', confidence: 'medium', issues: [{ issue_key: 'secret_in_readme', severity: 'major', category: 'security', description: 'a token is documented in clear text', location: 'README.md:3' }] };
    llm = await startScriptedLlmServer({
      script: {
        replies: [
          builderReply('auth', { edits: [README_EDIT('Set TOKEN=abc123 to log in.')] }),
          builderReply('auth', { edits: [README_EDIT('Set the token through the environment.')] }),
          // Attempt 1: Anthropic approves, OpenAI finds a major issue (despite approved: true).
          approveReply(1, { provider: 'anthropic' }),
          { tool: 'submit_review', provider: 'openai', arguments: major, usage: { input_tokens: 900, output_tokens: 90 } },
          // Attempt 2: both approve.
          approveReply(1, { provider: 'anthropic' }),
          approveReply(1, { provider: 'openai' }),
        ],
      },
    });
    const result = await runExecutor(sup.url, repo, runId, executorEnv(tmp, llm));
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });

    const reviews = llm.requestsFor('submit_review');
    expect(reviews.map((r) => r.provider)).toEqual(['anthropic', 'openai', 'anthropic', 'openai']);
    expect(reviews[0].text).toContain('TOKEN=abc123');
    expect(reviews[2].text).toContain('through the environment');
    // Only the second attempt was committed; the first left no trace in the repository.
    expect(await phaseCommits(repo, runId)).toEqual([['auth', '2']]);
    const builds = llm.requestsFor('submit_changes');
    expect(builds[1].text).toContain('secret_in_readme');
    const run = await getRun(sup.url, runId);
    expect(run.state).toBe('DONE_SUCCESS');
    // security_auth_change has auto-apply off: promotion waits for a human.
    expect(run.approval_state).toBe('pending');
  });
});

describe('crash between commit and report', () => {
  it('a restarted executor finds its commit by trailer and reports it: one commit for the phase', async () => {
    let victim: { kill: (s: NodeJS.Signals) => boolean } | undefined;
    let killed = false;
    // Fault injection: the first approval report never reaches the supervisor, because the
    // executor is SIGKILLed the moment it sends it (its commit is already on the branch).
    const sup = await startTestSupervisor(
      { leaseSeconds: 3 },
      {
        intercept: (req, res, next) => {
          if (!killed && req.method === 'POST' && req.path.endsWith('/auditor_result')) {
            killed = true;
            victim?.kill('SIGKILL');
            res.destroy();
            return;
          }
          next();
        },
      },
    );
    try {
      const repo = path.join(tmp, 'repo-crash');
      await createRepo(repo, DEMO_REPO_FILES);
      const runId = 'crash';
      await startRun(sup.url, plan(runId, [phase('docs', 0, { scope: { paths: ['README.md'] } }), phase('docs2', 1, { scope: { paths: ['README.md'] } })]));
      llm = await startScriptedLlmServer({
        script: {
          replies: [
            builderReply('docs', { summary: 'Describe the library', edits: [README_EDIT('Adds numbers.')] }),
            builderReply('docs2', { summary: 'Mention tests', edits: [README_EDIT('Adds numbers. Run npm test.')] }),
            approveReply(3),
          ],
        },
      });
      const env = executorEnv(tmp, llm);
      const args = ['executor', '--run-id', runId, '--workspace', repo, '--api-url', sup.url, '--poll-interval', '1', '--exit-when-idle'];
      const first = runCli(args, env);
      victim = first.child;
      const dead = await first.done;
      expect(killed).toBe(true);
      expect(dead.code).toBeNull(); // killed by the signal
      expect(await phaseCommits(repo, runId)).toEqual([['docs', '1']]);

      const second = await runCli(args, env).done;
      expect({ code: second.code, stderr: second.code === 0 ? '' : second.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
      expect(second.stderr).toContain('phase commit already on the branch; reporting it');
      expect(await phaseCommits(repo, runId)).toEqual([
        ['docs', '1'],
        ['docs2', '1'],
      ]);
      // The builder was asked once per phase: the crashed phase was not built again.
      expect(llm.requestsFor('submit_changes')).toHaveLength(2);
      const run = await getRun(sup.url, runId);
      expect(run.state).toBe('DONE_SUCCESS');
      // The crash cost no attempt: it is one abandonment, and the resumed claim reported the commit.
      expect(run.phases.map((p: any) => [p.phase_id, p.attempts_used, p.abandonments])).toEqual([
        ['docs', 1, 1],
        ['docs2', 1, 0],
      ]);
      expect((await worktreeChanges(repo)).clean).toBe(true);
    } finally {
      await sup.close();
    }
  });
});
