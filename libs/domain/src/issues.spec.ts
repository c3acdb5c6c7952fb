import { debtCleanupCandidates, issuesResolvedBy, observeIssue } from './issues.js';

const T = { runs: 3, tiers: 2 };
const see = (runId: string, tierId: string, severity: 'minor' | 'major' = 'minor') => ({ issueKey: 'k', category: 'c', severity, runId, tierId });

describe('issue aging', () => {
  it('counts each run and each tier once, however often the issue is reported', () => {
    let e = observeIssue(undefined, see('r1', 't1'), T);
    e = observeIssue(e, see('r1', 't1'), T);
    e = observeIssue(e, see('r1', 't1'), T);
    expect(e).toMatchObject({ ageInRuns: 1, ageInTiers: 1, occurrenceCount: 3, status: 'open', effectiveSeverity: 'minor' });
  });

  it('upgrades a minor issue after 2 tiers (normal) and needs cleanup', () => {
    let e = observeIssue(undefined, see('r1', 't1'), T);
    e = observeIssue(e, see('r1', 't2'), T);
    expect(e).toMatchObject({ ageInRuns: 1, ageInTiers: 2, effectiveSeverity: 'major', status: 'needs_cleanup', baseSeverity: 'minor' });
  });

  it('upgrades after 3 runs in the same tier name, and after 2 runs / 1 tier under safety_critical', () => {
    let e = observeIssue(undefined, see('r1', 't1'), { runs: 3, tiers: 99 });
    e = observeIssue(e, see('r2', 't1'), { runs: 3, tiers: 99 });
    expect(e.status).toBe('open');
    e = observeIssue(e, see('r3', 't1'), { runs: 3, tiers: 99 });
    expect(e).toMatchObject({ ageInRuns: 3, status: 'needs_cleanup', effectiveSeverity: 'major' });
    expect(observeIssue(undefined, see('r1', 't1'), { runs: 2, tiers: 1 }).status).toBe('needs_cleanup');
  });

  it('keeps major issues major and open, and resolves issues a later run did not see', () => {
    const major = observeIssue(undefined, see('r1', 't1', 'major'), T);
    expect(major).toMatchObject({ effectiveSeverity: 'major', status: 'open' });
    expect(issuesResolvedBy([major], 'r1')).toEqual([]);
    expect(issuesResolvedBy([major], 'r2')).toEqual(['k']);
  });

  it('reopens a resolved issue that comes back and lists cleanup candidates oldest first', () => {
    const loose = { runs: 9, tiers: 9 };
    const e = observeIssue({ ...observeIssue(undefined, see('r1', 't1'), loose), status: 'resolved' }, see('r2', 't1'), loose);
    expect(e).toMatchObject({ status: 'open', ageInRuns: 2, ageInTiers: 2 });
    const old = { ...e, issueKey: 'old', status: 'needs_cleanup' as const, ageInRuns: 5 };
    const young = { ...e, issueKey: 'young', status: 'needs_cleanup' as const, ageInRuns: 3 };
    expect(debtCleanupCandidates([young, e, old]).map((x) => x.issueKey)).toEqual(['old', 'young']);
  });
});
