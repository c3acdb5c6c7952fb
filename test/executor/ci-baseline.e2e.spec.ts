import { existsSync } from 'node:fs';
import path from 'node:path';
import { type ScriptedLlmServer } from '@app/testing';
import { CI, DEMO_REPO_FILES, approveReply, builderPrompts, builderReply, createRepo, executorEnv, getRun, logMessages, phase, phaseCommits, plan, runExecutor, startRun, useTestbed } from './harness.js';

let llm: ScriptedLlmServer | undefined;

const bed = useTestbed('baseline', { leaseSeconds: 20 });

const LEGACY_TEST = "export function legacyRounding() {\n  throw new Error('legacy rounding is off by one');\n}\n";
const ADD = '/** Adds two numbers. */\nexport function add(a, b) {\n  return a + b;\n}\n';
const testFile = (name: string, body: string) => `import assert from 'node:assert/strict';\nimport * as m from '../src/math.js';\n\nexport function ${name}() {\n  ${body}\n}\n`;

describe('CI judged against the branch head (real executor process)', () => {
  it('on a branch whose suite already fails, commits a change that adds no failure and rejects one that adds a failing test', async () => {
    const repo = path.join(bed.tmp, 'repo');
    await createRepo(repo, { ...DEMO_REPO_FILES, 'test/legacy.test.js': LEGACY_TEST });
    const runId = 'baseline-run';
    const scope = { paths: ['src/', 'test/'] };
    await startRun(bed.sup.url, plan(runId, [phase('b1', 0, { scope, ci: CI }), phase('b2', 1, { scope, ci: CI })]));
    llm = await bed.startLlm({
      script: {
        replies: [
          builderReply('b1', {
            edits: [
              { path: 'src/math.js', action: 'edit', search: ADD, replace: `${ADD}\nexport function multiply(a, b) {\n  return a * b;\n}\n` },
              { path: 'test/multiply.test.js', action: 'create', content: testFile('multiplies', 'assert.equal(m.multiply(3, 4), 12);') },
            ],
          }),
          builderReply('b2', { edits: [{ path: 'test/negate.test.js', action: 'create', content: testFile('negates', 'assert.equal(m.negate(2), -2);') }] }),
          builderReply('b2', {
            edits: [
              { path: 'src/math.js', action: 'edit', search: ADD, replace: `${ADD}\nexport function negate(a) {\n  return -a;\n}\n` },
              { path: 'test/negate.test.js', action: 'create', content: testFile('negates', 'assert.equal(m.negate(2), -2);') },
            ],
          }),
          approveReply(2),
        ],
      },
    });

    const result = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm));
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });

    const run = await getRun(bed.sup.url, runId);
    expect(run.state).toBe('DONE_SUCCESS');
    expect(run.phases.map((p: any) => [p.phase_id, p.attempts_used])).toEqual([
      ['b1', 1],
      ['b2', 2],
    ]);
    expect(await phaseCommits(repo, runId)).toEqual([
      ['b1', '1'],
      ['b2', '2'],
    ]);

    // b1: the suite still fails (legacy test), but nothing new fails, so it was audited with that context.
    const [b1Prompt] = builderPrompts(llm, 'b1');
    expect(b1Prompt).toContain('The command `node test/run.js` already fails on the branch before your change');
    const reviews = llm.requestsFor('submit_review');
    expect(reviews).toHaveLength(2);
    expect(reviews[0].text).toContain('# CI (`node test/run.js`): no new failures (the command already failed on the branch before this change)');
    expect(reviews[0].text).toContain('FAIL legacy.test.js legacyRounding');

    // b2 attempt 1 added a failing test: rejected with CI feedback naming only the new failure.
    const b2 = builderPrompts(llm, 'b2');
    expect(b2).toHaveLength(2);
    expect(b2[1]).toContain('## Attempt 1 failed (ci_failed)');
    expect(b2[1]).toContain('The command already failed before your change, so only new failures count. These failures are new:\n- FAIL negate.test.js negates:');
    expect(b2[1]).not.toContain('- FAIL legacy.test.js');
    expect(existsSync(path.join(repo, 'test/negate.test.js'))).toBe(true);

    // The baseline ran once, on b1's head: b2's head is b1's commit, whose CI result (still
    // failing the legacy test, as b2's feedback above says) is its baseline, not run again.
    // Baselines are not counted as CI runs of an attempt.
    const baselines = logMessages(result.stderr).filter((m) => m === 'running CI on the unchanged branch head (baseline)');
    expect(baselines).toHaveLength(1);
    expect(run.ci_runs_used).toBe(3);
  });
});
