import { type ClaimResponse, LIMITS, type PhaseWriteResponse, type SuggestedIssue, type ToolIssue, type UsageReport, failureReason } from '@app/contracts';
import type { Logger } from 'pino';
import { SupervisorError } from '../supervisor-client.js';
import type { BuildResult } from './build.js';
import type { MeteredLlm } from './metered-llm.js';
import type { AttemptSupervisor } from './ports.js';
import type { PublishResult } from './publish.js';
import type { Review, ReviewResult } from './review.js';
import type { SyncResult } from './sync.js';
import type { VerifyResult } from './verify.js';

/** How an attempt ended outside its stages (an error or a stop), as reported on its way out. */
export type AttemptEnding =
  /** Shutdown: the lease goes back with the calls it made. */
  | { kind: 'handed_back' }
  /** The budget refused an LLM call's reservation. */
  | { kind: 'budget_refused'; message: string }
  /** The provider refused or stayed down: handed back uncharged, with the calls it made. */
  | { kind: 'provider_problem'; reason: string }
  /** Anything else: the attempt's failure, with a code and message, never a stack. */
  | { kind: 'attempt_error'; reason: string };

/** Every stage result the supervisor hears about, with what its report needs besides the result. */
export type AttemptReport =
  | { stage: 'sync'; result: Extract<SyncResult, { kind: 'resume' }> }
  /**
   * `planned` is reported once the plan is applied to the working copy; with `startCi` the same
   * report asks the supervisor to start CI (it may refuse: the tier's CI budget is spent).
   */
  | { stage: 'build'; result: BuildResult; startCi?: boolean }
  | { stage: 'verify'; result: VerifyResult; editsHash: string }
  | { stage: 'review'; result: Extract<ReviewResult, { kind: 'blocked' }>; editsHash: string }
  | { stage: 'publish'; result: PublishResult; review: Extract<ReviewResult, { kind: 'approved' }>; integrationBranch: string }
  | { stage: 'end'; ending: AttemptEnding };

function toSuggested(issues: ToolIssue[], source: string): SuggestedIssue[] {
  return issues.map((i) => ({
    issue_key: i.issue_key,
    severity: i.severity,
    category: i.category,
    description: i.description,
    ...(i.location ? { location: i.location } : {}),
    source,
  }));
}

function formatIssues(issues: ToolIssue[]): string {
  return issues.map((i) => `- [${i.severity}] ${i.issue_key} (${i.category})${i.location ? ` at ${i.location}` : ''}: ${i.description}`).join('\n');
}

/**
 * The one place an attempt talks to the supervisor about its phase: maps every stage result
 * (and every way out of an attempt) to exactly one supervisor call, with the LLM calls made
 * since the last report attached. Reports are fenced by the lease token: a stale one changes
 * nothing (CONTRACT.md section 6).
 */
export class AttemptReporter {
  constructor(
    private readonly supervisor: AttemptSupervisor,
    private readonly claim: ClaimResponse,
    private readonly llm: Pick<MeteredLlm, 'drainCalls' | 'unreportedUsage'>,
    private readonly log: Logger,
  ) {}

  /**
   * Sends the one report of `r`. A stage report whose lease is gone throws (LEASE_LOST ends
   * the attempt); an ending's report does not, since the attempt is over either way.
   */
  async report(r: AttemptReport): Promise<PhaseWriteResponse | undefined> {
    if (r.stage !== 'end') return this.send(r);
    try {
      return await this.sendEnding(r.ending);
    } catch (err) {
      if (err instanceof SupervisorError && err.code === 'LEASE_LOST') {
        this.log.warn('lease already lost; nothing to report');
        return undefined;
      }
      throw err;
    }
  }

