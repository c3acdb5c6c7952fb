import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClaimResponse } from '@app/contracts';
import { FakeCi, FakeGit, FakeLlm, type FakeReply, FakeSupervisor, bothProviders, ciResult, makeClaim, silentLog, steppingClock } from '../../../../test/executor/attempt-fakes.js';
import { AttemptStoppedError } from '../lease-keeper.js';
import { SupervisorError } from '../supervisor-client.js';
import { MeteredLlm } from './metered-llm.js';
import { runAttempt } from './pipeline.js';
import { AttemptReporter } from './reporter.js';
import { Verifier } from './verify.js';

const routing = bothProviders();
let ws: string;
const file = () => path.join(ws, 'hello.txt');
const marker = () => path.join(ws, '.git', 'autopack', 'inflight.json');
beforeEach(() => {
  ws = mkdtempSync(path.join(os.tmpdir(), 'autopack-pipeline-'));
  mkdirSync(path.join(ws, '.git'));
  writeFileSync(file(), 'old\n');
});
afterEach(() => rmSync(ws, { recursive: true, force: true }));

const build: FakeReply = { toolInput: { summary: 'greets', edits: [{ path: 'hello.txt', action: 'replace', content: 'new\n' }] } };
const approve: FakeReply = { toolInput: { approved: true, summary: 'fine', issues: [] } };
const reject: FakeReply = { toolInput: { approved: false, summary: 'no', issues: [] } };

function setup(opts: { replies?: FakeReply[]; ci?: ConstructorParameters<typeof FakeCi>[0]; claim?: ClaimResponse; signal?: AbortSignal } = {}) {
  const claim = opts.claim ?? makeClaim();
  const supervisor = new FakeSupervisor();
  const git = new FakeGit();
  const ci = new FakeCi(opts.ci ?? []);
  const llm = new MeteredLlm({ llm: new FakeLlm(opts.replies ?? []), supervisor, routing, clock: steppingClock(), log: silentLog }, claim);
  const reporter = new AttemptReporter(supervisor, claim, llm, silentLog);
  const deps = { workspace: ws, git, supervisor, verifier: new Verifier({ git, ci, workspace: ws }), routing, dualAuditor: true };
  const attempt = () => runAttempt(deps, { claim, signal: opts.signal ?? new AbortController().signal, log: silentLog, llm, reporter });
  /** The reports, without budget reservations. */
  const reports = () => supervisor.sequence().filter((m) => m !== 'reserveBudget');
  return { supervisor, git, ci, attempt, reports, deps };
}
const withCi = makeClaim({ run: { ci: { command: 'npm test' } } });

