import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { type ApproveRequest, DomainError, type ListRunsQuery, type PhaseCreate, type PhaseKind, type RunResponse, type RunStartRequest, type TierCreate } from '@app/contracts';
import { type CompiledStrategy, DEFAULT_MAX_ABANDONMENTS, type StrategyRuleset, compileStrategy, debtCleanupCandidates, isRunTerminal, needsCheckpointApproval, transitionRun } from '@app/domain';
import type { RunEntity } from '../entities/index.js';
import { SUPERVISOR_CONFIG, type SupervisorConfig, executorGoneAfterSeconds } from '../config.js';
import { EventRepository, ExecutorRepository, IssueRepository, PhaseRepository, RulesetRepository, RunRepository, TierRepository } from '../repositories/index.js';
import type { RecordAnswer } from './idempotency.service.js';
import { toBacklogState } from './issue.service.js';
import { CLAIMABLE_CHANNEL, ProgressService } from './progress.service.js';
import { toRunResponse } from './run-view.js';

/** What a droplet build adds to the runs and phases it creates. */
export interface RunExtras {
  kinds?: Record<string, PhaseKind>;
  /** Attempts per phase id, instead of the strategy's. */
  maxAttempts?: Record<string, number>;
  /** Tiers after which the run waits for approval (null: the approval mode decides). */
  checkpointTiers?: number[] | null;
}

/** Two concurrent creations of the same id: the loser hits the primary key. */
export function runExists(err: unknown, runId: string): unknown {
  return (err as { code?: string }).code === '23505' ? new DomainError('RUN_EXISTS', `run ${runId} already exists`) : err;
}

function duplicates(values: (string | number)[]): (string | number)[] {
  const seen = new Set<string | number>();
  return values.filter((v) => (seen.has(v) ? true : (seen.add(v), false)));
}

