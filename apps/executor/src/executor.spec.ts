import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSampleRepository } from '@app/git';
import { LlmError } from '@app/llm';
import { FakeCi, FakeGit, FakeLlm, type FakeReply, FakeSupervisor, bothProviders, makeClaim, silentLog, steppingClock } from '../../../test/executor/attempt-fakes.js';
import type { ExecutorConfig } from './config.js';
import { EXIT, Executor } from './executor.js';
import { SupervisorError, SupervisorUnreachableError } from './supervisor-client.js';
import { WorkspaceLock } from './workspace-lock.js';

let ws: string;
beforeEach(async () => {
  ws = mkdtempSync(path.join(os.tmpdir(), 'autopack-executor-'));
  await createSampleRepository(ws, { 'hello.txt': 'old\n' }, { author: { name: 'T', email: 't@example.com' }, message: 'init', date: new Date('2026-01-01T00:00:00Z') });
});
afterEach(() => rmSync(ws, { recursive: true, force: true }));

const build: FakeReply = { toolInput: { summary: 'greets', edits: [{ path: 'hello.txt', action: 'replace', content: 'new\n' }] } };

function setup(opts: { config?: Partial<ExecutorConfig>; replies?: FakeReply[] } = {}) {
  const config: ExecutorConfig = {
    runId: undefined,
    apiUrl: 'http://supervisor.invalid',
    apiKey: undefined,
    openaiKey: 'sk-test',
    anthropicKey: 'sk-ant-test',
    openaiBaseUrl: undefined,
    anthropicBaseUrl: undefined,
    workspace: ws,
    capabilities: ['builder'],
    pollIntervalSeconds: 0,
    maxIterations: 1,
    dualAuditor: true,
    executorId: 'exec-1',
    exitWhenIdle: true,
    modelsFile: undefined,
    logLevel: 'silent',
    supervisorRetrySeconds: 0,
    ...opts.config,
  };
  const supervisor = new FakeSupervisor();
  const git = new FakeGit();
  const said: string[] = [];
  const executor = new Executor({
    config,
    supervisor,
    llm: new FakeLlm(opts.replies ?? []),
    routing: bothProviders(),
    log: silentLog,
    env: {},
    workspaceLock: new WorkspaceLock(ws, config.executorId),
    git,
    ci: new FakeCi(),
    clock: steppingClock(),
    say: (l) => said.push(l),
  });
  return { executor, supervisor, git, said, reports: () => supervisor.sequence().filter((m) => m !== 'claim' && m !== 'reserveBudget') };
}

