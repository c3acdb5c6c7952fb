import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type ScriptedLlmServer } from '@app/testing';
import { ANTHROPIC_KEY, DEMO_REPO_FILES, OPENAI_KEY, approveReply, builderReply, createRepo, executorEnv, getRun, phase, plan, runExecutor, startRun, useTestbed } from './harness.js';

let llm: ScriptedLlmServer | undefined;

const bed = useTestbed('secrets', { leaseSeconds: 20 });

/**
 * Every CI run (the baseline and the attempt) appends its environment to a file outside the
 * repository and prints it, so a leaked value would also reach the auditor's prompt.
 */
const DUMP_ENV = `import { appendFileSync } from 'node:fs';
const lines = Object.entries(process.env).map(([k, v]) => \`\${k}=\${v}\`).join('\\n');
appendFileSync(\`\${process.env.CI_DUMP_DIR}/ci-env.txt\`, \`\${lines}\\n--- run ---\\n\`);
console.log(lines);
`;

describe('secrets never reach CI (real executor process)', () => {
  it('runs CI without any secret in its environment, and never prints a secret', async () => {
    const repo = path.join(bed.tmp, 'repo');
    await createRepo(repo, { ...DEMO_REPO_FILES, 'scripts/dump-env.js': DUMP_ENV });
    const dumpDir = path.join(bed.tmp, 'ci-dumps');
    mkdirSync(dumpDir);
    const secrets = {
      OPENAI_API_KEY: OPENAI_KEY,
      ANTHROPIC_API_KEY: ANTHROPIC_KEY,
      AUTOPACK_API_KEY: 'autopack-api-key-31c7e2d9',
      MY_SERVICE_TOKEN: 'service-token-9b8a7c6d',
      DB_PASSWORD: 'db-password-5e4f3a2b',
      SOME_SECRET: 'some-secret-1a2b3c4d',
    };
    const env = executorEnv(bed.tmp, (llm = await bed.startLlm({ script: { replies: [] } })), {
      ...secrets,
      // An innocent name holding a secret value, and the dump directory passed the same way.
      BUILD_LABEL: OPENAI_KEY,
      CI_DUMP_DIR: dumpDir,
    });
    const ci = { command: 'node scripts/dump-env.js && node test/run.js', timeout_s: 60 };
    const runId = 'secrets-run';
    await startRun(bed.sup.url, plan(runId, [phase('s1', 0, { ci })]));
    llm.setScript({ replies: [builderReply('s1', { edits: [{ path: 'NOTES.md', action: 'create', content: '# notes\n' }] }), approveReply(1)] });

    const result = await runExecutor(bed.sup.url, repo, runId, env);
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });
    expect((await getRun(bed.sup.url, runId)).state).toBe('DONE_SUCCESS');

    const dump = readFileSync(path.join(dumpDir, 'ci-env.txt'), 'utf8');
    expect(dump.split('--- run ---').length - 1).toBe(2);
    expect(dump).toContain(`CI_DUMP_DIR=${dumpDir}`);
    expect(dump).toContain('CI=true');
    const review = llm.requestsFor('submit_review')[0].text;
    expect(review).toContain(`CI_DUMP_DIR=${dumpDir}`);
    for (const [name, value] of Object.entries(secrets)) {
      expect({ name, inCiEnv: dump.includes(value), inCiNames: dump.includes(`${name}=`) }).toEqual({ name, inCiEnv: false, inCiNames: false });
      expect({ name, inLogs: (result.stdout + result.stderr).includes(value) }).toEqual({ name, inLogs: false });
      expect({ name, inPrompts: llm.requests.some((r) => r.text.includes(value)) }).toEqual({ name, inPrompts: false });
    }
    expect(dump).not.toContain('BUILD_LABEL=');
  });
});
