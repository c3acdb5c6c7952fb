import { type QualityGateInput, qualityGate } from './quality-gate.js';

const base: QualityGateInput = { highRisk: false, ciProfile: 'normal', ciAccepted: true, majorIssues: 0, minorIssues: 0, auditorApproved: true };

describe('qualityGate', () => {
  it('is ok for a clean, approved attempt', () => expect(qualityGate(base)).toEqual({ level: 'ok', reasons: [] }));
  it.each([
    [{ ciAccepted: false }, 'CI failed'],
    [{ majorIssues: 1 }, '1 major issue(s)'],
    [{ auditorApproved: false }, 'the auditor did not approve'],
    [{ highRisk: true, ciProfile: 'strict' as const, ciAccepted: null }, 'high-risk phase without a CI command (strict profile)'],
  ])('blocks %j', (change, reason) => {
    expect(qualityGate({ ...base, ...change })).toEqual({ level: 'blocked', reasons: [reason] });
  });
  it('blocks majors in normal categories too (v7 did not)', () => expect(qualityGate({ ...base, majorIssues: 2, highRisk: false }).level).toBe('blocked'));
  it('asks for review on minor issues and on a coverage drop under strict', () => {
    expect(qualityGate({ ...base, minorIssues: 1 })).toEqual({ level: 'needs_review', reasons: ['1 minor issue(s)'] });
    expect(qualityGate({ ...base, ciProfile: 'strict', coverageDelta: -3 }).level).toBe('needs_review');
    expect(qualityGate({ ...base, ciProfile: 'normal', coverageDelta: -3 }).level).toBe('ok');
    expect(qualityGate({ ...base, ciAccepted: null }).level).toBe('ok');
  });
});
