import type { ClaimResponse, LlmCallRecord, UsageReport } from '@app/contracts';
import { type ForcedToolCallRequest, type ForcedToolCallResult, LlmError, costUsd, estimateTokens, priceFor, worstCaseCostUsd } from '@app/llm';
import type { Logger } from 'pino';
import { type ModelChoice, type ModelRouting, type RoutedRole, fallbackFor } from '../models.js';
import { SupervisorError } from '../supervisor-client.js';
import type { AttemptLlm, AttemptSupervisor, Clock } from './ports.js';

/** The supervisor refused to reserve a call's worst case: the call is not made. */
export class BudgetRefusedError extends Error {
  readonly code = 'BUDGET_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'BudgetRefusedError';
  }
}

/** A forced tool call without its model: the metered LLM picks it (or the fallback). */
export type MeteredRequest = Omit<ForcedToolCallRequest, 'provider' | 'model'>;

/** What the next report owes the supervisor: the LLM calls made since the last report. */
export type DrainedCalls = { llm_calls?: LlmCallRecord[] };

/**
 * The LLM as one attempt may use it: every call is admitted only under a budget reservation
 * made for the claim's lease, is recorded for the audit trail whatever its outcome, and is
 * priced for usage accounting. Reports take the recorded calls with `drainCalls()`, so each
 * call is reported exactly once.
 */
export class MeteredLlm {
  private readonly records: LlmCallRecord[] = [];

  constructor(
    private readonly deps: { llm: AttemptLlm; supervisor: Pick<AttemptSupervisor, 'reserveBudget'>; routing: ModelRouting; clock: Clock; log: Logger },
    private readonly claim: ClaimResponse,
  ) {}

  /**
   * One forced tool call, admitted only if the supervisor can reserve its worst case
   * (prompt estimate + max_tokens, priced for the model or its fallback, whichever costs
   * more) from what is left of the run, tier and phase budgets. When the provider still
   * fails after the SDK's own retries (a retryable LlmError), the call is made once more on
   * the routing's fallback, under a reservation of its own.
   */
  async call(role: RoutedRole, choice: ModelChoice, req: MeteredRequest): Promise<{ result: ForcedToolCallResult; reservationId: string }> {
    const { llm, routing, log } = this.deps;
    const reservationId = await this.reserve(role, choice, req);
    try {
      return { result: await this.recordedCall(role, choice, req), reservationId };
    } catch (err) {
      const fallback = err instanceof LlmError && err.retryable && !req.signal?.aborted ? fallbackFor(routing, role, choice) : undefined;
      if (!fallback || !llm.hasProvider(fallback.provider)) throw err;
      log.warn({ role, failed: choice, code: (err as LlmError).code, fallback }, 'provider still failing after retries; calling the fallback once');
      const fallbackReservation = await this.reserve(role, fallback, req);
      return { result: await this.recordedCall(role, fallback, req), reservationId: fallbackReservation };
    }
  }

  /**
   * The usage a phase report carries for the `role` call of this attempt: keyed
   * `<run>:<phase>:<attempt>:<role>`, so a report retried after a lost response does not count
   * it twice, and settling the call's reservation.
   */
  attemptUsage(r: ForcedToolCallResult, claim: Pick<ClaimResponse, 'run_id' | 'phase_id' | 'attempt'>, role: RoutedRole, reservationId: string): UsageReport {
    return { ...this.usageOf(r, `${claim.run_id}:${claim.phase_id}:${claim.attempt}:${role}`), reservation_id: reservationId };
  }

  /** The usage of one call's result, priced from the routing's prices (unknown prices count as 0). */
  usageOf(r: ForcedToolCallResult, reportId?: string): UsageReport {
    const price = priceFor(r.model, this.deps.routing.prices);
    return {
      ...(reportId ? { report_id: reportId } : {}),
      provider: r.provider,
      model: r.model,
      prompt_tokens: r.usage.promptTokens,
      completion_tokens: r.usage.completionTokens,
      cached_tokens: r.usage.cachedTokens,
      cost_usd: price ? costUsd(price, r.usage) : 0,
      calls: 1,
    };
  }

