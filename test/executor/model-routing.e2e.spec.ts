import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type ScriptedLlmServer } from '@app/testing';
import { runCli } from '../support/processes.js';
import { CI, DEMO_REPO_FILES, approveReply, builderPrompts, builderReply, createRepo, executorEnv, getRun, phase, phaseCommits, plan, runExecutor, startRun, useTestbed } from './harness.js';

let llm: ScriptedLlmServer | undefined;

const bed = useTestbed('routing', { leaseSeconds: 20 });
afterEach(async () => {
  await llm?.close();
  llm = undefined;
});

function routingFile(name: string, yaml: string): string {
  const file = path.join(bed.tmp, name);
  writeFileSync(file, yaml);
  return file;
}

const ADD = '/** Adds two numbers. */\nexport function add(a, b) {\n  return a + b;\n}\n';
const brokenMultiply = { path: 'src/math.js', action: 'edit', search: ADD, replace: `${ADD}\nexport function multiply(a, b) {\n  return a + b;\n}\n` };
const multiplyTest = {
  path: 'test/multiply.test.js',
  action: 'create',
  content: "import assert from 'node:assert/strict';\nimport { multiply } from '../src/math.js';\n\nexport function multiplies() {\n  assert.equal(multiply(3, 4), 12);\n}\n",
};
const goodMultiply = { ...brokenMultiply, replace: `${ADD}\nexport function multiply(a, b) {\n  return a * b;\n}\n` };

describe('model routing, escalation, loop detection and fallback (real executor process)', () => {
  it('escalates the Builder after failures, refuses a repeated change without CI or audit, and climbs an extra step after it', async () => {
    const repo = path.join(bed.tmp, 'repo-escalation');
    await createRepo(repo, DEMO_REPO_FILES);
    const runId = 'routing-escalation';
    await startRun(bed.sup.url, plan(runId, [phase('mult', 0, { scope: { paths: ['src/math.js', 'test/'] }, ci: CI })]));
    const models = routingFile(
      'escalation.yaml',
      `
builder: { provider: openai, model: builder-small }
auditor: { provider: anthropic, model: auditor-main }
escalation:
  builder:
    - { provider: openai, model: builder-small }
    - { provider: openai, model: builder-mid }
    - { provider: anthropic, model: builder-large }
    - { provider: anthropic, model: builder-xl }
`,
    );
    llm = await bed.startLlm({
      script: {
        replies: [
          builderReply('mult', { edits: [brokenMultiply, multiplyTest] }),
          // The second model resubmits exactly the change that failed CI.
          builderReply('mult', { edits: [brokenMultiply, multiplyTest] }),
          builderReply('mult', { edits: [goodMultiply, multiplyTest] }),
          approveReply(1),
        ],
      },
    });

    const result = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm, { AUTOPACK_MODELS: models }));
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });

    const builds = llm.requestsFor('submit_changes');
    // Attempt 1: the chain's first model; attempt 2 (after a CI failure): the next; attempt 3
    // (after a CI failure and a repeated change): two failures plus one extra step.
    expect(builds.map((r) => [r.provider, r.model])).toEqual([
      ['openai', 'builder-small'],
      ['openai', 'builder-mid'],
      ['anthropic', 'builder-xl'],
    ]);
    const prompts = builderPrompts(llm, 'mult');
    expect(prompts[1]).toContain('## Attempt 1 failed (ci_failed)');
    expect(prompts[2]).toContain('## Attempt 2 failed (builder_failed)');
    expect(prompts[2]).toContain('Your edits were identical to those of attempt 1, which failed (ci_failed: `node test/run.js` exit code 1), so they were not applied again.');

    const run = await getRun(bed.sup.url, runId);
    expect([run.state, run.phases[0].attempts_used]).toEqual(['DONE_SUCCESS', 3]);
    // The repeated change was neither tested nor audited: CI ran for attempts 1 and 3 only,
    // and the only review is attempt 3's, by the routed auditor.
    expect(run.ci_runs_used).toBe(2);
    expect(llm.requestsFor('submit_review').map((r) => [r.provider, r.model])).toEqual([['anthropic', 'auditor-main']]);
    expect(run.phases[0].last_failure_reason).toBe('repeated_edits: identical to attempt 1');
    expect(await phaseCommits(repo, runId)).toEqual([['mult', '3']]);
    expect(readFileSync(path.join(repo, 'src/math.js'), 'utf8')).toContain('return a * b;');
  });

  it('falls back to the other provider when one keeps answering 500 after the SDK retries', async () => {
    const repo = path.join(bed.tmp, 'repo-fallback');
    await createRepo(repo, DEMO_REPO_FILES);
    const runId = 'routing-fallback';
    await startRun(bed.sup.url, plan(runId, [phase('mult', 0, { scope: { paths: ['src/math.js', 'test/'] }, ci: CI })]));
    const models = routingFile(
      'fallback.yaml',
      `
builder: { provider: openai, model: flaky-builder }
auditor: { provider: anthropic, model: auditor-main }
fallback:
  openai: { provider: anthropic, model: rescue-builder }
`,
    );
    llm = await bed.startLlm({
      script: {
        replies: [
          // More failures than the SDK retries: OpenAI is down for the whole attempt.
          { tool: 'submit_changes', provider: 'openai', error: { status: 500, message: 'upstream exploded', headers: { 'retry-after-ms': '1' } }, times: 20 },
          builderReply('mult', { edits: [goodMultiply, multiplyTest] }, { provider: 'anthropic' }),
          approveReply(1),
        ],
      },
    });

    const result = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm, { AUTOPACK_MODELS: models }));
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });

    const builds = llm.requestsFor('submit_changes');
    const failed = builds.filter((r) => r.provider === 'openai');
    expect(failed.length).toBeGreaterThanOrEqual(2); // the SDK retried before giving up
    expect(failed.every((r) => r.model === 'flaky-builder' && r.status === 500)).toBe(true);
    expect(builds.slice(failed.length).map((r) => [r.provider, r.model, r.status])).toEqual([['anthropic', 'rescue-builder', 200]]);
    expect(builds.slice(0, failed.length)).toEqual(failed); // every OpenAI call came before the fallback

    const run = await getRun(bed.sup.url, runId);
    expect([run.state, run.phases[0].attempts_used]).toEqual(['DONE_SUCCESS', 1]);
    expect(await phaseCommits(repo, runId)).toEqual([['mult', '1']]);
    expect(result.stderr).toContain('provider still failing after retries; calling the fallback once');
  });

  it('exits 1 with a one-line message on an invalid routing file', async () => {
    const repo = path.join(bed.tmp, 'repo-invalid');
    await createRepo(repo, DEMO_REPO_FILES);
    const models = routingFile('invalid.yaml', 'routes:\n  - { role: builder, category: not_a_category, provider: openai, model: m }\n');
    const result = await runCli(['executor', '--workspace', repo, '--api-url', bed.sup.url, '--run-id', 'nothing'], {
      PATH: process.env.PATH,
      OPENAI_API_KEY: 'sk-k',
      AUTOPACK_MODELS: models,
    }).done;
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('routes.0.category: unknown task category');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
