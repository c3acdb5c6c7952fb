import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import {
  BUILD_STEPS,
  type BuildApproveRequest,
  type BuildCheckpoint,
  type BuildDropletRequest,
  type BuildStatus,
  type BuildStatusResponse,
  type BuildStepNumber,
  DomainError,
  type ListBuildsQuery,
} from '@app/contracts';
import { type BuildEvent, type BuildStepEvent, type BuildStepView, buildsToStart, checkpointAfter, estimateBuild, resolveRetryStep, stepsToReset, transitionBuild, transitionBuildStep } from '@app/domain';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import type { BuildEntity, BuildHooks, BuildStepEntity } from '../entities/index.js';
import { type BuildChanges, BuildRepository, EventRepository } from '../repositories/index.js';

/** The display name of a step. */
const stepName = (step: number): string => BUILD_STEPS.find((s) => s.step === step)?.name ?? `step ${step}`;

/** A stored step as the domain sees it. */
const stepView = (s: BuildStepEntity): BuildStepView => ({
  step: s.step as BuildStepNumber,
  status: s.status,
  startedAt: s.startedAt?.getTime() ?? null,
  completedAt: s.completedAt?.getTime() ?? null,
});

/**
 * The build record and its transitions (CONTRACT.md section 8): every move is decided by the
 * domain's tables (`transitionBuild`, `transitionBuildStep`), written by one guarded update in
 * the caller's transaction (409 STALE_STATE when another writer moved it first), and recorded
 * as a `build_status` run event. Running the steps is the orchestration's job, not this one's.
 */
