import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { type BudgetLeft, DomainError, type ReserveBudgetRequest, type ReserveBudgetResponse, type UsageReport } from '@app/contracts';
import { type BudgetExhaustion, ciRunExhaustion, isRunClaimable, reservationShortfall, runBudgetExhaustion, wallTimeExhaustion } from '@app/domain';
import type { PhaseEntity, RunEntity } from '../entities/index.js';
import { BudgetRepository, EventRepository, PhaseRepository, type PhaseStateRow, RunRepository, TierRepository, type TierStateRow } from '../repositories/index.js';
import { msBetween } from './clock.js';
import type { RecordAnswer } from './idempotency.service.js';
import { MetricsService } from './metrics.service.js';
import { PhaseWriteService, type WriteContext, afterCommit } from './phase-write.service.js';
import { ProgressService } from './progress.service.js';

/** Run states in which phases may be claimed (and budgets still run). */
export const CLAIMABLE_RUN_STATES = ['RUN_CREATED', 'PHASE_QUEUEING', 'PHASE_EXECUTION', 'GATE', 'CI_RUNNING', 'SNAPSHOT_CREATED'] as const;

/**
 * Budgets: what is left, reservations of LLM calls, reported usage, CI runs and wall time.
 * The checks are domain functions (`libs/domain/src/budget.ts`) that name the cap they
 * crossed; this service reads the figures and applies the answer.
 */
@Injectable()
export class BudgetService {
  constructor(
    private readonly ds: DataSource,
    private readonly runs: RunRepository,
    private readonly tiers: TierRepository,
    private readonly phases: PhaseRepository,
    private readonly events: EventRepository,
    private readonly budgets: BudgetRepository,
    private readonly progress: ProgressService,
    private readonly writes: PhaseWriteService,
    private readonly metrics: MetricsService,
  ) {}

  /**
   * What is left of every budget for a phase: caps minus usage minus open reservations, so
   * two calls can never both be admitted into the same remaining budget.
   */
  async budgetLeft(em: EntityManager, run: RunEntity, phase: PhaseEntity, tierRows?: readonly TierStateRow[]): Promise<BudgetLeft> {
    const strategy = run.strategy.phases[phase.phaseId];
    const tierBudget = run.strategy.tiers[phase.tierId];
    // The tier row keeps the sum of its phases' tokens (PhaseRepository.addUsage), so no phase is read.
    const tier = (tierRows ?? (await this.tiers.listStates(em, run.runId))).find((t) => t.tierId === phase.tierId);
    const tierTokens = tier?.tokensUsed ?? 0;
    const reserved = await this.budgets.reserved(em, run.runId, phase.phaseId, phase.tierId);
    const now = await this.runs.now(em);
    const elapsed = run.startedAt ? msBetween(run.startedAt, now) / 60_000 : 0;
    // `phase` was read in this transaction, after any usage it reports (callers read it fresh).
    const fresh = phase;
    return {
      tokens: Math.max(0, run.tokenCap - run.tokensUsed - reserved.run),
      cost_usd: run.costCapUsd === null ? null : Math.max(0, run.costCapUsd - run.costUsedUsd - reserved.cost),
      phase_tokens: Math.max(0, strategy.incident_token_cap - fresh.tokensUsed - reserved.phase),
      tier_tokens: Math.max(0, (tierBudget?.tokenCap ?? Number.MAX_SAFE_INTEGER) - tierTokens - reserved.tier),
      minutes: Math.max(0, run.maxDurationMinutes - elapsed),
      ci_runs: Math.max(0, (tierBudget?.ciRunCap ?? 0) - (tier?.ciRunsUsed ?? 0)),
    };
  }