  /** Takes the calls made since the last report, for the next report's audit trail. */
  drainCalls(): DrainedCalls {
    const calls = this.records.splice(0);
    return calls.length ? { llm_calls: calls } : {};
  }

  /**
   * The LLM calls made since the last report, as a usage report of their own: what an attempt
   * handed back on shutdown still owes the budgets. Empty when every call was reported.
   */
  unreportedUsage(): { usage?: UsageReport; llm_calls?: LlmCallRecord[] } {
    const records = this.drainCalls().llm_calls;
    if (!records) return {};
    const sum = (f: (r: LlmCallRecord) => number) => records.reduce((n, r) => n + f(r), 0);
    const { run_id: runId, phase_id: phaseId, attempt } = this.claim;
    return {
      usage: {
        prompt_tokens: sum((r) => r.prompt_tokens),
        completion_tokens: sum((r) => r.completion_tokens),
        cached_tokens: sum((r) => r.cached_tokens),
        cost_usd: sum((r) => r.cost_usd),
        calls: records.length,
        report_id: `${runId}:${phaseId}:${attempt}:unreported`,
      },
      llm_calls: records,
    };
  }

  /** The model of the last call not yet reported (to name it in a provider problem). */
  lastUnreportedModel(): string | undefined {
    return this.records.at(-1)?.model;
  }

  /** One call, recorded for the audit trail whatever its outcome. */
  private async recordedCall(role: RoutedRole, choice: ModelChoice, req: MeteredRequest): Promise<ForcedToolCallResult> {
    const started = this.deps.clock.now();
    try {
      const r = await this.deps.llm.callTool({ ...req, ...choice });
      const u = this.usageOf(r);
      this.records.push({
        role,
        provider: r.provider,
        model: r.model,
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        cached_tokens: u.cached_tokens ?? 0,
        cost_usd: u.cost_usd ?? 0,
        duration_ms: r.durationMs,
        outcome: r.truncated ? 'truncated' : r.toolInput === undefined ? 'malformed' : 'tool_call',
        ...(r.malformedReason ? { detail: r.malformedReason.slice(0, 500) } : {}),
      });
      return r;
    } catch (err) {
      this.records.push({
        role,
        provider: choice.provider,
        model: choice.model,
        prompt_tokens: 0,
        completion_tokens: 0,
        cached_tokens: 0,
        cost_usd: 0,
        duration_ms: this.deps.clock.now() - started,
        outcome: 'error',
        detail: (err instanceof LlmError ? `${err.code}: ${err.message}` : (err as Error).message).slice(0, 500),
      });
      throw err;
    }
  }

  private async reserve(role: RoutedRole, choice: ModelChoice, req: MeteredRequest): Promise<string> {
    const promptTokens = estimateTokens(req.system + (req.cacheablePrefix ?? '') + req.prompt);
    try {
      const r = await this.deps.supervisor.reserveBudget(this.claim.run_id, this.claim.phase_id, {
        lease_token: this.claim.lease_token,
        tokens: promptTokens + req.maxTokens,
        cost_usd: this.worstCaseCost(role, choice, promptTokens, req.maxTokens),
        purpose: role === 'secondary_auditor' ? 'auditor' : role,
      });
      return r.reservation_id;
    } catch (err) {
      if (err instanceof SupervisorError && err.code === 'BUDGET_EXHAUSTED') throw new BudgetRefusedError(`${role} call (${choice.model}) not admitted: ${err.message}`);
      throw err;
    }
  }

  /** Upper bound in USD of a call, covering its fallback too (unknown prices count as 0). */
  private worstCaseCost(role: RoutedRole, choice: ModelChoice, promptTokens: number, maxTokens: number): number {
    const { routing } = this.deps;
    const fallback = fallbackFor(routing, role, choice);
    return Math.max(
      ...[choice, ...(fallback ? [fallback] : [])].map((c) => {
        const price = priceFor(c.model, routing.prices);
        return price ? worstCaseCostUsd(price, promptTokens, maxTokens) : 0;
      }),
    );
  }
}
