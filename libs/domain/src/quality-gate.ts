import type { QualityLevel } from '@app/contracts';

/** What the gate looks at for one attempt. */
export interface QualityGateInput {
  highRisk: boolean;
  ciProfile: 'normal' | 'strict';
  /** null when the phase has no CI command. */
  ciAccepted: boolean | null;
  majorIssues: number;
  minorIssues: number;
  /** Coverage change in points, when known (v7: regression means below -2.0). */
  coverageDelta?: number | null;
  auditorApproved: boolean;
}

/** The gate's decision and why. */
export interface QualityGateResult {
  level: QualityLevel;
  reasons: string[];
}

/**
 * The quality gate (v7 levels ok / needs_review / blocked). `blocked` never commits.
 *
 * Differences from v7, on purpose: a failed CI or a major issue blocks in every category,
 * not only the high-risk ones. v7 let such an attempt through as `needs_review` for normal
 * categories, which is how its gate "did not gate" (the change was kept anyway). A strict
 * CI profile without a CI command blocks high-risk phases, which must be verified.
 */
export function qualityGate(i: QualityGateInput): QualityGateResult {
  const reasons: string[] = [];
  if (i.ciAccepted === false) reasons.push('CI failed');
  if (i.majorIssues > 0) reasons.push(`${i.majorIssues} major issue(s)`);
  if (!i.auditorApproved) reasons.push('the auditor did not approve');
  if (i.highRisk && i.ciProfile === 'strict' && i.ciAccepted === null) reasons.push('high-risk phase without a CI command (strict profile)');
  if (reasons.length) return { level: 'blocked', reasons };
  if (i.minorIssues > 0) reasons.push(`${i.minorIssues} minor issue(s)`);
  if (i.ciProfile === 'strict' && i.coverageDelta !== undefined && i.coverageDelta !== null && i.coverageDelta < -2) reasons.push(`coverage fell by ${-i.coverageDelta} points`);
  return { level: reasons.length ? 'needs_review' : 'ok', reasons };
}
