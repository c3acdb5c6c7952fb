import { RunStartRequestSchema } from './runs.contract.js';
import { BuilderResultRequestSchema, ClaimRequestSchema } from './executor.contract.js';
import { RUN_EVENT_TYPES, RunEventSchema, StreamedEventSchema } from './events.contract.js';
import { LIMITS } from './limits.js';
import { failureCodeOf, failureReason } from './vocabulary.js';

describe('failure codes', () => {
  it.each([
    ['ci_failed', '`npm test` exit 1', 'ci_failed: `npm test` exit 1'],
    ['push_rejected', 'another executor pushed first', 'push_rejected: another executor pushed first'],
  ] as const)('%s opens the reason and is read back from it', (code, detail, reason) => {
    expect(failureReason(code, detail)).toBe(reason);
    expect(failureCodeOf(reason)).toBe(code);
  });

  it('cuts the reason to the length a report accepts', () => {
    const reason = failureReason('budget', 'x'.repeat(5000));
    expect(reason).toHaveLength(LIMITS.failureReasonChars);
    expect(BuilderResultRequestSchema.shape.failure_reason.safeParse(reason).success).toBe(true);
  });

  it.each([['malformed reply: no tool call'], ['abandoned'], [''], [null], ['CI_FAILED: shouting']])('finds no code in %p', (reason) => {
    expect(failureCodeOf(reason)).toBeUndefined();
  });
});

describe('limits', () => {
  it('are the ones the request schemas enforce', () => {
    const claim = (wait_ms: number) => ClaimRequestSchema.safeParse({ executor_id: 'ex', wait_ms }).success;
    expect([claim(LIMITS.maxClaimWaitMs), claim(LIMITS.maxClaimWaitMs + 1)]).toEqual([true, false]);
    const feedback = (n: number) => BuilderResultRequestSchema.shape.feedback.safeParse('f'.repeat(n)).success;
    expect([feedback(LIMITS.feedbackChars), feedback(LIMITS.feedbackChars + 1)]).toEqual([true, false]);
    const tiers = (n: number) =>
      RunStartRequestSchema.safeParse({
        run: { run_id: 'r' },
        tiers: Array.from({ length: n }, (_, i) => ({ tier_id: `t${i}`, tier_index: i, name: 'T' })),
        phases: [{ phase_id: 'p', phase_index: 0, tier_id: 't0', name: 'P' }],
      }).success;
    expect([tiers(LIMITS.maxTiersPerRun), tiers(LIMITS.maxTiersPerRun + 1)]).toEqual([true, false]);
  });
});

describe('run events', () => {
  it('type every event the supervisor appends, by its type', () => {
    expect([...RUN_EVENT_TYPES].sort()).toEqual(
      ['build_status', 'build_step', 'issue_recorded', 'issues_resolved', 'llm_call', 'llm_usage', 'phase_claimed', 'phase_retry', 'phase_state', 'run_approval', 'run_created', 'run_state', 'tier_state'].sort(),
    );
    expect(RunEventSchema.safeParse({ type: 'phase_state', payload: { from: 'EXECUTING', to: 'COMPLETE', event: 'complete', attempt: 1, outcome: 'complete' } }).success).toBe(true);
    expect(RunEventSchema.safeParse({ type: 'phase_state', payload: { from: 'EXECUTING', to: 'DONE' } }).success).toBe(false);
    expect(RunEventSchema.safeParse({ type: 'run_exploded', payload: {} }).success).toBe(false);
    expect(RunEventSchema.safeParse({ type: 'build_status', payload: { from: 'running', to: 'awaiting_approval', checkpoint: 'built', step: 4 } }).success).toBe(true);
    expect(RunEventSchema.safeParse({ type: 'build_status', payload: { from: 'running', to: 'waiting' } }).success).toBe(false);
  });

  it('stream with their id, run, phase and time', () => {
    const e = { id: 7, run_id: 'r', phase_id: null, created_at: '2026-01-01T00:00:00.000Z', type: 'tier_state', payload: { tier_id: 't1', from: 'PENDING', to: 'IN_PROGRESS' } };
    expect(StreamedEventSchema.parse(e)).toEqual(e);
    expect(StreamedEventSchema.safeParse({ ...e, id: undefined }).success).toBe(false);
  });
});
