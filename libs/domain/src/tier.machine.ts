import type { TierState } from '@app/contracts';

/** Events that move a tier. Tiers move only as a derivation of their phases. */
export const TIER_EVENTS = ['start', 'complete', 'fail', 'skip', 'reopen'] as const;
/** A tier event. */
export type TierEvent = (typeof TIER_EVENTS)[number];

/** The tier transition table. */
export const TIER_TRANSITIONS = {
  PENDING: { start: 'IN_PROGRESS', complete: 'COMPLETE', fail: 'FAILED', skip: 'SKIPPED' },
  IN_PROGRESS: { complete: 'COMPLETE', fail: 'FAILED', skip: 'SKIPPED' },
  // A droplet build retried from an earlier step redoes the tiers of the steps after it.
  COMPLETE: { reopen: 'PENDING' },
  // A retried phase reopens its failed tier and the tiers skipped because of it.
  FAILED: { reopen: 'PENDING' },
  SKIPPED: { reopen: 'PENDING' },
} as const satisfies Record<TierState, Partial<Record<TierEvent, TierState>>>;

/** Applies a tier event. Pure. */
export function transitionTier(from: TierState, event: TierEvent): { ok: true; to: TierState } | { ok: false; reason: string } {
  const row: Partial<Record<TierEvent, TierState>> = TIER_TRANSITIONS[from];
  const to = row[event];
  return to ? { ok: true, to } : { ok: false, reason: `tier cannot '${event}' from ${from}` };
}
