import type { FailureCap, PhaseState, RunEvent as RunEventRecord } from '@app/contracts';
import { type PhaseEvent, transitionPhase } from './phase.machine.js';

/** The phase events that end an attempt (and release its lease). */
export type AttemptEndEvent = Extract<PhaseEvent, 'complete' | 'failAttempt' | 'fail' | 'release' | 'expireLease'>;

/** The phase as it is when its attempt ends (usage of this very report included). */
export interface AttemptSnapshot {
  state: PhaseState;
  attemptsUsed: number;
  maxAttempts: number;
  abandonments: number;
  maxAbandonments: number;
  /** The attempt number of the current claim. */
  claimsCount: number;
  tokensUsed: number;
  /** The phase's incident token cap from the run's strategy; undefined when it has none. */
  incidentTokenCap: number | undefined;
}

/** How an attempt ended, as reported by an executor (or found by the lease sweeper). */
export interface AttemptReport {
  event: AttemptEndEvent;
  /** Recorded in `phase_attempts.outcome`, e.g. `builder_failed`, `ci_failed`, `lease_expired`. */
  outcome: string;
  reason?: string | null;
}

/** A minor issue recorded against the phase for a failed attempt (never in the project backlog). */
export interface ProcessIssue {
  issue_key: string;
  severity: 'minor';
  category: string;
  source: string;
  description: string;
}

/** Phase columns an attempt end changes besides the state and the lease. */
export interface AttemptEndPatch {
  attemptsUsed?: number;
  abandonments?: number;
  lastFailureReason?: string;
  failureCap?: FailureCap;
}

/** What to change when an attempt ends; the supervisor applies it in the fenced transaction. */
export interface AttemptEndDecision {
  ok: true;
  /** The event applied: a failed attempt past the incident cap becomes `fail`. */
  phaseEvent: AttemptEndEvent;
  from: PhaseState;
  to: PhaseState;
  patch: AttemptEndPatch;
  /** The reason recorded with the attempt and its event, or null. */
  reason: string | null;
  processIssue: ProcessIssue | null;
  /** The `phase_state` audit event. */
  event: Extract<RunEventRecord, { type: 'phase_state' }>;
}

/**
 * Failed attempts are recorded as phase issues too (builder guardrails, CI failures, auditor
 * rejections). They stay at phase and run level: keyed per phase, they would only add noise
 * to the project backlog. An expired lease (a crashed executor) is no issue of the phase's
 * work: it is counted in `abandonments`, not in the phase's issues, cleanliness or the run's
 * minor-issue budget.
 */
const PROCESS_ISSUES: Readonly<Record<string, { key: string; category: string; source: string }>> = {
  builder_failed: { key: 'builder_guardrail', category: 'builder_guardrail', source: 'builder' },
  ci_failed: { key: 'ci_failure', category: 'ci_failure', source: 'ci' },
  auditor_revise: { key: 'auditor_rejection', category: 'auditor_rejection', source: 'auditor' },
  auditor_escalate: { key: 'auditor_escalation', category: 'auditor_rejection', source: 'auditor' },
};

/**
 * Decides how an attempt ends. Pure. The phase's incident token cap ends it even with
 * attempts left. A lease handed back uncharged (shutdown, a provider that refused or failed,
 * a lost push) or left to expire (a crashed or cut-off executor) was no attempt of the model:
 * its attempt is given back (CONTRACT.md section 3), and expiries are counted apart, as
 * abandonments. The last failed attempt names the attempts it exhausted.
 */
export function decideAttemptEnd(s: AttemptSnapshot, report: AttemptReport): AttemptEndDecision | { ok: false; reason: string } {
  let event = report.event;
  let reason = report.reason ?? null;
  let failureCap: FailureCap | undefined;
  if ((event === 'failAttempt' || event === 'expireLease') && s.incidentTokenCap !== undefined && s.tokensUsed >= s.incidentTokenCap) {
    event = 'fail';
    reason = `${reason ?? report.outcome}; incident_token_cap exhausted: ${s.tokensUsed} of ${s.incidentTokenCap} tokens used`;
    failureCap = 'incident_token_cap';
  }
  const t = transitionPhase(s.state, event, { attemptsUsed: s.attemptsUsed, maxAttempts: s.maxAttempts, abandonments: s.abandonments, maxAbandonments: s.maxAbandonments });
  if (!t.ok) return t;
  const patch: AttemptEndPatch = {};
  if (event === 'release' || event === 'expireLease') {
    patch.attemptsUsed = Math.max(0, s.attemptsUsed - 1);
    if (event === 'expireLease') patch.abandonments = s.abandonments + 1;
  }
  if (event === 'expireLease' && t.to === 'FAILED' && s.abandonments + 1 >= s.maxAbandonments) {
    reason = `abandoned: the lease expired ${s.abandonments + 1} times (cap ${s.maxAbandonments}); ${reason ?? 'executor gone'}`;
    failureCap = 'max_abandonments';
  }
  const exhausted = event === 'failAttempt' && t.to === 'FAILED';
  if (exhausted) failureCap = 'max_attempts';
  if (reason) patch.lastFailureReason = exhausted ? `${reason} (attempts exhausted: ${s.attemptsUsed}/${s.maxAttempts})` : reason;
  if (failureCap) patch.failureCap = failureCap;
  const issue = PROCESS_ISSUES[report.outcome];
  return {
    ok: true,
    phaseEvent: event,
    from: s.state,
    to: t.to,
    patch,
    reason,
    processIssue: issue
      ? { issue_key: issue.key, severity: 'minor', category: issue.category, source: issue.source, description: (reason ?? report.outcome).slice(0, 5000) }
      : null,
    event: {
      type: 'phase_state',
      payload: {
        from: s.state,
        to: t.to,
        event,
        attempt: s.claimsCount,
        outcome: report.outcome,
        ...(reason ? { reason } : {}),
        ...(event === 'expireLease' ? { abandonments: s.abandonments + 1, max_abandonments: s.maxAbandonments, attempt_charged: false } : {}),
      },
    },
  };
}