  /** The run budget a claim would cross, from the run and its phases as the claim read them. */
  async claimExhaustion(em: EntityManager, run: RunEntity, phases: readonly PhaseStateRow[]): Promise<BudgetExhaustion | null> {
    const now = await this.runs.now(em);
    return runBudgetExhaustion({
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
  }

  /**
   * `POST .../reserve_budget`: admits an LLM call only if its worst case fits what is left
   * of the run, tier and phase budgets (after other open reservations). 409 BUDGET_EXHAUSTED
   * otherwise; nothing is reserved then.
   */
  async reserveBudget(runId: string, phaseId: string, body: ReserveBudgetRequest, recordAnswer?: RecordAnswer): Promise<ReserveBudgetResponse> {
    let result: ReserveBudgetResponse | undefined;
    let refusal: DomainError | undefined;
    await this.writes.fencedWrite(runId, phaseId, body.lease_token, {}, async (ctx) => {
      const cost = body.cost_usd ?? 0;
      const short = reservationShortfall({ tokens: body.tokens, costUsd: cost }, await this.budgetLeft(ctx.em, ctx.run, ctx.phase));
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

  /** Adds reported usage to the phase and run atomically (the fenced write then checks the caps). */
  async recordUsage(ctx: WriteContext, usage: UsageReport, role: string): Promise<void> {
    const tokens = usage.prompt_tokens + usage.completion_tokens;
    const cost = usage.cost_usd ?? 0;
    if (usage.reservation_id) await this.budgets.settle(ctx.em, ctx.run.runId, usage.reservation_id);
    if (tokens === 0 && cost === 0) return;
    // A retried report (same report_id) after a lost response must not count twice.
    if (usage.report_id && !(await this.budgets.claimUsageReport(ctx.em, usage.report_id, ctx.run.runId, ctx.phase.phaseId, tokens, cost))) return;
    await this.phases.addUsage(ctx.em, ctx.phase.id, tokens);
    ctx.tokensAdded = (ctx.tokensAdded ?? 0) + tokens;
    await this.runs.addUsage(ctx.em, ctx.run.runId, tokens, cost);
    await this.events.append(ctx.em, [{ runId: ctx.run.runId, phaseId: ctx.phase.phaseId, type: 'llm_usage', payload: { role, ...usage, tokens } }]);
    afterCommit(ctx, () =>
      this.metrics.recordLlmUsage({ provider: usage.provider, model: usage.model, promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, costUsd: cost }),
    );
  }

  /**
   * Counts a CI run against the run and the phase's tier; when the tier's CI-run cap is
   * already used up the run ends instead (and false is returned).
   */
  async chargeCiRun(ctx: WriteContext): Promise<boolean> {
    const { em, run, phase } = ctx;
    const tier = (await this.tiers.listStates(em, run.runId)).find((t) => t.tierId === phase.tierId);
    const exhausted = tier ? ciRunExhaustion({ tierId: tier.tierId, ciRunsUsed: tier.ciRunsUsed, ciRunCap: run.strategy.tiers[phase.tierId]?.ciRunCap }) : null;
    if (exhausted) {
      await this.progress.exhaustBudget(em, run, exhausted);
      return false;
    }
    await this.runs.addCiRun(em, run.runId);
    await this.tiers.addCiRun(em, run.runId, phase.tierId);
    return true;
  }

  /** Ends runs whose wall-time budget has passed, even if nobody claims (the sweeper calls this). */
  async endOverdueRuns(): Promise<number> {
    let ended = 0;
    for (const runId of await this.runs.findOverdue(this.ds.manager, CLAIMABLE_RUN_STATES)) {
      ended += await this.ds.transaction(async (em) => {
        const run = await this.runs.lock(em, runId);
        if (!run || !isRunClaimable(run.state) || !run.startedAt) return 0;
        const exhausted = wallTimeExhaustion({ elapsedMinutes: msBetween(run.startedAt, await this.runs.now(em)) / 60_000, maxDurationMinutes: run.maxDurationMinutes });
        if (!exhausted) return 0;
        return (await this.progress.exhaustBudget(em, run, exhausted)) ? 1 : 0;
      });
    }
    return ended;
  }
}
