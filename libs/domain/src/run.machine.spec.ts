import { RUN_STATES, type RunState, TIER_STATES, type TierState } from '@app/contracts';
import { RUN_EVENTS, type RunEvent, isRunClaimable, isRunTerminal, transitionRun } from './run.machine.js';
import { TIER_EVENTS, type TierEvent, transitionTier } from './tier.machine.js';

const ENDINGS: Record<string, RunState> = {
  exhaustBudget: 'DONE_FAILED_BUDGET_EXHAUSTED',
  violatePolicy: 'DONE_FAILED_POLICY_VIOLATION',
  failEnvironment: 'DONE_FAILED_ENVIRONMENT',
  failForReview: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW',
  cancel: 'CANCELLED',
};
const LEGAL: Record<string, RunState> = {};
const add = (state: string, map: Record<string, RunState>) => {
  for (const [e, to] of Object.entries(map)) LEGAL[`${state}:${e}`] = to;
};
add('PLAN_BOOTSTRAP', { queuePhases: 'RUN_CREATED', ...ENDINGS });
const ACTIVE = { ...ENDINGS, awaitApproval: 'AWAITING_APPROVAL', succeed: 'DONE_SUCCESS' } as Record<string, RunState>;
add('RUN_CREATED', { queuePhases: 'PHASE_QUEUEING', beginExecution: 'PHASE_EXECUTION', ...ACTIVE });
add('PHASE_QUEUEING', { beginExecution: 'PHASE_EXECUTION', ...ACTIVE });
add('PHASE_EXECUTION', ACTIVE);
for (const s of ['GATE', 'CI_RUNNING', 'SNAPSHOT_CREATED']) add(s, { beginExecution: 'PHASE_EXECUTION', ...ACTIVE });
add('AWAITING_APPROVAL', {
  approve: 'PHASE_EXECUTION',
  reject: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW',
  succeed: 'DONE_SUCCESS',
  cancel: 'CANCELLED',
  exhaustBudget: 'DONE_FAILED_BUDGET_EXHAUSTED',
});
add('DONE_FAILED_REQUIRES_HUMAN_REVIEW', { reopen: 'PHASE_EXECUTION' });

describe('run machine', () => {
  const pairs = RUN_STATES.flatMap((s) => RUN_EVENTS.map((e) => [s, e] as [RunState, RunEvent]));
  it.each(pairs)('%s + %s', (state, event) => {
    const expected = LEGAL[`${state}:${event}`];
    const result = transitionRun(state, event);
    expect(result).toEqual(expected ? { ok: true, to: expected } : expect.objectContaining({ ok: false }));
  });

  it('knows terminal and claimable states', () => {
    expect(RUN_STATES.filter(isRunTerminal).sort()).toEqual(
      [
        'CANCELLED',
        'DONE_FAILED_BUDGET_EXHAUSTED',
        'DONE_FAILED_ENVIRONMENT',
        'DONE_FAILED_POLICY_VIOLATION',
        'DONE_FAILED_REQUIRES_HUMAN_REVIEW',
        'DONE_SUCCESS',
      ].sort(),
    );
    expect(isRunClaimable('AWAITING_APPROVAL')).toBe(false);
    expect(isRunClaimable('PHASE_EXECUTION')).toBe(true);
  });
});

describe('tier machine', () => {
  const legal: Record<string, TierState> = {
    'PENDING:start': 'IN_PROGRESS',
    'PENDING:complete': 'COMPLETE',
    'PENDING:fail': 'FAILED',
    'PENDING:skip': 'SKIPPED',
    'IN_PROGRESS:complete': 'COMPLETE',
    'IN_PROGRESS:fail': 'FAILED',
    'IN_PROGRESS:skip': 'SKIPPED',
    'FAILED:reopen': 'PENDING',
    'SKIPPED:reopen': 'PENDING',
    'COMPLETE:reopen': 'PENDING',
  };
  const pairs = TIER_STATES.flatMap((s) => TIER_EVENTS.map((e) => [s, e] as [TierState, TierEvent]));
  it.each(pairs)('%s + %s', (state, event) => {
    const expected = legal[`${state}:${event}`];
    expect(transitionTier(state, event)).toEqual(expected ? { ok: true, to: expected } : expect.objectContaining({ ok: false }));
  });
});
