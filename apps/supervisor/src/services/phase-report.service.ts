import { Injectable } from '@nestjs/common';
import {
  type AuditorRequest,
  type AuditorResultRequest,
  type BuilderResultRequest,
  DomainError,
  type PhaseState,
  type PhaseWriteResponse,
  type RecordIssueRequest,
  type UpdateStatusRequest,
} from '@app/contracts';
import { eventForRequestedPhaseState, isRunTerminal } from '@app/domain';
import { EventRepository, PhaseRepository, type PhaseTransitionSet } from '../repositories/index.js';
import { BudgetService } from './budget.service.js';
import type { RecordAnswer } from './idempotency.service.js';
import { IssueService } from './issue.service.js';
import { type PhaseCommand, PhaseWriteService } from './phase-write.service.js';
import { ProgressService } from './progress.service.js';

/**
 * The phase result routes (builder, auditor, status, issues) and the operator's retry. Each
 * records what was reported and turns it into one `PhaseCommand`, applied inside the fenced
 * transaction by `PhaseWriteService`.
 */
@Injectable()
export class PhaseReportService {
  constructor(
    private readonly writes: PhaseWriteService,
    private readonly budgets: BudgetService,
    private readonly issues: IssueService,
    private readonly progress: ProgressService,
    private readonly phases: PhaseRepository,
    private readonly events: EventRepository,
  ) {}

  /** `POST .../builder_result`. */
  async builderResult(runId: string, phaseId: string, body: BuilderResultRequest): Promise<PhaseWriteResponse> {
    return this.writes.fencedWrite(runId, phaseId, body.lease_token, body, async (ctx) => {
      await this.budgets.recordUsage(ctx, body.usage ?? { prompt_tokens: 0, completion_tokens: body.tokens_used }, 'builder');
      await this.phases.addCounters(ctx.em, ctx.phase.id, { builder: 1 });
      await this.issues.recordAll(ctx.em, ctx.run, ctx.phase, body.suggested_issues, 'builder');
      const state = await this.writes.apply(ctx, builderCommand(body));
      if (!body.start_ci || body.status !== 'success' || body.commit_sha || state !== ctx.phase.state) return state;
      // The CI start the executor would send next, in this transaction (update_status's rules).
      const event = eventForRequestedPhaseState(state, 'CI_RUNNING');
      if (!event) throw illegal(state, 'CI_RUNNING');
      if (!(await this.budgets.chargeCiRun(ctx))) return 'FAILED';
      return this.writes.apply(ctx, { kind: 'move', event });
    });
  }

  /** `POST .../auditor_request`: the phase moves to GATE. */
  async auditorRequest(runId: string, phaseId: string, body: AuditorRequest): Promise<PhaseWriteResponse> {
    return this.writes.fencedWrite(runId, phaseId, body.lease_token, body, async (ctx) => this.writes.apply(ctx, { kind: 'move', event: 'requestAudit' }));
  }

  /** `POST .../auditor_result`: approve completes, revise retries, escalate fails the phase. */
  async auditorResult(runId: string, phaseId: string, body: AuditorResultRequest): Promise<PhaseWriteResponse> {
    const response = await this.writes.fencedWrite(runId, phaseId, body.lease_token, body, async (ctx) => {
      await this.budgets.recordUsage(ctx, body.usage ?? { prompt_tokens: 0, completion_tokens: body.tokens_used }, 'auditor');
      await this.phases.addCounters(ctx.em, ctx.phase.id, { auditor: 1 });
      await this.issues.recordAll(ctx.em, ctx.run, ctx.phase, body.issues_found, 'auditor');
      return this.writes.apply(ctx, auditorCommand(body));
    });
    return { ...response, recommendation: body.recommendation };
  }

  /** `POST .../update_status`: any state change, checked against the phase machine. */
  async updateStatus(runId: string, phaseId: string, body: UpdateStatusRequest): Promise<PhaseWriteResponse> {
    return this.writes.fencedWrite(runId, phaseId, body.lease_token, body, async (ctx) => {
      const event = eventForRequestedPhaseState(ctx.phase.state, body.state);
      if (!event) throw illegal(ctx.phase.state, body.state);
      if (body.usage) await this.budgets.recordUsage(ctx, body.usage, 'executor');
      const set: PhaseTransitionSet = {
        ...(body.quality_level ? { qualityLevel: body.quality_level } : {}),
        ...(body.builder_attempts !== undefined ? { builderAttempts: body.builder_attempts } : {}),
        ...(body.minor_issues_count !== undefined ? { minorIssuesCount: body.minor_issues_count } : {}),
        ...(body.major_issues_count !== undefined ? { majorIssuesCount: body.major_issues_count } : {}),
        ...(body.commit_sha ? { commitSha: body.commit_sha } : {}),
      };
      // A tier whose CI runs are used up ends the run instead of starting one more.
      if (event === 'startCi' && !(await this.budgets.chargeCiRun(ctx))) return 'FAILED';
      if (event === 'complete' || event === 'failAttempt' || event === 'fail' || event === 'release') {
        const outcome = event === 'complete' ? 'complete' : event === 'release' ? 'released' : body.ci_passed === false ? 'ci_failed' : 'failed';
        return this.writes.apply(ctx, {
          kind: 'endAttempt',
          report: { event, outcome, reason: body.failure_reason ?? (event === 'complete' ? null : outcome) },
          feedback: body.feedback,
          editsHash: body.edits_hash,
          commitSha: body.commit_sha,
          set,
        });
      }
      return this.writes.apply(ctx, { kind: 'move', event, set });
    });
  }

