import { BUILD_STATUSES, BUILD_STEP_STATUSES, type BuildStatus, type BuildStepNumber, type BuildStepStatus } from '@app/contracts';
import {
  BUILD_EVENTS,
  BUILD_STEP_EVENTS,
  BUILD_TIERS,
  type BuildStepView,
  buildCheckpointTiers,
  buildStepOfTier,
  buildStreamMessageOf,
  followBuildSteps,
  DEFAULT_STEP_SECONDS,
  buildsToStart,
  checkpointAfter,
  estimateBuild,
  isBuildFinished,
  nextBuildStep,
  resolveRetryStep,
  stepsToReset,
  transitionBuild,
  transitionBuildStep,
} from './build.js';

/** Every legal (from, event) of the build table; every other pair must be refused. */
const LEGAL_BUILD: Record<string, BuildStatus> = {
  'queued start': 'running',
  'queued cancel': 'cancelled',
  'running awaitApproval': 'awaiting_approval',
  'running complete': 'completed',
  'running fail': 'failed',
  'running cancel': 'cancelled',
  'awaiting_approval approve': 'running',
  'awaiting_approval reject': 'failed',
  'awaiting_approval cancel': 'cancelled',
  'failed retry': 'queued',
};

const LEGAL_STEP: Record<string, BuildStepStatus> = {
  'pending start': 'running',
  'pending skip': 'skipped',
  'running complete': 'completed',
  'running fail': 'failed',
  'running reset': 'pending',
  'completed reset': 'pending',
  'failed reset': 'pending',
  'skipped reset': 'pending',
};

/** Steps 1..6 with the given statuses. */
const steps = (...statuses: BuildStepStatus[]): BuildStepView[] => statuses.map((status, i) => ({ step: (i + 1) as BuildStepNumber, status }));

describe('build transitions', () => {
  it.each(BUILD_STATUSES.flatMap((from) => BUILD_EVENTS.map((event) => [from, event] as const)))('%s + %s', (from, event) => {
    const r = transitionBuild(from, event);
    const legal = LEGAL_BUILD[`${from} ${event}`];
    expect(r).toEqual(legal ? { ok: true, to: legal } : { ok: false, reason: `build cannot '${event}' when ${from}` });
  });

  it.each([
    ['queued', false],
    ['running', false],
    ['awaiting_approval', false],
    ['completed', true],
    ['failed', true],
    ['cancelled', true],
  ] as const)('%s is finished: %s', (status, finished) => {
    expect(isBuildFinished(status)).toBe(finished);
  });
});

describe('build step transitions', () => {
  it.each(BUILD_STEP_STATUSES.flatMap((from) => BUILD_STEP_EVENTS.map((event) => [from, event] as const)))('%s + %s', (from, event) => {
    const legal = LEGAL_STEP[`${from} ${event}`];
    expect(transitionBuildStep(from, event)).toEqual(legal ? { ok: true, to: legal } : { ok: false, reason: `step cannot '${event}' when ${from}` });
  });
});

describe('checkpointAfter', () => {
  it.each([
    ['auto', 1, undefined],
    ['auto', 4, undefined],
    ['checkpoints', 1, 'spec_generated'],
    ['checkpoints', 2, undefined],
    ['checkpoints', 3, undefined],
    ['checkpoints', 4, 'built'],
    ['checkpoints', 5, undefined],
    ['final', 1, undefined],
    ['final', 4, 'built'],
    ['final', 6, undefined],
  ] as const)('%s after step %i: %s', (mode, step, checkpoint) => {
    expect(checkpointAfter(step, mode)).toBe(checkpoint);
  });
});

describe('nextBuildStep', () => {
  it.each([
    [steps('pending', 'pending', 'pending', 'pending', 'pending', 'pending'), 1],
    [steps('completed', 'running', 'pending', 'pending', 'pending', 'pending'), 2],
    [steps('completed', 'completed', 'completed', 'completed', 'skipped', 'pending'), 6],
    [steps('completed', 'completed', 'completed', 'failed', 'pending', 'pending'), 4],
    [steps('completed', 'completed', 'completed', 'completed', 'completed', 'skipped'), undefined],
  ])('%j -> %s', (s, next) => {
    expect(nextBuildStep(s)?.step).toBe(next);
  });
});

