import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import {
  type AuditorRequest,
  type AuditorResultRequest,
  type BuilderResultRequest,
  type ClaimRequest,
  type ClaimResponse,
  DomainError,
  type HeartbeatResponse,
  type LlmCallRecord,
  LEASED_PHASE_STATES,
  type PhaseState,
  type PhaseWriteResponse,
  type RecordIssueRequest,
  type ReserveBudgetRequest,
  type ReserveBudgetResponse,
  type UpdateStatusRequest,
  type UsageReport,
  type BudgetLeft,
} from '@app/contracts';
import { type PhaseEvent, eventForRequestedPhaseState, isRunClaimable, isRunTerminal, runBudgetExhaustion, transitionPhase } from '@app/domain';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import type { PhaseEntity, RunEntity } from '../entities/index.js';
import { BudgetRepository, EventRepository, PhaseRepository, RunRepository, TierRepository } from '../repositories/index.js';
import type { PhaseTransitionSet } from '../repositories/index.js';
import { msBetween } from './clock.js';
import type { RecordAnswer } from './idempotency.service.js';
import { IssueService } from './issue.service.js';
import { NotificationHub } from './notification-hub.js';
import { CLAIMABLE_CHANNEL, ProgressService } from './progress.service.js';

const CLAIMABLE_RUN_STATES = ['RUN_CREATED', 'PHASE_QUEUEING', 'PHASE_EXECUTION', 'GATE', 'CI_RUNNING', 'SNAPSHOT_CREATED'] as const;

/**
 * Failed attempts are recorded as phase issues too (builder guardrails, CI failures, auditor
 * rejections). They stay at phase and run level: keyed per phase, they would only add noise
 * to the project backlog.
 */
const PROCESS_ISSUES: Record<string, { key: string; category: string; source: string }> = {
  builder_failed: { key: 'builder_guardrail', category: 'builder_guardrail', source: 'builder' },
  ci_failed: { key: 'ci_failure', category: 'ci_failure', source: 'ci' },
  auditor_revise: { key: 'auditor_rejection', category: 'auditor_rejection', source: 'auditor' },
  auditor_escalate: { key: 'auditor_escalation', category: 'auditor_rejection', source: 'auditor' },
  // An expired lease (a crashed executor) is no issue of the phase's work: it is counted in
  // `abandonments`, not in the phase's issues, cleanliness or the run's minor-issue budget.
};

/** What ends an attempt, as recorded in `phase_attempts`. */
interface AttemptEnd {
  event: PhaseEvent;
  outcome: string;
  reason?: string | null;
  feedback?: string | null;
  editsHash?: string | null;
  commitSha?: string | null;
  set?: PhaseTransitionSet;
}

/** Context of a fenced executor write: the run row is locked for the whole transaction. */
interface WriteContext {
  em: EntityManager;
  run: RunEntity;
  phase: PhaseEntity;
}