describe(runAttempt.name, () => {
  it('builds, reviews, commits and publishes, reporting each stage in order', async () => {
    const { attempt, reports, git } = setup({ replies: [build, approve] });
    expect(await attempt()).toBe('complete');
    expect(reports()).toEqual(['builderResult', 'auditorRequest', 'auditorResult']);
    expect(git.ops.slice(-2)).toEqual(['commit hello.txt|', 'publish commit1 on base0000']);
    expect(readFileSync(file(), 'utf8')).toBe('new\n');
    expect(existsSync(marker())).toBe(false);
  });

  it('runs CI on the branch head before building and on the change before the audit', async () => {
    const { attempt, reports, ci } = setup({ claim: withCi, replies: [build, approve], ci: [ciResult(), ciResult()] });
    expect(await attempt()).toBe('complete');
    expect(ci.runs).toEqual(['npm test', 'npm test']);
    expect(reports()).toEqual(['builderResult+CI_RUNNING', 'auditorRequest', 'auditorResult']);
  });

  it("keeps the accepted change's CI result as the baseline of its commit: the next phase runs CI once, not twice", async () => {
    const { attempt, ci, git, deps, supervisor } = setup({ claim: withCi, replies: [build, approve], ci: [ciResult(), ciResult(), ciResult()] });
    expect(await attempt()).toBe('complete');
    expect(ci.runs).toHaveLength(2);
    // The next phase starts on the commit just published.
    git.head = 'commit1';
    writeFileSync(file(), 'old\n');
    const next = makeClaim({ run: { ci: { command: 'npm test' } }, phase_id: 'p2', phase: { phase_id: 'p2' } });
    const llm = new MeteredLlm({ llm: new FakeLlm([build, approve]), supervisor, routing, clock: steppingClock(), log: silentLog }, next);
    const reporter = new AttemptReporter(supervisor, next, llm, silentLog);
    expect(await runAttempt(deps, { claim: next, signal: new AbortController().signal, log: silentLog, llm, reporter })).toBe('complete');
    expect(ci.runs).toHaveLength(3);
  });

  it('reports a phase commit already on the branch, building nothing', async () => {
    const { attempt, reports, git } = setup();
    git.phaseCommit = { sha: 'done' };
    expect(await attempt()).toBe('resumed');
    expect(reports()).toEqual(['updateStatus:COMPLETE']);
  });

  it('reports a failed build and leaves the workspace as it was', async () => {
    const { attempt, reports } = setup({ replies: [{ toolInput: undefined, malformedReason: 'no tool call in reply' }] });
    expect(await attempt()).toBe('builder_failed');
    expect(reports()).toEqual(['builderResult']);
    expect(readFileSync(file(), 'utf8')).toBe('old\n');
  });

  it('restores the change before it reports CI that fails against a passing baseline', async () => {
    const { attempt, reports, supervisor } = setup({ claim: withCi, replies: [build], ci: [ciResult(), ciResult({ passed: false, exitCode: 1 })] });
    const seen: string[] = [];
    supervisor.onCall = (c) => seen.push(`${c.method}:${readFileSync(file(), 'utf8').trim()}`);
    expect(await attempt()).toBe('ci_failed');
    expect(reports()).toEqual(['builderResult+CI_RUNNING', 'updateStatus:FAILED']);
    expect(seen.filter((s) => !s.startsWith('reserveBudget'))).toEqual(['builderResult:new', 'updateStatus:old']);
    expect(existsSync(marker())).toBe(false);
  });

  it('stops, restoring the change, when the supervisor refuses to start CI', async () => {
    const { attempt, reports, supervisor, ci } = setup({ claim: withCi, replies: [build], ci: [ciResult()] });
    supervisor.phaseStateOf.builderResult = 'FAILED';
    await expect(attempt()).rejects.toMatchObject({ reason: 'run_stopped' });
    expect(ci.runs).toHaveLength(1);
    expect(reports()).toEqual(['builderResult+CI_RUNNING']);
    expect(readFileSync(file(), 'utf8')).toBe('old\n');
  });

  it('restores the change before it reports a change the auditor rejects', async () => {
    const { attempt, reports, supervisor, git } = setup({ replies: [build, reject] });
    let atReport = '';
    supervisor.onCall = (c) => {
      if (c.method === 'auditorResult') atReport = readFileSync(file(), 'utf8');
    };
    expect(await attempt()).toBe('auditor_rejected');
    expect(reports()).toEqual(['builderResult', 'auditorRequest', 'auditorResult']);
    expect(atReport).toBe('old\n');
    expect((supervisor.bodies('auditorResult')[0] as { recommendation: string }).recommendation).toBe('revise');
    expect(git.ops.some((o) => o.startsWith('commit'))).toBe(false);
  });

  it('hands the phase back when another executor pushed first', async () => {
    const { attempt, reports, git } = setup({ replies: [build, approve] });
    git.publishAs = { kept: false, phaseCommit: null };
    expect(await attempt()).toBe('push_rejected');
    expect(reports()).toEqual(['builderResult', 'auditorRequest', 'updateStatus:QUEUED']);
  });

  it('reports the commit of this phase that won a lost push', async () => {
    const { attempt, reports, git } = setup({ replies: [build, approve] });
    git.publishAs = { kept: false, phaseCommit: 'theirs' };
    expect(await attempt()).toBe('resumed');
    expect(reports()).toEqual(['builderResult', 'auditorRequest', 'updateStatus:COMPLETE']);
  });

  it('drops its commit when the lease was lost before the report and the phase ended without it', async () => {
    const { attempt, supervisor, git } = setup({ replies: [build, approve] });
    supervisor.failWith.auditorResult = new SupervisorError(409, 'LEASE_LOST', 'lease lost');
    supervisor.run = { state: 'PHASE_EXECUTION', phases: [{ phase_id: 'p1', state: 'FAILED' }] as unknown as FakeSupervisor['run']['phases'] };
    await expect(attempt()).rejects.toMatchObject({ code: 'LEASE_LOST' });
    expect(supervisor.sequence().slice(-2)).toEqual(['auditorResult', 'getRun']);
    expect(git.ops.at(-1)).toBe('resetBranch autonomous/r1 base0000');
  });

  it('stops after the build report when the lease is gone, restoring the change', async () => {
    const stop = new AbortController();
    const { attempt, reports, supervisor } = setup({ replies: [build], signal: stop.signal });
    supervisor.onCall = (c) => {
      if (c.method === 'builderResult') stop.abort(new AttemptStoppedError('lease_lost'));
    };
    await expect(attempt()).rejects.toMatchObject({ reason: 'lease_lost' });
    expect(reports()).toEqual(['builderResult']);
    expect(readFileSync(file(), 'utf8')).toBe('old\n');
  });
});
