import { type TipCommit, commitsOfEndedPhases } from './integration-branch.js';

const run = 'r1';
const c = (sha: string, phaseId?: string, runId = run): TipCommit => ({ sha, runId: phaseId ? runId : undefined, phaseId });
/** A branch, newest first: base commit, then phase commits a, b, c. */
const branch = (...top: TipCommit[]) => [...top, c('base')];

describe('commitsOfEndedPhases (no commit without COMPLETE)', () => {
  it.each<[string, TipCommit[], Record<string, string>, boolean, { resetTo: string | null; dropped: string[]; buried: string[] }]>([
    ['nothing to drop on a clean branch', branch(c('sb', 'b'), c('sa', 'a')), { a: 'COMPLETE', b: 'COMPLETE' }, false, { resetTo: null, dropped: [], buried: [] }],
    ['a failed phase at the tip goes', branch(c('sb', 'b'), c('sa', 'a')), { a: 'COMPLETE', b: 'FAILED' }, false, { resetTo: 'sa', dropped: ['sb'], buried: [] }],
    ['a skipped phase at the tip goes', branch(c('sb', 'b')), { b: 'SKIPPED' }, false, { resetTo: 'base', dropped: ['sb'], buried: [] }],
    ['several ended phases at the tip all go', branch(c('sc', 'c'), c('sb', 'b'), c('sa', 'a')), { a: 'COMPLETE', b: 'FAILED', c: 'SKIPPED' }, false, { resetTo: 'sa', dropped: ['sc', 'sb'], buried: [] }],
    // A queued or leased phase may still complete with its commit (resume, or a report in flight).
    ['a queued phase keeps its commit while the run goes on', branch(c('sb', 'b'), c('sa', 'a')), { a: 'COMPLETE', b: 'QUEUED' }, false, { resetTo: null, dropped: [], buried: [] }],
    ['a leased phase keeps its commit while the run goes on', branch(c('sb', 'b')), { b: 'GATE' }, false, { resetTo: null, dropped: [], buried: [] }],
    ['once the run ended, every unfinished phase loses its commit', branch(c('sb', 'b'), c('sa', 'a')), { a: 'COMPLETE', b: 'QUEUED' }, true, { resetTo: 'sa', dropped: ['sb'], buried: [] }],
    ['a completed phase keeps its commit even after the run failed', branch(c('sa', 'a')), { a: 'COMPLETE' }, true, { resetTo: null, dropped: [], buried: [] }],
    ['another run and unknown phases are left alone', branch(c('sx', 'x', 'other-run'), c('sy', 'y')), { y: 'FAILED' }, false, { resetTo: null, dropped: [], buried: [] }],
    ['an ended commit under one that stays is reported, not rewritten', branch(c('sb', 'b'), c('sa', 'a')), { a: 'FAILED', b: 'COMPLETE' }, false, { resetTo: null, dropped: [], buried: ['sa'] }],
  ])('%s', (_name, log, states, runEnded, expected) => {
    const r = commitsOfEndedPhases(log, run, states, runEnded);
    expect({ resetTo: r.resetTo, dropped: r.dropped.map((x) => x.sha), buried: r.buried.map((x) => x.sha) }).toEqual(expected);
  });
});
