import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { DomainError, LEASED_PHASE_STATES, type LlmCallRecord, type PhaseState, type PhaseWriteResponse } from '@app/contracts';
import { type AttemptReport, type PhaseEvent, decideAttemptEnd, isRunTerminal, transitionPhase, usageCapCrossed } from '@app/domain';
import type { PhaseEntity, RunEntity } from '../entities/index.js';
import { BudgetRepository, EventRepository, PhaseRepository, type PhaseTransitionSet, RunRepository, type TierStateRow } from '../repositories/index.js';
import type { RecordAnswer } from './idempotency.service.js';
import { msBetween } from './clock.js';
import { IssueService } from './issue.service.js';
import { MetricsService } from './metrics.service.js';
import { CLAIMABLE_CHANNEL, ProgressService } from './progress.service.js';

/** A fenced write's context: the run row is locked for the whole transaction. */
export interface WriteContext {
  em: EntityManager;
  run: RunEntity;
  phase: PhaseEntity;
  /** Work to do once the transaction has committed (metrics); without it, done at once. */
  onCommit?: (() => void)[];
  /** Tokens this write has added to the phase so far (`phase` was read before). */
  tokensAdded?: number;
}

/** Runs `fn` when the write's transaction commits (at once when the context keeps no list). */
export function afterCommit(ctx: WriteContext, fn: () => void): void {
  if (ctx.onCommit) ctx.onCommit.push(fn);
  else fn();
}

/**
 * The one state change a phase write makes:
 * - `move`: a transition that keeps the lease (or needs none);
 * - `endAttempt`: the attempt ends (decided by `decideAttemptEnd`), its lease is released and
 *   the attempt recorded with its feedback;
 * - `keep`: the state stays (the write only recorded something), with optional columns.
 */
export type PhaseCommand =
  | { kind: 'move'; event: PhaseEvent; set?: PhaseTransitionSet }
  | { kind: 'endAttempt'; report: AttemptReport; feedback?: string | null; editsHash?: string | null; commitSha?: string | null; set?: PhaseTransitionSet }
  | { kind: 'keep'; set?: PhaseTransitionSet };

/** Options of a fenced write. */
export interface FencedWriteOptions {
  /** Operators may write without a lease token; an executor's token is still checked. */
  optionalFence?: boolean;
  recordAnswer?: RecordAnswer;
}

/**
 * Applies phase commands inside the fenced transaction: lock the run row, find the phase,
 * check the lease, apply, settle the run, end it on a crossed usage cap, notify. Every state
 * write is a guarded `UPDATE ... WHERE state = :from AND lease_token = :t` whose row count is
 * checked; a stale or missing token is 409 LEASE_LOST and rolls the transaction back.
 */
@Injectable()
export class PhaseWriteService {
  constructor(
    private readonly ds: DataSource,
    private readonly runs: RunRepository,
    private readonly phases: PhaseRepository,
    private readonly events: EventRepository,
    private readonly budgets: BudgetRepository,
    private readonly progress: ProgressService,
    private readonly issues: IssueService,
    private readonly metrics: MetricsService,
  ) {}