  /** `POST .../record_issue`: fenced when a lease token is given (an executor), open to operators otherwise. */
  async recordIssue(runId: string, phaseId: string, body: RecordIssueRequest, recordAnswer?: RecordAnswer): Promise<PhaseWriteResponse> {
    return this.writes.fencedWrite(
      runId,
      phaseId,
      body.lease_token,
      {},
      async (ctx) => {
        const { lease_token: _t, task_category: _c, complexity: _x, ...issue } = body;
        await this.issues.record(ctx.em, ctx.run, ctx.phase, issue, body.source);
        return ctx.phase.state;
      },
      { optionalFence: true, recordAnswer },
    );
  }

  /**
   * Operator retry of a FAILED phase: back to QUEUED with fresh attempts. In a run that ended
   * DONE_FAILED_REQUIRES_HUMAN_REVIEW this reopens the run (CONTRACT.md section 6); a run that
   * ended any other way (success, budget, policy, environment, cancel) stays ended: 409.
   */
  async retry(runId: string, phaseId: string): Promise<PhaseWriteResponse> {
    return this.writes.fencedWrite(runId, phaseId, undefined, {}, async (ctx) => {
      const { run, phase } = ctx;
      if (phase.state !== 'FAILED') throw illegal(phase.state, 'QUEUED');
      const reopens = isRunTerminal(run.state);
      // Refuses (409) a run that ended any other way, before anything is written.
      const requeued = reopens ? await this.progress.reopenRun(ctx.em, run, phaseId) : [];
      const to = await this.writes.apply(ctx, { kind: 'move', event: 'retry', set: { attemptsUsed: 0, abandonments: 0, lastFailureReason: null, failureCap: null } });
      await this.events.append(ctx.em, [
        {
          runId,
          phaseId,
          type: 'phase_retry',
          payload: {
            attempts_used_before: phase.attemptsUsed,
            max_attempts: phase.maxAttempts,
            abandonments_before: phase.abandonments,
            reopened_run: reopens,
            ...(reopens ? { run_state_before: run.state, requeued_phases: requeued } : {}),
          },
        },
      ]);
      return to;
    });
  }
}

/** What a builder result does to the phase: end the attempt, ask for an audit, or only record details. */
function builderCommand(body: BuilderResultRequest): PhaseCommand {
  const details: PhaseTransitionSet = { filesChanged: body.files_changed, linesAdded: body.lines_added, linesRemoved: body.lines_removed };
  if (body.status === 'failed') {
    return {
      kind: 'endAttempt',
      report: { event: 'failAttempt', outcome: 'builder_failed', reason: body.failure_reason ?? body.notes ?? 'builder failed' },
      feedback: body.feedback,
      editsHash: body.edits_hash,
      set: details,
    };
  }
  if (body.status === 'success' && body.commit_sha) {
    return { kind: 'endAttempt', report: { event: 'complete', outcome: 'complete' }, commitSha: body.commit_sha, set: { ...details, commitSha: body.commit_sha } };
  }
  if (body.status === 'needs_review') return { kind: 'move', event: 'requestAudit', set: details };
  return { kind: 'keep', set: details };
}

/** What an auditor result does: approve completes, revise fails the attempt, escalate fails the phase. */
function auditorCommand(body: AuditorResultRequest): PhaseCommand {
  const quality = body.quality_level ?? null;
  if (body.recommendation === 'approve') {
    return { kind: 'endAttempt', report: { event: 'complete', outcome: 'complete' }, commitSha: body.commit_sha, set: { commitSha: body.commit_sha ?? null, qualityLevel: quality } };
  }
  const reason = body.recommendation === 'revise' ? 'auditor requested changes' : 'auditor escalated to a human';
  return {
    kind: 'endAttempt',
    report: {
      event: body.recommendation === 'revise' ? 'failAttempt' : 'fail',
      outcome: `auditor_${body.recommendation}`,
      reason: body.review_notes ? `${reason}: ${body.review_notes.slice(0, 500)}` : reason,
    },
    feedback: body.feedback,
    editsHash: body.edits_hash,
    set: { qualityLevel: quality },
  };
}

function illegal(from: PhaseState, to: string): DomainError {
  return new DomainError('INVALID_TRANSITION', `phase cannot move from ${from} to ${to}`, { from, to });
}
