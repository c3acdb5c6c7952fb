import { FakeLlm, type FakeReply, FakeSupervisor, bothProviders, ciResult, makeClaim, silentLog, steppingClock } from '../../../../test/executor/attempt-fakes.js';
import { MeteredLlm } from './metered-llm.js';
import { review } from './review.js';
import type { CiOutcome } from './verify.js';

const routing = bothProviders();
const passedCi: CiOutcome = { command: 'npm test', result: ciResult(), verdict: { accepted: true, baselineFailed: false, newFailures: [] }, baseline: ciResult() };
const approve = (patch: object = {}): FakeReply => ({ toolInput: { approved: true, summary: 'fine', confidence: 'high', issues: [], ...patch } });

async function run(replies: FakeReply[], claim = makeClaim(), opts: { ci?: CiOutcome | null; dualAuditor?: boolean } = {}) {
  const llm = new FakeLlm(replies);
  const metered = new MeteredLlm({ llm, supervisor: new FakeSupervisor(), routing, clock: steppingClock(), log: silentLog }, claim);
  const result = await review({ llm: metered, routing, dualAuditor: opts.dualAuditor ?? true, log: silentLog }, claim, {
    diff: '+hello',
    summary: 'adds hello',
    ci: opts.ci === undefined ? passedCi : opts.ci,
    signal: new AbortController().signal,
  });
  return { result, requests: llm.requests };
}

describe(review.name, () => {
  it('lets an approved change with no issues through at level ok, with the auditor usage', async () => {
    const { result, requests } = await run([approve()]);
    expect(result).toEqual({
      kind: 'approved',
      review: {
        approved: true,
        summary: 'fine',
        issues: [],
        confidence: 'high',
        usage: {
          prompt_tokens: 1000,
          completion_tokens: 200,
          cached_tokens: 100,
          cost_usd: expect.any(Number),
          calls: 1,
          provider: routing.defaults.auditor.provider,
          model: routing.defaults.auditor.model,
          report_id: 'r1:p1:1:auditor',
        },
      },
      gate: { level: 'ok', reasons: [] },
    });
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ ...routing.defaults.auditor, maxTokens: routing.auditorMaxTokens, temperature: 0.1, tool: { name: 'submit_review' } });
    expect(requests[0].prompt).toContain('+hello');
  });

  it('lets minor issues through as needs_review', async () => {
    const { result } = await run([approve({ issues: [{ issue_key: 'n', severity: 'minor', category: 'style', description: 'x' }] })]);
    expect(result).toMatchObject({ kind: 'approved', gate: { level: 'needs_review', reasons: ['1 minor issue(s)'] } });
  });

  it('blocks a change the auditor rejects or finds a major issue in', async () => {
    const rejected = await run([approve({ approved: false, summary: 'wrong file' })]);
    expect(rejected.result).toMatchObject({ kind: 'blocked', gate: { level: 'blocked', reasons: ['the auditor did not approve'] } });
    const major = await run([approve({ issues: [{ issue_key: 'sec', severity: 'major', category: 'security', description: 'leaks' }] })]);
    expect(major.result).toMatchObject({ kind: 'blocked', review: { approved: false }, gate: { reasons: ['1 major issue(s)', 'the auditor did not approve'] } });
  });

  it('retries a malformed review up to the auditor attempts, then rejects the change', async () => {
    const claim = makeClaim({ strategy: { max_auditor_attempts: 2 } });
    const { result, requests } = await run([{ toolInput: undefined, malformedReason: 'no tool call in reply' }, { toolInput: { approved: 'yes' } }], claim);
    expect(requests).toHaveLength(2);
    expect(result.kind).toBe('blocked');
    expect(result.review).toMatchObject({
      approved: false,
      confidence: 'low',
      summary: expect.stringMatching(/^auditor \(anthropic\) gave no valid review: /),
      issues: [{ issue_key: 'auditor_no_valid_review', severity: 'major', category: 'auditor_error' }],
      usage: { calls: 2, prompt_tokens: 2000 },
    });
  });

  it('accepts a valid review after a malformed one', async () => {
    const { result } = await run([{ toolInput: undefined, malformedReason: 'cut' }, approve()], makeClaim({ strategy: { max_auditor_attempts: 3 } }));
    expect(result).toMatchObject({ kind: 'approved', review: { usage: { calls: 2 } } });
  });

  it('asks a second auditor of the other provider on a dual-audit phase, and needs both to approve', async () => {
    const claim = makeClaim({ strategy: { dual_audit: true, high_risk: true } });
    const { result, requests } = await run([approve(), approve({ approved: false, summary: 'no', confidence: 'medium' })], claim);
    expect(requests.map((r) => r.provider)).toEqual(['anthropic', 'openai']);
    expect(result.kind).toBe('blocked');
    expect(result.review.summary).toBe(`[${requests[0].provider}:${requests[0].model}] fine\n[${requests[1].provider}:${requests[1].model}] no`);
    expect(result.review.usage).toMatchObject({ calls: 2, model: `${requests[0].model}+${requests[1].model}`, provider: 'anthropic' });
    expect(result.review.confidence).toBe('medium');
  });

  it('asks one auditor when dual audit is turned off', async () => {
    const { requests } = await run([approve()], makeClaim({ strategy: { dual_audit: true } }), { dualAuditor: false });
    expect(requests).toHaveLength(1);
  });

  it('blocks a high-risk phase without CI under the strict profile', async () => {
    const { result } = await run([approve()], makeClaim({ strategy: { high_risk: true, ci_profile: 'strict' } }), { ci: null });
    expect(result).toMatchObject({ kind: 'blocked', gate: { reasons: ['high-risk phase without a CI command (strict profile)'] } });
  });
});