describe('resolveRetryStep', () => {
  const failedAtDeploy = steps('completed', 'completed', 'completed', 'completed', 'failed', 'pending');
  it.each([
    [undefined, 5],
    [5, 5],
    ['5', 5],
    [' 3 ', 3],
    ['deploy', 5],
    ['Deploy', 5],
    ['SPEC Generation', 1],
    ['spec', 1],
    [1, 1],
  ] as const)('from_step %j restarts at %i', (fromStep, step) => {
    expect(resolveRetryStep(failedAtDeploy, fromStep)).toEqual({ ok: true, step });
  });

  it.each([
    [6, /comes after the step to run again, 5/],
    ['register', /comes after/],
    [0, /must be 1-6/],
    [7, /must be 1-6/],
    [2.5, /must be 1-6/],
    ['launch', /must be 1-6 or one of spec, package, build, verify, deploy, register/],
  ] as const)('from_step %j is refused', (fromStep, reason) => {
    const r = resolveRetryStep(failedAtDeploy, fromStep);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(reason);
  });

  it('refuses a build with nothing left to run', () => {
    expect(resolveRetryStep(steps('completed', 'completed', 'completed', 'completed', 'completed', 'completed'), undefined)).toEqual({ ok: false, reason: 'no step failed or is left to run' });
  });
});

describe('stepsToReset', () => {
  it.each([
    [steps('completed', 'completed', 'completed', 'completed', 'failed', 'pending'), 5, [5]],
    [steps('completed', 'completed', 'completed', 'completed', 'failed', 'pending'), 3, [3, 4, 5]],
    [steps('completed', 'skipped', 'completed', 'failed', 'pending', 'pending'), 1, [1, 2, 3, 4]],
  ] as const)('%j from %i resets %j', (s, from, reset) => {
    expect(stepsToReset(s, from)).toEqual(reset);
  });
});

describe('buildsToStart', () => {
  const q = (id: string, queuedAt: number) => ({ id, queuedAt });
  it.each([
    [0, [q('b', 2), q('a', 1), q('c', 3), q('d', 4)], 3, ['a', 'b', 'c']],
    [2, [q('b', 2), q('a', 1)], 3, ['a']],
    [3, [q('a', 1)], 3, []],
    [5, [q('a', 1)], 3, []],
    [0, [], 3, []],
  ] as const)('%i running, queue %j, max %i: starts %j', (running, queued, max, started) => {
    expect(buildsToStart(running, queued, max).map((b) => b.id)).toEqual(started);
  });
});

describe('estimateBuild', () => {
  const now = 1_000_000;
  const total = Object.values(DEFAULT_STEP_SECONDS).reduce((a, b) => a + b, 0);
  it.each([
    ['nothing started, no history', steps('pending', 'pending', 'pending', 'pending', 'pending', 'pending'), {}, 0, total],
    ['SPEC and Package done', steps('completed', 'completed', 'pending', 'pending', 'pending', 'pending'), {}, Math.floor((100 * 70) / total), total - 70],
    ['Deploy skipped counts as nothing', steps('completed', 'completed', 'completed', 'completed', 'skipped', 'pending'), {}, Math.floor((100 * 790) / 795), 5],
    ['all done', steps('completed', 'completed', 'completed', 'completed', 'completed', 'completed'), {}, 100, 0],
    // History: step 3 took 100, 200 and 300 s before (median 200), step 1 took 20 s; the others
    // take their defaults (10 + 120 + 60 + 5): 415 s in all.
    ['history weighs the steps', steps('completed', 'pending', 'pending', 'pending', 'pending', 'pending'), { 1: [20], 3: [300, 100, 200] }, Math.floor((100 * 20) / 415), 395],
  ] as const)('%s', (_name, s, history, percent, seconds) => {
    expect(estimateBuild(s, history, now)).toEqual({ progressPercent: percent, secondsRemaining: seconds });
  });

  it('counts a running step by the time it ran, up to 95% of what it takes', () => {
    const running = (ranSeconds: number) => [
      { step: 1 as const, status: 'completed' as const },
      { step: 2 as const, status: 'completed' as const },
      { step: 3 as const, status: 'running' as const, startedAt: now - ranSeconds * 1000 },
    ];
    expect(estimateBuild(running(300), {}, now)).toEqual({ progressPercent: Math.floor((100 * 370) / total), secondsRemaining: total - 370 });
    // Overdue: never 100%, never a negative remainder.
    expect(estimateBuild(running(5000), {}, now)).toEqual({ progressPercent: Math.floor((100 * (70 + 570)) / total), secondsRemaining: total - 640 });
  });
});

