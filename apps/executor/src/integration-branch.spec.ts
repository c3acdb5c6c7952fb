import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type GitHttpServer, startGitHttpServer } from '../../../test/support/git-http-server.js';
import { commitChanges, createSampleRepository, currentBranch, formatCommitMessage, headCommit, initRepository, isEmptyRepository, listTrackedFiles, worktreeChanges } from '@app/git';
import { type IntegrationBranch, type TipCommit, checkOutIntegrationBranch, commitsOfEndedPhases, dropCommitsOfEndedPhases, publishCommit } from './integration-branch.js';

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

describe('checkOutIntegrationBranch', () => {
  const author = { name: 'Autopack Test', email: 'test@autopack.invalid' };
  let workspace: string;
  beforeEach(() => {
    workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'autopack-integration-'));
  });
  afterEach(() => fs.rmSync(workspace, { recursive: true, force: true }));
  const integration = (): IntegrationBranch => ({ workspace, runId: 'r1', phaseId: 'p1', branch: 'autonomous/r1', baseBranch: 'main', sharedUrl: undefined });
  const commitFile = async (file: string) => {
    fs.writeFileSync(path.join(workspace, file), `${file}\n`);
    return commitChanges(workspace, { branch: 'autonomous/r1', written: [file], deleted: [], message: `add ${file}\n`, author });
  };

  it('starts the branch unborn in a freshly initialised repository; its first commit is a root commit', async () => {
    await initRepository(workspace);
    expect(await checkOutIntegrationBranch(integration())).toBeNull();
    expect(await currentBranch(workspace)).toBe('autonomous/r1');
    expect(await checkOutIntegrationBranch(integration())).toBeNull();
    const root = await commitFile('SPEC.md');
    expect(await publishCommit(integration(), { commit: root, parent: null })).toEqual({ kept: true });
    expect(await checkOutIntegrationBranch(integration())).toBe(root);
    expect(await isEmptyRepository(workspace)).toBe(false);
    expect(await listTrackedFiles(workspace)).toEqual(['SPEC.md']);
  });

  it('with an empty shared repository too: unborn, then the root commit is pushed and found by the next checkout', async () => {
    const server: GitHttpServer = await startGitHttpServer();
    try {
      server.createRepository('empty', {});
      server.git('empty', 'update-ref', '-d', 'refs/heads/main');
      await initRepository(workspace);
      const shared = { ...integration(), sharedUrl: server.url('empty') };
      expect(await checkOutIntegrationBranch(shared)).toBeNull();
      expect(await currentBranch(workspace)).toBe('autonomous/r1');
      const root = await commitFile('SPEC.md');
      expect(await publishCommit(shared, { commit: root, parent: null })).toEqual({ kept: true });
      expect(server.git('empty', 'rev-parse', 'autonomous/r1').trim()).toBe(root);
      expect(await checkOutIntegrationBranch(shared)).toBe(root);
    } finally {
      await server.close();
    }
  });

  it('takes the branch back to unborn when its root commit belongs to a phase that ended without it', async () => {
    await initRepository(workspace);
    await checkOutIntegrationBranch(integration());
    fs.writeFileSync(path.join(workspace, 'p1.md'), 'p1\n');
    const root = await commitChanges(workspace, { branch: 'autonomous/r1', written: ['p1.md'], deleted: [], message: formatCommitMessage({ phaseId: 'p1', summary: 'p1', runId: 'r1', attempt: 1 }), author });
    expect(await dropCommitsOfEndedPhases(integration(), { p1: 'QUEUED' }, false)).toMatchObject({ dropped: [] });
    expect(await headCommit(workspace, 'refs/heads/autonomous/r1')).toBe(root);

    const r = await dropCommitsOfEndedPhases(integration(), { p1: 'FAILED' }, false);
    expect(r).toMatchObject({ resetTo: null, dropped: [{ sha: root, phaseId: 'p1' }], shared: false });
    expect(await isEmptyRepository(workspace)).toBe(true);
    expect(await currentBranch(workspace)).toBe('autonomous/r1');
    expect(fs.existsSync(path.join(workspace, 'p1.md'))).toBe(false);
    expect(await worktreeChanges(workspace)).toEqual({ clean: true, paths: [], total: 0 });
    expect(await checkOutIntegrationBranch(integration())).toBeNull();
  });

  it('still creates the branch from the base in a repository with commits', async () => {
    const base = await createSampleRepository(workspace, { 'README.md': '# r\n' }, { author, message: 'init\n' });
    expect(await checkOutIntegrationBranch(integration())).toBe(base);
    expect(await currentBranch(workspace)).toBe('autonomous/r1');
    expect(await headCommit(workspace, 'refs/heads/autonomous/r1')).toBe(base);
  });
});