  /** Every executor write: `write` records what the route reports and returns the state the phase is in. */
  async fencedWrite(
    runId: string,
    phaseId: string,
    token: string | undefined,
    body: { run_id?: string; phase_id?: string; llm_calls?: LlmCallRecord[] },
    write: (ctx: WriteContext) => Promise<PhaseState>,
    opts: FencedWriteOptions = {},
  ): Promise<PhaseWriteResponse> {
    if ((body.run_id && body.run_id !== runId) || (body.phase_id && body.phase_id !== phaseId)) {
      throw new DomainError('ID_MISMATCH', 'run_id/phase_id in the body differ from the path');
    }
    const onCommit: (() => void)[] = [];
    const answer = await this.ds.transaction(async (em) => {
      const run = await this.runs.lock(em, runId);
      if (!run) throw new DomainError('NOT_FOUND', `run ${runId} not found`);
      const phase = await this.phases.findForWrite(em, runId, phaseId);
      if (!phase) throw new DomainError('NOT_FOUND', `phase ${phaseId} of run ${runId} not found`);
      if (token !== undefined || (phase.leaseToken && !opts.optionalFence)) {
        const now = await this.runs.now(em);
        const live = phase.leaseToken !== null && phase.leaseToken === token && phase.leaseExpiresAt !== null && new Date(phase.leaseExpiresAt) > now;
        if (!live) throw new DomainError('LEASE_LOST', 'the lease expired or belongs to another executor', { phase_state: phase.state });
      }
      const state = await write({ em, run, phase, onCommit });
      const calls = body.llm_calls ?? [];
      if (calls.length) {
        await this.events.append(em, calls.map((c) => ({ runId, phaseId, type: 'llm_call', payload: { ...c, attempt: phase.claimsCount } })));
      }
      // The write may have ended the run (a budget): derive from the row as it is now.
      const current = await this.runs.refreshAfterWrite(em, run);
      // Claimers wake on commit (the NOTIFY rides on the settle's read).
      const settled = await this.progress.settleWithSnapshot(em, current, undefined, { channel: CLAIMABLE_CHANNEL, payload: runId });
      let runState = settled.state;
      // Caps are crossed only by usage: a write that reported none cannot cross one.
      const usageAdded = current.tokensUsed !== run.tokensUsed || current.costUsedUsd !== run.costUsedUsd;
      const endedOnCap = usageAdded && (await this.endOnCrossedUsageCap(em, { ...current, state: runState }, settled.tiers));
      if (endedOnCap) runState = 'DONE_FAILED_BUDGET_EXHAUSTED';
      // The settle's snapshot is the phase as it is now, unless ending the run moved it since.
      const fresh = (!endedOnCap && settled.phases.find((p) => p.id === phase.id)) || (await this.phases.find(em, runId, phaseId))!;
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
    for (const fn of onCommit) fn();
    return answer;
  }

  /** Applies one phase command in the caller's fenced transaction; returns the phase's new state. */
  async apply(ctx: WriteContext, command: PhaseCommand): Promise<PhaseState> {
    switch (command.kind) {
      case 'move':
        return this.move(ctx, command.event, command.set);
      case 'endAttempt':
        return this.endAttempt(ctx, command);
      case 'keep':
        if (!(await this.phases.transition(ctx.em, ctx.phase.id, ctx.phase.state, ctx.phase.state, { leaseToken: ctx.phase.leaseToken }, command.set))) throw stale();
        return ctx.phase.state;
    }
  }

  /** Ends runs that crossed a usage cap (run tokens, run cost, a tier's tokens); true when it ended one. */
  private async endOnCrossedUsageCap(em: EntityManager, run: RunEntity, tierRows: readonly TierStateRow[]): Promise<boolean> {
    if (isRunTerminal(run.state)) return false;
    // The tier rows keep their phases' token sums: no phase row is read after every write.
    const tiers = tierRows.flatMap((t) => {
      const budget = run.strategy.tiers[t.tierId];
      return budget ? [{ tierId: t.tierId, tokenCap: budget.tokenCap, tokensUsed: t.tokensUsed }] : [];
    });
    const crossed = usageCapCrossed(run, tiers);
    return crossed !== null && (await this.progress.exhaustBudget(em, run, crossed));
  }

  private async move(ctx: WriteContext, event: PhaseEvent, set: PhaseTransitionSet = {}): Promise<PhaseState> {
    const { phase } = ctx;
    const t = transitionPhase(phase.state, event, { attemptsUsed: phase.attemptsUsed, maxAttempts: phase.maxAttempts });
    if (!t.ok) throw new DomainError('INVALID_TRANSITION', t.reason, { from: phase.state, event });
    const clearLease = !LEASED_PHASE_STATES.includes(t.to);
    if (!(await this.phases.transition(ctx.em, phase.id, phase.state, t.to, { leaseToken: phase.leaseToken }, { ...set, clearLease }))) throw stale();
    await this.events.append(ctx.em, [{ runId: phase.runId, phaseId: phase.phaseId, type: 'phase_state', payload: { from: phase.state, to: t.to, event } }]);
    return t.to;
  }

  private async endAttempt(ctx: WriteContext, command: Extract<PhaseCommand, { kind: 'endAttempt' }>): Promise<PhaseState> {
    const { phase } = ctx;
    // Usage reported by this very write counts against the incident cap.
    const tokensUsed = phase.tokensUsed + (ctx.tokensAdded ?? 0);
    const decision = decideAttemptEnd(
      {
        state: phase.state,
        attemptsUsed: phase.attemptsUsed,
        maxAttempts: phase.maxAttempts,
        abandonments: phase.abandonments,
        maxAbandonments: phase.maxAbandonments,
        claimsCount: phase.claimsCount,
        tokensUsed,
        incidentTokenCap: ctx.run.strategy.phases[phase.phaseId]?.incident_token_cap,
      },
      command.report,
    );
    if (!decision.ok) throw new DomainError('INVALID_TRANSITION', decision.reason, { from: phase.state, event: command.report.event });
    const ok = await this.phases.transition(ctx.em, phase.id, phase.state, decision.to, { leaseToken: phase.leaseToken }, { ...command.set, ...decision.patch, clearLease: true });
    if (!ok) throw stale();
    await this.budgets.releasePhase(ctx.em, phase.runId, phase.phaseId);
    if (decision.to === 'COMPLETE') await this.issues.phaseCompleted(ctx.em, { ...phase, state: decision.to });
    if (decision.processIssue) await this.issues.record(ctx.em, ctx.run, phase, decision.processIssue, decision.processIssue.source, { backlog: false });
    await this.phases.recordAttempt(ctx.em, {
      runId: phase.runId,
      phaseId: phase.phaseId,
      attempt: phase.claimsCount,
      outcome: command.report.outcome,
      reason: decision.reason,
      feedback: command.feedback ?? null,
      editsHash: command.editsHash ?? null,
      executorId: phase.leaseOwner,
      commitSha: command.commitSha ?? null,
    });
    await this.events.append(ctx.em, [{ runId: phase.runId, phaseId: phase.phaseId, ...decision.event }]);
    const claimedAt = await this.events.lastClaimedAt(ctx.em, phase.runId, phase.phaseId);
    if (claimedAt) {
      const seconds = Math.max(0, msBetween(claimedAt, await this.runs.now(ctx.em)) / 1000);
      afterCommit(ctx, () => this.metrics.phaseDuration.observe({ outcome: command.report.outcome }, seconds));
    }
    return decision.to;
  }
}

function stale(): DomainError {
  return new DomainError('STALE_STATE', 'the phase changed concurrently');
}
