import fs from 'node:fs';
import path from 'node:path';
import type { SubmitPlanArgs } from '@app/contracts';
import { GitError, branchLog, createSampleRepository, currentBranch, initRepository, readFileAtRef, worktreeChanges } from '@app/git';
import { FakeBuildGit, FakeGit, makeClaim, silentLog } from '../../../../test/executor/attempt-fakes.js';
import { fsck, gitBinary, hasGitBinary, integrationOf, removeTempDirs, tempDir, testAuthor } from '../../../../test/executor/git-workspaces.js';
import { AttemptStoppedError } from '../lease-keeper.js';
import { SPEC_PATH, renderSpecMarkdown } from '../spec-markdown.js';
import { workspaceBuildGit, workspaceGit } from './ports.js';
import { commitSpec, resumePlanFromCommit, specCommitSummary } from './spec-commit.js';
import { syncBranch } from './sync.js';

const intent = 'A tiny HTTP service that answers GET /health with {"ok":true}, with a test.';
const plan: SubmitPlanArgs = {
  tiers: [{ tier_id: 'service', tier_index: 0, name: 'Service' }],
  phases: [
    { phase_id: 'http-service', phase_index: 0, tier_id: 'service', name: 'HTTP service', task_category: 'feature_scaffolding', scope: { paths: ['server.js', 'test/'] }, ci: { command: 'npm test' } },
  ],
};
const specMarkdown = renderSpecMarkdown(intent, plan);
const claim = makeClaim({ phase_id: 'plan', attempt: 2, phase: { phase_id: 'plan', name: 'SPEC Generation', task_category: null } });
const live = () => new AbortController().signal;

afterEach(removeTempDirs);

describe(commitSpec.name, () => {
  it('commits SPEC.md as the root commit of an empty repository, with the contract message and trailers', async () => {
    const ws = tempDir();
    await initRepository(ws);
    const synced = await syncBranch({ git: workspaceGit, workspace: ws, log: silentLog }, claim);
    if (synced.kind !== 'ready') throw new Error('expected a branch to build on');

    const result = await commitSpec({ git: workspaceGit, workspace: ws, log: silentLog }, claim, synced.integration, { plan, specMarkdown, signal: live() });

    expect(result).toEqual({ kind: 'spec_committed', sha: expect.stringMatching(/^[0-9a-f]{40}$/), parent: null });
    const sha = (result as { sha: string }).sha;
    const log = await branchLog(ws, 'autonomous/r1');
    expect(log.map((c) => c.sha)).toEqual([sha]);
    expect(log[0].message).toBe('[Autopack] plan: SPEC: 1 tier(s), 1 phase(s)\n\nAutopack-Run: r1\nAutopack-Phase: plan\nAutopack-Attempt: 2\n');
    expect(await readFileAtRef(ws, sha, SPEC_PATH)).toBe(specMarkdown);
    expect(await currentBranch(ws)).toBe('autonomous/r1');
    expect(await worktreeChanges(ws)).toMatchObject({ clean: true });
    // Nothing is left in flight for the next holder of the workspace to undo.
    expect(fs.existsSync(path.join(ws, '.git', 'autopack', 'inflight.json'))).toBe(false);
    if (hasGitBinary) expect(gitBinary(ws, 'rev-list', '--max-parents=0', 'autonomous/r1').trim()).toBe(sha);
    fsck(ws);
  });

  it('replaces an earlier SPEC.md of a repository with files, on top of its base', async () => {
    const ws = tempDir();
    const base = await createSampleRepository(ws, { 'SPEC.md': '# old spec\n', 'app.js': 'x\n' }, { author: testAuthor, message: 'init\n' });
    const synced = await syncBranch({ git: workspaceGit, workspace: ws, log: silentLog }, claim);
    if (synced.kind !== 'ready') throw new Error('expected a branch to build on');

    const result = await commitSpec({ git: workspaceGit, workspace: ws, log: silentLog }, claim, synced.integration, { plan, specMarkdown, signal: live() });

    expect(result).toMatchObject({ kind: 'spec_committed', parent: base });
    expect(fs.readFileSync(path.join(ws, SPEC_PATH), 'utf8')).toBe(specMarkdown);
    expect(await readFileAtRef(ws, 'autonomous/r1', 'app.js')).toBe('x\n');
    expect(await worktreeChanges(ws)).toMatchObject({ clean: true });
    fsck(ws);
  });

  it('puts the working copy back when the commit fails', async () => {
    const ws = tempDir();
    fs.writeFileSync(path.join(ws, SPEC_PATH), '# old spec\n');
    const git = new FakeGit();
    git.commitFails = new GitError('COMMIT_FAILED', 'boom', {});
    await expect(commitSpec({ git, workspace: ws, log: silentLog }, claim, integrationOf(ws), { plan, specMarkdown, signal: live() })).rejects.toMatchObject({ code: 'COMMIT_FAILED' });
    expect(fs.readFileSync(path.join(ws, SPEC_PATH), 'utf8')).toBe('# old spec\n');
    expect(git.ops).toEqual(['headCommit autonomous/r1', 'commit SPEC.md|']);
  });

  it('reports a lost push with the commit of this phase that won', async () => {
    const ws = tempDir();
    const git = new FakeGit();
    git.publishAs = { kept: false, phaseCommit: 'theirs' };
    const result = await commitSpec({ git, workspace: ws, log: silentLog }, claim, integrationOf(ws), { plan, specMarkdown, signal: live() });
    expect(result).toEqual({ kind: 'push_lost', phaseCommit: 'theirs' });
    expect(git.lastCommitMessage).toMatch(/^\[Autopack\] plan: SPEC: 1 tier\(s\), 1 phase\(s\)\n/);
  });

  it('writes nothing once the attempt was stopped, and never writes through a symbolic link', async () => {
    const ws = tempDir();
    const git = new FakeGit();
    const stop = new AbortController();
    stop.abort(new AttemptStoppedError('lease_lost'));
    await expect(commitSpec({ git, workspace: ws, log: silentLog }, claim, integrationOf(ws), { plan, specMarkdown, signal: stop.signal })).rejects.toMatchObject({ reason: 'lease_lost' });
    expect(fs.existsSync(path.join(ws, SPEC_PATH))).toBe(false);

    const outside = path.join(tempDir(), 'target.md');
    fs.writeFileSync(outside, 'outside\n');
    fs.symlinkSync(outside, path.join(ws, SPEC_PATH));
    await expect(commitSpec({ git, workspace: ws, log: silentLog }, claim, integrationOf(ws), { plan, specMarkdown, signal: live() })).rejects.toThrow(/symbolic link/);
    expect(fs.readFileSync(outside, 'utf8')).toBe('outside\n');
    expect(git.ops).toEqual([]);
  });

  it('summarises the plan in the subject', () => {
    expect(specCommitSummary({ ...plan, tiers: [...plan.tiers, { tier_id: 'b', tier_index: 1, name: 'B' }] })).toBe('SPEC: 2 tier(s), 1 phase(s)');
  });
});

