import type { CiSpec } from '@app/contracts';
import type { Logger } from 'pino';
import { CiBaselineCache, type CiResult, type CiVerdict, judgeCi } from '../ci-runner.js';
import { type AttemptGit, type CiRunner, branchHeadOrNull } from './ports.js';
import { throwIfStopped } from './stop.js';

/** One CI run of an attempt's change, judged against the baseline. */
export interface CiOutcome {
  command: string;
  result: CiResult;
  verdict: CiVerdict;
  baseline: CiResult | undefined;
}

/**
 * What verifying produced: no CI configured, CI accepted (it passed, or failed no worse than the
 * unchanged branch head), or CI rejected, with the reason and the next attempt's feedback.
 */
export type VerifyResult =
  | { kind: 'ci_skipped' }
  | { kind: 'ci_accepted'; ci: CiOutcome }
  | { kind: 'ci_rejected'; ci: CiOutcome; reason: string; feedback: string };

/** The next attempt's feedback after a CI failure; with a failing baseline, it names what is new. */
function ciFailureFeedback(command: string, exit: string, result: CiResult, verdict: CiVerdict): string {
  const news = verdict.newFailures.slice(0, 30).map((l) => `- ${l.slice(0, 300)}`);
  const baselineNote = verdict.baselineFailed
    ? `\nThe command already failed before your change, so only new failures count.${news.length ? ` These failures are new:\n${news.join('\n')}` : ''}`
    : '';
  return `The CI command \`${command}\` failed (${exit}) after your previous change, which was discarded.${baselineNote}\nLast output:\n${result.outputTail.slice(-4000)}`;
}

/**
 * Stage 3: CI against the baseline. An attempt is held to what the unchanged branch head
 * achieves, so CI runs there first (`baseline`, before the build), once per (head commit,
 * command) for the executor's lifetime; `verify` then runs it on the applied change.
 */
export class Verifier {
  private readonly baselines = new CiBaselineCache();

  constructor(private readonly deps: { git: Pick<AttemptGit, 'headCommit'>; ci: CiRunner; workspace: string }) {}

  /** CI of the clean branch head. */
  async baseline(branch: string, spec: CiSpec, signal: AbortSignal, log: Logger): Promise<CiResult> {
    // An unborn branch (empty repository) has no commit yet: its baseline is the empty tree's.
    const head = (await branchHeadOrNull(this.deps.git, this.deps.workspace, branch)) ?? '(unborn)';
    return this.baselines.get(head, spec.command, async () => {
      log.info({ head, command: spec.command }, 'running CI on the unchanged branch head (baseline)');
      const result = await this.deps.ci.run(spec, signal);
      // A run cut short by a lost lease or shutdown says nothing about the branch.
      throwIfStopped(signal);
      log.info({ head, passed: result.passed, exit_code: result.exitCode, ms: result.durationMs }, 'baseline CI finished');
      return result;
    });
  }

  /**
   * The change CI ran on became commit `headSha`: its CI result is that commit's baseline, so
   * the next phase on it does not run the same command on the same tree again.
   */
  rememberBaseline(headSha: string, ci: CiOutcome): void {
    this.baselines.remember(headSha, ci.command, ci.result);
  }

  /** CI of the applied change, judged against `baseline`. */
  async verify(spec: CiSpec, baseline: CiResult | undefined, signal: AbortSignal, log: Logger): Promise<VerifyResult> {
    const result = await this.deps.ci.run(spec, signal);
    throwIfStopped(signal);
    const verdict = judgeCi(result, baseline);
    const ci: CiOutcome = { command: spec.command, result, verdict, baseline };
    log.info({ passed: result.passed, accepted: verdict.accepted, baseline_failed: verdict.baselineFailed, exit_code: result.exitCode, ms: result.durationMs }, 'CI finished');
    if (verdict.accepted) return { kind: 'ci_accepted', ci };
    const exit = result.timedOut ? 'timed out' : `exit code ${result.exitCode}`;
    return {
      kind: 'ci_rejected',
      ci,
      reason: `ci_failed: \`${spec.command}\` ${exit}${verdict.baselineFailed ? ` with ${verdict.newFailures.length} new failure line(s); it already failed before the change` : ''}`,
      feedback: ciFailureFeedback(spec.command, exit, result, verdict),
    };
  }
}
