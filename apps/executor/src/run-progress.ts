import type { PhaseResponse, RunResponse } from '@app/contracts';
import { createRequire } from 'node:module';
import type { MultiBar } from 'cli-progress';
import pc from 'picocolors';

/*
 * A run's progress for people: one line per change (a phase's or the run's state), and a
 * live cli-progress bar of phases complete / total for a terminal. Shared by `autopack status
 * --watch` and the executor (which shows it only when its logs do not share the terminal).
 */

/** Phases complete, and how many there are to complete: SKIPPED ones (a cancelled run's) drop out. */
export function progressOf(phases: readonly PhaseResponse[]): { complete: number; total: number; skipped: number } {
  const skipped = phases.filter((p) => p.state === 'SKIPPED').length;
  return { complete: phases.filter((p) => p.state === 'COMPLETE').length, total: phases.length - skipped, skipped };
}

/** `1/3 phases complete`, `0/0 phases complete, 2 skipped`. */
export function progressText(phases: readonly PhaseResponse[], noun = 'phases complete'): string {
  const { complete, total, skipped } = progressOf(phases);
  return `${complete}/${total} ${noun}${skipped ? `, ${skipped} skipped` : ''}`;
}

const phaseName = (p: { phase_id: string; name: string }) => `phase ${p.phase_id} (${p.name})`;

/** One line saying where a run is: `run r1: PHASE_EXECUTION, 1/3 phases complete, at p2`. */
export function runLine(r: RunResponse): string {
  const current = leased(r);
  return `run ${r.run_id}: ${r.state}, ${progressText(r.phases)}${current ? `, at ${current.phase_id}` : ''}`;
}

/** How to answer a run that waits. */
export const approvalHint = (r: RunResponse) => `run ${r.run_id} waits for approval: approve with \`autopack approve ${r.run_id}\` (or reject with --reject)`;

/**
 * What changed between two polls of a run, one line per change: each phase whose state (or
 * attempt) changed, then the run's own state. The first poll is one summary line.
 */
export function changeLines(prev: RunResponse | undefined, now: RunResponse): string[] {
  if (!prev) return [runLine(now), ...(now.state === 'AWAITING_APPROVAL' ? [approvalHint(now)] : [])];
  const lines: string[] = [];
  const before = new Map(prev.phases.map((p) => [p.phase_id, p]));
  for (const p of now.phases) {
    const b = before.get(p.phase_id);
    if (b && b.state === p.state && b.attempts_used === p.attempts_used) continue;
    const parts: string[] = [];
    // attempts_used counts the attempt a claim starts.
    if (p.state === 'EXECUTING') parts.push(`attempt ${p.attempts_used}/${p.max_attempts}`);
    if ((p.state === 'QUEUED' || p.state === 'FAILED') && p.last_failure_reason) parts.push(p.last_failure_reason);
    if (p.state === 'COMPLETE') parts.push(progressText(now.phases, 'complete'));
    lines.push(`${phaseName(p)}: ${b ? b.state : 'new'} -> ${p.state}${parts.length ? ` (${parts.join(', ')})` : ''}`);
  }
  if (prev.state !== now.state) {
    lines.push(`run ${now.run_id}: ${prev.state} -> ${now.state}, ${progressText(now.phases)}${now.failure_reason ? ` (${now.failure_reason})` : ''}`);
    if (now.state === 'AWAITING_APPROVAL') lines.push(approvalHint(now));
  }
  return lines;
}

const STATE_COLOUR: Readonly<Record<string, (s: string) => string>> = {
  COMPLETE: pc.green,
  DONE_SUCCESS: pc.green,
  SKIPPED: pc.dim,
  FAILED: pc.red,
  CANCELLED: pc.red,
  EXECUTING: pc.yellow,
  GATE: pc.yellow,
  CI_RUNNING: pc.yellow,
  AWAITING_APPROVAL: pc.magenta,
};
/** A state in its colour (a failed end red). */
const coloured = (state: string) => (STATE_COLOUR[state] ?? (state.startsWith('DONE_FAILED') ? pc.red : pc.cyan))(state);

/** A line with its states in colour. */
export const colourStates = (line: string) => line.replace(/\b(QUEUED|EXECUTING|GATE|CI_RUNNING|COMPLETE|FAILED|SKIPPED|CANCELLED|[A-Z]+_[A-Z_]+)\b/g, (s) => coloured(s));

/** The phase an executor holds now, if any. */
const leased = (r: RunResponse) => r.phases.find((p) => p.state === 'EXECUTING' || p.state === 'GATE' || p.state === 'CI_RUNNING');

/**
 * A cli-progress bar of phases complete / total, with each change logged above it in colour.
 * Give it each new look at a run (`show`); another run's look starts the bar over. When it
 * stops, the bar is replaced by the run's last line: cli-progress's own final render cuts a
 * coloured line at the terminal width counting escape codes, and drops logged lines not yet
 * rendered, so every change is flushed at once (`update()`) and the end written here.
 */
export class RunProgressBar {
  private readonly multi: MultiBar;
  private bar: ReturnType<MultiBar['create']> | undefined;
  private last: RunResponse | undefined;
  private stopped = false;
  /** Ctrl-C: give the cursor and line wrapping back first. */
  private readonly interrupted = () => this.stop();

  constructor(private readonly stream: NodeJS.WriteStream) {
    // Loaded here, not at start: most executors never draw a bar (their stdout is no terminal).
    const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
    this.multi = new cliProgress.MultiBar({
      stream,
      format: `${pc.bold('{run}')} {bar} {value}/{total} phases | {state}{current}`,
      hideCursor: true,
      clearOnComplete: true,
      barsize: 30,
      fps: 10,
    });
    process.prependOnceListener('SIGINT', this.interrupted);
  }

  show(now: RunResponse): void {
    if (this.stopped) return;
    const prev = this.last?.run_id === now.run_id ? this.last : undefined;
    this.last = now;
    const current = leased(now);
    const payload = { run: now.run_id, state: coloured(now.state), current: current ? ` | ${current.phase_id} ${pc.dim(current.name)}` : '' };
    for (const line of prev ? changeLines(prev, now) : []) this.multi.log(`${colourStates(line)}\n`);
    const { complete, total } = progressOf(now.phases);
    if (!this.bar) this.bar = this.multi.create(total, complete, payload);
    else {
      this.bar.setTotal(total);
      this.bar.update(complete, payload);
    }
    this.multi.update();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    process.removeListener('SIGINT', this.interrupted);
    this.multi.stop();
    if (this.last) this.stream.write(`${colourStates(runLine(this.last))}\n`);
  }
}