describe(Executor.name, () => {
  describe('before claiming', () => {
    it('exits 1 with one line for a workspace that does not exist, claiming nothing', async () => {
      const { executor, supervisor, said } = setup({ config: { workspace: path.join(ws, 'missing') } });
      expect(await executor.run()).toBe(EXIT.usage);
      expect(said).toEqual([`--workspace ${path.join(ws, 'missing')} does not exist`]);
      expect(supervisor.calls).toEqual([]);
    });

    it('exits 1 for a workspace with uncommitted changes', async () => {
      writeFileSync(path.join(ws, 'hello.txt'), 'dirty\n');
      const { executor, said } = setup();
      expect(await executor.run()).toBe(EXIT.usage);
      expect(said).toEqual([`--workspace ${ws} has uncommitted changes (hello.txt); commit or stash them first`]);
    });
  });

  describe('when nothing is claimed', () => {
    it('exits 0 when idle without a run', async () => {
      const { executor, supervisor } = setup();
      expect(await executor.run()).toBe(EXIT.ok);
      expect(supervisor.sequence()).toEqual(['claim']);
    });

    it('exits 0 when its run succeeded and 3, saying why, when it failed', async () => {
      const ok = setup({ config: { runId: 'r1' } });
      ok.supervisor.run = { state: 'DONE_SUCCESS', phases: [], integration_branch: 'autonomous/r1', repo_url: null };
      expect(await ok.executor.run()).toBe(EXIT.ok);

      const failed = setup({ config: { runId: 'r1' } });
      failed.supervisor.run = { state: 'DONE_FAILED_BUDGET_EXHAUSTED', failure_reason: 'run tokens spent', phases: [], integration_branch: 'autonomous/r1', repo_url: null };
      expect(await failed.executor.run()).toBe(EXIT.runFailed);
      expect(failed.said).toEqual(['run r1 ended DONE_FAILED_BUDGET_EXHAUSTED: run tokens spent']);
      expect(failed.git.dropped).toEqual([{ states: {}, runEnded: true }]);
    });

    it('exits 1 for a run the supervisor does not know', async () => {
      const { executor, supervisor, said } = setup({ config: { runId: 'r1' } });
      supervisor.failWith.getRun = new SupervisorError(404, 'NOT_FOUND', 'no run');
      expect(await executor.run()).toBe(EXIT.usage);
      expect(said).toEqual(['run r1 does not exist']);
    });

    it('exits 2 when the supervisor is unreachable and 1 when it refuses the executor', async () => {
      const down = setup();
      down.supervisor.failWith.claim = new SupervisorUnreachableError('supervisor at x unreachable (ECONNREFUSED) after 3 tries');
      expect(await down.executor.run()).toBe(EXIT.unreachable);
      expect(down.said).toEqual(['supervisor unreachable: supervisor at x unreachable (ECONNREFUSED) after 3 tries']);

      const refused = setup();
      refused.supervisor.failWith.claim = new SupervisorError(401, 'UNAUTHORIZED', 'bad key');
      expect(await refused.executor.run()).toBe(EXIT.usage);
      expect(refused.said).toEqual(['the supervisor refused the executor: 401 UNAUTHORIZED: bad key']);
    });
  });

  describe('with a claim', () => {
    it('runs one attempt per claim up to the iteration limit', async () => {
      const { executor, supervisor, git, reports } = setup({ config: { maxIterations: 1 } });
      supervisor.claims.push(makeClaim(), makeClaim({ phase_id: 'p2' }));
      git.phaseCommit = { sha: 'done' };
      expect(await executor.run()).toBe(EXIT.ok);
      expect(reports()).toEqual(['updateStatus:COMPLETE']);
      expect(supervisor.claims).toHaveLength(1);
    });

    it('fails the phase when the budget refuses a call, and goes on', async () => {
      const { executor, supervisor, reports } = setup({ config: { maxIterations: 2 }, replies: [] });
      supervisor.claims.push(makeClaim());
      supervisor.failWith.reserveBudget = new SupervisorError(409, 'BUDGET_EXHAUSTED', 'phase tokens spent');
      expect(await executor.run()).toBe(EXIT.ok);
      expect(reports()).toEqual(['updateStatus:FAILED']);
      expect(supervisor.bodies('updateStatus')[0]).toMatchObject({ failure_reason: expect.stringMatching(/^budget: builder call \(.+\) not admitted: phase tokens spent$/) });
      expect(supervisor.sequence().filter((m) => m === 'claim')).toHaveLength(2);
    });

    it('hands the phase back uncharged and exits 1 with the provider problem', async () => {
      const { executor, supervisor, said, reports } = setup({ replies: [new LlmError('AUTHENTICATION', 'invalid key', { provider: 'openai', status: 401 })] });
      supervisor.claims.push(makeClaim());
      expect(await executor.run()).toBe(EXIT.usage);
      expect(reports()).toEqual(['updateStatus:QUEUED']);
      const body = supervisor.bodies('updateStatus')[0] as { failure_reason: string; usage: { calls: number }; llm_calls: unknown[] };
      expect(body.failure_reason).toMatch(/^provider_error: .*: invalid key$/);
      expect(body.usage.calls).toBe(1);
      expect(body.llm_calls).toHaveLength(1);
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/phase p1 of run r1 was handed back uncharged; check OPENAI_API_KEY \(--openai-key\) and the model routing$/);
    });

    it('fails the phase with the message of an unexpected error, never a stack', async () => {
      const { executor, supervisor, git, reports } = setup();
      supervisor.claims.push(makeClaim());
      git.checkOut = async () => {
        throw new Error('disk full');
      };
      expect(await executor.run()).toBe(EXIT.ok);
      expect(reports()).toEqual(['updateStatus:FAILED']);
      expect(supervisor.bodies('updateStatus')[0]).toEqual({ lease_token: makeClaim().lease_token, state: 'FAILED', failure_reason: 'executor_error: disk full', feedback: 'executor_error: disk full' });
    });

    it('treats a lease lost while reporting as a stop', async () => {
      const { executor, supervisor, git } = setup();
      supervisor.claims.push(makeClaim());
      git.phaseCommit = { sha: 'done' };
      supervisor.failWith.updateStatus = new SupervisorError(409, 'LEASE_LOST', 'lease lost');
      expect(await executor.run()).toBe(EXIT.ok);
      expect(supervisor.sequence()).toEqual(['claim', 'updateStatus:COMPLETE']);
    });

    it('on shutdown hands the lease back, restores the working copy and stops claiming', async () => {
      const { executor, supervisor, reports } = setup({ config: { maxIterations: 5 }, replies: [build] });
      supervisor.claims.push(makeClaim(), makeClaim({ phase_id: 'p2' }));
      supervisor.onCall = (c) => {
        if (c.method === 'builderResult') executor.requestStop();
      };
      expect(await executor.run()).toBe(EXIT.ok);
      expect(reports()).toEqual(['builderResult', 'updateStatus:QUEUED']);
      expect(supervisor.bodies('updateStatus')[0]).toEqual({ lease_token: makeClaim().lease_token, state: 'QUEUED' });
      expect(readFileSync(path.join(ws, 'hello.txt'), 'utf8')).toBe('old\n');
      expect(supervisor.claims).toHaveLength(1);
    });
  });
});