  private send(r: Exclude<AttemptReport, { stage: 'end' }>): Promise<PhaseWriteResponse> {
    const { supervisor } = this;
    const { run_id: runId, phase_id: phaseId, lease_token: token } = this.claim;
    switch (r.stage) {
      case 'sync':
        return supervisor.updateStatus(runId, phaseId, { lease_token: token, state: 'COMPLETE', commit_sha: r.result.sha });
      case 'build': {
        const b = r.result;
        const tokens = b.usage.prompt_tokens + b.usage.completion_tokens;
        if (b.kind === 'build_failed') {
          return supervisor.builderResult(runId, phaseId, {
            lease_token: token,
            status: 'failed',
            failure_reason: b.reason.slice(0, LIMITS.failureReasonChars),
            feedback: b.feedback.slice(0, LIMITS.feedbackChars),
            tokens_used: tokens,
            usage: b.usage,
            files_changed: [],
            lines_added: 0,
            lines_removed: 0,
            suggested_issues: [],
            ...(b.editsHash ? { edits_hash: b.editsHash } : {}),
            ...this.llm.drainCalls(),
          });
        }
        return supervisor.builderResult(runId, phaseId, {
          lease_token: token,
          status: 'success',
          files_changed: b.plan.files.map((f) => f.path),
          lines_added: b.linesAdded,
          lines_removed: b.linesRemoved,
          tokens_used: tokens,
          usage: b.usage,
          suggested_issues: toSuggested(b.args.issues, 'builder'),
          notes: b.args.summary.slice(0, LIMITS.notesChars),
          edits_hash: b.editsHash,
          ...(r.startCi ? { start_ci: true } : {}),
          ...this.llm.drainCalls(),
        });
      }
      case 'verify': {
        const v = r.result;
        if (v.kind === 'ci_rejected') {
          return supervisor.updateStatus(runId, phaseId, {
            lease_token: token,
            state: 'FAILED',
            ci_passed: false,
            failure_reason: v.reason,
            feedback: v.feedback,
            edits_hash: r.editsHash,
          });
        }
        const ci = v.kind === 'ci_accepted' ? v.ci : null;
        return supervisor.auditorRequest(runId, phaseId, {
          lease_token: token,
          ...(ci
            ? {
                ci: { passed: ci.verdict.accepted, exit_code: ci.result.exitCode, duration_seconds: ci.result.durationMs / 1000, output_tail: ci.result.outputTail.slice(-2000) },
                failure_context: JSON.stringify({
                  ci: {
                    command: ci.command,
                    exit_code: ci.result.exitCode,
                    baseline_failed: ci.verdict.baselineFailed,
                    baseline_exit_code: ci.baseline?.exitCode ?? null,
                  },
                }),
              }
            : {}),
        });
      }
      case 'review': {
        const { review, gate } = r.result;
        return supervisor.auditorResult(runId, phaseId, {
          lease_token: token,
          recommendation: 'revise',
          ...this.reviewReport(review),
          quality_level: 'blocked',
          feedback: `Your previous change was blocked (${gate.reasons.join('; ')}) and discarded.\n${review.summary}\n${formatIssues(review.issues)}`.slice(0, LIMITS.feedbackChars),
          edits_hash: r.editsHash,
        });
      }
      case 'publish': {
        const p = r.result;
        const { review, gate } = r.review;
        if (p.kind === 'published') {
          return supervisor.auditorResult(runId, phaseId, {
            lease_token: token,
            recommendation: 'approve',
            ...this.reviewReport(review),
            quality_level: gate.level,
            commit_sha: p.sha,
            confidence: review.confidence,
          });
        }
        const usage: UsageReport = review.usage;
        if (p.phaseCommit) {
          return supervisor.updateStatus(runId, phaseId, { lease_token: token, state: 'COMPLETE', commit_sha: p.phaseCommit, usage, ...this.llm.drainCalls() });
        }
        return supervisor.updateStatus(runId, phaseId, {
          lease_token: token,
          state: 'QUEUED',
          failure_reason: failureReason('push_rejected', `another executor pushed to ${r.integrationBranch} first; the phase is built again on the new head`),
          usage,
          ...this.llm.drainCalls(),
        });
      }
    }
  }

  private sendEnding(e: AttemptEnding): Promise<PhaseWriteResponse> {
    const { run_id: runId, phase_id: phaseId, lease_token: token } = this.claim;
    switch (e.kind) {
      case 'handed_back':
        return this.supervisor.updateStatus(runId, phaseId, { lease_token: token, state: 'QUEUED', ...this.llm.unreportedUsage() });
      case 'budget_refused':
        return this.supervisor.updateStatus(runId, phaseId, { lease_token: token, state: 'FAILED', failure_reason: failureReason('budget', e.message, LIMITS.failureReasonChars), ...this.llm.drainCalls() });
      case 'provider_problem':
        return this.supervisor.updateStatus(runId, phaseId, { lease_token: token, state: 'QUEUED', failure_reason: e.reason.slice(0, LIMITS.failureReasonChars), ...this.llm.unreportedUsage() });
      case 'attempt_error':
        return this.supervisor.updateStatus(runId, phaseId, {
          lease_token: token,
          state: 'FAILED',
          failure_reason: e.reason.slice(0, LIMITS.failureReasonChars),
          feedback: e.reason.slice(0, LIMITS.failureReasonChars),
          ...this.llm.drainCalls(),
        });
    }
  }

  /** The fields every review report carries: the auditors' notes and issues, the attempt's usage, and the LLM calls since the last report. */
  private reviewReport(review: Review) {
    return {
      review_notes: review.summary.slice(0, LIMITS.notesChars),
      issues_found: toSuggested(review.issues, 'auditor'),
      tokens_used: review.usage.prompt_tokens + review.usage.completion_tokens,
      usage: review.usage,
      ...this.llm.drainCalls(),
    };
  }
}
