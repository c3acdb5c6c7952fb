import type { LlmCallRecord, UsageReport } from '@app/contracts';
import { FakeSupervisor, ciResult, makeClaim, silentLog } from '../../../../test/executor/attempt-fakes.js';
import { SupervisorError } from '../supervisor-client.js';
import type { BuildResult } from './build.js';
import { type AttemptReport, AttemptReporter } from './reporter.js';
import type { Review, ReviewResult } from './review.js';
import type { CiOutcome } from './verify.js';

const claim = makeClaim();
const TOKEN = claim.lease_token;
const usage: UsageReport = { provider: 'openai', model: 'gpt-test', prompt_tokens: 1000, completion_tokens: 200, cached_tokens: 0, cost_usd: 0.01, calls: 1, report_id: 'r1:p1:1:builder', reservation_id: 'res-1' };
const call: LlmCallRecord = { role: 'builder', provider: 'openai', model: 'gpt-test', prompt_tokens: 1000, completion_tokens: 200, cached_tokens: 0, cost_usd: 0.01, duration_ms: 7, outcome: 'tool_call' };

/** The metered LLM's reporting side: `calls` are owed to the next report, once. */
function owed(calls: LlmCallRecord[] = []) {
  let left = [...calls];
  const drainCalls = () => {
    const c = left;
    left = [];
    return c.length ? { llm_calls: c } : {};
  };
  return {
    drainCalls,
    unreportedUsage: () => {
      const c = drainCalls().llm_calls;
      return c ? { usage: { prompt_tokens: 1, completion_tokens: 2, calls: c.length, report_id: 'r1:p1:1:unreported' }, llm_calls: c } : {};
    },
  };
}

function setup(calls: LlmCallRecord[] = []) {
  const supervisor = new FakeSupervisor();
  return { supervisor, reporter: new AttemptReporter(supervisor, claim, owed(calls), silentLog) };
}

const planned: Extract<BuildResult, { kind: 'planned' }> = {
  kind: 'planned',
  args: {
    summary: 'adds hello.txt',
    edits: [{ path: 'hello.txt', action: 'create', content: 'hi\n' }],
    issues: [
      { issue_key: 'docs', severity: 'minor', category: 'docs', description: 'no README entry', location: 'README.md' },
      { issue_key: 'style', severity: 'minor', category: 'style', description: 'terse' },
    ],
  },
  editsHash: 'hash-1',
  plan: { files: [{ path: 'hello.txt', before: null, after: 'hi\n' }], written: ['hello.txt'], deleted: [] },
  diff: '+hi',
  linesAdded: 1,
  linesRemoved: 0,
  usage,
};

const review: Review = {
  approved: true,
  summary: 'looks right',
  issues: [{ issue_key: 'nit', severity: 'minor', category: 'style', description: 'naming' }],
  usage: { ...usage, report_id: 'r1:p1:1:auditor', reservation_id: undefined },
  confidence: 'high',
};
const approved: Extract<ReviewResult, { kind: 'approved' }> = { kind: 'approved', review, gate: { level: 'needs_review', reasons: ['1 minor issue(s)'] } };
const ci: CiOutcome = {
  command: 'npm test',
  result: ciResult({ passed: false, exitCode: 1, outputTail: 'x'.repeat(3000) }),
  verdict: { accepted: true, baselineFailed: true, newFailures: [] },
  baseline: ciResult({ passed: false, exitCode: 2 }),
};

