import type { PhaseState, RunState, TierState } from '@app/contracts';
import { type RunEndEvent, type RunSnapshot, type SettlePhase, SKIPPED_BY_FAILED_TIER, decideRunEnd, decideRunReopen, checkpointAtTiers, settleRun } from './settle.js';

const phase = (phaseId: string, tierId: string, state: PhaseState, extra: Partial<SettlePhase> = {}): SettlePhase => ({
  phaseId,
  tierId,
  state,
  attemptsUsed: 0,
  maxAttempts: 3,
  minorIssuesCount: 0,
  majorIssuesCount: 0,
  leased: state === 'EXECUTING' || state === 'CI_RUNNING' || state === 'GATE',
  lastFailureReason: null,
  ...extra,
});

const snapshot = (state: RunState, tiers: [string, TierState][], phases: SettlePhase[], extra: Partial<RunSnapshot> = {}): RunSnapshot => ({
  state,
  approvalMode: 'auto',
  approvedThroughTierIndex: -1,
  tiers: tiers.map(([tierId, s], tierIndex) => ({ tierId, tierIndex, state: s })),
  phases,
  ...extra,
});

describe('settleRun', () => {
  it.each<[string, RunSnapshot, { phaseMoves: string[]; tierMoves: string[]; runMove: string | null }]>([
    ['nothing started: nothing moves', snapshot('RUN_CREATED', [['t1', 'PENDING']], [phase('p1', 't1', 'QUEUED')]), { phaseMoves: [], tierMoves: [], runMove: null }],
    [
      'a first claim starts the tier and the run',
      snapshot('RUN_CREATED', [['t1', 'PENDING']], [phase('p1', 't1', 'EXECUTING'), phase('p2', 't1', 'QUEUED')]),
      { phaseMoves: [], tierMoves: ['t1 PENDING>IN_PROGRESS'], runMove: 'RUN_CREATED>PHASE_EXECUTION beginExecution' },
    ],
    [
      'the last phase completes the tier and the run',
      snapshot('PHASE_EXECUTION', [['t1', 'IN_PROGRESS']], [phase('p1', 't1', 'COMPLETE'), phase('p2', 't1', 'SKIPPED')]),
      { phaseMoves: [], tierMoves: ['t1 IN_PROGRESS>COMPLETE'], runMove: 'PHASE_EXECUTION>DONE_SUCCESS succeed' },
    ],
    [
      'a failed tier skips the queued phases of later tiers and ends the run for review',
      snapshot('PHASE_EXECUTION', [['t1', 'IN_PROGRESS'], ['t2', 'PENDING']], [phase('p1', 't1', 'FAILED', { lastFailureReason: 'tests failed' }), phase('p2', 't2', 'QUEUED')]),
      {
        phaseMoves: ['p2 QUEUED>SKIPPED'],
        tierMoves: ['t1 IN_PROGRESS>FAILED', 't2 PENDING>SKIPPED'],
        runMove: 'PHASE_EXECUTION>DONE_FAILED_REQUIRES_HUMAN_REVIEW failForReview',
      },
    ],
    [
      'a failed tier with work in flight waits',
      snapshot('PHASE_EXECUTION', [['t1', 'IN_PROGRESS']], [phase('p1', 't1', 'FAILED'), phase('p2', 't1', 'EXECUTING')]),
      { phaseMoves: [], tierMoves: [], runMove: null },
    ],
    [
      'a retried phase reopens its failed tier and starts it again',
      snapshot('PHASE_EXECUTION', [['t1', 'FAILED'], ['t2', 'SKIPPED']], [phase('p1', 't1', 'EXECUTING'), phase('p2', 't2', 'QUEUED')]),
      { phaseMoves: [], tierMoves: ['t1 FAILED>PENDING', 't1 PENDING>IN_PROGRESS', 't2 SKIPPED>PENDING'], runMove: null },
    ],
    [
      'final approval mode waits for approval at the end',
      snapshot('PHASE_EXECUTION', [['t1', 'COMPLETE']], [phase('p1', 't1', 'COMPLETE')], { approvalMode: 'final' }),
      { phaseMoves: [], tierMoves: [], runMove: 'PHASE_EXECUTION>AWAITING_APPROVAL awaitApproval' },
    ],
    [
      'checkpoints wait after a tier while later tiers remain',
      snapshot('PHASE_EXECUTION', [['t1', 'IN_PROGRESS'], ['t2', 'PENDING']], [phase('p1', 't1', 'COMPLETE'), phase('p2', 't2', 'QUEUED')], { approvalMode: 'checkpoints' }),
      { phaseMoves: [], tierMoves: ['t1 IN_PROGRESS>COMPLETE'], runMove: 'PHASE_EXECUTION>AWAITING_APPROVAL awaitApproval' },
    ],
    [
      'an approved checkpoint does not wait again',
      snapshot('PHASE_EXECUTION', [['t1', 'COMPLETE'], ['t2', 'PENDING']], [phase('p1', 't1', 'COMPLETE'), phase('p2', 't2', 'QUEUED')], { approvalMode: 'checkpoints', approvedThroughTierIndex: 0 }),
      { phaseMoves: [], tierMoves: [], runMove: null },
    ],
    [
      'a run awaiting approval is not moved by its outcome',
      snapshot('AWAITING_APPROVAL', [['t1', 'COMPLETE']], [phase('p1', 't1', 'COMPLETE')], { approvalMode: 'final' }),
      { phaseMoves: [], tierMoves: [], runMove: null },
    ],
    [
      'a terminal run still settles its tiers',
      snapshot('CANCELLED', [['t1', 'IN_PROGRESS']], [phase('p1', 't1', 'SKIPPED')]),
      { phaseMoves: [], tierMoves: ['t1 IN_PROGRESS>SKIPPED'], runMove: null },
    ],
  ])('%s', (_name, run, expected) => {
    const s = settleRun(run);
    expect({
      phaseMoves: s.phaseMoves.map((m) => `${m.phaseId} ${m.from}>${m.to}`),
      tierMoves: s.tierMoves.map((m) => `${m.tierId} ${m.from}>${m.to}`),
      runMove: s.runMove && `${s.runMove.from}>${s.runMove.to} ${s.runMove.event}`,
    }).toEqual(expected);
    // One event per move, in the order applied.
    expect(s.events.map((e) => e.type)).toEqual([...s.phaseMoves.map(() => 'phase_state'), ...s.tierMoves.map(() => 'tier_state'), ...(s.runMove ? ['run_state'] : [])]);
  });

  it('records why phases were skipped and summarises the failure in the run reason', () => {
    const s = settleRun(snapshot('PHASE_EXECUTION', [['t1', 'IN_PROGRESS'], ['t2', 'PENDING']], [phase('p1', 't1', 'FAILED', { lastFailureReason: 'tests failed' }), phase('p2', 't2', 'QUEUED')]));
    expect(s.phaseMoves[0].lastFailureReason).toBe(SKIPPED_BY_FAILED_TIER);
    expect(s.events[0]).toEqual({ phaseId: 'p2', type: 'phase_state', payload: { from: 'QUEUED', to: 'SKIPPED', reason: SKIPPED_BY_FAILED_TIER } });
    expect(s.runMove?.reason).toBe('phase(s) failed: p1 (tests failed)');
    expect(s.events.at(-1)).toEqual({ type: 'run_state', payload: { from: 'PHASE_EXECUTION', to: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW', reason: 'phase(s) failed: p1 (tests failed)' } });
  });

  it.each<[string, Partial<SettlePhase>[], { major?: number; minor?: number }, { cleanliness: string; minor: number; major: number }]>([
    ['clean within the default tolerance (2 minor per phase)', [{ minorIssuesCount: 2 }], {}, { cleanliness: 'clean', minor: 2, major: 0 }],
    ['not clean past the minor tolerance', [{ minorIssuesCount: 3 }], {}, { cleanliness: 'not_clean', minor: 3, major: 0 }],
    ['not clean with a major issue', [{ majorIssuesCount: 1 }], {}, { cleanliness: 'not_clean', minor: 0, major: 1 }],
    ['clean with a tolerated major issue', [{ majorIssuesCount: 1 }], { major: 1 }, { cleanliness: 'clean', minor: 0, major: 1 }],
    ['not clean with a failed phase', [{ state: 'FAILED' }], {}, { cleanliness: 'not_clean', minor: 0, major: 0 }],
  ])('tallies a tier: %s', (_name, phases, tolerated, tally) => {
    const run = snapshot('PHASE_EXECUTION', [['t1', 'IN_PROGRESS']], phases.map((p, i) => phase(`p${i}`, 't1', 'EXECUTING', p)));
    const s = settleRun({ ...run, tiers: [{ ...run.tiers[0], maxMajorIssuesTolerated: tolerated.major, maxMinorIssuesTolerated: tolerated.minor }] });
    expect(s.tierTallies).toEqual([{ tierId: 't1', ...tally }]);
  });
});

describe('decideRunEnd', () => {
  const phases = [phase('q', 't1', 'QUEUED'), phase('x', 't1', 'EXECUTING'), phase('g', 't1', 'GATE'), phase('c', 't1', 'COMPLETE'), phase('f', 't1', 'FAILED')];
  it.each<[RunState, RunEndEvent, string | null]>([
    ['PHASE_EXECUTION', 'exhaustBudget', 'DONE_FAILED_BUDGET_EXHAUSTED'],
    ['RUN_CREATED', 'cancel', 'CANCELLED'],
    ['AWAITING_APPROVAL', 'reject', 'DONE_FAILED_REQUIRES_HUMAN_REVIEW'],
    ['AWAITING_APPROVAL', 'exhaustBudget', 'DONE_FAILED_BUDGET_EXHAUSTED'],
    ['PHASE_EXECUTION', 'violatePolicy', 'DONE_FAILED_POLICY_VIOLATION'],
    ['PHASE_EXECUTION', 'reject', null],
    ['DONE_SUCCESS', 'cancel', null],
    ['CANCELLED', 'exhaustBudget', null],
  ])('%s on %s ends %s', (state, event, to) => {
    const end = decideRunEnd({ state, phases }, event, 'why');
    expect(end?.runMove ?? null).toEqual(to === null ? null : { from: state, event, to, reason: 'why' });
  });

  it('skips queued phases and fails leased ones, revoking their leases, then moves the run', () => {
    const end = decideRunEnd({ state: 'PHASE_EXECUTION', phases }, 'cancel', 'cancelled by operator');
    expect(end?.phaseMoves).toEqual([
      { phaseId: 'q', from: 'QUEUED', to: 'SKIPPED', lastFailureReason: 'run ended: cancelled by operator', clearLease: true },
      { phaseId: 'x', from: 'EXECUTING', to: 'FAILED', lastFailureReason: 'run ended: cancelled by operator', clearLease: true },
      { phaseId: 'g', from: 'GATE', to: 'FAILED', lastFailureReason: 'run ended: cancelled by operator', clearLease: true },
    ]);
    expect(end?.events).toEqual([
      { phaseId: 'q', type: 'phase_state', payload: { from: 'QUEUED', to: 'SKIPPED', reason: 'run ended: cancelled by operator' } },
      { phaseId: 'x', type: 'phase_state', payload: { from: 'EXECUTING', to: 'FAILED', reason: 'run ended: cancelled by operator' } },
      { phaseId: 'g', type: 'phase_state', payload: { from: 'GATE', to: 'FAILED', reason: 'run ended: cancelled by operator' } },
      { type: 'run_state', payload: { from: 'PHASE_EXECUTION', to: 'CANCELLED', reason: 'cancelled by operator' } },
    ]);
  });
});

describe('decideRunReopen', () => {
  it.each<[RunState, boolean]>([
    ['DONE_FAILED_REQUIRES_HUMAN_REVIEW', true],
    ['DONE_FAILED_BUDGET_EXHAUSTED', false],
    ['DONE_FAILED_POLICY_VIOLATION', false],
    ['DONE_FAILED_ENVIRONMENT', false],
    ['CANCELLED', false],
    ['DONE_SUCCESS', false],
    ['PHASE_EXECUTION', false],
  ])('a run that is %s reopens: %s', (state, reopens) => {
    expect(decideRunReopen({ state, phases: [] }, 'p1')?.runMove ?? null).toEqual(reopens ? { from: state, event: 'reopen', to: 'PHASE_EXECUTION', reason: null } : null);
  });

  it('queues again only the phases a failed tier skipped', () => {
    const phases = [
      phase('failed', 't1', 'FAILED'),
      phase('blocked', 't2', 'SKIPPED', { lastFailureReason: SKIPPED_BY_FAILED_TIER }),
      phase('ended', 't2', 'SKIPPED', { lastFailureReason: 'run ended: cancelled by operator' }),
      phase('done', 't1', 'COMPLETE'),
    ];
    const reopen = decideRunReopen({ state: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW', phases }, 'failed');
    expect(reopen?.phaseMoves).toEqual([{ phaseId: 'blocked', from: 'SKIPPED', to: 'QUEUED', lastFailureReason: null }]);
    expect(reopen?.events).toEqual([
      { phaseId: 'blocked', type: 'phase_state', payload: { from: 'SKIPPED', to: 'QUEUED', event: 'reopen', reason: 'phase failed was retried' } },
      { type: 'run_state', payload: { from: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW', to: 'PHASE_EXECUTION' } },
    ]);
  });
});

describe('checkpoints at given tiers (a droplet build)', () => {
  const t = (tierIndex: number, state: 'PENDING' | 'IN_PROGRESS' | 'COMPLETE') => ({ tierId: `t${tierIndex}`, tierIndex, state });

  it.each([
    ['the checkpoint tier is done and not approved', [t(0, 'COMPLETE'), t(1, 'PENDING')], [0], -1, false, true],
    ['it was approved already', [t(0, 'COMPLETE'), t(1, 'PENDING')], [0], 0, false, false],
    ['a tier after it is done but the checkpoint tier is not reached', [t(0, 'COMPLETE'), t(1, 'PENDING'), t(9000, 'PENDING')], [9000], -1, false, false],
    ['a phase is still leased', [t(0, 'COMPLETE'), t(1, 'PENDING')], [0], -1, true, false],
    ['nothing remains after it', [t(0, 'COMPLETE'), t(9000, 'COMPLETE')], [9000], 0, false, false],
    ['no checkpoints (auto)', [t(0, 'COMPLETE'), t(1, 'PENDING')], [], -1, false, false],
  ] as const)('%s', (_what, tiers, checkpoints, approvedThrough, leased, needed) => {
    expect(checkpointAtTiers(tiers, checkpoints, approvedThrough, leased).needed).toBe(needed);
  });
});
