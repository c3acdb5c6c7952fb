import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClaimedBuild, ClaimResponse, PhaseKind, SubmitPlanArgs } from '@app/contracts';
import { GitError } from '@app/git';
import { FakeBuildGit, FakeCi, FakeGit, FakeLlm, type FakeReply, FakeSupervisor, bothProviders, ciResult, makeClaim, silentLog, steppingClock } from '../../../../test/executor/attempt-fakes.js';
import { isBuildStepClaim, runBuildStep } from './build-step.js';
import { MeteredLlm } from './metered-llm.js';

const routing = bothProviders();
let ws: string;
beforeEach(() => {
  ws = mkdtempSync(path.join(os.tmpdir(), 'autopack-build-step-'));
  mkdirSync(path.join(ws, '.git'));
});
afterEach(() => rmSync(ws, { recursive: true, force: true }));

const PLAN: SubmitPlanArgs = {
  tiers: [{ tier_id: 'svc', tier_index: 0, name: 'Service' }],
  phases: [{ phase_id: 'api', phase_index: 0, tier_id: 'svc', name: 'API', task_category: 'feature_scaffolding', ci: { command: 'node --test' } }],
};

function buildContext(patch: Partial<ClaimedBuild> = {}): ClaimedBuild {
  return {
    build_id: 'b1',
    intent: 'A tiny API that says hello',
    droplet_id: null,
    droplet_name: 'hello',
    plan: PLAN,
    plan_budgets: { tokens_left: 5_000_000, cost_left_usd: null, max_phases: 40 },
    taken_ids: { tier_ids: ['build-spec', 'build-package', 'build-verify', 'build-promote', 'build-deploy'], phase_ids: ['spec', 'package', 'verify', 'promote', 'deploy'] },
    promoted_from: null,
    promoted_to: null,
    ...patch,
  };
}

function setup(kind: PhaseKind, opts: { build?: Partial<ClaimedBuild>; replies?: FakeReply[]; ci?: ConstructorParameters<typeof FakeCi>[0] } = {}) {
  const claim = makeClaim({ phase_id: kind === 'plan' ? 'spec' : kind, phase: { kind, phase_id: kind === 'plan' ? 'spec' : kind }, build: buildContext(opts.build) }) as ClaimResponse & { build: ClaimedBuild };
  const supervisor = new FakeSupervisor();
  const git = new FakeGit();
  const buildGit = new FakeBuildGit();
  const ci = new FakeCi(opts.ci ?? []);
  const llm = new MeteredLlm({ llm: new FakeLlm(opts.replies ?? []), supervisor, routing, clock: steppingClock(), log: silentLog }, claim);
  const step = () => runBuildStep({ workspace: ws, git, buildGit, supervisor, ci, routing }, { claim, signal: new AbortController().signal, log: silentLog, llm });
  const reports = () => supervisor.sequence().filter((m) => m !== 'reserveBudget');
  return { claim, supervisor, git, buildGit, ci, step, reports };
}

