import {
  BUILD_STEPS,
  type BuildApprovalMode,
  type BuildCheckpoint,
  type BuildStatus,
  type BuildStepNumber,
  type BuildStepStatus,
} from '@app/contracts';

/*
 * Droplet builds (CONTRACT.md section 8) as pure decisions: the build's and its steps'
 * transition tables, where a build waits for approval, what a retry restarts, which queued
 * builds may start, and progress with an estimate from earlier builds' step durations.
 */

/** Events that move a build. */
export const BUILD_EVENTS = ['start', 'awaitApproval', 'approve', 'reject', 'complete', 'fail', 'cancel', 'retry'] as const;
/** A build event. */
export type BuildEvent = (typeof BUILD_EVENTS)[number];

/**
 * The build transition table. `completed` and `cancelled` are final; a `failed` build (a step
 * that ran out of tries, or a rejection) only moves by an operator's retry, back to the queue.
 */
export const BUILD_TRANSITIONS = {
  queued: { start: 'running', cancel: 'cancelled' },
  running: { awaitApproval: 'awaiting_approval', complete: 'completed', fail: 'failed', cancel: 'cancelled' },
  awaiting_approval: { approve: 'running', reject: 'failed', cancel: 'cancelled' },
  completed: {},
  failed: { retry: 'queued' },
  cancelled: {},
} as const satisfies Record<BuildStatus, Partial<Record<BuildEvent, BuildStatus>>>;

