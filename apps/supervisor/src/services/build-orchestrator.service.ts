import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import {
  BUILD_STEPS,
  type BuildAcceptedResponse,
  type BuildApproveRequest,
  type BuildDropletRequest,
  type BuildStatusResponse,
  type BuildStepNumber,
  type ClaimedBuild,
  DomainError,
  HEALTH_CHECK_DEFAULTS,
  type HealthCheck,
  type Hook,
  type PhaseCreate,
  type PhaseKind,
  type PhaseState,
  type RunState,
  type StepResultRequest,
  type StepResultResponse,
  type SubmitPlanArgs,
  type TemplateVars,
  type TierCreate,
} from '@app/contracts';
import {
  BUILD_TIERS,
  FIRST_PLANNED_TIER_INDEX,
  buildCheckpointTiers,
  buildStepOfTier,
  fillTemplate,
  followBuildSteps,
  isBuildFinished,
  isRunTerminal,
  needsCheckpointApproval,
  planProblemsFeedback,
  transitionPhase,
  validatePlan,
} from '@app/domain';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import { JOB_QUEUES } from '../database/job-queue-schema.js';
import type { BuildEntity, RunEntity } from '../entities/index.js';
import { AppLogger } from '../http/logger.js';
import { BuildRepository, EventRepository, PhaseRepository, RulesetRepository, RunRepository, TierRepository } from '../repositories/index.js';
import { BudgetService } from './budget.service.js';
import { BuildService } from './build.service.js';
import { type DeliveryKey, DeliveryService } from './delivery.service.js';
import type { RecordAnswer } from './idempotency.service.js';
import { JobQueue } from './job-queue.service.js';
import { type BuildNotification, NotificationService } from './notification.service.js';
import { PhaseWriteService } from './phase-write.service.js';
import { CLAIMABLE_CHANNEL, ProgressService, type SettledRun } from './progress.service.js';
import { RunService } from './run.service.js';

/** Attempts of each build step's phase (CONTRACT.md section 8: each step is retried up to 10 times). */
const STEP_ATTEMPTS = 10;

/** The phases every build's run starts with, one per step it carries, with their kinds. */
const BUILD_PHASES: readonly (PhaseCreate & { kind: PhaseKind })[] = [
  { phase_id: 'spec', phase_index: 0, tier_id: BUILD_TIERS.spec.tier_id, name: 'SPEC Generation', description: 'Plan the intent and commit SPEC.md', kind: 'plan' },
  { phase_id: 'package', phase_index: 1, tier_id: BUILD_TIERS.package.tier_id, name: 'Package', description: 'Commit the foundation files the repository lacks', kind: 'package' },
  { phase_id: 'verify', phase_index: 9000, tier_id: BUILD_TIERS.verify.tier_id, name: 'Verify', description: "Run the plan's CI on the integration branch head", kind: 'verify' },
  { phase_id: 'promote', phase_index: 9001, tier_id: BUILD_TIERS.promote.tier_id, name: 'Promote', description: 'Move the base branch to the integration branch head', kind: 'promote' },
  { phase_id: 'deploy', phase_index: 9002, tier_id: BUILD_TIERS.deploy.tier_id, name: 'Deploy and register', description: "The supervisor's deploy, health-check and register hooks", kind: 'deploy' },
];
const BUILD_TIER_LIST: TierCreate[] = Object.values(BUILD_TIERS).map((t) => ({ ...t }));

/** The phase id of a generation's rollback (a retried build that fails its deploy again rolls back again). */
const rollbackPhaseId = (generation: number) => (generation === 0 ? 'rollback' : `rollback-${generation}`);
const stepName = (step: number) => BUILD_STEPS.find((s) => s.step === step)?.name ?? `step ${step}`;