@Injectable()
export class BuildService {
  constructor(
    private readonly ds: DataSource,
    private readonly builds: BuildRepository,
    private readonly events: EventRepository,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {}

  /**
   * Stores the build of run `runId` (created by the caller in this transaction) `queued`, its
   * steps `pending`. Hooks are stored as given: those left out come from the configuration
   * when they are called, so a configuration change reaches builds still queued.
   */
  async create(em: EntityManager, runId: string, req: BuildDropletRequest, opts: { skipSteps?: readonly BuildStepNumber[] } = {}): Promise<BuildEntity> {
    const hooks: BuildHooks = {};
    if (req.deploy) hooks.deploy = req.deploy;
    if (req.health_check) hooks.health_check = req.health_check;
    if (req.register) hooks.register = req.register;
    if (req.rollback) hooks.rollback = req.rollback;
    const build = await this.builds.insert(em, {
      runId,
      dropletId: req.droplet_id ?? null,
      dropletName: req.droplet_name ?? null,
      intent: req.architect_intent,
      approvalMode: req.approval_mode,
      autoDeploy: req.auto_deploy,
      notifyChannels: req.notify_channels ?? null,
      hooks,
    });
    // Steps this build does not have (a deploy-only build's first four) are skipped from the start.
    for (const step of opts.skipSteps ?? []) await this.moveStep(em, runId, step, 'skip', {});
    return build;
  }

  /**
   * Starts queued builds, first come first, as far as `maxConcurrentBuilds` leaves room
   * (builds awaiting approval hold their slot). Serialized across processes by a transaction
   * lock, so two admissions never both fill the last slot. Returns the ids started.
   */
  async admit(em: EntityManager): Promise<string[]> {
    await this.builds.lockAdmission(em);
    const running = await this.builds.countRunning(em);
    const queued = await this.builds.listQueued(em, this.config.maxConcurrentBuilds);
    const started: string[] = [];
    for (const b of buildsToStart(running, queued, this.config.maxConcurrentBuilds)) {
      await this.move(em, b.runId, 'queued', 'start', { stamp: 'started' });
      started.push(b.runId);
    }
    return started;
  }

  /** Starts a step of a running build (one more try). */
  async startStep(em: EntityManager, runId: string, step: BuildStepNumber): Promise<void> {
    await this.lockRunning(em, runId);
    await this.moveStep(em, runId, step, 'start', { stamp: 'started' });
  }

  /**
   * Completes a step of a running build. When the build's approval mode waits after this step,
   * the build moves to `awaiting_approval` at that checkpoint, which is returned.
   */
  async completeStep(em: EntityManager, runId: string, step: BuildStepNumber): Promise<BuildCheckpoint | undefined> {
    const build = await this.lockRunning(em, runId);
    await this.moveStep(em, runId, step, 'complete', { stamp: 'completed' });
    const checkpoint = checkpointAfter(step, build.approvalMode);
    if (checkpoint) await this.move(em, runId, 'running', 'awaitApproval', { checkpoint }, { checkpoint, step });
    return checkpoint;
  }

  /** Skips a pending step of a running build (step 6 when nothing was deployed or no register hook is set). */
  async skipStep(em: EntityManager, runId: string, step: BuildStepNumber): Promise<void> {
    await this.lockRunning(em, runId);
    await this.moveStep(em, runId, step, 'skip', {});
  }

  /** Fails a step of a running build (its try is over); the build is failed apart, by {@link fail}. */
  async failStep(em: EntityManager, runId: string, step: BuildStepNumber, o: { error?: string } = {}): Promise<void> {
    await this.lockRunning(em, runId);
    await this.moveStep(em, runId, step, 'fail', { error: o.error ?? null });
  }

  /**
   * Answers the checkpoint the build waits at: approved, it runs on; rejected, it fails with the
   * notes. 409 INVALID_TRANSITION when it waits at no checkpoint or at another one than named.
   */
  async approve(em: EntityManager, runId: string, answer: BuildApproveRequest): Promise<BuildEntity> {
    const build = await this.lockOrThrow(em, runId);
    if (build.status !== 'awaiting_approval' || !build.checkpoint) {
      throw new DomainError('INVALID_TRANSITION', `build ${runId} is ${build.status}, not awaiting approval`, { status: build.status });
    }
    const checkpoint = build.checkpoint;
    if (answer.checkpoint && answer.checkpoint !== checkpoint) {
      throw new DomainError('INVALID_TRANSITION', `build ${runId} waits at '${checkpoint}', not '${answer.checkpoint}'`, { checkpoint, requested: answer.checkpoint });
    }
    if (answer.approved) {
      await this.move(em, runId, 'awaiting_approval', 'approve', { checkpoint: null }, { checkpoint });
    } else {
      const error = `rejected at ${checkpoint}: ${answer.notes?.trim() || 'no notes'}`;
      await this.move(em, runId, 'awaiting_approval', 'reject', { checkpoint: null, error, stamp: 'completed' }, { checkpoint, error });
    }
    return this.mustFind(em, runId);
  }

  /** Cancels a build that has not finished (409 INVALID_TRANSITION otherwise). */
  async cancel(em: EntityManager, runId: string): Promise<BuildEntity> {
    const build = await this.lockOrThrow(em, runId);
    await this.move(em, runId, build.status, 'cancel', { checkpoint: null, stamp: 'completed' });
    return this.mustFind(em, runId);
  }

  /**
   * Puts a failed build back in the queue (at its end), from `fromStep` (a number, key or name;
   * default the failed step): that step and every later one that ran are pending again.
   * 409 INVALID_TRANSITION unless failed; 422 VALIDATION_FAILED for a bad `fromStep`.
   */
  async retry(em: EntityManager, runId: string, fromStep?: number | string): Promise<{ build: BuildEntity; fromStep: BuildStepNumber }> {
    const build = await this.lockOrThrow(em, runId);
    const decided = transitionBuild(build.status, 'retry');
    if (!decided.ok) throw new DomainError('INVALID_TRANSITION', decided.reason, { status: build.status });
    const steps = await this.builds.steps(runId, em);
    const views = steps.map(stepView);
    const from = resolveRetryStep(views, fromStep);
    if (!from.ok) throw new DomainError('VALIDATION_FAILED', from.reason, { from_step: fromStep ?? null });
    for (const step of stepsToReset(views, from.step)) {
      await this.moveStep(em, runId, step, 'reset', { stamp: 'reset' }, steps);
    }
    await this.move(em, runId, 'failed', 'retry', { error: null, stamp: 'queued' }, { step: from.step });
    return { build: await this.mustFind(em, runId), fromStep: from.step };
  }

  /** Completes a running build (every step done), with the URL it was deployed at, if any. */
  async complete(em: EntityManager, runId: string, o: { deploymentUrl?: string } = {}): Promise<BuildEntity> {
    const build = await this.lockOrThrow(em, runId);
    await this.move(em, runId, build.status, 'complete', { deploymentUrl: o.deploymentUrl, stamp: 'completed' });
    return this.mustFind(em, runId);
  }

  /** Fails a running build at `step` with `error` (a step out of tries, a hook that failed). */
  async fail(em: EntityManager, runId: string, o: { step: BuildStepNumber; error: string }): Promise<BuildEntity> {
    const build = await this.lockOrThrow(em, runId);
    await this.move(em, runId, build.status, 'fail', { error: o.error, stamp: 'completed' }, { step: o.step, error: o.error });
    return this.mustFind(em, runId);
  }

  /** The build's status as answered by `GET /executor/builds/{id}/status` (404 NOT_FOUND when none). */
  async statusView(runId: string, now = Date.now(), em: EntityManager = this.ds.manager): Promise<BuildStatusResponse> {
    const build = await this.builds.find(runId, em);
    if (!build) throw new DomainError('NOT_FOUND', `build ${runId} not found`);
    const steps = await this.builds.steps(runId, em);
    const history = await this.builds.stepDurations(em, undefined, runId);
    return this.view(build, steps, history, now);
  }

  /** Builds holding a slot (running or awaiting approval) and builds queued. */
  async counts(): Promise<{ active: number; queued: number }> {
    const [active, queued] = await Promise.all([this.builds.countRunning(this.ds.manager), this.builds.listQueued(this.ds.manager, 10_000)]);
    return { active, queued: queued.length };
  }

  /** Builds matching the query, newest first. */
  async list(query: ListBuildsQuery, now = Date.now()): Promise<BuildStatusResponse[]> {
    const builds = await this.builds.list({ status: query.status, since: query.since ? new Date(query.since) : undefined, until: query.until ? new Date(query.until) : undefined });
    const [steps, history] = await Promise.all([this.builds.stepsOf(builds.map((b) => b.runId)), this.builds.stepDurations()]);
    return builds.map((b) => this.view(b, steps.get(b.runId) ?? [], history, now));
  }

  private view(build: BuildEntity, steps: BuildStepEntity[], history: Awaited<ReturnType<BuildRepository['stepDurations']>>, now: number): BuildStatusResponse {
    const views = steps.map(stepView);
    const estimate = estimateBuild(views, history, now);
    const current = steps.find((s) => s.status === 'running' || s.status === 'failed') ?? (build.status === 'awaiting_approval' ? [...steps].reverse().find((s) => s.status === 'completed') : undefined);
    return {
      build_id: build.runId,
      droplet_id: build.dropletId,
      droplet_name: build.dropletName,
      status: build.status,
      current_phase: current ? stepName(current.step) : null,
      ...(build.checkpoint ? { checkpoint: build.checkpoint } : {}),
      progress_percent: build.status === 'completed' ? 100 : estimate.progressPercent,
      estimated_time_remaining: build.status === 'completed' || build.status === 'cancelled' || build.status === 'failed' ? 0 : estimate.secondsRemaining,
      phases: steps.map((s) => ({ step: s.step, name: stepName(s.step), status: s.status, started_at: s.startedAt?.toISOString() ?? null, completed_at: s.completedAt?.toISOString() ?? null })),
      ...(build.deploymentUrl ? { deployment_url: build.deploymentUrl } : {}),
      ...(build.error ? { error: build.error } : {}),
      created_at: build.createdAt.toISOString(),
      completed_at: build.completedAt?.toISOString() ?? null,
    };
  }

  /** Applies a build event to a build in `from`: decided by the domain, written guarded, recorded. */
  private async move(em: EntityManager, runId: string, from: BuildStatus, event: BuildEvent, changes: BuildChanges = {}, payload: { checkpoint?: BuildCheckpoint; step?: number; error?: string } = {}): Promise<BuildStatus> {
    const decided = transitionBuild(from, event);
    if (!decided.ok) throw new DomainError('INVALID_TRANSITION', `build ${runId}: ${decided.reason}`, { status: from, event });
    if ((await this.builds.updateStatus(em, runId, from, decided.to, changes)) !== 1) {
      throw new DomainError('STALE_STATE', `build ${runId} is no longer ${from}`, { expected: from });
    }
    await this.events.append(em, [{ runId, type: 'build_status', payload: { from, to: decided.to, ...payload } }]);
    return decided.to;
  }

  /** Applies a step event: decided by the domain from the step's stored status, written guarded. */
  private async moveStep(em: EntityManager, runId: string, step: BuildStepNumber, event: BuildStepEvent, changes: { error?: string | null; stamp?: 'started' | 'completed' | 'reset' }, known?: BuildStepEntity[]): Promise<void> {
    const row = (known ?? (await this.builds.steps(runId, em))).find((s) => s.step === step);
    if (!row) throw new DomainError('NOT_FOUND', `build ${runId} has no step ${step}`);
    const decided = transitionBuildStep(row.status, event);
    if (!decided.ok) throw new DomainError('INVALID_TRANSITION', `build ${runId} step ${step} (${stepName(step)}): ${decided.reason}`, { step, status: row.status, event });
    if ((await this.builds.updateStep(em, runId, step, row.status, decided.to, changes)) !== 1) {
      throw new DomainError('STALE_STATE', `build ${runId} step ${step} is no longer ${row.status}`, { step, expected: row.status });
    }
    // The stream's phase_start / phase_complete / error, with the progress once moved.
    const [steps, history] = [await this.builds.steps(runId, em), await this.builds.stepDurations(em, undefined, runId)];
    const progress = estimateBuild(steps.map(stepView), history, Date.now()).progressPercent;
    await this.events.append(em, [
      { runId, type: 'build_step', payload: { step, name: stepName(step), from: row.status, to: decided.to, progress_percent: progress, ...(changes.error ? { error: changes.error } : {}) } },
    ]);
  }

  private async lockOrThrow(em: EntityManager, runId: string): Promise<BuildEntity> {
    const build = await this.builds.lock(em, runId);
    if (!build) throw new DomainError('NOT_FOUND', `build ${runId} not found`);
    return build;
  }

  /** Steps move only while their build runs. */
  private async lockRunning(em: EntityManager, runId: string): Promise<BuildEntity> {
    const build = await this.lockOrThrow(em, runId);
    if (build.status !== 'running') throw new DomainError('INVALID_TRANSITION', `build ${runId} is ${build.status}, not running`, { status: build.status });
    return build;
  }

  private async mustFind(em: EntityManager, runId: string): Promise<BuildEntity> {
    const build = await this.builds.find(runId, em);
    if (!build) throw new DomainError('NOT_FOUND', `build ${runId} not found`);
    return build;
  }
}
