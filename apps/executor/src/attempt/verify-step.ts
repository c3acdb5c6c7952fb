import { type CiSpec, failureReason } from '@app/contracts';
import type { Logger } from 'pino';
import type { IntegrationBranch } from '../integration-branch.js';
import { type AttemptGit, type CiRunner, branchHeadOrNull } from './ports.js';
import { throwIfStopped } from './stop.js';

/** How much of a failing command's output the result keeps (its end, where the failure is). */
const OUTPUT_TAIL_CHARS = 4000;

/** One CI command of the Verify step, as it ended. */
export interface VerifyCommandResult {
  command: string;
  passed: boolean;
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
}

/**
 * What the Verify step found on the integration branch head (`head`, `null` while unborn):
 * every command passed (`results` in the order run; empty when the build has no CI command),
 * or the first one that failed, with the reason and the end of its output. Commands after a
 * failure are not run.
 */
export type VerifyStepResult =
  | { kind: 'verified'; head: string | null; results: VerifyCommandResult[] }
  | { kind: 'verify_failed'; head: string | null; reason: string; outputTail: string; results: VerifyCommandResult[] };

/**
 * The distinct CI commands of a build: the run's, then each phase's in the order given. A
 * command given more than once runs once, with the longest timeout any of them asked for.
 */
export function verifyCommands(runCi: CiSpec | null, phaseCis: readonly (CiSpec | null | undefined)[] = []): CiSpec[] {
  const byCommand = new Map<string, CiSpec>();
  for (const spec of [runCi, ...phaseCis]) {
    if (!spec || spec.command.trim() === '') continue;
    const seen = byCommand.get(spec.command);
    if (!seen) {
      byCommand.set(spec.command, { ...spec });
      continue;
    }
    const timeouts = [seen.timeout_s, spec.timeout_s].filter((t): t is number => t !== undefined);
    if (timeouts.length > 0) seen.timeout_s = Math.max(...timeouts);
  }
  return [...byCommand.values()];
}

/**
 * Step 4 (Verify): the build's CI command(s) on the integration branch head, which must pass
 * outright. Unlike a phase's CI (verify.ts), nothing is compared with a baseline: the head is
 * what promotion would ship. The caller has synced the branch (the workspace has its head
 * checked out); this stage writes nothing, and a run cut short by a stop ends the attempt
 * instead of failing the step.
 */
export async function verifyBuild(
  deps: { git: Pick<AttemptGit, 'headCommit'>; ci: CiRunner; workspace: string; log: Logger },
  integration: Pick<IntegrationBranch, 'branch'>,
  input: { runCi: CiSpec | null; phaseCis?: readonly (CiSpec | null | undefined)[]; signal: AbortSignal },
): Promise<VerifyStepResult> {
  const { git, ci, workspace, log } = deps;
  throwIfStopped(input.signal);
  const head = await branchHeadOrNull(git, workspace, integration.branch);
  const commands = verifyCommands(input.runCi, input.phaseCis);
  if (commands.length === 0) log.warn({ head }, 'the build has no CI command; nothing to verify');
  const results: VerifyCommandResult[] = [];
  for (const spec of commands) {
    log.info({ head, command: spec.command }, 'running CI on the integration branch head');
    const r = await ci.run(spec, input.signal);
    // A command killed by a lost lease or a shutdown says nothing about the branch.
    throwIfStopped(input.signal);
    results.push({ command: spec.command, passed: r.passed, exitCode: r.exitCode, timedOut: r.timedOut, durationMs: r.durationMs });
    log.info({ head, command: spec.command, passed: r.passed, exit_code: r.exitCode, ms: r.durationMs }, 'CI finished');
    if (!r.passed) {
      const exit = r.timedOut ? `timed out after ${Math.round(r.durationMs / 1000)} s` : `exit code ${r.exitCode}`;
      return {
        kind: 'verify_failed',
        head,
        reason: failureReason('ci_failed', `\`${spec.command}\` ${exit} on the integration branch head ${head === null ? '(unborn)' : head.slice(0, 12)}`),
        outputTail: r.outputTail.slice(-OUTPUT_TAIL_CHARS),
        results,
      };
    }
  }
  return { kind: 'verified', head, results };
}
