import path from 'node:path';
import { type ScriptedLlmServer } from '@app/testing';
import { DEMO_REPO_FILES, approveReply, builderReply, createRepo, executorEnv, getRun, phase, phaseCommits, plan, runExecutor, startRun, useTestbed, plainLines } from './harness.js';

/**
 * CONTRACT.md section 3: a provider that refuses the key, or stays down past every retry, is
 * not a failed attempt. The lease goes back uncharged, the run stays open, and the executor
 * exits 1 with one line naming the provider and the problem.
 */
const bed = useTestbed('provider');
let llm: ScriptedLlmServer | undefined;
afterEach(async () => {
  await llm?.close();
  llm = undefined;
});


async function expectHandedBackUncharged(runId: string) {
  const run = await getRun(bed.sup.url, runId);
  expect(['RUN_CREATED', 'PHASE_QUEUEING', 'PHASE_EXECUTION']).toContain(run.state);
  expect(run.phases[0]).toMatchObject({ state: 'QUEUED', attempts_used: 0, lease_owner: null });
  expect(run.phases[0].last_failure_reason).toMatch(/^provider_error: /);
  return run;
}

describe('provider errors burn no attempt', () => {
  it('a 401 from the builder: exit 1 with one line, the phase back in QUEUED with its attempts unchanged, the run open', async () => {
    const repo = path.join(bed.tmp, 'repo-401');
    await createRepo(repo, DEMO_REPO_FILES);
    const runId = 'provider-401';
    await startRun(bed.sup.url, plan(runId, [phase('docs', 0, { scope: { paths: ['README.md'] } })]));
    expect((await getRun(bed.sup.url, runId)).phases[0].attempts_used).toBe(0);
    llm = await bed.startLlm({
      script: { replies: [{ tool: 'submit_changes', error: { status: 401, message: 'Incorrect API key provided', type: 'invalid_request_error' }, times: 20 }] },
    });

    const result = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm));
    expect(result.code).toBe(1);
    const lines = plainLines(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^autopack executor: openai refused the API key \(HTTP 401, model [^)]+\); phase docs of run provider-401 was handed back uncharged; check OPENAI_API_KEY/);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    // One request: a refused key is neither retried nor escalated up the model chain.
    expect(llm.requests).toHaveLength(1);
    await expectHandedBackUncharged(runId);

    // With a key that works, the same phase completes on its first charged attempt.
    await llm.close();
    llm = await bed.startLlm({
      script: { replies: [builderReply('docs', { summary: 'Describe the library', edits: [{ path: 'README.md', action: 'replace', content: '# demo-calc\n\nAdds numbers.\n' }] }), approveReply()] },
    });
    const again = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm));
    expect({ code: again.code, stderr: again.code === 0 ? '' : again.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    const done = await getRun(bed.sup.url, runId);
    expect(done.state).toBe('DONE_SUCCESS');
    expect(done.phases[0]).toMatchObject({ state: 'COMPLETE', attempts_used: 1 });
    expect(await phaseCommits(repo, runId)).toEqual([['docs', '2']]);
  });

  it('a 503 on every try (both providers): retried, then exit 1 with one line, the phase back in QUEUED uncharged, the run open', async () => {
    const repo = path.join(bed.tmp, 'repo-503');
    await createRepo(repo, DEMO_REPO_FILES);
    const runId = 'provider-503';
    await startRun(bed.sup.url, plan(runId, [phase('docs', 0, { scope: { paths: ['README.md'] } })]));
    llm = await bed.startLlm({
      script: { replies: [{ tool: 'submit_changes', error: { status: 503, message: 'overloaded', headers: { 'retry-after-ms': '1' } }, times: 100 }] },
    });

    const result = await runExecutor(bed.sup.url, repo, runId, executorEnv(bed.tmp, llm));
    expect(result.code).toBe(1);
    const lines = plainLines(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^autopack executor: (openai|anthropic) unavailable after retries \(HTTP 503, model [^)]+\); phase docs of run provider-503 was handed back uncharged; run the executor again when the provider answers$/);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    // The SDK retried, and the other provider was tried as the fallback, before giving up.
    expect(llm.requests.length).toBeGreaterThan(2);
    expect(new Set(llm.requests.map((r) => r.provider))).toEqual(new Set(['openai', 'anthropic']));
    const run = await expectHandedBackUncharged(runId);
    expect(run.phases[0].last_failure_reason).toContain('unavailable after retries');
    // The failed calls are in the audit trail, reported with the hand-back.
    const calls: { payload: { outcome: string } }[] = await bed.sup.db.query(`SELECT payload FROM events WHERE run_id = $1 AND type = 'llm_call'`, [runId]);
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((c) => c.payload.outcome === 'error')).toBe(true);
  });
});
