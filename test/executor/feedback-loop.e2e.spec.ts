import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type ScriptedLlmServer } from '@app/testing';
import { CI, DEMO_REPO_FILES, approveReply, builderPrompts, builderReply, createRepo, executorEnv, getRun, phase, phaseCommits, plan, runExecutor, startRun, useTestbed } from './harness.js';

let llm: ScriptedLlmServer | undefined;

const bed = useTestbed('feedback', { leaseSeconds: 20 });
afterEach(async () => {
  await llm?.close();
  llm = undefined;
});

const ADD = '/** Adds two numbers. */\nexport function add(a, b) {\n  return a + b;\n}\n';
const MULTIPLY = '\n/** Multiplies two numbers. */\nexport function multiply(a, b) {\n  return a * b;\n}\n';
const MULTIPLY_TEST = "import assert from 'node:assert/strict';\nimport { multiply } from '../src/math.js';\n\nexport function multiplies() {\n  assert.equal(multiply(3, 4), 12);\n}\n";

describe('the feedback loop between attempts (real executor process)', () => {
  it('feeds a malformed reply and then an unmatched edit back into the next prompts, then commits the good attempt', async () => {
    const repo = path.join(bed.tmp, 'repo-malformed');
    await createRepo(repo, DEMO_REPO_FILES);
    const runId = 'feedback-malformed';
    await startRun(bed.sup.url, plan(runId, [phase('mult', 0, { scope: { paths: ['src/math.js', 'test/'] }, ci: CI })]));
    llm = await bed.startLlm({
      script: {
        replies: [
          { tool: 'submit_changes', match: '# Phase mult:', text: 'Sure! Here is how I would add multiply(): just write a function.' },
          builderReply('mult', { edits: [{ path: 'src/math.js', action: 'edit', search: 'export function add(a, b) {\n  return a - b;\n}', replace: 'whatever' }] }),
          builderReply('mult', {
            summary: 'Add multiply() with a test',
            edits: [
              { path: 'src/math.js', action: 'edit', search: ADD, replace: ADD + MULTIPLY },
              { path: 'test/multiply.test.js', action: 'create', content: MULTIPLY_TEST },
            ],
          }),
          approveReply(1),
        ],
      },
    });

    const result = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm));
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });

    const prompts = builderPrompts(llm, 'mult');
    expect(prompts).toHaveLength(3);
    expect(prompts[0]).not.toContain('Feedback from earlier attempts');
    expect(prompts[1]).toContain('## Attempt 1 failed (builder_failed)');
    expect(prompts[1]).toContain('Your previous reply was rejected: no tool call in reply. Reply only by calling submit_changes');
    expect(prompts[1]).not.toContain('search text not found');
    expect(prompts[2]).toContain('## Attempt 2 failed (builder_failed)');
    expect(prompts[2]).toContain('edit 1 (edit src/math.js): search text not found');

    const run = await getRun(bed.sup.url, runId);
    expect([run.state, run.phases[0].attempts_used]).toEqual(['DONE_SUCCESS', 3]);
    expect(await phaseCommits(repo, runId)).toEqual([['mult', '3']]);
    expect(readFileSync(path.join(repo, 'src/math.js'), 'utf8')).toBe(ADD + MULTIPLY);
    expect(llm.requestsFor('submit_review')).toHaveLength(1);
  });

  it('carries an auditor rejection into the retry prompt and keeps exactly one commit', async () => {
    const repo = path.join(bed.tmp, 'repo-auditor');
    await createRepo(repo, DEMO_REPO_FILES);
    const runId = 'feedback-auditor';
    await startRun(bed.sup.url, plan(runId, [phase('mult', 0, { scope: { paths: ['src/math.js', 'test/'] }, ci: CI })]));
    const sloppy = '\n/** Multiplies two numbers. */\nexport function multiply(a, b) {\n  return Number(a) * b;\n}\n';
    const issue = 'multiply() coerces its first argument with Number(); pass numbers through unchanged like add() does';
    llm = await bed.startLlm({
      script: {
        replies: [
          builderReply('mult', { edits: [{ path: 'src/math.js', action: 'edit', search: ADD, replace: ADD + sloppy }] }),
          {
            tool: 'submit_review',
            arguments: {
              approved: false,
              summary: 'The coercion changes semantics.',
              confidence: 'high',
              issues: [{ issue_key: 'needless_coercion', severity: 'major', category: 'correctness', description: issue, location: 'src/math.js:8' }],
            },
          },
          builderReply('mult', {
            edits: [
              { path: 'src/math.js', action: 'edit', search: ADD, replace: ADD + MULTIPLY },
              { path: 'test/multiply.test.js', action: 'create', content: MULTIPLY_TEST },
            ],
          }),
          approveReply(1),
        ],
      },
    });

    const result = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm));
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });

    const prompts = builderPrompts(llm, 'mult');
    expect(prompts).toHaveLength(2);
    expect(prompts[0]).not.toContain(issue);
    expect(prompts[1]).toContain('## Attempt 1 failed (auditor_revise)');
    expect(prompts[1]).toMatch(/Your previous change was blocked \(1 major issue\(s\)(; the auditor did not approve)?\) and discarded./);
    expect(prompts[1]).toContain(`- [major] needless_coercion (correctness) at src/math.js:8: ${issue}`);

    const run = await getRun(bed.sup.url, runId);
    expect([run.state, run.phases[0].attempts_used]).toEqual(['DONE_SUCCESS', 2]);
    expect(await phaseCommits(repo, runId)).toEqual([['mult', '2']]);
    expect(readFileSync(path.join(repo, 'src/math.js'), 'utf8')).not.toContain('Number(a)');
  });
});