/** Executor-facing use cases: claim, heartbeat and the fenced result reports. */
@Injectable()
export class PhaseService {
  constructor(
    private readonly ds: DataSource,
    private readonly runs: RunRepository,
    private readonly tiers: TierRepository,
    private readonly phases: PhaseRepository,
    private readonly events: EventRepository,
    private readonly progress: ProgressService,
    private readonly hub: NotificationHub,
    private readonly issues: IssueService,
    private readonly budgets: BudgetRepository,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {}

  /** `POST /phases/claim`: long-polls up to `wait_ms` for a claimable phase; null means 204. */
  async claim(req: ClaimRequest, recordAnswer?: RecordAnswer): Promise<ClaimResponse | null> {
    const deadline = Date.now() + (req.wait_ms ?? 0);
    for (;;) {
      const claimed = await this.tryClaim(req, recordAnswer);
      if (claimed) return claimed;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return null;
      // Woken by NOTIFY; the bounded wait is only a safety net for a lost LISTEN connection.
      await this.hub.waitForClaimable(Math.min(remaining, 5000), req.run_id);
    }
  }

  /** `recordAnswer` stores an Idempotency-Key's answer in the claim's own transaction. */
  private async tryClaim(req: ClaimRequest, recordAnswer?: RecordAnswer): Promise<ClaimResponse | null> {
    return this.ds.transaction(async (em) => {
      const candidates = await this.runs.lockClaimCandidates(em, CLAIMABLE_RUN_STATES, req.run_id, 5);
      for (const run of candidates) {
        const phases = await this.phases.listForRun(em, run.runId);
        const now = await this.runs.now(em);
        const exhausted = runBudgetExhaustion({
          tokensUsed: run.tokensUsed,
          tokenCap: run.tokenCap,
          costUsedUsd: run.costUsedUsd,
          costCapUsd: run.costCapUsd,
          elapsedMinutes: run.startedAt ? msBetween(run.startedAt, now) / 60_000 : 0,
          maxDurationMinutes: run.maxDurationMinutes,
          phasesStarted: phases.filter((p) => p.claimsCount > 0).length,
          maxPhases: run.maxPhases,
          nextClaimStartsNewPhase: phases.some((p) => p.state === 'QUEUED' && p.claimsCount === 0) && !phases.some((p) => p.state === 'QUEUED' && p.claimsCount > 0),
          minorIssues: run.minorIssuesCount,
          maxMinorIssuesTotal: run.maxMinorIssuesTotal,
        });
        if (exhausted) {
          await this.progress.endRun(em, run, 'exhaustBudget', exhausted.reason);
          continue;
        }
        const token = randomUUID();
        const phase = await this.phases.claimNextInRun(em, run.runId, req.executor_id, token, this.config.leaseSeconds);
        if (!phase) continue;
        await this.events.append(em, [
          { runId: run.runId, phaseId: phase.phaseId, type: 'phase_claimed', payload: { attempt: phase.claimsCount, executor_id: req.executor_id } },
        ]);
        await this.progress.settle(em, run);
        // Another phase of this run may still be claimable (parallel runs): wake other waiters.
        if (run.maxParallelPhases > 1) await this.events.notify(em, CLAIMABLE_CHANNEL, run.runId);
        // The states read before the claim, with the claimed phase as it is now: nothing else of
        // the run changed in between (its row is locked), so no second read of every phase.
        const phaseStates = Object.fromEntries(phases.map((p) => [p.phaseId, p.id === phase.id ? phase.state : p.state]));
        const response = await this.claimResponse(em, run, phase, token, phaseStates);
        await recordAnswer?.(em, { status: 200, body: response });
        return response;
      }
      return null;
    });
  }

  /**
   * What is left of every budget for a phase: caps minus usage minus open reservations, so
   * two calls can never both be admitted into the same remaining budget.
   */
  private async budgetLeft(em: EntityManager, run: RunEntity, phase: PhaseEntity): Promise<BudgetLeft> {
    const strategy = run.strategy.phases[phase.phaseId];
    const tierBudget = run.strategy.tiers[phase.tierId];
    const tier = (await this.tiers.listForRun(em, run.runId)).find((t) => t.tierId === phase.tierId);
    const phases = await this.phases.listForRun(em, run.runId);
    const tierTokens = phases.filter((p) => p.tierId === phase.tierId).reduce((n, p) => n + p.tokensUsed, 0);
    const reserved = await this.budgets.reserved(em, run.runId, phase.phaseId, phase.tierId);
    const now = await this.runs.now(em);
    const elapsed = run.startedAt ? msBetween(run.startedAt, now) / 60_000 : 0;
    const fresh = phases.find((p) => p.id === phase.id) ?? phase;
    return {
      tokens: Math.max(0, run.tokenCap - run.tokensUsed - reserved.run),
      cost_usd: run.costCapUsd === null ? null : Math.max(0, run.costCapUsd - run.costUsedUsd - reserved.cost),
      phase_tokens: Math.max(0, strategy.incident_token_cap - fresh.tokensUsed - reserved.phase),
      tier_tokens: Math.max(0, (tierBudget?.tokenCap ?? Number.MAX_SAFE_INTEGER) - tierTokens - reserved.tier),
      minutes: Math.max(0, run.maxDurationMinutes - elapsed),
      ci_runs: Math.max(0, (tierBudget?.ciRunCap ?? 0) - (tier?.ciRunsUsed ?? 0)),
    };
  }

  private async claimResponse(em: EntityManager, run: RunEntity, phase: PhaseEntity, token: string, phaseStates: Record<string, PhaseState>): Promise<ClaimResponse> {
    const strategy = run.strategy.phases[phase.phaseId];
    const attempts = await this.phases.listAttempts(em, run.runId, phase.phaseId);
    return {
      run_id: run.runId,
      phase_id: phase.phaseId,
      lease_token: token,
      lease_expires_at: new Date(phase.leaseExpiresAt!).toISOString(),
      lease_seconds: this.config.leaseSeconds,
      attempt: phase.claimsCount,
      max_attempts: phase.maxAttempts,
      phase: {
        phase_id: phase.phaseId,
        tier_id: phase.tierId,
        phase_index: phase.phaseIndex,
        name: phase.name,
        description: phase.description,
        task_category: phase.taskCategory,
        complexity: phase.complexity,
        builder_mode: phase.builderMode,
        scope: phase.scope,
        acceptance_criteria: phase.acceptanceCriteria,
        ci: phase.ci,
        allow_mass_deletion: phase.allowMassDeletion,
        allow_mass_addition: phase.allowMassAddition,
      },
      strategy,
      budget_left: await this.budgetLeft(em, run, phase),
      previous_attempts: attempts.map((a) => ({
        attempt: a.attempt,
        outcome: a.outcome,
        reason: a.reason,
        feedback: a.feedback,
        edits_hash: a.editsHash,
        created_at: new Date(a.createdAt).toISOString(),
      })),
      run: {
        run_id: run.runId,
        base_branch: run.baseBranch,
        integration_branch: `autonomous/${run.runId}`,
        repo_url: run.repoUrl,
        safety_profile: run.safetyProfile,
        ci: run.ci,
        protected_paths: run.protectedPaths,
        phase_states: phaseStates,
      },
    };
  }

  /** `POST .../heartbeat`: extends a live lease; 409 LEASE_LOST otherwise. */
  async heartbeat(runId: string, phaseId: string, token: string): Promise<HeartbeatResponse> {
    const em = this.ds.manager;
    const phase = await this.phases.find(em, runId, phaseId);
    if (!phase) throw new DomainError('NOT_FOUND', `phase ${phaseId} of run ${runId} not found`);
    const expires = await this.phases.extendLease(em, phase.id, token, this.config.leaseSeconds);
    if (!expires) throw new DomainError('LEASE_LOST', 'the lease expired or belongs to another executor');
    const run = await this.runs.find(runId, em);
    return { lease_expires_at: expires.toISOString(), run_state: run!.state, stop_requested: !run || !isRunClaimable(run.state) };
  }

  /** `POST .../builder_result`. */
  async builderResult(runId: string, phaseId: string, body: BuilderResultRequest): Promise<PhaseWriteResponse> {
    return this.fencedWrite(runId, phaseId, body.lease_token, body, async (ctx) => {
      const usage = body.usage ?? { prompt_tokens: 0, completion_tokens: body.tokens_used };
      await this.recordUsage(ctx, usage, 'builder');
      await this.phases.addCounters(ctx.em, ctx.phase.id, { builder: 1 });
      await this.issues.recordAll(ctx.em, ctx.run, ctx.phase, body.suggested_issues, 'builder');
      const details: PhaseTransitionSet = { filesChanged: body.files_changed, linesAdded: body.lines_added, linesRemoved: body.lines_removed };
      if (body.status === 'failed') {
        return this.endAttempt(ctx, {
          event: 'failAttempt',
          outcome: 'builder_failed',
          reason: body.failure_reason ?? body.notes ?? 'builder failed',
          feedback: body.feedback,
          editsHash: body.edits_hash,
          set: details,
        });
      }
      if (body.status === 'success' && body.commit_sha) {
        return this.endAttempt(ctx, { event: 'complete', outcome: 'complete', commitSha: body.commit_sha, set: { ...details, commitSha: body.commit_sha } });
      }
      if (body.status === 'needs_review') return this.move(ctx, 'requestAudit', details);
      await this.phases.transition(ctx.em, ctx.phase.id, ctx.phase.state, ctx.phase.state, { leaseToken: body.lease_token }, details);
      return ctx.phase.state;
    });
  }

  /** `POST .../auditor_request`: the phase moves to GATE. */
  async auditorRequest(runId: string, phaseId: string, body: AuditorRequest): Promise<PhaseWriteResponse> {
    return this.fencedWrite(runId, phaseId, body.lease_token, body, async (ctx) => this.move(ctx, 'requestAudit'));
  }

  /** `POST .../auditor_result`: approve completes, revise retries, escalate fails the phase. */
  async auditorResult(runId: string, phaseId: string, body: AuditorResultRequest): Promise<PhaseWriteResponse> {
    const response = await this.fencedWrite(runId, phaseId, body.lease_token, body, async (ctx) => {
      const usage = body.usage ?? { prompt_tokens: 0, completion_tokens: body.tokens_used };
      await this.recordUsage(ctx, usage, 'auditor');
      await this.phases.addCounters(ctx.em, ctx.phase.id, { auditor: 1 });
      await this.issues.recordAll(ctx.em, ctx.run, ctx.phase, body.issues_found, 'auditor');
      const quality = body.quality_level ?? null;
      if (body.recommendation === 'approve') {
        return this.endAttempt(ctx, {
          event: 'complete',
          outcome: 'complete',
          commitSha: body.commit_sha,
          set: { commitSha: body.commit_sha ?? null, qualityLevel: quality },
        });
      }
      const reason = body.recommendation === 'revise' ? 'auditor requested changes' : 'auditor escalated to a human';
      return this.endAttempt(ctx, {
        event: body.recommendation === 'revise' ? 'failAttempt' : 'fail',
        outcome: `auditor_${body.recommendation}`,
        reason: body.review_notes ? `${reason}: ${body.review_notes.slice(0, 500)}` : reason,
        feedback: body.feedback,
        editsHash: body.edits_hash,
        set: { qualityLevel: quality },
      });
    });
    return { ...response, recommendation: body.recommendation };
  }

  /** `POST .../update_status`: any state change, checked against the phase machine. */
  async updateStatus(runId: string, phaseId: string, body: UpdateStatusRequest): Promise<PhaseWriteResponse> {
    return this.fencedWrite(runId, phaseId, body.lease_token, body, async (ctx) => {
      const event = eventForRequestedPhaseState(ctx.phase.state, body.state);
      if (!event) throw this.illegal(ctx.phase.state, body.state);
      if (body.usage) await this.recordUsage(ctx, body.usage, 'executor');
      const set: PhaseTransitionSet = {
        ...(body.quality_level ? { qualityLevel: body.quality_level } : {}),
        ...(body.builder_attempts !== undefined ? { builderAttempts: body.builder_attempts } : {}),
        ...(body.minor_issues_count !== undefined ? { minorIssuesCount: body.minor_issues_count } : {}),
        ...(body.major_issues_count !== undefined ? { majorIssuesCount: body.major_issues_count } : {}),
        ...(body.commit_sha ? { commitSha: body.commit_sha } : {}),
      };
      if (event === 'startCi') {
        const tier = (await this.tiers.listForRun(ctx.em, runId)).find((t) => t.tierId === ctx.phase.tierId);
        const cap = ctx.run.strategy.tiers[ctx.phase.tierId]?.ciRunCap;
        if (tier && cap !== undefined && tier.ciRunsUsed >= cap) {
          await this.progress.endRun(ctx.em, ctx.run, 'exhaustBudget', `tier ${tier.tierId} ci_run_cap exhausted: ${tier.ciRunsUsed} of ${cap} CI runs used`);
          return 'FAILED';
        }
        await this.runs.addCiRun(ctx.em, runId);
        await this.tiers.addCiRun(ctx.em, runId, ctx.phase.tierId);
      }
      if (event === 'complete' || event === 'failAttempt' || event === 'fail' || event === 'release') {
        const outcome = event === 'complete' ? 'complete' : event === 'release' ? 'released' : body.ci_passed === false ? 'ci_failed' : 'failed';
        return this.endAttempt(ctx, {
          event,
          outcome,
          reason: body.failure_reason ?? (event === 'complete' ? null : outcome),
          feedback: body.feedback,
          editsHash: body.edits_hash,
          commitSha: body.commit_sha,
          set,
        });
      }
      return this.move(ctx, event, set);
    });
  }

  /** `POST .../record_issue`: fenced when a lease token is given (an executor), open to operators otherwise. */
  async recordIssue(runId: string, phaseId: string, body: RecordIssueRequest, recordAnswer?: RecordAnswer): Promise<PhaseWriteResponse> {
    return this.fencedWrite(runId, phaseId, body.lease_token, {}, async (ctx) => {
      const { lease_token: _t, task_category: _c, complexity: _x, ...issue } = body;
      await this.issues.record(ctx.em, ctx.run, ctx.phase, issue, body.source);
      return ctx.phase.state;
    }, { optionalFence: true, recordAnswer });
  }

  /**
   * `POST .../reserve_budget`: admits an LLM call only if its worst case fits what is left
   * of the run, tier and phase budgets (after other open reservations). 409 BUDGET_EXHAUSTED
   * otherwise; nothing is reserved then.
   */
  async reserveBudget(runId: string, phaseId: string, body: ReserveBudgetRequest, recordAnswer?: RecordAnswer): Promise<ReserveBudgetResponse> {
    let result: ReserveBudgetResponse | undefined;
    let refusal: DomainError | undefined;
    await this.fencedWrite(runId, phaseId, body.lease_token, {}, async (ctx) => {
      const left = await this.budgetLeft(ctx.em, ctx.run, ctx.phase);
      const cost = body.cost_usd ?? 0;
      const short =
        body.tokens > left.tokens
          ? { cap: 'token_cap', left: left.tokens }
          : body.tokens > left.phase_tokens
            ? { cap: 'incident_token_cap', left: left.phase_tokens }
            : left.tier_tokens !== undefined && body.tokens > left.tier_tokens
              ? { cap: 'tier_token_cap', left: left.tier_tokens }
              : left.cost_usd !== null && cost > left.cost_usd
                ? { cap: 'cost_cap_usd', left: left.cost_usd }
                : null;
      if (short) {
        refusal = new DomainError('BUDGET_EXHAUSTED', `the call's worst case does not fit the ${short.cap} budget`, { ...short, requested_tokens: body.tokens, requested_cost_usd: cost });
        return ctx.phase.state;
      }
      const id = randomUUID();
      await this.budgets.reserve(ctx.em, { id, runId, phaseId, tierId: ctx.phase.tierId, tokens: body.tokens, costUsd: cost });
      result = { reservation_id: id, budget_left: await this.budgetLeft(ctx.em, ctx.run, ctx.phase) };
      await recordAnswer?.(ctx.em, { status: 200, body: result });
      return ctx.phase.state;
    });
    if (refusal) throw refusal;
    return result!;
  }

  /**
   * Operator retry of a FAILED phase: back to QUEUED with fresh attempts. In a run that ended
   * DONE_FAILED_REQUIRES_HUMAN_REVIEW this reopens the run (CONTRACT.md section 6); a run that
   * ended any other way (success, budget, policy, environment, cancel) stays ended: 409.
   */
  async retry(runId: string, phaseId: string): Promise<PhaseWriteResponse> {
    return this.fencedWrite(runId, phaseId, undefined, {}, async (ctx) => {
      const { run, phase } = ctx;
      if (phase.state !== 'FAILED') throw this.illegal(phase.state, 'QUEUED');
      const reopens = isRunTerminal(run.state);
      // Refuses (409) a run that ended any other way, before anything is written.
      const requeued = reopens ? await this.progress.reopenRun(ctx.em, run, phaseId) : [];
      const to = await this.move(ctx, 'retry', { attemptsUsed: 0, abandonments: 0, lastFailureReason: null });
      await this.events.append(ctx.em, [
        {
          runId,
          phaseId,
          type: 'phase_retry',
          payload: { attempts_used_before: phase.attemptsUsed, max_attempts: phase.maxAttempts, abandonments_before: phase.abandonments, reopened_run: reopens, ...(reopens ? { run_state_before: run.state, requeued_phases: requeued } : {}) },
        },
      ]);
      return to;
    });
  }

  /** Expires leases past their deadline (the sweeper calls this). Returns phases requeued or failed. */
  async expireLeases(): Promise<number> {
    let changed = 0;
    for (const runId of await this.phases.runsWithExpiredLeases(this.ds.manager)) {
      changed += await this.ds.transaction(async (em) => {
        const run = await this.runs.lock(em, runId);
        if (!run) return 0;
        const now = await this.runs.now(em);
        let n = 0;
        for (const phase of await this.phases.listForRun(em, runId)) {
          if (!phase.leaseToken || !phase.leaseExpiresAt || new Date(phase.leaseExpiresAt) >= now) continue;
          await this.endAttempt({ em, run, phase }, { event: 'expireLease', outcome: 'lease_expired', reason: `lease of ${phase.leaseOwner ?? 'an executor'} expired` });
          n++;
        }
        await this.progress.settle(em, run);
        await this.events.notify(em, CLAIMABLE_CHANNEL, runId);
        return n;
      });
    }
    return changed;
  }

  /** Ends runs whose wall-time budget has passed, even if nobody claims (the sweeper calls this). */
  async endOverdueRuns(): Promise<number> {
    let ended = 0;
    for (const runId of await this.runs.findOverdue(this.ds.manager, CLAIMABLE_RUN_STATES)) {
      ended += await this.ds.transaction(async (em) => {
        const run = await this.runs.lock(em, runId);
        if (!run || !isRunClaimable(run.state) || !run.startedAt) return 0;
        const elapsed = msBetween(run.startedAt, await this.runs.now(em)) / 60_000;
        if (elapsed < run.maxDurationMinutes) return 0;
        const reason = `max_duration_minutes exhausted: ${elapsed.toFixed(1)} of ${run.maxDurationMinutes} minutes elapsed`;
        return (await this.progress.endRun(em, run, 'exhaustBudget', reason)) ? 1 : 0;
      });
    }
    return ended;
  }

  // --- internals -------------------------------------------------------------------------

  /**
   * Every executor write: lock the run row, find the phase, check the fence, apply the
   * change, cascade, notify. A stale or missing token is 409 LEASE_LOST and changes nothing
   * (the transaction rolls back).
   */
  private async fencedWrite(
    runId: string,
    phaseId: string,
    token: string | undefined,
    body: { run_id?: string; phase_id?: string; llm_calls?: LlmCallRecord[] },
    apply: (ctx: WriteContext) => Promise<PhaseState>,
    opts: { optionalFence?: boolean; recordAnswer?: RecordAnswer } = {},
  ): Promise<PhaseWriteResponse> {
    if ((body.run_id && body.run_id !== runId) || (body.phase_id && body.phase_id !== phaseId)) {
      throw new DomainError('ID_MISMATCH', 'run_id/phase_id in the body differ from the path');
    }
    return this.ds.transaction(async (em) => {
      const run = await this.runs.lock(em, runId);
      if (!run) throw new DomainError('NOT_FOUND', `run ${runId} not found`);
      const phase = await this.phases.find(em, runId, phaseId);
      if (!phase) throw new DomainError('NOT_FOUND', `phase ${phaseId} of run ${runId} not found`);
      if (token !== undefined || (phase.leaseToken && !opts.optionalFence)) {
        const now = await this.runs.now(em);
        const live = phase.leaseToken !== null && phase.leaseToken === token && phase.leaseExpiresAt !== null && new Date(phase.leaseExpiresAt) > now;
        if (!live) throw new DomainError('LEASE_LOST', 'the lease expired or belongs to another executor', { phase_state: phase.state });
      }
      const state = await apply({ em, run, phase });
      const calls = (body as { llm_calls?: LlmCallRecord[] }).llm_calls ?? [];
      if (calls.length) {
        await this.events.append(em, calls.map((c) => ({ runId, phaseId, type: 'llm_call', payload: { ...c, attempt: phase.claimsCount } })));
      }
      // apply may have ended the run (a budget): derive from the row as it is now.
      let runState = await this.progress.settle(em, (await this.runs.find(runId, em))!);
      const after = (await this.runs.find(runId, em))!;
      const crossed = await this.crossedUsageCap(em, after);
      if (crossed && !isRunTerminal(after.state) && (await this.progress.endRun(em, after, 'exhaustBudget', crossed))) {
        runState = 'DONE_FAILED_BUDGET_EXHAUSTED';
      }
      await this.events.notify(em, CLAIMABLE_CHANNEL, runId);
      const fresh = (await this.phases.find(em, runId, phaseId))!;
      const response: PhaseWriteResponse = {
        message: `phase ${phaseId} is ${state}`,
        run_id: runId,
        phase_id: phaseId,
        phase_state: fresh.state,
        run_state: runState,
        attempt: fresh.claimsCount,
        attempts_left: Math.max(0, fresh.maxAttempts - fresh.attemptsUsed),
        commit_sha: fresh.commitSha,
      };
      await opts.recordAnswer?.(em, { status: 200, body: response });
      return response;
    });
  }

  /** Usage caps that end a run when crossed: run tokens, run cost, and each tier's token cap. */
  private async crossedUsageCap(em: EntityManager, run: RunEntity): Promise<string | null> {
    if (run.tokensUsed >= run.tokenCap) return `token_cap exhausted: ${run.tokensUsed} of ${run.tokenCap} tokens used`;
    if (run.costCapUsd !== null && run.costUsedUsd >= run.costCapUsd) {
      return `cost_cap_usd exhausted: $${run.costUsedUsd.toFixed(4)} of $${run.costCapUsd.toFixed(4)} spent`;
    }
    const phases = await this.phases.listForRun(em, run.runId);
    for (const [tierId, budget] of Object.entries(run.strategy.tiers)) {
      const used = phases.filter((p) => p.tierId === tierId).reduce((n, p) => n + p.tokensUsed, 0);
      if (used >= budget.tokenCap) return `tier ${tierId} token_cap exhausted: ${used} of ${budget.tokenCap} tokens used`;
    }
    return null;
  }

  private illegal(from: PhaseState, to: string): DomainError {
    return new DomainError('INVALID_TRANSITION', `phase cannot move from ${from} to ${to}`, { from, to });
  }

  /** A transition that keeps the lease (or needs none). */
  private async move(ctx: WriteContext, event: PhaseEvent, set: PhaseTransitionSet = {}): Promise<PhaseState> {
    const { phase } = ctx;
    const t = transitionPhase(phase.state, event, { attemptsUsed: phase.attemptsUsed, maxAttempts: phase.maxAttempts });
    if (!t.ok) throw new DomainError('INVALID_TRANSITION', t.reason, { from: phase.state, event });
    const clearLease = !LEASED_PHASE_STATES.includes(t.to);
    const ok = await this.phases.transition(ctx.em, phase.id, phase.state, t.to, { leaseToken: phase.leaseToken }, { ...set, clearLease });
    if (!ok) throw new DomainError('STALE_STATE', 'the phase changed concurrently');
    await this.events.append(ctx.em, [{ runId: phase.runId, phaseId: phase.phaseId, type: 'phase_state', payload: { from: phase.state, to: t.to, event } }]);
    return t.to;
  }

  /** Ends the current attempt: transition, lease released, attempt recorded with its feedback. */
  private async endAttempt(ctx: WriteContext, end: AttemptEnd): Promise<PhaseState> {
    const { phase } = ctx;
    // The phase's incident token cap ends it even with attempts left.
    const current = (await this.phases.find(ctx.em, phase.runId, phase.phaseId))!;
    const cap = ctx.run.strategy.phases[phase.phaseId]?.incident_token_cap;
    if ((end.event === 'failAttempt' || end.event === 'expireLease') && cap !== undefined && current.tokensUsed >= cap) {
      end = { ...end, event: 'fail', reason: `${end.reason ?? end.outcome}; incident_token_cap exhausted: ${current.tokensUsed} of ${cap} tokens used` };
    }
    const t = transitionPhase(phase.state, end.event, {
      attemptsUsed: phase.attemptsUsed,
      maxAttempts: phase.maxAttempts,
      abandonments: phase.abandonments,
      maxAbandonments: phase.maxAbandonments,
    });
    if (!t.ok) throw new DomainError('INVALID_TRANSITION', t.reason, { from: phase.state, event: end.event });
    // A lease handed back uncharged (shutdown, a provider that refused or failed, a lost push)
    // or left to expire (a crashed or cut-off executor) was no attempt of the model: its attempt
    // is given back (CONTRACT.md section 3). Expiries are counted apart, as abandonments.
    const refund = end.event === 'release' || end.event === 'expireLease';
    const abandoned = end.event === 'expireLease' && t.to === 'FAILED' && phase.abandonments + 1 >= phase.maxAbandonments;
    if (refund) {
      end = {
        ...end,
        set: { ...end.set, attemptsUsed: Math.max(0, phase.attemptsUsed - 1), ...(end.event === 'expireLease' ? { abandonments: phase.abandonments + 1 } : {}) },
        ...(abandoned ? { reason: `abandoned: the lease expired ${phase.abandonments + 1} times (cap ${phase.maxAbandonments}); ${end.reason ?? 'executor gone'}` } : {}),
      };
    }
    const exhausted = end.event === 'failAttempt' ? t.to === 'FAILED' : false;
    const reason = end.reason ?? null;
    const ok = await this.phases.transition(
      ctx.em,
      phase.id,
      phase.state,
      t.to,
      { leaseToken: phase.leaseToken },
      {
        ...end.set,
        clearLease: true,
        ...(reason ? { lastFailureReason: exhausted ? `${reason} (attempts exhausted: ${phase.attemptsUsed}/${phase.maxAttempts})` : reason } : {}),
      },
    );
    if (!ok) throw new DomainError('STALE_STATE', 'the phase changed concurrently');
    await this.budgets.releasePhase(ctx.em, phase.runId, phase.phaseId);
    if (t.to === 'COMPLETE') await this.issues.phaseCompleted(ctx.em, { ...phase, state: t.to });
    const processIssue = PROCESS_ISSUES[end.outcome];
    if (processIssue) {
      await this.issues.record(
        ctx.em,
        ctx.run,
        phase,
        { issue_key: processIssue.key, severity: 'minor', category: processIssue.category, source: processIssue.source, description: (reason ?? end.outcome).slice(0, 5000) },
        processIssue.source,
        { backlog: false },
      );
    }
    await this.phases.recordAttempt(ctx.em, {
      runId: phase.runId,
      phaseId: phase.phaseId,
      attempt: phase.claimsCount,
      outcome: end.outcome,
      reason,
      feedback: end.feedback ?? null,
      editsHash: end.editsHash ?? null,
      executorId: phase.leaseOwner,
      commitSha: end.commitSha ?? null,
    });
    await this.events.append(ctx.em, [
      {
        runId: phase.runId,
        phaseId: phase.phaseId,
        type: 'phase_state',
        payload: {
          from: phase.state,
          to: t.to,
          event: end.event,
          attempt: phase.claimsCount,
          outcome: end.outcome,
          ...(reason ? { reason } : {}),
          ...(end.event === 'expireLease' ? { abandonments: phase.abandonments + 1, max_abandonments: phase.maxAbandonments, attempt_charged: false } : {}),
        },
      },
    ]);
    return t.to;
  }

  /** Adds reported usage to the phase and run atomically; crossing a run cap ends the run. */
  private async recordUsage(ctx: WriteContext, usage: UsageReport, role: string): Promise<void> {
    const tokens = usage.prompt_tokens + usage.completion_tokens;
    const cost = usage.cost_usd ?? 0;
    if (usage.reservation_id) await this.budgets.settle(ctx.em, ctx.run.runId, usage.reservation_id);
    if (tokens === 0 && cost === 0) return;
    // A retried report (same report_id) after a lost response must not count twice.
    if (usage.report_id && !(await this.budgets.claimUsageReport(ctx.em, usage.report_id, ctx.run.runId, ctx.phase.phaseId, tokens, cost))) return;
    await this.phases.addUsage(ctx.em, ctx.phase.id, tokens);
    await this.runs.addUsage(ctx.em, ctx.run.runId, tokens, cost);
    await this.events.append(ctx.em, [
      { runId: ctx.run.runId, phaseId: ctx.phase.phaseId, type: 'llm_usage', payload: { role, ...usage, tokens } },
    ]);
  }

}