describe(AttemptReporter.name, () => {
  it('reports a phase commit found on the branch as COMPLETE, without usage', async () => {
    const { supervisor, reporter } = setup([call]);
    await reporter.report({ stage: 'sync', result: { kind: 'resume', sha: 'abc' } });
    expect(supervisor.calls).toStrictEqual([{ method: 'updateStatus', runId: 'r1', phaseId: 'p1', body: { lease_token: TOKEN, state: 'COMPLETE', commit_sha: 'abc' } }]);
  });

  it('reports a failed build with its usage, the edits hash when there is one, and the calls owed', async () => {
    const { supervisor, reporter } = setup([call]);
    await reporter.report({ stage: 'build', result: { kind: 'build_failed', outcome: 'refused', reason: 'r'.repeat(2500), feedback: 'fix it', editsHash: 'hash-2', usage } });
    await reporter.report({ stage: 'build', result: { kind: 'build_failed', outcome: 'builder_failed', reason: 'malformed reply: no tool call', feedback: 'call the tool', usage } });
    expect(supervisor.bodies('builderResult')).toStrictEqual([
      {
        lease_token: TOKEN,
        status: 'failed',
        failure_reason: 'r'.repeat(2000),
        feedback: 'fix it',
        tokens_used: 1200,
        usage,
        files_changed: [],
        lines_added: 0,
        lines_removed: 0,
        suggested_issues: [],
        edits_hash: 'hash-2',
        llm_calls: [call],
      },
      {
        lease_token: TOKEN,
        status: 'failed',
        failure_reason: 'malformed reply: no tool call',
        feedback: 'call the tool',
        tokens_used: 1200,
        usage,
        files_changed: [],
        lines_added: 0,
        lines_removed: 0,
        suggested_issues: [],
      },
    ]);
  });

  it('reports an applied build as a success with its files, lines, notes and suggested issues', async () => {
    const { supervisor, reporter } = setup([call]);
    await reporter.report({ stage: 'build', result: planned });
    expect(supervisor.calls).toHaveLength(1);
    expect(supervisor.bodies('builderResult')[0]).toStrictEqual({
      lease_token: TOKEN,
      status: 'success',
      files_changed: ['hello.txt'],
      lines_added: 1,
      lines_removed: 0,
      tokens_used: 1200,
      usage,
      suggested_issues: [
        { issue_key: 'docs', severity: 'minor', category: 'docs', description: 'no README entry', location: 'README.md', source: 'builder' },
        { issue_key: 'style', severity: 'minor', category: 'style', description: 'terse', source: 'builder' },
      ],
      notes: 'adds hello.txt',
      edits_hash: 'hash-1',
      llm_calls: [call],
    });
  });

  it('asks to start CI with the builder result and hands back the supervisor answer', async () => {
    const { supervisor, reporter } = setup();
    supervisor.phaseStateOf.builderResult = 'FAILED';
    const answer = await reporter.report({ stage: 'build', result: planned, startCi: true });
    expect(supervisor.calls).toHaveLength(1);
    expect(supervisor.calls[0]).toMatchObject({ method: 'builderResult', body: { status: 'success', start_ci: true } });
    expect(answer?.phase_state).toBe('FAILED');
    await reporter.report({ stage: 'build', result: planned });
    expect(supervisor.calls[1].body).not.toHaveProperty('start_ci');
  });

  it('reports CI rejected against the baseline as FAILED with its reason, feedback and edits hash', async () => {
    const { supervisor, reporter } = setup([call]);
    await reporter.report({ stage: 'verify', result: { kind: 'ci_rejected', ci, reason: 'ci_failed: `npm test` exit code 1', feedback: 'new failures' }, editsHash: 'hash-1' });
    expect(supervisor.calls).toStrictEqual([
      {
        method: 'updateStatus',
        runId: 'r1',
        phaseId: 'p1',
        body: { lease_token: TOKEN, state: 'FAILED', ci_passed: false, failure_reason: 'ci_failed: `npm test` exit code 1', feedback: 'new failures', edits_hash: 'hash-1' },
      },
    ]);
  });

  it('requests the audit with the CI result and the baseline it was judged against', async () => {
    const { supervisor, reporter } = setup();
    await reporter.report({ stage: 'verify', result: { kind: 'ci_accepted', ci }, editsHash: 'hash-1' });
    await reporter.report({ stage: 'verify', result: { kind: 'ci_skipped' }, editsHash: 'hash-1' });
    expect(supervisor.bodies('auditorRequest')).toStrictEqual([
      {
        lease_token: TOKEN,
        ci: { passed: true, exit_code: 1, duration_seconds: 1.5, output_tail: 'x'.repeat(2000) },
        failure_context: JSON.stringify({ ci: { command: 'npm test', exit_code: 1, baseline_failed: true, baseline_exit_code: 2 } }),
      },
      { lease_token: TOKEN },
    ]);
  });

  it('reports a change the gate blocked as a revise recommendation with the reasons as feedback', async () => {
    const { supervisor, reporter } = setup([call]);
    const blocked: AttemptReport = {
      stage: 'review',
      result: { kind: 'blocked', review: { ...review, approved: false }, gate: { level: 'blocked', reasons: ['CI failed', 'the auditor did not approve'] } },
      editsHash: 'hash-1',
    };
    await reporter.report(blocked);
    expect(supervisor.bodies('auditorResult')).toStrictEqual([
      {
        lease_token: TOKEN,
        recommendation: 'revise',
        review_notes: 'looks right',
        issues_found: [{ issue_key: 'nit', severity: 'minor', category: 'style', description: 'naming', source: 'auditor' }],
        tokens_used: 1200,
        usage: review.usage,
        llm_calls: [call],
        quality_level: 'blocked',
        feedback: 'Your previous change was blocked (CI failed; the auditor did not approve) and discarded.\nlooks right\n- [minor] nit (style): naming',
        edits_hash: 'hash-1',
      },
    ]);
  });

  it('reports a published commit as approved at the gate level', async () => {
    const { supervisor, reporter } = setup([call]);
    await reporter.report({ stage: 'publish', result: { kind: 'published', sha: 'c1', parent: 'c0' }, review: approved, integrationBranch: 'autonomous/r1' });
    expect(supervisor.bodies('auditorResult')).toStrictEqual([
      {
        lease_token: TOKEN,
        recommendation: 'approve',
        review_notes: 'looks right',
        issues_found: [{ issue_key: 'nit', severity: 'minor', category: 'style', description: 'naming', source: 'auditor' }],
        tokens_used: 1200,
        usage: review.usage,
        llm_calls: [call],
        quality_level: 'needs_review',
        commit_sha: 'c1',
        confidence: 'high',
      },
    ]);
  });

  it('reports a lost push as COMPLETE with the phase commit that won, else hands the phase back', async () => {
    const { supervisor, reporter } = setup([call]);
    await reporter.report({ stage: 'publish', result: { kind: 'push_lost', phaseCommit: 'theirs' }, review: approved, integrationBranch: 'autonomous/r1' });
    await reporter.report({ stage: 'publish', result: { kind: 'push_lost', phaseCommit: null }, review: approved, integrationBranch: 'autonomous/r1' });
    expect(supervisor.bodies('updateStatus')).toStrictEqual([
      { lease_token: TOKEN, state: 'COMPLETE', commit_sha: 'theirs', usage: review.usage, llm_calls: [call] },
      {
        lease_token: TOKEN,
        state: 'QUEUED',
        failure_reason: 'push_rejected: another executor pushed to autonomous/r1 first; the phase is built again on the new head',
        usage: review.usage,
      },
    ]);
  });

  it.each([
    [{ kind: 'handed_back' } as const, { state: 'QUEUED', usage: { prompt_tokens: 1, completion_tokens: 2, calls: 1, report_id: 'r1:p1:1:unreported' }, llm_calls: [call] }],
    [{ kind: 'budget_refused', message: 'builder call not admitted' } as const, { state: 'FAILED', failure_reason: 'budget: builder call not admitted', llm_calls: [call] }],
    [
      { kind: 'provider_problem', reason: 'provider_error: bad key: 401' } as const,
      { state: 'QUEUED', failure_reason: 'provider_error: bad key: 401', usage: { prompt_tokens: 1, completion_tokens: 2, calls: 1, report_id: 'r1:p1:1:unreported' }, llm_calls: [call] },
    ],
    [{ kind: 'attempt_error', reason: 'executor_error: boom' } as const, { state: 'FAILED', failure_reason: 'executor_error: boom', feedback: 'executor_error: boom', llm_calls: [call] }],
  ])('reports the ending %j with one update_status', async (ending, body) => {
    const { supervisor, reporter } = setup([call]);
    await reporter.report({ stage: 'end', ending });
    expect(supervisor.calls).toStrictEqual([{ method: 'updateStatus', runId: 'r1', phaseId: 'p1', body: { lease_token: TOKEN, ...body } }]);
  });

  it('attaches the calls made since the last report to the next report only', async () => {
    const { supervisor, reporter } = setup([call]);
    await reporter.report({ stage: 'build', result: planned });
    await reporter.report({ stage: 'publish', result: { kind: 'published', sha: 'c1', parent: 'c0' }, review: approved, integrationBranch: 'autonomous/r1' });
    expect(supervisor.calls.map((c) => 'llm_calls' in (c.body as object))).toStrictEqual([true, false]);
  });

  it('lets a lost lease end the attempt from a stage report, but not from an ending', async () => {
    const { supervisor, reporter } = setup();
    supervisor.failWith.updateStatus = new SupervisorError(409, 'LEASE_LOST', 'lease lost');
    await expect(reporter.report({ stage: 'verify', result: { kind: 'ci_rejected', ci, reason: 'ci_failed', feedback: 'f' }, editsHash: 'h' })).rejects.toMatchObject({ code: 'LEASE_LOST' });
    await expect(reporter.report({ stage: 'end', ending: { kind: 'attempt_error', reason: 'x' } })).resolves.toBeUndefined();
    supervisor.failWith.updateStatus = new SupervisorError(500, 'INTERNAL', 'down');
    await expect(reporter.report({ stage: 'end', ending: { kind: 'handed_back' } })).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});