/**
 * Droplet builds as runs (CONTRACT.md section 8): a build is a run whose tiers carry its
 * steps (`BUILD_TIERS`), so claims, leases, attempts and fencing are the runs' own.
 *
 * - `create` inserts the run (planning, package, verify, promote and deploy tiers) and the
 *   build, and admits queued builds up to `AUTOPACK_MAX_CONCURRENT_BUILDS`.
 * - `follow` runs inside every settle of a build's run: the steps follow the tiers, the build
 *   follows the run's end, and a finished build lets the next queued one start.
 * - `reportStep` takes what a step produced: the plan (validated again, then its tiers and
 *   phases inserted) or where promotion moved the base branch.
 * - `advance` (a job on the `autopack-build` queue) calls the hooks of steps 5 and 6 as
 *   durable deliveries, one after the other, and ends the deploy phase; a failed deploy or
 *   health check calls the rollback hook and queues a rollback phase first.
 *
 * Lock order everywhere: the run row, then the build row.
 */
@Injectable()
export class BuildOrchestrator implements OnApplicationBootstrap {
  constructor(
    private readonly ds: DataSource,
    private readonly builds: BuildRepository,
    private readonly buildService: BuildService,
    private readonly runs: RunRepository,
    private readonly tiers: TierRepository,
    private readonly phases: PhaseRepository,
    private readonly events: EventRepository,
    private readonly rulesets: RulesetRepository,
    private readonly runService: RunService,
    private readonly progress: ProgressService,
    private readonly writes: PhaseWriteService,
    private readonly budgets: BudgetService,
    private readonly deliveries: DeliveryService,
    private readonly notifications: NotificationService,
    private readonly queue: JobQueue,
    private readonly log: AppLogger,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {
    progress.onSettled((em, settled) => this.follow(em, settled));
    queue.handle<{ runId: string }>(JOB_QUEUES.build, (job) => this.advance(job.data.runId));
    deliveries.onSettled((o) => {
      if (o.key.kind === 'deploy' || o.key.kind === 'health_check' || o.key.kind === 'register' || o.key.kind === 'rollback') {
        void this.advance(o.key.subjectId).catch((err: Error) => this.log.warn({ build: o.key.subjectId, err: err.message }, 'build advance failed; the job queue retries it'));
      }
    });
    queue.onMaintenance(() => void this.resumeDelivering().catch((err: Error) => this.log.warn({ err: err.message }, 'build resume failed')));
  }

  /** After a restart: every build whose hooks may be due is advanced (a settlement heard by no one is picked up). */
  async onApplicationBootstrap(): Promise<void> {
    await this.resumeDelivering();
  }

  private async resumeDelivering(): Promise<void> {
    for (const runId of await this.builds.listDelivering()) await this.advance(runId);
  }

  /** `POST /executor/build-droplet`. */
  async create(req: BuildDropletRequest, recordAnswer?: RecordAnswer): Promise<BuildAcceptedResponse> {
    let answer: BuildAcceptedResponse | undefined;
    let runId = req.droplet_id ?? '';
    try {
      await this.ds.transaction(async (em) => {
        answer = await this.createIn(em, req);
        runId = answer.build_id;
        await recordAnswer?.(em, { status: 202, body: answer });
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new DomainError('RUN_EXISTS', `build ${runId} already exists`);
      throw err;
    }
    return answer!;
  }

  /**
   * Creates a build inside the caller's transaction (the coordinator's, which holds its
   * service's lock); the same as `POST /executor/build-droplet` without an idempotency answer.
   */
  async createIn(em: EntityManager, req: BuildDropletRequest, opts: { deployOnly?: boolean } = {}): Promise<BuildAcceptedResponse> {
    let runId = req.droplet_id ?? `build-${randomUUID().slice(0, 8)}`;
    // A droplet is built again and again: its first build takes its id, later ones a suffix.
    if (req.droplet_id && (await this.runs.find(runId, em))) runId = `${req.droplet_id}-${randomUUID().slice(0, 6)}`;
    // A deploy-only build (the coordinator's `ready_for_deploy`: the code on the base branch
    // passes its tests) has only the promote and deploy tiers; steps 1 to 4 are skipped.
    const phases = opts.deployOnly ? BUILD_PHASES.filter((p) => p.kind === 'promote' || p.kind === 'deploy') : BUILD_PHASES;
    const tiers = BUILD_TIER_LIST.filter((t) => phases.some((p) => p.tier_id === t.tier_id));
    await this.runService.insertRun(
      em,
      {
        run: { run_id: runId, base_branch: req.base_branch, ...(req.repo_url ? { repo_url: req.repo_url } : {}), approval_mode: 'auto', schedule_debt_cleanup: false },
        tiers,
        phases: phases.map(({ kind: _k, ...p }) => p),
      },
      {
        kinds: Object.fromEntries(phases.map((p) => [p.phase_id, p.kind])),
        maxAttempts: Object.fromEntries(phases.map((p) => [p.phase_id, STEP_ATTEMPTS])),
        checkpointTiers: opts.deployOnly ? [] : buildCheckpointTiers(req.approval_mode),
      },
    );
    await this.buildService.create(em, runId, req, { skipSteps: opts.deployOnly ? [1, 2, 3, 4] : [] });
    await this.admit(em);
    const view = await this.buildService.statusView(runId, Date.now(), em);
    return {
      build_id: runId,
      status: view.status,
      estimated_completion: new Date(Date.now() + view.estimated_time_remaining * 1000).toISOString(),
      stream_url: `/executor/builds/${runId}/stream`,
      status_url: `/executor/builds/${runId}/status`,
    };
  }

  /** `POST /executor/builds/{id}/approve`: answers the checkpoint the build and its run wait at. */
  async approve(runId: string, answer: BuildApproveRequest): Promise<BuildStatusResponse> {
    await this.ds.transaction(async (em) => {
      const run = await this.lockRun(em, runId);
      const build = await this.buildService.approve(em, runId, answer);
      const notes = answer.notes ?? null;
      const now = await this.runs.now(em);
      if (!answer.approved) {
        await this.runs.setApproval(em, runId, { approvalState: 'rejected', approvalNotes: notes, approvedAt: now });
        await this.progress.endRun(em, run, 'reject', build.error ?? 'rejected by operator');
        await this.notify(em, build, { event: 'failed', status: 'failed', error: build.error ?? undefined });
        await this.events.notify(em, CLAIMABLE_CHANNEL, runId);
        await this.admit(em);
        return;
      }
      const tiers = await this.tiers.listForRun(em, runId);
      const { doneThrough } = needsCheckpointApproval(tiers.map((t) => ({ tierId: t.tierId, tierIndex: t.tierIndex, state: t.state })), run.approvedThroughTierIndex, false);
      await this.runs.setApproval(em, runId, { approvalState: 'pending', approvalNotes: notes, approvedAt: now, approvedThroughTierIndex: doneThrough });
      if (run.state === 'AWAITING_APPROVAL') await this.progress.advanceRun(em, run, 'approve');
      await this.events.notify(em, CLAIMABLE_CHANNEL, runId);
    });
    return this.buildService.statusView(runId);
  }

  /** `POST /executor/builds/{id}/cancel` and `DELETE /executor/builds/{id}`. */
  async cancel(runId: string): Promise<BuildStatusResponse> {
    await this.ds.transaction(async (em) => {
      const run = await this.lockRun(em, runId);
      await this.buildService.cancel(em, runId);
      if (!isRunTerminal(run.state)) await this.progress.endRun(em, run, 'cancel', 'build cancelled by operator');
      await this.events.notify(em, CLAIMABLE_CHANNEL, runId);
      await this.admit(em);
    });
    return this.buildService.statusView(runId);
  }

  /**
   * `POST /executor/builds/{id}/retry {from_step?}`: the build goes back in the queue from that
   * step; the run's phases of that step and later ones are queued again with fresh attempts
   * (rollbacks already done stay done), and the run runs again. A new generation: hooks and
   * notifications are called anew. A run that ended on a budget, a policy or the environment
   * cannot run again (409).
   */
  async retry(runId: string, fromStep?: number | string): Promise<BuildStatusResponse> {
    await this.ds.transaction(async (em) => {
      const run = await this.lockRun(em, runId);
      if (isRunTerminal(run.state) && run.state !== 'DONE_FAILED_REQUIRES_HUMAN_REVIEW') {
        throw new DomainError('INVALID_TRANSITION', `build ${runId}: its run ended ${run.state}, which a retry cannot reopen`, { run_state: run.state });
      }
      const { fromStep: step } = await this.buildService.retry(em, runId, fromStep);
      await this.builds.nextGeneration(em, runId, { forgetPromotion: step <= 5 });
      const tiers = await this.tiers.listForRun(em, runId);
      const redoTiers = new Set(tiers.filter((t) => buildStepOfTier(t.tierIndex) >= step).map((t) => t.tierId));
      const firstRedone = Math.min(...tiers.filter((t) => redoTiers.has(t.tierId)).map((t) => t.tierIndex));
      for (const p of await this.phases.listForRun(em, runId)) {
        if (!redoTiers.has(p.tierId) || p.kind === 'rollback' || p.state === 'QUEUED') continue;
        const event = p.state === 'FAILED' ? 'retry' : p.state === 'SKIPPED' ? 'reopen' : p.state === 'COMPLETE' ? 'redo' : undefined;
        if (!event) continue;
        const t = transitionPhase(p.state, event, { attemptsUsed: 0, maxAttempts: p.maxAttempts });
        if (!t.ok) continue;
        const moved = await this.phases.transition(em, p.id, p.state, t.to, {}, { attemptsUsed: 0, abandonments: 0, lastFailureReason: null, failureCap: null, commitSha: null });
        if (!moved) throw new DomainError('STALE_STATE', `phase ${p.phaseId} changed concurrently`);
        await this.events.append(em, [{ runId, phaseId: p.phaseId, type: 'phase_state', payload: { from: p.state, to: t.to, event, reason: `build retried from step ${step}` } }]);
      }
      // The checkpoints at or after the first redone tier are waited at again.
      await this.runs.setCheckpoints(em, runId, Math.min(run.approvedThroughTierIndex, firstRedone - 1));
      let current = run;
      if (isRunTerminal(run.state)) {
        await this.progress.advanceRun(em, run, 'reopen');
        current = (await this.runs.lock(em, runId))!;
      }
      await this.progress.settle(em, current);
      await this.events.notify(em, CLAIMABLE_CHANNEL, runId);
      await this.admit(em);
    });
    return this.buildService.statusView(runId);
  }

  /**
   * The build context of a claim on a build's run (undefined for other runs). `phaseIds` are
   * the run's phases as the claim read them (its row locked, so they cannot have changed).
   */
  async claimContext(em: EntityManager, run: RunEntity, phaseIds: readonly string[]): Promise<ClaimedBuild | undefined> {
    if (run.checkpointTiers === null) return undefined;
    const build = await this.builds.find(run.runId, em);
    if (!build) return undefined;
    const tiers = await this.tiers.listStates(em, run.runId);
    return {
      build_id: build.runId,
      intent: build.intent,
      droplet_id: build.dropletId,
      droplet_name: build.dropletName,
      plan: build.plan,
      plan_budgets: {
        tokens_left: Math.max(0, run.tokenCap - run.tokensUsed),
        cost_left_usd: run.costCapUsd === null ? null : Math.max(0, run.costCapUsd - run.costUsedUsd),
        max_phases: Math.max(0, run.maxPhases - phaseIds.length),
      },
      taken_ids: { tier_ids: tiers.map((t) => t.tierId), phase_ids: [...phaseIds] },
      promoted_from: build.promotedFrom,
      promoted_to: build.promotedTo,
    };
  }

  /** `POST /runs/{id}/phases/{pid}/step_result`. */
  async reportStep(runId: string, phaseId: string, body: StepResultRequest): Promise<StepResultResponse> {
    let accepted = true;
    let problems: string[] | undefined;
    const response = await this.writes.fencedWrite(runId, phaseId, body.lease_token, { llm_calls: body.kind === 'plan' ? body.llm_calls : undefined }, async (ctx) => {
      const { em, run, phase } = ctx;
      const build = await this.builds.lock(em, runId);
      if (!build) throw new DomainError('NOT_FOUND', `run ${runId} is not a build`);
      if (body.kind === 'promoting' || body.kind === 'promoted') {
        if (phase.kind !== 'promote') throw new DomainError('VALIDATION_FAILED', `phase ${phaseId} is a ${phase.kind} phase, not the promote step`);
        if (body.kind === 'promoting') await this.builds.startPromotion(em, runId, body.from);
        else await this.builds.setPromotion(em, runId, body.from, body.to);
        return this.writes.apply(ctx, { kind: 'keep' });
      }
      if (phase.kind !== 'plan') throw new DomainError('VALIDATION_FAILED', `phase ${phaseId} is a ${phase.kind} phase, not the planning step`);
      if (body.usage) await this.budgets.recordUsage(ctx, body.usage, 'planner');
      // A plan is accepted once: a resumed planning step reports it again.
      if (build.plan) return this.writes.apply(ctx, { kind: 'keep' });
      const [tiers, phases] = await Promise.all([this.tiers.listForRun(em, runId), this.phases.listForRun(em, runId)]);
      const fresh = (await this.runs.find(runId, em))!;
      const checked = validatePlan(body.plan, {
        budgets: {
          tokensLeft: Math.max(0, fresh.tokenCap - fresh.tokensUsed),
          costLeftUsd: fresh.costCapUsd === null ? null : Math.max(0, fresh.costCapUsd - fresh.costUsedUsd),
          maxPhases: Math.max(0, fresh.maxPhases - phases.length),
        },
        safetyProfile: run.safetyProfile,
        ruleset: ((await this.rulesets.find(em, run.projectId))?.ruleset ?? {}) as never,
        runCi: run.ci,
        takenIds: { tierIds: tiers.map((t) => t.tierId), phaseIds: phases.map((p) => p.phaseId) },
        requireCi: true,
      });
      if (!checked.ok) {
        accepted = false;
        problems = checked.problems;
        return this.writes.apply(ctx, {
          kind: 'endAttempt',
          report: { event: 'failAttempt', outcome: 'failed', reason: `invalid plan: ${checked.problems.length} problem(s): ${checked.problems.join('; ')}`.slice(0, 2000) },
          feedback: planProblemsFeedback(checked.problems),
        });
      }
      const planned = plannedRows(body.plan);
      await this.runService.addToRun(em, fresh, planned.tiers, planned.phases);
      await this.builds.setPlan(em, runId, body.plan);
      return this.writes.apply(ctx, { kind: 'keep' });
    });
    return { ...response, accepted, ...(problems ? { problems } : {}) };
  }

  /**
   * Inside every settle of a build's run (the run row locked): the steps follow the tiers, a
   * checkpoint reached is announced, the build follows the run's end, and the deploy step's
   * hooks are started once promotion is done.
   */
  private async follow(em: EntityManager, settled: SettledRun): Promise<void> {
    const { run, state, tiers } = settled;
    if (run.checkpointTiers === null) return;
    const build = await this.builds.lock(em, run.runId);
    if (!build || (build.status !== 'running' && build.status !== 'awaiting_approval')) return;
    if (build.status === 'running') {
      const steps = await this.builds.steps(run.runId, em);
      const views = steps.map((s) => ({ step: s.step as BuildStepNumber, status: s.status }));
      for (const move of followBuildSteps(tiers, views)) {
        if (move.event === 'start') await this.buildService.startStep(em, run.runId, move.step);
        else if (move.event === 'fail') await this.buildService.failStep(em, run.runId, move.step, { error: (await this.runs.find(run.runId, em))?.failureReason ?? `${stepName(move.step)} failed` });
        else {
          const checkpoint = await this.buildService.completeStep(em, run.runId, move.step);
          if (checkpoint) await this.notify(em, build, { event: 'awaiting_approval', status: 'awaiting_approval', checkpoint });
        }
      }
    }
    if (isRunTerminal(state)) {
      await this.finish(em, run.runId, state);
      return;
    }
    const deployPhase = settled.phases.find((p) => p.kind === 'deploy');
    const promoteDone = tiers.some((t) => t.tierIndex === BUILD_TIERS.promote.tier_index && t.state === 'COMPLETE');
    if (promoteDone && deployPhase?.state === 'QUEUED') await this.queue.enqueue(em, JOB_QUEUES.build, { runId: run.runId }, { id: randomUUID(), retryLimit: 5, retryDelaySeconds: 1, expireInSeconds: 300 });
  }

  /** The build follows its run's end: completed, cancelled, or failed at the step that failed. Then the next queued build may start. */
  private async finish(em: EntityManager, runId: string, state: RunState): Promise<void> {
    const build = (await this.builds.find(runId, em))!;
    if (isBuildFinished(build.status)) return;
    if (state === 'DONE_SUCCESS') {
      const done = await this.buildService.complete(em, runId, { deploymentUrl: build.deploymentUrl ?? undefined });
      await this.notify(em, done, { event: 'completed', status: 'completed', deployment_url: done.deploymentUrl ?? undefined });
    } else if (state === 'CANCELLED') {
      await this.buildService.cancel(em, runId);
    } else {
      const run = (await this.runs.find(runId, em))!;
      const steps = await this.builds.steps(runId, em);
      const failedStep = (steps.find((s) => s.status === 'failed') ?? steps.find((s) => s.status === 'running') ?? steps.find((s) => s.status === 'pending'))?.step ?? 1;
      for (const s of steps) if (s.status === 'running') await this.buildService.failStep(em, runId, s.step as BuildStepNumber, { error: run.failureReason ?? state });
      const failed = await this.buildService.fail(em, runId, { step: failedStep as BuildStepNumber, error: `${stepName(failedStep)}: ${run.failureReason ?? state}`.slice(0, 2000) });
      await this.notify(em, failed, { event: 'failed', status: 'failed', error: failed.error ?? undefined });
    }
    await this.admit(em);
  }

  /**
   * Moves steps 5 and 6 on from the deliveries' outcomes: deploy, then health check, then
   * register, each requested once (keyed by build, generation and kind) and waited for; a
   * failed deploy or health check calls the rollback hook and queues a rollback phase before
   * the deploy phase fails. Idempotent: any number of calls, in any process, request each
   * hook once and end the deploy phase once.
   */
  async advance(runId: string): Promise<void> {
    await this.ds.transaction(async (em) => {
      const run = await this.runs.lock(em, runId);
      if (!run || isRunTerminal(run.state)) return;
      const build = await this.builds.lock(em, runId);
      if (!build || build.status !== 'running') return;
      // Whatever this changes reaches the run's event streams when it commits.
      await this.events.notify(em, CLAIMABLE_CHANNEL, runId);
      const steps = new Map((await this.builds.steps(runId, em)).map((s) => [s.step, s]));
      const phases = await this.phases.listForRun(em, runId);
      const deploy = phases.find((p) => p.kind === 'deploy');
      const promote = phases.find((p) => p.kind === 'promote');
      if (!deploy || deploy.state !== 'QUEUED' || promote?.state !== 'COMPLETE' || steps.get(5)?.status !== 'running' && steps.get(6)?.status !== 'running') return;

      const hooks = this.hooksOf(build);
      const key = (kind: string): DeliveryKey => ({ subjectId: runId, step: `g${build.generation}`, kind });
      const vars: TemplateVars = { build_id: runId, droplet_id: build.dropletId ?? runId, commit_sha: build.promotedTo, branch: run.baseBranch, deployment_url: build.deploymentUrl };
      const deploying = build.autoDeploy && hooks.deploy !== undefined;

      if (steps.get(5)?.status === 'running') {
        let failure: string | null = null;
        let url = build.deploymentUrl;
        if (deploying) {
          const o = await this.deliveries.outcomeOf(key('deploy'));
          if (!o) return void (await this.deliveries.requestHook(em, { key: key('deploy'), hook: hooks.deploy!, vars }));
          if (o.state === 'pending') return;
          if (o.state === 'failed') failure = `deploy hook failed after ${o.attempts} attempt(s): ${o.lastError ?? `HTTP ${o.responseStatus}`}`;
          else if (o.responseUrl && !url) {
            url = o.responseUrl;
            await this.builds.updateStatus(em, runId, 'running', 'running', { deploymentUrl: url });
          }
          if (!failure && hooks.health_check) {
            const healthUrl = fillTemplate(hooks.health_check.url, { ...vars, deployment_url: url });
            if (!url) {
              url = healthUrl;
              await this.builds.updateStatus(em, runId, 'running', 'running', { deploymentUrl: url });
            }
            const h = await this.deliveries.outcomeOf(key('health_check'));
            if (!h) return void (await this.deliveries.request(em, key('health_check'), { channel: 'http', call: healthCall(hooks.health_check, healthUrl, this.config.deliveryRetryDelaySeconds) }));
            if (h.state === 'pending') return;
            if (h.state === 'failed') failure = `health check failed after ${h.attempts} attempt(s): ${h.lastError ?? `HTTP ${h.responseStatus}`}`;
          }
        }
        if (failure) return this.rollBack(em, run, build, deploy.id, failure, key, vars, phases);
        await this.buildService.completeStep(em, runId, 5);
      }

      const register = steps.get(6)!;
      if (register.status === 'pending') {
        if (!deploying || !hooks.register) {
          await this.buildService.skipStep(em, runId, 6);
          return this.endDeployPhase(em, run, deploy.id, null);
        }
        await this.buildService.startStep(em, runId, 6);
        await this.deliveries.requestHook(em, { key: key('register'), hook: hooks.register, vars: { ...vars, deployment_url: (await this.builds.find(runId, em))!.deploymentUrl } });
        return;
      }
      if (register.status !== 'running' || !hooks.register) return;
      const r = await this.deliveries.outcomeOf(key('register'));
      if (!r) return void (await this.deliveries.requestHook(em, { key: key('register'), hook: hooks.register, vars }));
      if (r.state === 'pending') return;
      if (r.state === 'failed') return this.endDeployPhase(em, run, deploy.id, `register hook failed after ${r.attempts} attempt(s): ${r.lastError ?? `HTTP ${r.responseStatus}`}`);
      await this.buildService.completeStep(em, runId, 6);
      await this.endDeployPhase(em, run, deploy.id, null);
    });
  }

  /** A failed deploy: the rollback hook, then a rollback phase that puts the base branch back, then the deploy phase fails. */
  private async rollBack(
    em: EntityManager,
    run: RunEntity,
    build: BuildEntity,
    deployPhaseId: number,
    failure: string,
    key: (kind: string) => DeliveryKey,
    vars: TemplateVars,
    phases: { phaseId: string; kind: PhaseKind; state: PhaseState }[],
  ): Promise<void> {
    const hooks = this.hooksOf(build);
    let hookPending = false;
    if (hooks.rollback) {
      const o = await this.deliveries.outcomeOf(key('rollback'));
      if (!o) await this.deliveries.requestHook(em, { key: key('rollback'), hook: hooks.rollback, vars });
      hookPending = !o || o.state === 'pending';
    }
    let branchNote = 'the base branch was not moved by promotion';
    if (build.promotedTo && build.promotedFrom !== build.promotedTo) {
      const id = rollbackPhaseId(build.generation);
      const phase = phases.find((p) => p.phaseId === id);
      if (!phase) {
        await this.runService.addToRun(
          em,
          run,
          [],
          [{ phase_id: id, phase_index: 9003 + build.generation, tier_id: BUILD_TIERS.deploy.tier_id, name: 'Roll back the base branch', description: failure.slice(0, 2000) }],
          { kinds: { [id]: 'rollback' }, maxAttempts: { [id]: STEP_ATTEMPTS } },
        );
        await this.events.notify(em, CLAIMABLE_CHANNEL, run.runId);
        return;
      }
      if (phase.state !== 'COMPLETE' && phase.state !== 'FAILED' && phase.state !== 'SKIPPED') return;
      branchNote = phase.state === 'COMPLETE' ? `the base branch was put back to ${build.promotedFrom ?? 'its unborn state'}` : 'putting the base branch back failed';
    }
    if (hookPending) return;
    await this.endDeployPhase(em, run, deployPhaseId, `${failure}; rolled back: ${branchNote}`);
  }

  /** Ends the deploy phase (the supervisor's own) and settles the run: the build follows. */
  private async endDeployPhase(em: EntityManager, run: RunEntity, deployPhaseId: number, failure: string | null): Promise<void> {
    const event = failure ? 'failDelivery' : 'deliver';
    const t = transitionPhase('QUEUED', event, { attemptsUsed: 0, maxAttempts: 1 });
    if (!t.ok) return;
    if (!(await this.phases.transition(em, deployPhaseId, 'QUEUED', t.to, {}, failure ? { lastFailureReason: failure.slice(0, 2000) } : {}))) throw new DomainError('STALE_STATE', 'the deploy phase changed concurrently');
    await this.events.append(em, [{ runId: run.runId, phaseId: 'deploy', type: 'phase_state', payload: { from: 'QUEUED', to: t.to, ...(failure ? { reason: failure.slice(0, 2000) } : {}) } }]);
    await this.progress.settle(em, run);
  }

  /** Starts queued builds as far as the cap leaves room, and wakes the executors of the ones started. */
  private async admit(em: EntityManager): Promise<void> {
    for (const started of await this.buildService.admit(em)) {
      // The wall-time budget counts from the start, not from joining the queue.
      await this.runs.restartClock(em, started);
      await this.events.notify(em, CLAIMABLE_CHANNEL, started);
    }
  }

  /** The build's hooks: those its request gave, else the configured ones. */
  private hooksOf(build: BuildEntity): { deploy?: Hook; health_check?: HealthCheck; register?: Hook; rollback?: Hook } {
    return { ...this.config.hooks, ...build.hooks };
  }

  private async notify(em: EntityManager, build: BuildEntity, n: BuildNotification): Promise<void> {
    const channels = build.notifyChannels ?? this.notifications.configuredChannels();
    if (channels.length === 0) return;
    await this.notifications.notify(em, build.runId, channels, { ...n, occurrence: build.generation || undefined });
  }

  private async lockRun(em: EntityManager, runId: string): Promise<RunEntity> {
    const run = await this.runs.lock(em, runId);
    if (!run || run.checkpointTiers === null) throw new DomainError('NOT_FOUND', `build ${runId} not found`);
    return run;
  }

  /** Builds holding a slot (running or awaiting approval), for `/executor/health`. */
  async activeBuilds(): Promise<number> {
    return this.builds.countRunning(this.ds.manager);
  }
}

/** The plan's tiers and phases as rows of the build's run: tiers re-indexed after the package step, in the plan's order. */
function plannedRows(plan: SubmitPlanArgs): { tiers: TierCreate[]; phases: PhaseCreate[] } {
  const ordered = [...plan.tiers].sort((a, b) => a.tier_index - b.tier_index);
  const tiers = ordered.map((t, i) => ({ ...t, tier_index: FIRST_PLANNED_TIER_INDEX + i }));
  const phases = plan.phases.map((p) => ({ ...p, phase_index: 100 + p.phase_index }));
  return { tiers, phases };
}

/**
 * The health check as a GET delivery: `timeout_s` is how long the service has to become
 * healthy, so the tries (each at most 10 s) with their backoff from `retryDelayS` fit in it.
 */
function healthCall(h: HealthCheck, url: string, retryDelayS: number) {
  const total = h.timeout_s ?? HEALTH_CHECK_DEFAULTS.timeout_s;
  const retries = Math.max(1, Math.floor(Math.log2(total / Math.max(retryDelayS, 0.001) + 1)));
  return {
    url,
    method: 'GET',
    headers: {},
    expectStatus: h.expect_status ?? HEALTH_CHECK_DEFAULTS.expect_status,
    timeoutS: Math.min(total, 10),
    retries,
  };
}
