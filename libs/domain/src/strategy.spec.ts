import { categoryDefaults, compileStrategy, isHighRiskCategory, resolveCategory } from './strategy.js';

describe('strategy engine', () => {
  it('resolves the spec aliases to the high-risk table', () => {
    expect(resolveCategory('schema_change')).toBe('schema_contract_change');
    expect(resolveCategory('security_auth')).toBe('security_auth_change');
    expect(isHighRiskCategory('bulk_operation')).toBe(true);
    expect(isHighRiskCategory('docs')).toBe(false);
    expect(resolveCategory('something_else')).toBe('generic');
  });

  it('uses the v7 numbers', () => {
    expect(categoryDefaults('bulk_multi_file_operation')).toMatchObject({ maxBuilderAttempts: 1, incidentTokenCap: 1_500_000, ciProfile: 'strict', autoApply: false });
    expect(categoryDefaults('docs')).toMatchObject({ maxBuilderAttempts: 2, maxAuditorAttempts: 1, incidentTokenCap: 200_000 });
    expect(categoryDefaults('debt_cleanup')).toMatchObject({ autoApply: false, auditorProfile: 'debt_cleanup_review' });
    expect(categoryDefaults(undefined)).toMatchObject({ maxBuilderAttempts: 3, incidentTokenCap: 500_000 });
  });

  it('applies a project ruleset override', () => {
    expect(categoryDefaults('docs', { docs: { maxBuilderAttempts: 5 } }).maxBuilderAttempts).toBe(5);
  });

  it('compiles tier budgets from the phases of each tier', () => {
    const s = compileStrategy({
      safetyProfile: 'normal',
      tierIds: ['t1', 't2'],
      phases: [
        { phaseId: 'p1', tierId: 't1', taskCategory: 'docs' },
        { phaseId: 'p2', tierId: 't1', taskCategory: 'security_auth' },
        { phaseId: 'p3', tierId: 't2' },
      ],
    });
    expect(s.tiers.t1).toEqual({ tokenCap: 3 * (200_000 + 800_000), ciRunCap: 4, maxMinorIssuesTolerated: 4, maxMajorIssuesTolerated: 0 });
    expect(s.tiers.t2.tokenCap).toBe(1_500_000);
    expect(s.phases.p2).toMatchObject({ high_risk: true, dual_audit: true, complexity: 'high', resolved_category: 'security_auth_change' });
    expect(s.run).toEqual({ tokenCap: 5_000_000, maxPhases: 25, maxDurationMinutes: 120, maxMinorIssuesTotal: 9 });
    const critical = compileStrategy({ safetyProfile: 'safety_critical', tierIds: ['t1'], phases: [{ phaseId: 'p1', tierId: 't1' }] });
    expect(critical.tiers.t1.maxMinorIssuesTolerated).toBe(1);
    expect(critical.agingThresholds).toEqual({ runs: 2, tiers: 1 });
  });
});