/** Creating, reading and listing runs. */
@Injectable()
export class RunService {
  constructor(
    private readonly ds: DataSource,
    private readonly runs: RunRepository,
    private readonly tiers: TierRepository,
    private readonly phases: PhaseRepository,
    private readonly events: EventRepository,
    private readonly issues: IssueRepository,
    private readonly rulesets: RulesetRepository,
    private readonly progress: ProgressService,
    private readonly executors: ExecutorRepository,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {}

  /** `POST /runs/{id}/cancel`: ends a non-terminal run; queued phases are skipped and leases revoked. */
  async cancel(runId: string, reason?: string): Promise<RunResponse> {
    await this.ds.transaction(async (em) => {
      const run = await this.runs.lock(em, runId);
      if (!run) throw new DomainError('NOT_FOUND', `run ${runId} not found`);
      if (isRunTerminal(run.state)) throw new DomainError('INVALID_TRANSITION', `run ${runId} is already ${run.state}`, { state: run.state });
      await this.progress.endRun(em, run, 'cancel', `cancelled by operator${reason ? `: ${reason}` : ''}`);
      // Waiting claims on the run answer at once, and event streams show the end.
      await this.events.notify(em, CLAIMABLE_CHANNEL, runId);
    });
    return this.get(runId);
  }

  /**
   * \`POST /runs/{id}/approve\`: answers an approval gate. In AWAITING_APPROVAL an approval
   * resumes the run (checkpoint) or completes it (final); a rejection ends it for human
   * review. A finished run whose promotion waits for approval (high-risk phases without
   * auto-apply) records the decision. Anything else is 409.
   */
  async approve(runId: string, decision: ApproveRequest): Promise<RunResponse> {
    await this.ds.transaction(async (em) => {
      const run = await this.runs.lock(em, runId);
      if (!run) throw new DomainError('NOT_FOUND', `run ${runId} not found`);
      const notes = decision.notes ?? null;
      const now = await this.runs.now(em);
      if (run.state === 'DONE_SUCCESS' && run.approvalState === 'pending') {
        await this.runs.setApproval(em, runId, { approvalState: decision.approved ? 'approved' : 'rejected', approvalNotes: notes, approvedAt: now });
        await this.events.append(em, [{ runId, type: 'run_approval', payload: { approved: decision.approved, for: 'promotion' } }]);
        return;
      }
      if (run.state !== 'AWAITING_APPROVAL') throw new DomainError('INVALID_TRANSITION', `run ${runId} is ${run.state}, not awaiting approval`, { state: run.state });
      // A droplet build's checkpoints are the build's: answered where the build records them too.
      if (run.checkpointTiers !== null) throw new DomainError('INVALID_TRANSITION', `run ${runId} is a droplet build: approve it with POST /executor/builds/${runId}/approve`, { state: run.state });
      if (!decision.approved) {
        await this.runs.setApproval(em, runId, { approvalState: 'rejected', approvalNotes: notes, approvedAt: now });
        await this.progress.endRun(em, { ...run, approvalState: 'rejected' }, 'reject', `rejected by operator${notes ? `: ${notes}` : ''}`);
        return;
      }
      const tiers = await this.tiers.listForRun(em, runId);
      const { doneThrough } = needsCheckpointApproval(tiers.map((t) => ({ tierId: t.tierId, tierIndex: t.tierIndex, state: t.state })), run.approvedThroughTierIndex, false);
      const allDone = tiers.every((t) => t.state === 'COMPLETE' || t.state === 'SKIPPED');
      const event = allDone ? 'succeed' : 'approve';
      if (!transitionRun(run.state, event).ok) throw new DomainError('INVALID_TRANSITION', `run cannot '${event}' from ${run.state}`);
      await this.runs.setApproval(em, runId, { approvalState: allDone ? 'approved' : 'pending', approvalNotes: notes, approvedAt: now, approvedThroughTierIndex: doneThrough });
      const to = await this.progress.advanceRun(em, run, event);
      if (to === run.state) throw new DomainError('STALE_STATE', 'the run changed concurrently');
      await this.events.notify(em, CLAIMABLE_CHANNEL, runId);
    });
    return this.get(runId);
  }

  /** `POST /runs/start`: validates the plan, compiles and persists the strategy, queues the phases. */
  /** `recordAnswer` stores an Idempotency-Key's answer in the transaction that creates the run. */
  async start(req: RunStartRequest, recordAnswer?: RecordAnswer): Promise<RunResponse> {
    const dupTiers = duplicates(req.tiers.map((t) => t.tier_id));
    const dupTierIdx = duplicates(req.tiers.map((t) => t.tier_index));
    const dupPhases = duplicates(req.phases.map((p) => p.phase_id));
    if (dupTiers.length || dupTierIdx.length || dupPhases.length) {
      throw new DomainError('INVALID_PLAN', 'tier ids, tier indexes and phase ids must be unique', {
        duplicate_tier_ids: dupTiers,
        duplicate_tier_indexes: dupTierIdx,
        duplicate_phase_ids: dupPhases,
      });
    }
    const tierIds = new Set(req.tiers.map((t) => t.tier_id));
    const unknown = req.phases.filter((p) => !tierIds.has(p.tier_id));
    if (unknown.length) {
      throw new DomainError('UNKNOWN_TIER', `phase ${unknown[0].phase_id} references unknown tier ${unknown[0].tier_id}`, {
        phases: unknown.map((p) => ({ phase_id: p.phase_id, tier_id: p.tier_id })),
      });
    }
    let created: RunResponse | undefined;
    try {
      await this.ds.transaction(async (em) => {
        await this.insertRun(em, req);
        await this.events.notify(em, CLAIMABLE_CHANNEL, req.run.run_id);
        // One answer, read once: the stored answer (replayed for a repeated Idempotency-Key) and
        // the one returned now must be equal, to the budget minutes elapsed.
        created = await this.get(req.run.run_id, em);
        await recordAnswer?.(em, { status: 201, body: created });
      });
    } catch (err) {
      throw runExists(err, req.run.run_id);
    }
    return created!;
  }

  /**
   * Inserts a run with its tiers and phases (the plan already checked for unique ids and known
   * tiers), its strategy compiled, in `em`'s transaction. `extras` are what a droplet build
   * adds: phase kinds, attempts per phase, the tiers it waits after for approval.
   */
  async insertRun(em: EntityManager, req: RunStartRequest, extras: RunExtras = {}): Promise<void> {
    const r = req.run;
    const safetyProfile = r.safety_profile ?? 'normal';
    const projectId = r.project_id ?? 'default';
    if (await this.runs.find(r.run_id, em)) throw new DomainError('RUN_EXISTS', `run ${r.run_id} already exists`);
    const plan = r.schedule_debt_cleanup === false ? req : await this.withDebtCleanup(em, req, projectId);
    const ruleset = ((await this.rulesets.find(em, projectId))?.ruleset ?? {}) as StrategyRuleset;
    const strategy = compileStrategy({
      safetyProfile,
      tierIds: plan.tiers.map((t) => t.tier_id),
      phases: plan.phases.map((p) => ({ phaseId: p.phase_id, tierId: p.tier_id, taskCategory: p.task_category, complexity: p.complexity })),
      run: { tokenCap: r.token_cap, maxPhases: r.max_phases, maxDurationMinutes: r.max_duration_minutes },
      ruleset,
    });
    const needsApproval = plan.phases.some((p) => !strategy.phases[p.phase_id].auto_apply);
    const now = await this.runs.now(em);
    await this.runs.insert(em, {
      runId: r.run_id,
      projectId,
      state: 'RUN_CREATED',
      safetyProfile,
      runScope: r.run_scope ?? 'multi_tier',
      approvalMode: r.approval_mode ?? 'auto',
      baseBranch: r.base_branch ?? 'main',
      repoUrl: r.repo_url ?? null,
      ci: r.ci ?? null,
      protectedPaths: r.protected_paths ?? [],
      tokenCap: strategy.run.tokenCap,
      costCapUsd: r.cost_cap_usd ?? null,
      maxPhases: strategy.run.maxPhases,
      maxDurationMinutes: strategy.run.maxDurationMinutes,
      maxMinorIssuesTotal: strategy.run.maxMinorIssuesTotal,
      tokensUsed: 0,
      costUsedUsd: 0,
      ciRunsUsed: 0,
      minorIssuesCount: 0,
      majorIssuesCount: 0,
      failureReason: null,
      failureCap: null,
      debtStatus: plan === req ? null : `debt cleanup scheduled: ${plan.phases.length - req.phases.length} phase(s) for aged issues`,
      maxParallelPhases: r.max_parallel_phases ?? 1,
      approvedThroughTierIndex: -1,
      checkpointTiers: extras.checkpointTiers ?? null,
      approvalState: needsApproval ? 'pending' : 'not_required',
      approvalNotes: null,
      approvedAt: null,
      strategy,
      createdAt: now,
      startedAt: now,
      completedAt: null,
    });
    await this.insertTiersAndPhases(em, r.run_id, plan.tiers, plan.phases, strategy, extras);
    await this.events.append(em, [{ runId: r.run_id, type: 'run_created', payload: { tiers: plan.tiers.length, phases: plan.phases.length, safety_profile: safetyProfile } }]);
  }

  /**
   * Adds tiers and phases to an existing run (a build's accepted plan), their strategy compiled
   * with the run's ruleset and merged into the run's. The run's budgets do not change.
   */
  async addToRun(em: EntityManager, run: RunEntity, tiers: TierCreate[], phases: PhaseCreate[], extras: RunExtras = {}): Promise<void> {
    const ruleset = ((await this.rulesets.find(em, run.projectId))?.ruleset ?? {}) as StrategyRuleset;
    const compiled = compileStrategy({
      safetyProfile: run.safetyProfile,
      tierIds: tiers.map((t) => t.tier_id),
      phases: phases.map((p) => ({ phaseId: p.phase_id, tierId: p.tier_id, taskCategory: p.task_category, complexity: p.complexity })),
      ruleset,
    });
    const strategy = { ...run.strategy, phases: { ...run.strategy.phases, ...compiled.phases }, tiers: { ...run.strategy.tiers, ...compiled.tiers } };
    await this.runs.setStrategy(em, run.runId, strategy);
    await this.insertTiersAndPhases(em, run.runId, tiers, phases, compiled, extras);
  }

  private async insertTiersAndPhases(em: EntityManager, runId: string, tiers: TierCreate[], phases: PhaseCreate[], strategy: CompiledStrategy, extras: RunExtras): Promise<void> {
    await this.tiers.insertMany(
      em,
      tiers.map((t) => ({
        runId,
        tierId: t.tier_id,
        tierIndex: t.tier_index,
        name: t.name,
        description: t.description ?? null,
        state: 'PENDING' as const,
        cleanliness: 'clean' as const,
        minorIssuesCount: 0,
        majorIssuesCount: 0,
        tokensUsed: 0,
        ciRunsUsed: 0,
      })),
    );
    await this.phases.insertMany(
      em,
      phases.map((p) => ({
        runId,
        phaseId: p.phase_id,
        tierId: p.tier_id,
        phaseIndex: p.phase_index,
        name: p.name,
        description: p.description ?? null,
        taskCategory: p.task_category ?? null,
        complexity: p.complexity ?? null,
        builderMode: p.builder_mode ?? null,
        scope: p.scope ?? null,
        acceptanceCriteria: p.acceptance_criteria ?? [],
        ci: p.ci ?? null,
        allowMassDeletion: p.allow_mass_deletion ?? false,
        allowMassAddition: p.allow_mass_addition ?? false,
        kind: extras.kinds?.[p.phase_id] ?? 'code',
        requires: [...new Set(p.requires ?? [])].sort(),
        state: 'QUEUED' as const,
        maxAttempts: extras.maxAttempts?.[p.phase_id] ?? strategy.phases[p.phase_id].max_builder_attempts,
        maxAbandonments: strategy.phases[p.phase_id].max_abandonments ?? DEFAULT_MAX_ABANDONMENTS,
      })),
    );
  }

  /**
   * Aged backlog issues of the project become one `debt_cleanup` phase in an extra last tier
   * (v7: "debt_cleanup phases scheduled from aged issues").
   */
  private async withDebtCleanup(em: import('typeorm').EntityManager, req: RunStartRequest, projectId: string): Promise<RunStartRequest> {
    const aged = debtCleanupCandidates((await this.issues.listBacklog(projectId, em)).map(toBacklogState));
    if (aged.length === 0) return req;
    const tierIndex = Math.max(...req.tiers.map((t) => t.tier_index)) + 1;
    const phaseIndex = Math.max(...req.phases.map((p) => p.phase_index)) + 1;
    const tierId = req.tiers.some((t) => t.tier_id === 'debt-cleanup') ? `debt-cleanup-${tierIndex}` : 'debt-cleanup';
    const phaseId = req.phases.some((p) => p.phase_id === 'debt-cleanup') ? `debt-cleanup-${phaseIndex}` : 'debt-cleanup';
    return {
      ...req,
      tiers: [...req.tiers, { tier_id: tierId, tier_index: tierIndex, name: 'Debt cleanup', description: 'Scheduled from aged project backlog issues' }],
      phases: [
        ...req.phases,
        {
          phase_id: phaseId,
          phase_index: phaseIndex,
          tier_id: tierId,
          name: 'Clean up aged issues',
          description: `Resolve these recurring issues:\n${aged.map((e) => `- ${e.issueKey} (${e.category}; seen in ${e.ageInRuns} runs, ${e.ageInTiers} tiers)`).join('\n')}`,
          task_category: 'debt_cleanup',
          acceptance_criteria: aged.map((e) => `${e.issueKey} no longer occurs`),
          ...(req.run.ci ? { ci: req.run.ci } : {}),
        },
      ],
    };
  }

  /** `GET /runs/{id}`. */
  async get(runId: string, em: EntityManager = this.ds.manager): Promise<RunResponse> {
    const run = await this.runs.find(runId, em);
    if (!run) throw new DomainError('NOT_FOUND', `run ${runId} not found`);
    // One after another: `em` may be a transaction's single connection.
    const tiers = await this.tiers.listForRun(em, runId);
    const phases = await this.phases.listForRun(em, runId);
    const now = await this.runs.now(em);
    const live = phases.some((p) => p.state === 'QUEUED' && p.requires.length > 0) ? await this.executors.liveCapabilities(em, executorGoneAfterSeconds(this.config)) : [];
    return toRunResponse(run, tiers, phases, now, live);
  }

  /** `GET /runs`. */
  async list(q: ListRunsQuery): Promise<{ runs: Record<string, unknown>[]; total: number; limit: number; offset: number }> {
    const { runs, total } = await this.runs.list(q);
    const phaseRows = await Promise.all(runs.map((r) => this.phases.listForRun(this.ds.manager, r.runId)));
    return {
      runs: runs.map((r, i) => {
        const phases = phaseRows[i];
        const current = phases.find((p) => p.state !== 'COMPLETE' && p.state !== 'SKIPPED' && p.state !== 'FAILED');
        return {
          id: r.runId,
          run_id: r.runId,
          state: r.state,
          created_at: new Date(r.createdAt).toISOString(),
          completed_at: r.completedAt ? new Date(r.completedAt).toISOString() : null,
          tokens_used: r.tokensUsed,
          token_cap: r.tokenCap,
          phases_total: phases.length,
          phases_completed: phases.filter((p) => p.state === 'COMPLETE').length,
          current_phase_name: current?.name ?? null,
          failure_reason: r.failureReason,
        };
      }),
      total,
      limit: q.limit,
      offset: q.offset,
    };
  }
}
