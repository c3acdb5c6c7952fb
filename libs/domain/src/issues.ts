import type { Severity } from '@app/contracts';

/** A project backlog entry, as the aging rules see it. */
export interface BacklogState {
  issueKey: string;
  category: string;
  baseSeverity: Severity;
  effectiveSeverity: Severity;
  ageInRuns: number;
  ageInTiers: number;
  occurrenceCount: number;
  /** Run ids this issue was seen in (aging counts each once). */
  seenInRuns: string[];
  /** `run_id/tier_id` keys this issue was seen in (aging counts each once). */
  seenInTiers: string[];
  firstSeenRunId: string;
  lastSeenRunId: string;
  status: 'open' | 'needs_cleanup' | 'resolved';
}

/** One sighting of an issue. */
export interface IssueSighting {
  issueKey: string;
  category: string;
  severity: Severity;
  runId: string;
  tierId: string;
}

/** A minor issue seen in this many runs or tiers is treated as major and needs cleanup. */
export interface AgingThresholds {
  runs: number;
  tiers: number;
}

/** True when a minor issue has aged past a threshold. */
export function hasAged(entry: Pick<BacklogState, 'ageInRuns' | 'ageInTiers'>, t: AgingThresholds): boolean {
  return entry.ageInRuns >= t.runs || entry.ageInTiers >= t.tiers;
}

/**
 * Records a sighting in the backlog. Aging counts each run and each tier once, however many
 * times the issue is reported in it (the original counted every call). A resolved issue
 * that comes back is reopened with its history. Pure.
 */
export function observeIssue(entry: BacklogState | undefined, s: IssueSighting, t: AgingThresholds): BacklogState {
  const tierKey = `${s.runId}/${s.tierId}`;
  const base: BacklogState = entry ?? {
    issueKey: s.issueKey,
    category: s.category,
    baseSeverity: s.severity,
    effectiveSeverity: s.severity,
    ageInRuns: 0,
    ageInTiers: 0,
    occurrenceCount: 0,
    seenInRuns: [],
    seenInTiers: [],
    firstSeenRunId: s.runId,
    lastSeenRunId: s.runId,
    status: 'open',
  };
  const newRun = !base.seenInRuns.includes(s.runId);
  const newTier = !base.seenInTiers.includes(tierKey);
  const next: BacklogState = {
    ...base,
    category: s.category,
    baseSeverity: base.baseSeverity === 'major' || s.severity === 'major' ? 'major' : 'minor',
    ageInRuns: base.ageInRuns + (newRun ? 1 : 0),
    ageInTiers: base.ageInTiers + (newTier ? 1 : 0),
    occurrenceCount: base.occurrenceCount + 1,
    seenInRuns: newRun ? [...base.seenInRuns, s.runId] : base.seenInRuns,
    seenInTiers: newTier ? [...base.seenInTiers, tierKey] : base.seenInTiers,
    lastSeenRunId: s.runId,
    status: base.status === 'resolved' ? 'open' : base.status,
  };
  return reclassify(next, t);
}

/** Effective severity and status from base severity and age. */
export function reclassify(entry: BacklogState, t: AgingThresholds): BacklogState {
  if (entry.status === 'resolved') return entry;
  const aged = entry.baseSeverity === 'minor' && hasAged(entry, t);
  return {
    ...entry,
    effectiveSeverity: entry.baseSeverity === 'major' || aged ? 'major' : 'minor',
    status: aged ? 'needs_cleanup' : 'open',
  };
}

/**
 * Issue keys a finished run resolves: open or aged backlog issues it did not see. Only a
 * successful run may resolve (a run that failed early never looked).
 */
export function issuesResolvedBy(entries: readonly BacklogState[], runId: string): string[] {
  return entries.filter((e) => e.status !== 'resolved' && !e.seenInRuns.includes(runId)).map((e) => e.issueKey);
}

/** Backlog issues that warrant a debt-cleanup phase. */
export function debtCleanupCandidates(entries: readonly BacklogState[]): BacklogState[] {
  return entries.filter((e) => e.status === 'needs_cleanup').sort((a, b) => b.ageInRuns - a.ageInRuns || a.issueKey.localeCompare(b.issueKey));
}
