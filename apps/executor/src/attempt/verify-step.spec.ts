import { GitError } from '@app/git';
import { FakeCi, FakeGit, ciResult, silentLog } from '../../../../test/executor/attempt-fakes.js';
import { AttemptStoppedError } from '../lease-keeper.js';
import { verifyBuild, verifyCommands } from './verify-step.js';

const integration = { branch: 'autonomous/r1' };
const live = () => new AbortController().signal;

function setup(results: ConstructorParameters<typeof FakeCi>[0]) {
  const git = new FakeGit();
  git.head = 'a'.repeat(40);
  const ci = new FakeCi(results);
  return { git, ci, deps: { git, ci, workspace: '/ws', log: silentLog } };
}

describe(verifyCommands.name, () => {
  it("runs the run's command first, then each distinct phase command once, with the longest timeout asked for", () => {
    expect(
      verifyCommands({ command: 'npm test', timeout_s: 60 }, [{ command: 'npm run lint' }, null, { command: 'npm test', timeout_s: 300 }, undefined, { command: 'npm run lint', timeout_s: 10 }]),
    ).toEqual([
      { command: 'npm test', timeout_s: 300 },
      { command: 'npm run lint', timeout_s: 10 },
    ]);
    expect(verifyCommands(null, [{ command: 'make check' }, { command: 'make check' }])).toEqual([{ command: 'make check' }]);
    expect(verifyCommands(null)).toEqual([]);
  });
});

describe(verifyBuild.name, () => {
  it('runs every command on the branch head and passes when all pass', async () => {
    const { git, ci, deps } = setup([ciResult({ durationMs: 10 }), ciResult({ durationMs: 20 })]);
    const result = await verifyBuild(deps, integration, { runCi: { command: 'npm test' }, phaseCis: [{ command: 'npm run lint' }, { command: 'npm test' }], signal: live() });
    expect(result).toEqual({
      kind: 'verified',
      head: 'a'.repeat(40),
      results: [
        { command: 'npm test', passed: true, exitCode: 0, timedOut: false, durationMs: 10 },
        { command: 'npm run lint', passed: true, exitCode: 0, timedOut: false, durationMs: 20 },
      ],
    });
    expect(ci.runs).toEqual(['npm test', 'npm run lint']);
    expect(git.ops).toEqual(['headCommit autonomous/r1']);
  });

  it('fails at the first failing command, with no baseline to excuse it, keeping the end of its output', async () => {
    const output = `${'x'.repeat(5000)}\nAssertionError: expected 200, got 500\n`;
    const { ci, deps } = setup([ciResult({ passed: false, exitCode: 1, outputTail: output }), ciResult()]);
    const result = await verifyBuild(deps, integration, { runCi: { command: 'npm test' }, phaseCis: [{ command: 'npm run lint' }], signal: live() });
    expect(result).toEqual({
      kind: 'verify_failed',
      head: 'a'.repeat(40),
      reason: `ci_failed: \`npm test\` exit code 1 on the integration branch head ${'a'.repeat(12)}`,
      outputTail: output.slice(-4000),
      results: [{ command: 'npm test', passed: false, exitCode: 1, timedOut: false, durationMs: 1500 }],
    });
    expect((result as { outputTail: string }).outputTail).toMatch(/AssertionError: expected 200, got 500\n$/);
    expect(ci.runs).toEqual(['npm test']);
  });

  it('says when a command timed out, and verifies an unborn branch as such', async () => {
    const { git, deps } = setup([ciResult({ passed: false, exitCode: null, timedOut: true, durationMs: 600_000 })]);
    git.headCommit = async () => {
      throw new GitError('REF_NOT_FOUND', 'unborn', {});
    };
    const result = await verifyBuild(deps, integration, { runCi: null, phaseCis: [{ command: 'node --test' }], signal: live() });
    expect(result).toMatchObject({ kind: 'verify_failed', head: null, reason: 'ci_failed: `node --test` timed out after 600 s on the integration branch head (unborn)' });
  });

  it('passes with nothing run when the build has no CI command', async () => {
    const { ci, deps } = setup([]);
    expect(await verifyBuild(deps, integration, { runCi: null, signal: live() })).toEqual({ kind: 'verified', head: 'a'.repeat(40), results: [] });
    expect(ci.runs).toEqual([]);
  });

  it('ends the attempt, not the step, when it is stopped during or before CI', async () => {
    const stop = new AbortController();
    const { ci, deps } = setup([
      () => {
        stop.abort(new AttemptStoppedError('lease_lost'));
        return ciResult({ passed: false, exitCode: null });
      },
    ]);
    await expect(verifyBuild(deps, integration, { runCi: { command: 'npm test' }, signal: stop.signal })).rejects.toMatchObject({ reason: 'lease_lost' });
    await expect(verifyBuild(deps, integration, { runCi: { command: 'npm test' }, signal: stop.signal })).rejects.toBeInstanceOf(AttemptStoppedError);
    expect(ci.runs).toEqual(['npm test']);
  });
});