/** Build statuses nothing but a retry moves on from. */
export function isBuildFinished(status: BuildStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/** Applies a build event. Pure. */
export function transitionBuild(from: BuildStatus, event: BuildEvent): { ok: true; to: BuildStatus } | { ok: false; reason: string } {
  const row: Partial<Record<BuildEvent, BuildStatus>> = BUILD_TRANSITIONS[from];
  const to = row[event];
  return to ? { ok: true, to } : { ok: false, reason: `build cannot '${event}' when ${from}` };
}

/** Events that move one step. */
export const BUILD_STEP_EVENTS = ['start', 'complete', 'fail', 'skip', 'reset'] as const;
/** A step event. */
export type BuildStepEvent = (typeof BUILD_STEP_EVENTS)[number];

/**
 * The step transition table. A step that was running when a process restarted stays running
 * and is taken up again (its work is idempotent); `reset` puts a step back for a retry.
 */
export const BUILD_STEP_TRANSITIONS = {
  pending: { start: 'running', skip: 'skipped' },
  running: { complete: 'completed', fail: 'failed', reset: 'pending' },
  completed: { reset: 'pending' },
  failed: { reset: 'pending' },
  skipped: { reset: 'pending' },
} as const satisfies Record<BuildStepStatus, Partial<Record<BuildStepEvent, BuildStepStatus>>>;

/** Applies a step event. Pure. */
export function transitionBuildStep(from: BuildStepStatus, event: BuildStepEvent): { ok: true; to: BuildStepStatus } | { ok: false; reason: string } {
  const row: Partial<Record<BuildStepEvent, BuildStepStatus>> = BUILD_STEP_TRANSITIONS[from];
  const to = row[event];
  return to ? { ok: true, to } : { ok: false, reason: `step cannot '${event}' when ${from}` };
}

/** The checkpoint a build waits at once `step` completed, if its mode waits there. */
export function checkpointAfter(step: BuildStepNumber, mode: BuildApprovalMode): BuildCheckpoint | undefined {
  if (mode === 'checkpoints' && step === 1) return 'spec_generated';
  if ((mode === 'checkpoints' || mode === 'final') && step === 4) return 'built';
  return undefined;
}

/** One step as stored. */
export interface BuildStepView {
  step: BuildStepNumber;
  status: BuildStepStatus;
  /** When it started running (ms since the epoch), if it did. */
  startedAt?: number | null;
  /** When it completed (ms since the epoch), if it did. */
  completedAt?: number | null;
}

/** The step to run next: the first one neither completed nor skipped; undefined when none is left. */
export function nextBuildStep(steps: readonly BuildStepView[]): BuildStepView | undefined {
  return [...steps].sort((a, b) => a.step - b.step).find((s) => s.status !== 'completed' && s.status !== 'skipped');
}

/**
 * The step a retry restarts from: `fromStep` as a number (1-6), a key (`deploy`) or a name
 * (`Deploy`, any case), by default the failed step. A retry may go back, never past the step
 * that failed (that would skip it).
 */
export function resolveRetryStep(
  steps: readonly BuildStepView[],
  fromStep: number | string | undefined,
): { ok: true; step: BuildStepNumber } | { ok: false; reason: string } {
  const failed = steps.find((s) => s.status === 'failed')?.step ?? nextBuildStep(steps)?.step;
  if (failed === undefined) return { ok: false, reason: 'no step failed or is left to run' };
  if (fromStep === undefined) return { ok: true, step: failed };
  const text = String(fromStep).trim().toLowerCase();
  const known = /^\d+$/.test(text) ? BUILD_STEPS.find((s) => s.step === Number(text)) : BUILD_STEPS.find((s) => s.key === text || s.name.toLowerCase() === text);
  if (!known) return { ok: false, reason: `from_step must be 1-6 or one of ${BUILD_STEPS.map((s) => s.key).join(', ')} (got ${JSON.stringify(fromStep)})` };
  if (known.step > failed) return { ok: false, reason: `from_step ${known.step} (${known.name}) comes after the step to run again, ${failed}; it would skip it` };
  return { ok: true, step: known.step };
}

/** The steps a retry from `step` puts back to pending: that one and every later one that ran or was skipped. */
export function stepsToReset(steps: readonly BuildStepView[], step: BuildStepNumber): BuildStepNumber[] {
  return steps.filter((s) => s.step >= step && s.status !== 'pending').map((s) => s.step);
}

/** Queued builds in arrival order, as far as they may start now (at most `max` running at once). */
export function buildsToStart<T extends { queuedAt: number }>(running: number, queued: readonly T[], max: number): T[] {
  const free = Math.max(0, max - running);
  return [...queued].sort((a, b) => a.queuedAt - b.queuedAt).slice(0, free);
}

/**
 * What a step takes when no earlier build says otherwise, in seconds: a planner call, two small
 * commits, the phases (most of a build), CI, a deploy with its health check, a registration.
 */
export const DEFAULT_STEP_SECONDS: Readonly<Record<BuildStepNumber, number>> = { 1: 60, 2: 10, 3: 600, 4: 120, 5: 60, 6: 5 };

/** The median of the positive, finite values, or undefined. */
function median(values: readonly number[]): number | undefined {
  const v = values.filter((x) => Number.isFinite(x) && x > 0).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Progress of a build and the time it still needs. */
export interface BuildEstimate {
  /** 0-100, whole percent; 100 only when every step is done. */
  progressPercent: number;
  /** Seconds, rounded up; 0 when nothing is left. */
  secondsRemaining: number;
}

/**
 * Progress and the time left, weighted by what each step takes: the median of earlier builds'
 * durations of that step (`history[step]`, in seconds), else {@link DEFAULT_STEP_SECONDS}. A
 * running step counts the time it has run, up to 95% of what it is expected to take (it is not
 * done until it says so); skipped steps count as done and take nothing.
 */
export function estimateBuild(steps: readonly BuildStepView[], history: Readonly<Partial<Record<BuildStepNumber, readonly number[]>>>, now: number): BuildEstimate {
  let total = 0;
  let done = 0;
  let remaining = 0;
  for (const { step } of BUILD_STEPS) {
    const s = steps.find((x) => x.step === step);
    const expected = median(history[step] ?? []) ?? DEFAULT_STEP_SECONDS[step];
    const status = s?.status ?? 'pending';
    if (status === 'skipped') continue;
    total += expected;
    if (status === 'completed') {
      done += expected;
    } else if (status === 'running' && s?.startedAt) {
      const ran = Math.min(Math.max(0, (now - s.startedAt) / 1000), 0.95 * expected);
      done += ran;
      remaining += expected - ran;
    } else {
      remaining += expected;
    }
  }
  if (total === 0 || remaining === 0) return { progressPercent: 100, secondsRemaining: 0 };
  return { progressPercent: Math.min(99, Math.floor((100 * done) / total)), secondsRemaining: Math.ceil(remaining) };
}

/**
 * The run's tiers that carry a build's steps. Planned tiers take the indexes from
 * `FIRST_PLANNED_TIER_INDEX` up, in the plan's order; the last three steps' tiers come after
 * any plan.
 */
export const BUILD_TIERS = {
  spec: { tier_id: 'build-spec', tier_index: 0, name: 'SPEC Generation' },
  package: { tier_id: 'build-package', tier_index: 1, name: 'Package' },
  verify: { tier_id: 'build-verify', tier_index: 9000, name: 'Verify' },
  promote: { tier_id: 'build-promote', tier_index: 9001, name: 'Promote' },
  deploy: { tier_id: 'build-deploy', tier_index: 9002, name: 'Deploy and register' },
} as const;
/** The index of a build's first planned tier. */
export const FIRST_PLANNED_TIER_INDEX = 2;

/** The build step a tier of a build's run carries (the planned tiers are step 3). */
export function buildStepOfTier(tierIndex: number): BuildStepNumber {
  if (tierIndex === BUILD_TIERS.spec.tier_index) return 1;
  if (tierIndex === BUILD_TIERS.package.tier_index) return 2;
  if (tierIndex === BUILD_TIERS.verify.tier_index) return 4;
  if (tierIndex >= BUILD_TIERS.promote.tier_index) return 5;
  return 3;
}

/** The tiers after which a build's run waits for approval in each mode. */
export function buildCheckpointTiers(mode: BuildApprovalMode): number[] {
  if (mode === 'checkpoints') return [BUILD_TIERS.spec.tier_index, BUILD_TIERS.verify.tier_index];
  if (mode === 'final') return [BUILD_TIERS.verify.tier_index];
  return [];
}

/** A step move that follows from the run's tiers. */
export interface BuildStepFollow {
  step: BuildStepNumber;
  event: 'start' | 'complete' | 'fail';
}

/**
 * The step moves that follow from the tiers of a build's run (steps 1 to 5; step 5 is only
 * started or failed here: the supervisor's hooks complete it, and step 6). Pure. A step with
 * no tier yet (step 3 before the plan was accepted) does not move. A step starts when one of
 * its tiers is in progress, complete or failed (not merely skipped after an earlier failure); completes when all of them are COMPLETE or SKIPPED (not step 5);
 * fails when one of them FAILED. Moves are given in step order, each from the current status.
 */
export function followBuildSteps(tiers: readonly { tierIndex: number; state: string }[], steps: readonly BuildStepView[]): BuildStepFollow[] {
  const moves: BuildStepFollow[] = [];
  for (const s of [...steps].sort((a, b) => a.step - b.step)) {
    if (s.step === 6) continue;
    const own = tiers.filter((t) => buildStepOfTier(t.tierIndex) === s.step);
    if (own.length === 0) continue;
    const failed = own.some((t) => t.state === 'FAILED');
    const done = own.every((t) => t.state === 'COMPLETE' || t.state === 'SKIPPED');
    // Tiers skipped because an earlier one failed do not start their step.
    const begun = own.some((t) => t.state === 'IN_PROGRESS' || t.state === 'COMPLETE' || t.state === 'FAILED');
    let status = s.status;
    if (status === 'pending' && (begun || failed)) {
      moves.push({ step: s.step, event: 'start' });
      status = 'running';
    }
    if (status !== 'running') continue;
    if (failed) moves.push({ step: s.step, event: 'fail' });
    else if (done && s.step !== 5) moves.push({ step: s.step, event: 'complete' });
  }
  return moves;
}

/** A run event as the build stream reads it. */
export interface BuildStreamSource {
  type: string;
  phase_id: string | null;
  created_at: string;
  payload: Record<string, unknown>;
}

/** A message of a build's stream (CONTRACT.md section 8). */
export interface BuildStreamMessage {
  type: 'phase_start' | 'phase_progress' | 'phase_complete' | 'awaiting_approval' | 'error' | 'build_complete';
  phase: string;
  progress_percent: number;
  message: string;
  at: string;
  /** The build ended: nothing follows (until a retry). */
  final: boolean;
}

const BUILD_RUN_PHASES = new Set(['spec', 'package', 'verify', 'promote', 'deploy']);
const nameOfStep = (step: unknown) => BUILD_STEPS.find((s) => s.step === step)?.name ?? 'Build';

/**
 * The stream message a run event of a build's run makes, or null: step moves (start, complete,
 * fail), the build's waits and ends, and each planned phase completed (progress within
 * Build). `progress` is the last progress sent, for messages that carry none. Pure.
 */
export function buildStreamMessageOf(e: BuildStreamSource, progress: number): BuildStreamMessage | null {
  const p = e.payload;
  const at = e.created_at;
  if (e.type === 'build_step') {
    const name = String(p.name ?? nameOfStep(p.step));
    const percent = typeof p.progress_percent === 'number' ? p.progress_percent : progress;
    if (p.to === 'running') return { type: 'phase_start', phase: name, progress_percent: percent, message: `${name} started`, at, final: false };
    if (p.to === 'completed') return { type: 'phase_complete', phase: name, progress_percent: percent, message: `${name} completed`, at, final: false };
    if (p.to === 'skipped') return { type: 'phase_complete', phase: name, progress_percent: percent, message: `${name} skipped`, at, final: false };
    if (p.to === 'failed') return { type: 'error', phase: name, progress_percent: percent, message: `${name} failed: ${String(p.error ?? 'no reason')}`, at, final: false };
    return null;
  }
  if (e.type === 'build_status') {
    const phase = nameOfStep(p.step);
    if (p.to === 'awaiting_approval') return { type: 'awaiting_approval', phase, progress_percent: progress, message: `waiting for approval at ${String(p.checkpoint)}`, at, final: false };
    if (p.to === 'completed') return { type: 'build_complete', phase: 'Register', progress_percent: 100, message: 'build completed', at, final: true };
    if (p.to === 'failed') return { type: 'error', phase, progress_percent: progress, message: `build failed: ${String(p.error ?? 'no reason')}`, at, final: true };
    if (p.to === 'cancelled') return { type: 'error', phase, progress_percent: progress, message: 'build cancelled', at, final: true };
    if (p.to === 'running' && p.from === 'queued') return { type: 'phase_progress', phase: 'SPEC Generation', progress_percent: progress, message: 'build started', at, final: false };
    return null;
  }
  if (e.type === 'phase_state' && e.phase_id && !BUILD_RUN_PHASES.has(e.phase_id) && !e.phase_id.startsWith('rollback') && p.to === 'COMPLETE') {
    return { type: 'phase_progress', phase: 'Build', progress_percent: progress, message: `phase ${e.phase_id} completed`, at, final: false };
  }
  return null;
}
