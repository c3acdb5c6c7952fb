import { type RunState, TERMINAL_RUN_STATES } from '@app/contracts';

/** Events that move a run. */
export const RUN_EVENTS = [
  'queuePhases',
  'beginExecution',
  'awaitApproval',
  'approve',
  'reject',
  'succeed',
  'failForReview',
  'exhaustBudget',
  'violatePolicy',
  'failEnvironment',
  'cancel',
  'reopen',
] as const;
/** A run event. */
export type RunEvent = (typeof RUN_EVENTS)[number];

const endings = {
  exhaustBudget: 'DONE_FAILED_BUDGET_EXHAUSTED',
  violatePolicy: 'DONE_FAILED_POLICY_VIOLATION',
  failEnvironment: 'DONE_FAILED_ENVIRONMENT',
  failForReview: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW',
  cancel: 'CANCELLED',
} as const satisfies Partial<Record<RunEvent, RunState>>;

const active = {
  ...endings,
  awaitApproval: 'AWAITING_APPROVAL',
  succeed: 'DONE_SUCCESS',
} as const satisfies Partial<Record<RunEvent, RunState>>;

/**
 * The run transition table. The sub-states GATE, CI_RUNNING and SNAPSHOT_CREATED of the
 * original are accepted as active states for compatibility; this supervisor keeps a run in
 * PHASE_EXECUTION while phases are being worked on.
 */
export const RUN_TRANSITIONS = {
  PLAN_BOOTSTRAP: { queuePhases: 'RUN_CREATED', ...endings },
  RUN_CREATED: { queuePhases: 'PHASE_QUEUEING', beginExecution: 'PHASE_EXECUTION', ...active },
  PHASE_QUEUEING: { beginExecution: 'PHASE_EXECUTION', ...active },
  PHASE_EXECUTION: { ...active },
  GATE: { beginExecution: 'PHASE_EXECUTION', ...active },
  CI_RUNNING: { beginExecution: 'PHASE_EXECUTION', ...active },
  SNAPSHOT_CREATED: { beginExecution: 'PHASE_EXECUTION', ...active },
  AWAITING_APPROVAL: {
    approve: 'PHASE_EXECUTION',
    reject: 'DONE_FAILED_REQUIRES_HUMAN_REVIEW',
    succeed: 'DONE_SUCCESS',
    cancel: 'CANCELLED',
    exhaustBudget: 'DONE_FAILED_BUDGET_EXHAUSTED',
  },
  DONE_SUCCESS: {},
  DONE_FAILED_BUDGET_EXHAUSTED: {},
  DONE_FAILED_POLICY_VIOLATION: {},
  // An operator retry of a failed phase reopens the run (CONTRACT.md section 6); the other
  // endings are final: a budget, a policy, the environment or a cancel decided them.
  DONE_FAILED_REQUIRES_HUMAN_REVIEW: { reopen: 'PHASE_EXECUTION' },
  DONE_FAILED_ENVIRONMENT: {},
  CANCELLED: {},
} as const satisfies Record<RunState, Partial<Record<RunEvent, RunState>>>;

/** Applies a run event. Pure. */
export function transitionRun(from: RunState, event: RunEvent): { ok: true; to: RunState } | { ok: false; reason: string } {
  const row: Partial<Record<RunEvent, RunState>> = RUN_TRANSITIONS[from];
  const to = row[event];
  return to ? { ok: true, to } : { ok: false, reason: `run cannot '${event}' from ${from}` };
}

/** True when the run accepts no more work (a run ended for review can still be reopened by a retry). */
export function isRunTerminal(state: RunState): boolean {
  return TERMINAL_RUN_STATES.includes(state);
}

/** True when phases of the run may be claimed. */
export function isRunClaimable(state: RunState): boolean {
  return ['RUN_CREATED', 'PHASE_QUEUEING', 'PHASE_EXECUTION', 'GATE', 'CI_RUNNING', 'SNAPSHOT_CREATED'].includes(state);
}
