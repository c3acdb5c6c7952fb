import { FakeCi, FakeGit, ciResult, silentLog } from '../../../../test/executor/attempt-fakes.js';
import { AttemptStoppedError } from '../lease-keeper.js';
import { Verifier } from './verify.js';

const spec = { command: 'npm test' };
const live = () => new AbortController().signal;

function setup(results: ConstructorParameters<typeof FakeCi>[0]) {
  const git = new FakeGit();
  const ci = new FakeCi(results);
  return { git, ci, verifier: new Verifier({ git, ci, workspace: '/ws' }) };
}

describe(Verifier.name, () => {
  describe('baseline', () => {
    it('runs CI on the branch head once per head and command', async () => {
      const { git, ci, verifier } = setup([ciResult({ exitCode: 0 }), ciResult({ passed: false, exitCode: 1 })]);
      const first = await verifier.baseline('autonomous/r1', spec, live(), silentLog);
      expect(await verifier.baseline('autonomous/r1', spec, live(), silentLog)).toBe(first);
      expect(ci.runs).toEqual(['npm test']);
      git.head = 'moved';
      expect((await verifier.baseline('autonomous/r1', spec, live(), silentLog)).exitCode).toBe(1);
      expect(ci.runs).toHaveLength(2);
      expect(git.ops).toContain('headCommit autonomous/r1');
    });

    it('does not keep a baseline cut short by a stop', async () => {
      const stop = new AbortController();
      const { ci, verifier } = setup([
        () => {
          stop.abort(new AttemptStoppedError('lease_lost'));
          return ciResult({ passed: false, exitCode: null, timedOut: true });
        },
        ciResult(),
      ]);
      await expect(verifier.baseline('autonomous/r1', spec, stop.signal, silentLog)).rejects.toMatchObject({ reason: 'lease_lost' });
      expect((await verifier.baseline('autonomous/r1', spec, live(), silentLog)).passed).toBe(true);
      expect(ci.runs).toHaveLength(2);
    });
  });

  describe('verify', () => {
    it('accepts a change whose CI passes', async () => {
      const baseline = ciResult();
      const { verifier } = setup([ciResult({ durationMs: 20 })]);
      expect(await verifier.verify(spec, baseline, live(), silentLog)).toEqual({
        kind: 'ci_accepted',
        ci: { command: 'npm test', result: ciResult({ durationMs: 20 }), verdict: { accepted: true, baselineFailed: false, newFailures: [] }, baseline },
      });
    });

    it('rejects a change whose CI fails on a passing baseline', async () => {
      const { verifier } = setup([ciResult({ passed: false, exitCode: 1, outputTail: 'FAIL src/a.spec.ts\n' })]);
      const result = await verifier.verify(spec, ciResult(), live(), silentLog);
      expect(result).toMatchObject({ kind: 'ci_rejected', reason: 'ci_failed: `npm test` exit code 1' });
      expect(result.kind === 'ci_rejected' && result.feedback).toBe(
        'The CI command `npm test` failed (exit code 1) after your previous change, which was discarded.\nLast output:\nFAIL src/a.spec.ts\n',
      );
    });

    it('accepts a failure no worse than the baseline, and rejects one that adds failures', async () => {
      const baseline = ciResult({ passed: false, exitCode: 1, outputTail: 'FAIL src/old.spec.ts\n' });
      const { verifier } = setup([
        ciResult({ passed: false, exitCode: 1, outputTail: 'FAIL src/old.spec.ts\n' }),
        ciResult({ passed: false, exitCode: 1, outputTail: 'FAIL src/old.spec.ts\nFAIL src/new.spec.ts\n' }),
      ]);
      expect(await verifier.verify(spec, baseline, live(), silentLog)).toMatchObject({ kind: 'ci_accepted', ci: { verdict: { accepted: true, baselineFailed: true } } });
      const worse = await verifier.verify(spec, baseline, live(), silentLog);
      expect(worse).toMatchObject({ kind: 'ci_rejected', reason: 'ci_failed: `npm test` exit code 1 with 1 new failure line(s); it already failed before the change' });
      expect(worse.kind === 'ci_rejected' && worse.feedback).toContain('only new failures count. These failures are new:\n- FAIL src/new.spec.ts');
    });

    it('rejects a timed-out run even when the baseline failed', async () => {
      const { verifier } = setup([ciResult({ passed: false, exitCode: null, timedOut: true, outputTail: '' })]);
      const result = await verifier.verify(spec, ciResult({ passed: false, exitCode: 1 }), live(), silentLog);
      expect(result).toMatchObject({ kind: 'ci_rejected', reason: 'ci_failed: `npm test` timed out with 0 new failure line(s); it already failed before the change' });
    });

    it('ends the attempt when it was stopped during CI', async () => {
      const stop = new AbortController();
      const { verifier } = setup([
        () => {
          stop.abort(new AttemptStoppedError('shutdown'));
          return ciResult();
        },
      ]);
      await expect(verifier.verify(spec, undefined, stop.signal, silentLog)).rejects.toBeInstanceOf(AttemptStoppedError);
    });
  });
});