describe(runBuildStep.name, () => {
  it('tells build steps from planned code phases by the claim', () => {
    expect(isBuildStepClaim(setup('verify').claim)).toBe(true);
    expect(isBuildStepClaim(makeClaim())).toBe(false);
    expect(isBuildStepClaim({ ...setup('verify').claim, phase: { ...makeClaim().phase, kind: 'code' } })).toBe(false);
  });

  it('plans, has the plan accepted, then commits SPEC.md and completes with that commit', async () => {
    const { step, reports, supervisor, git } = setup('plan', { build: { plan: null }, replies: [{ toolInput: PLAN }] });
    expect(await step()).toBe('complete');
    expect(reports()).toEqual(['stepResult', 'updateStatus:COMPLETE']);
    expect(supervisor.bodies('stepResult')[0]).toMatchObject({ kind: 'plan', plan: PLAN, usage: { prompt_tokens: 1000, completion_tokens: 200 } });
    expect(git.ops).toContain('commit SPEC.md|');
    expect(supervisor.bodies('updateStatus')[0]).toMatchObject({ state: 'COMPLETE', commit_sha: 'commit1' });
  });

  it('commits nothing when the supervisor refuses the plan', async () => {
    const { step, reports, supervisor, git } = setup('plan', { build: { plan: null }, replies: [{ toolInput: PLAN }] });
    supervisor.planProblems = ['phase api: too expensive'];
    expect(await step()).toBe('builder_failed');
    expect(reports()).toEqual(['stepResult']);
    expect(git.ops.some((o) => o.startsWith('commit'))).toBe(false);
  });

  it('reports a plan that fails the rules as a failed attempt with feedback, without asking the supervisor to accept it', async () => {
    const bad = { ...PLAN, phases: [{ ...PLAN.phases[0], phase_id: 'verify' }] };
    const { step, reports, supervisor } = setup('plan', { build: { plan: null }, replies: [{ toolInput: bad }] });
    expect(await step()).toBe('builder_failed');
    expect(reports()).toEqual(['updateStatus:FAILED']);
    expect(String((supervisor.bodies('updateStatus')[0] as { feedback: string }).feedback)).toMatch(/verify/);
  });

  it('with a plan accepted earlier (a resumed planning step) commits the SPEC without calling the planner', async () => {
    const { step, reports } = setup('plan', { replies: [] });
    expect(await step()).toBe('complete');
    expect(reports()).toEqual(['updateStatus:COMPLETE']);
    expect(readFileSync(path.join(ws, 'SPEC.md'), 'utf8')).toContain('A tiny API that says hello');
  });

  it('reports a commit of the step already on the branch instead of working again', async () => {
    const { step, reports, supervisor, git } = setup('package');
    git.phaseCommit = { sha: 'earlier1' };
    expect(await step()).toBe('complete');
    expect(reports()).toEqual(['updateStatus:COMPLETE']);
    expect(supervisor.bodies('updateStatus')[0]).toMatchObject({ commit_sha: 'earlier1' });
  });

  it('verifies with the plan\'s CI and fails the attempt with the output when it fails', async () => {
    const { step, supervisor, ci } = setup('verify', { ci: [ciResult({ passed: false, exitCode: 1, outputTail: 'not ok 1 - hello\n' })] });
    expect(await step()).toBe('ci_failed');
    expect(ci.runs).toEqual(['node --test']);
    expect(supervisor.bodies('updateStatus')[0]).toMatchObject({ state: 'FAILED', ci_passed: false, feedback: expect.stringContaining('not ok 1 - hello') });
  });

  it('promotes, reports where the base branch moved from and to, then completes', async () => {
    const { step, reports, supervisor, buildGit } = setup('promote');
    expect(await step()).toBe('complete');
    expect(reports()).toEqual(['stepResult', 'stepResult', 'updateStatus:COMPLETE']);
    // Where the base was, before it moved (the fake's branch head), then where it went.
    expect(supervisor.bodies('stepResult')).toEqual([
      expect.objectContaining({ kind: 'promoting', from: 'base0000' }),
      expect.objectContaining({ kind: 'promoted', from: 'base0000', to: 'head0000', pushed: false }),
    ]);
    expect(buildGit.promotions.map((p) => p.base)).toEqual(['main']);
  });

  it('fails the attempt when promotion is refused, reporting no promotion', async () => {
    const { step, reports, buildGit, supervisor } = setup('promote');
    buildGit.promoteAs = new GitError('MERGE_CONFLICT', 'conflict in app.js', { paths: ['app.js'] });
    expect(await step()).toBe('builder_failed');
    expect(reports()).toEqual(['stepResult', 'updateStatus:FAILED']);
    expect(supervisor.bodies('stepResult')).toEqual([expect.objectContaining({ kind: 'promoting' })]);
    expect(String((supervisor.bodies('updateStatus')[0] as { failure_reason: string }).failure_reason)).toMatch(/MERGE_CONFLICT/);
  });

  it('rolls the base branch back to where promotion found it, guarded by where promotion put it', async () => {
    const { step, reports, buildGit } = setup('rollback', { build: { promoted_from: 'base0000', promoted_to: 'head0000' } });
    expect(await step()).toBe('complete');
    expect(reports()).toEqual(['updateStatus:COMPLETE']);
    expect(buildGit.resets).toEqual([expect.objectContaining({ branch: 'main', sha: 'base0000', expected: 'head0000' })]);
  });
});