describe(resumePlanFromCommit.name, () => {
  it("reads the plan back from the phase's commit that a retried attempt finds on the branch, committing nothing", async () => {
    const ws = tempDir();
    await initRepository(ws);
    const first = await syncBranch({ git: workspaceGit, workspace: ws, log: silentLog }, claim);
    if (first.kind !== 'ready') throw new Error('expected a branch to build on');
    const committed = await commitSpec({ git: workspaceGit, workspace: ws, log: silentLog }, claim, first.integration, { plan, specMarkdown, signal: live() });
    if (committed.kind !== 'spec_committed') throw new Error('expected the SPEC commit');

    // The report was lost: the next attempt of the phase finds the commit.
    const retried = await syncBranch({ git: workspaceGit, workspace: ws, log: silentLog }, { ...claim, attempt: 3 });
    expect(retried).toEqual({ kind: 'resume', sha: committed.sha });
    const resumed = await resumePlanFromCommit({ git: workspaceBuildGit, workspace: ws, log: silentLog }, committed.sha);

    expect(resumed).toEqual({ kind: 'plan_resumed', sha: committed.sha, plan, specMarkdown });
    expect((await branchLog(ws, 'autonomous/r1')).map((c) => c.sha)).toEqual([committed.sha]);
    fsck(ws);
  });

  it('fails with a reason when the commit has no SPEC.md or no readable plan in it', async () => {
    const git = new FakeBuildGit();
    git.files = { c1: { 'README.md': 'x' }, c2: { [SPEC_PATH]: '# SPEC\n\nprose only\n' } };
    expect(await resumePlanFromCommit({ git, workspace: '/ws', log: silentLog }, 'c1')).toEqual({
      kind: 'resume_failed',
      sha: 'c1',
      reason: "executor_error: the phase's commit c1 has no SPEC.md to resume the plan from",
    });
    expect(await resumePlanFromCommit({ git, workspace: '/ws', log: silentLog }, 'c2')).toEqual({
      kind: 'resume_failed',
      sha: 'c2',
      reason: expect.stringMatching(/^executor_error: SPEC\.md of the phase's commit c2 holds no readable plan: no "## Plan as data"/),
    });
    expect(git.ops).toEqual(['readFileAtRef c1 SPEC.md', 'readFileAtRef c2 SPEC.md']);
  });
});
