import type { PhaseResponse, RunResponse } from '@app/contracts';
import { Writable } from 'node:stream';
import { RunProgressBar, changeLines, runLine } from './run-progress.js';

const phase = (id: string, state: PhaseResponse['state'], attempts = 0): PhaseResponse =>
  ({ phase_id: id, name: id.toUpperCase(), state, attempts_used: attempts, max_attempts: 3, last_failure_reason: null }) as PhaseResponse;
const run = (state: RunResponse['state'], phases: PhaseResponse[]): RunResponse => ({ run_id: 'r1', state, failure_reason: null, phases }) as RunResponse;

/** A terminal-like stream that keeps what is written, escape codes stripped. */
function fakeTty() {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: true, columns: 80, cursorTo: () => true, clearLine: () => true, moveCursor: () => true, clearScreenDown: () => true });
  // eslint-disable-next-line no-control-regex
  return { stream, text: () => text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '') };
}

describe('run progress', () => {
  it('one line per change: phase states (with attempts), then the run; SKIPPED phases leave the total', () => {
    const a = run('RUN_CREATED', [phase('p1', 'QUEUED'), phase('p2', 'QUEUED')]);
    const b = run('PHASE_EXECUTION', [phase('p1', 'EXECUTING', 1), phase('p2', 'QUEUED')]);
    const c = run('CANCELLED', [phase('p1', 'COMPLETE', 1), phase('p2', 'SKIPPED')]);
    expect(changeLines(undefined, a)).toEqual(['run r1: RUN_CREATED, 0/2 phases complete']);
    expect(changeLines(a, b)).toEqual(['phase p1 (P1): QUEUED -> EXECUTING (attempt 1/3)', 'run r1: RUN_CREATED -> PHASE_EXECUTION, 0/2 phases complete']);
    expect(changeLines(b, b)).toEqual([]);
    expect(changeLines(b, c)).toEqual(['phase p1 (P1): EXECUTING -> COMPLETE (1/1 complete, 1 skipped)', 'phase p2 (P2): QUEUED -> SKIPPED', 'run r1: PHASE_EXECUTION -> CANCELLED, 1/1 phases complete, 1 skipped']);
    expect(runLine(b)).toBe('run r1: PHASE_EXECUTION, 0/2 phases complete, at p1');
  });

  it('the bar logs every change above it and, stopped, leaves the run line whole', () => {
    const tty = fakeTty();
    const bar = new RunProgressBar(tty.stream);
    bar.show(run('RUN_CREATED', [phase('p1', 'QUEUED'), phase('p2', 'QUEUED')]));
    bar.show(run('PHASE_EXECUTION', [phase('p1', 'COMPLETE', 1), phase('p2', 'EXECUTING', 1)]));
    bar.show(run('DONE_SUCCESS', [phase('p1', 'COMPLETE', 1), phase('p2', 'COMPLETE', 1)]));
    bar.stop();
    bar.stop();
    const out = tty.text();
    expect(out).toContain('1/2 phases | PHASE_EXECUTION | p2 P2');
    for (const line of ['phase p1 (P1): QUEUED -> COMPLETE (1/2 complete)', 'phase p2 (P2): EXECUTING -> COMPLETE (2/2 complete)', 'run r1: PHASE_EXECUTION -> DONE_SUCCESS, 2/2 phases complete']) {
      expect(out).toContain(line);
    }
    expect(out.trimEnd().endsWith('run r1: DONE_SUCCESS, 2/2 phases complete')).toBe(true);
    expect(process.listenerCount('SIGINT')).toBe(0);
  });
});
