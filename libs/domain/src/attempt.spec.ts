import { type AttemptReport, type AttemptSnapshot, decideAttemptEnd } from './attempt.js';

const executing: AttemptSnapshot = {
  state: 'EXECUTING',
  attemptsUsed: 1,
  maxAttempts: 3,
  abandonments: 0,
  maxAbandonments: 2,
  claimsCount: 1,
  tokensUsed: 100,
  incidentTokenCap: 1000,
};

describe('decideAttemptEnd', () => {
  it.each<[string, Partial<AttemptSnapshot>, AttemptReport, { event: string; to: string; patch: object; reason: string | null; issue: string | null }]>([
    [
      'a completed attempt',
      {},
      { event: 'complete', outcome: 'complete' },
      { event: 'complete', to: 'COMPLETE', patch: {}, reason: null, issue: null },
    ],
    [
      'a failed attempt with attempts left requeues',
      {},
      { event: 'failAttempt', outcome: 'builder_failed', reason: 'patch did not apply' },
      { event: 'failAttempt', to: 'QUEUED', patch: { lastFailureReason: 'patch did not apply' }, reason: 'patch did not apply', issue: 'builder_guardrail' },
    ],
    [
      'the last failed attempt fails the phase and names the attempts exhausted',
      { attemptsUsed: 3, claimsCount: 3 },
      { event: 'failAttempt', outcome: 'ci_failed', reason: 'tests failed' },
      { event: 'failAttempt', to: 'FAILED', patch: { lastFailureReason: 'tests failed (attempts exhausted: 3/3)', failureCap: 'max_attempts' }, reason: 'tests failed', issue: 'ci_failure' },
    ],
    [
      'a failed attempt past the incident cap fails the phase with attempts left',
      { tokensUsed: 1000 },
      { event: 'failAttempt', outcome: 'auditor_revise', reason: 'auditor requested changes' },
      {
        event: 'fail',
        to: 'FAILED',
        patch: { lastFailureReason: 'auditor requested changes; incident_token_cap exhausted: 1000 of 1000 tokens used', failureCap: 'incident_token_cap' },
        reason: 'auditor requested changes; incident_token_cap exhausted: 1000 of 1000 tokens used',
        issue: 'auditor_rejection',
      },
    ],
    [
      'no incident cap, no escalation',
      { tokensUsed: 10_000, incidentTokenCap: undefined },
      { event: 'failAttempt', outcome: 'failed', reason: null },
      { event: 'failAttempt', to: 'QUEUED', patch: {}, reason: null, issue: null },
    ],
    [
      'a released lease refunds its attempt',
      { attemptsUsed: 2 },
      { event: 'release', outcome: 'released', reason: 'shutting down' },
      { event: 'release', to: 'QUEUED', patch: { attemptsUsed: 1, lastFailureReason: 'shutting down' }, reason: 'shutting down', issue: null },
    ],
    [
      'a refund never goes below zero',
      { attemptsUsed: 0 },
      { event: 'release', outcome: 'released' },
      { event: 'release', to: 'QUEUED', patch: { attemptsUsed: 0 }, reason: null, issue: null },
    ],
    [
      'an expired lease refunds its attempt and counts an abandonment',
      {},
      { event: 'expireLease', outcome: 'lease_expired', reason: 'lease of ex-1 expired' },
      { event: 'expireLease', to: 'QUEUED', patch: { attemptsUsed: 0, abandonments: 1, lastFailureReason: 'lease of ex-1 expired' }, reason: 'lease of ex-1 expired', issue: null },
    ],
    [
      'the last abandonment fails the phase as abandoned',
      { abandonments: 1 },
      { event: 'expireLease', outcome: 'lease_expired', reason: 'lease of ex-1 expired' },
      {
        event: 'expireLease',
        to: 'FAILED',
        patch: { attemptsUsed: 0, abandonments: 2, lastFailureReason: 'abandoned: the lease expired 2 times (cap 2); lease of ex-1 expired', failureCap: 'max_abandonments' },
        reason: 'abandoned: the lease expired 2 times (cap 2); lease of ex-1 expired',
        issue: null,
      },
    ],
    [
      'an expired lease past the incident cap fails the phase uncounted and charged',
      { tokensUsed: 2000 },
      { event: 'expireLease', outcome: 'lease_expired', reason: 'lease of ex-1 expired' },
      {
        event: 'fail',
        to: 'FAILED',
        patch: { lastFailureReason: 'lease of ex-1 expired; incident_token_cap exhausted: 2000 of 1000 tokens used', failureCap: 'incident_token_cap' },
        reason: 'lease of ex-1 expired; incident_token_cap exhausted: 2000 of 1000 tokens used',
        issue: null,
      },
    ],
    [
      'an escalation fails the phase at once',
      { state: 'GATE' },
      { event: 'fail', outcome: 'auditor_escalate', reason: 'auditor escalated to a human' },
      { event: 'fail', to: 'FAILED', patch: { lastFailureReason: 'auditor escalated to a human' }, reason: 'auditor escalated to a human', issue: 'auditor_escalation' },
    ],
  ])('%s', (_name, change, report, expected) => {
    const d = decideAttemptEnd({ ...executing, ...change }, report);
    if (!d.ok) throw new Error(d.reason);
    expect({ event: d.phaseEvent, to: d.to, patch: d.patch, reason: d.reason, issue: d.processIssue?.issue_key ?? null }).toEqual(expected);
    expect(d.event.payload).toMatchObject({ from: change.state ?? 'EXECUTING', to: expected.to, event: expected.event, outcome: report.outcome });
  });

  it('records the attempt number and, for an expiry, the abandonment in the event', () => {
    const d = decideAttemptEnd({ ...executing, claimsCount: 4 }, { event: 'expireLease', outcome: 'lease_expired', reason: 'gone' });
    expect(d.ok && d.event).toEqual({
      type: 'phase_state',
      payload: { from: 'EXECUTING', to: 'QUEUED', event: 'expireLease', attempt: 4, outcome: 'lease_expired', reason: 'gone', abandonments: 1, max_abandonments: 2, attempt_charged: false },
    });
  });

  it('describes the process issue by its reason, or its outcome when there is none', () => {
    const d = decideAttemptEnd(executing, { event: 'failAttempt', outcome: 'ci_failed' });
    expect(d.ok && d.processIssue).toEqual({ issue_key: 'ci_failure', severity: 'minor', category: 'ci_failure', source: 'ci', description: 'ci_failed' });
  });

  it.each(['QUEUED', 'COMPLETE', 'FAILED', 'SKIPPED'] as const)('refuses to end an attempt of a %s phase', (state) => {
    expect(decideAttemptEnd({ ...executing, state }, { event: 'complete', outcome: 'complete' }).ok).toBe(false);
  });
});