describe("a build run's tiers and steps", () => {
  const tier = (tierIndex: number, state: string) => ({ tierIndex, state });
  const steps = (...statuses: BuildStepStatus[]) => statuses.map((status, i) => ({ step: (i + 1) as BuildStepNumber, status }));

  it('maps each tier to the step it carries: planned tiers are Build', () => {
    expect([0, 1, 2, 7, 8999, 9000, 9001, 9002].map(buildStepOfTier)).toEqual([1, 2, 3, 3, 3, 4, 5, 5]);
  });

  it('waits at the checkpoints of the approval mode', () => {
    expect(buildCheckpointTiers('auto')).toEqual([]);
    expect(buildCheckpointTiers('final')).toEqual([BUILD_TIERS.verify.tier_index]);
    expect(buildCheckpointTiers('checkpoints')).toEqual([BUILD_TIERS.spec.tier_index, BUILD_TIERS.verify.tier_index]);
  });

  it.each([
    ['nothing begun', [tier(0, 'PENDING'), tier(1, 'PENDING')], steps('pending', 'pending', 'pending', 'pending', 'pending', 'pending'), []],
    ['the planning tier started', [tier(0, 'IN_PROGRESS'), tier(1, 'PENDING')], steps('pending', 'pending', 'pending', 'pending', 'pending', 'pending'), [{ step: 1, event: 'start' }]],
    [
      'planning done, package started at once',
      [tier(0, 'COMPLETE'), tier(1, 'IN_PROGRESS')],
      steps('running', 'pending', 'pending', 'pending', 'pending', 'pending'),
      [
        { step: 1, event: 'complete' },
        { step: 2, event: 'start' },
      ],
    ],
    ['Build waits for all planned tiers', [tier(0, 'COMPLETE'), tier(1, 'COMPLETE'), tier(2, 'COMPLETE'), tier(3, 'IN_PROGRESS')], steps('completed', 'completed', 'running', 'pending', 'pending', 'pending'), []],
    [
      'a failed planned tier fails Build; the tiers it skipped start nothing',
      [tier(0, 'COMPLETE'), tier(1, 'COMPLETE'), tier(2, 'FAILED'), tier(9000, 'SKIPPED'), tier(9001, 'SKIPPED'), tier(9002, 'SKIPPED')],
      steps('completed', 'completed', 'running', 'pending', 'pending', 'pending'),
      [{ step: 3, event: 'fail' }],
    ],
    ['promotion done: Deploy runs on (the hooks complete it)', [tier(9000, 'COMPLETE'), tier(9001, 'COMPLETE'), tier(9002, 'PENDING')], steps('completed', 'completed', 'completed', 'completed', 'running', 'pending'), []],
    ['a failed deploy tier fails Deploy', [tier(9001, 'COMPLETE'), tier(9002, 'FAILED')], steps('completed', 'completed', 'completed', 'completed', 'running', 'pending'), [{ step: 5, event: 'fail' }]],
  ] as const)('%s', (_what, tiers, current, moves) => {
    expect(followBuildSteps(tiers, current)).toEqual(moves);
  });
});

describe('the build stream', () => {
  const at = '2026-11-30T12:00:00.000Z';
  const event = (type: string, payload: Record<string, unknown>, phase_id: string | null = null) => ({ type, phase_id, created_at: at, payload });

  it('turns step moves, waits and ends into the contract messages', () => {
    expect(buildStreamMessageOf(event('build_step', { step: 1, name: 'SPEC Generation', from: 'pending', to: 'running', progress_percent: 0 }), 0)).toEqual({
      type: 'phase_start',
      phase: 'SPEC Generation',
      progress_percent: 0,
      message: 'SPEC Generation started',
      at,
      final: false,
    });
    expect(buildStreamMessageOf(event('build_step', { step: 4, name: 'Verify', from: 'running', to: 'failed', progress_percent: 60, error: 'ci_failed: 1' }), 50)).toMatchObject({ type: 'error', phase: 'Verify', progress_percent: 60, final: false });
    expect(buildStreamMessageOf(event('build_status', { from: 'running', to: 'awaiting_approval', checkpoint: 'built', step: 4 }), 70)).toMatchObject({ type: 'awaiting_approval', phase: 'Verify', progress_percent: 70, message: 'waiting for approval at built' });
    expect(buildStreamMessageOf(event('build_status', { from: 'running', to: 'completed' }), 90)).toMatchObject({ type: 'build_complete', progress_percent: 100, final: true });
    expect(buildStreamMessageOf(event('build_status', { from: 'awaiting_approval', to: 'failed', error: 'rejected' }), 70)).toMatchObject({ type: 'error', final: true });
  });

  it('reports a planned phase completed as progress within Build, and ignores the rest', () => {
    expect(buildStreamMessageOf(event('phase_state', { from: 'GATE', to: 'COMPLETE' }, 'api'), 40)).toMatchObject({ type: 'phase_progress', phase: 'Build', progress_percent: 40, message: 'phase api completed' });
    expect(buildStreamMessageOf(event('phase_state', { from: 'GATE', to: 'COMPLETE' }, 'verify'), 40)).toBeNull();
    expect(buildStreamMessageOf(event('phase_claimed', { attempt: 1 }, 'api'), 40)).toBeNull();
  });
});
