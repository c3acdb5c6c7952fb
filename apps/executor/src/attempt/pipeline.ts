import type { AttemptOutcome, ClaimResponse } from '@app/contracts';
import type { Logger } from 'pino';
import type { ModelRouting } from '../models.js';
import { AttemptStoppedError } from '../lease-keeper.js';
import { SupervisorError } from '../supervisor-client.js';
import { AppliedChange } from './applied-change.js';
import { build } from './build.js';
import type { MeteredLlm } from './metered-llm.js';
import type { AttemptGit, AttemptSupervisor } from './ports.js';
import { dropCommitOfEndedPhase, publish } from './publish.js';
import type { AttemptReporter } from './reporter.js';
import { review } from './review.js';
import { throwIfStopped } from './stop.js';
import { syncBranch } from './sync.js';
import type { Verifier, VerifyResult } from './verify.js';

/** What the pipeline of every attempt shares for the executor's lifetime. */
export interface PipelineDeps {
  workspace: string;
  git: AttemptGit;
  supervisor: AttemptSupervisor;
  verifier: Verifier;
  routing: ModelRouting;
  dualAuditor: boolean;
}

/** What one attempt brings: its claim, the signal that stops it, its log, metered LLM and reporter. */
export interface AttemptScope {
  claim: ClaimResponse;
  signal: AbortSignal;
  log: Logger;
  llm: MeteredLlm;
  reporter: AttemptReporter;
}

/**
 * One attempt as a pipeline: sync the branch, build, verify, review, publish. Each stage
 * returns a typed result; the reporter sends each one the supervisor hears about. The applied
 * change is restored on every way out unless it was committed and kept.
 */
export async function runAttempt(deps: PipelineDeps, scope: AttemptScope): Promise<AttemptOutcome> {
  const { workspace, git, verifier, routing } = deps;
  const { claim, signal, log, llm, reporter } = scope;

  const synced = await syncBranch({ git, workspace, log }, claim);
  if (synced.kind === 'resume') {
    await reporter.report({ stage: 'sync', result: synced });
    return 'resumed';
  }
  const { integration } = synced;

  const ciSpec = claim.phase.ci ?? claim.run.ci;
  // An attempt is held to what the unchanged branch head achieves, so CI runs there first.
  const baseline = ciSpec ? await verifier.baseline(integration.branch, ciSpec, signal, log) : undefined;

  const built = await build({ llm, routing, workspace, log, git }, claim, { baselineFailed: baseline !== undefined && !baseline.passed, signal });
  if (built.kind === 'build_failed') {
    await reporter.report({ stage: 'build', result: built });
    return built.outcome;
  }

  const change = AppliedChange.apply(workspace, built.plan, { runId: claim.run_id, phaseId: claim.phase_id, attempt: claim.attempt });
  try {
    // With CI, the builder's report also starts it (one round trip instead of two).
    const reported = await reporter.report({ stage: 'build', result: built, startCi: ciSpec !== undefined && ciSpec !== null });
    throwIfStopped(signal);

    let verified: VerifyResult = { kind: 'ci_skipped' };
    if (ciSpec) {
      // The supervisor may refuse CI (the tier's CI budget is spent, which ends the run).
      if (reported?.phase_state !== 'CI_RUNNING') throw new AttemptStoppedError('run_stopped');
      verified = await verifier.verify(ciSpec, baseline, signal, log);
    }
    if (verified.kind === 'ci_rejected') change.restore();
    await reporter.report({ stage: 'verify', result: verified, editsHash: built.editsHash });
    if (verified.kind === 'ci_rejected') return 'ci_failed';

    const reviewed = await review({ llm, routing, dualAuditor: deps.dualAuditor, log }, claim, {
      diff: built.diff,
      summary: built.args.summary,
      ci: verified.kind === 'ci_accepted' ? verified.ci : null,
      signal,
    });
    if (reviewed.kind === 'blocked') {
      change.restore();
      await reporter.report({ stage: 'review', result: reviewed, editsHash: built.editsHash });
      return 'auditor_rejected';
    }

    const published = await publish({ git }, claim, integration, { working: change, summary: built.args.summary, written: built.plan.written, deleted: built.plan.deleted, signal });
    if (published.kind === 'push_lost') {
      if (published.phaseCommit) log.info({ sha: published.phaseCommit }, 'push rejected: the run repository already has a commit of this phase; reporting it');
      else log.warn('push rejected: another executor moved the integration branch first; handing the phase back');
      await reporter.report({ stage: 'publish', result: published, review: reviewed, integrationBranch: claim.run.integration_branch });
      return published.phaseCommit ? 'resumed' : 'push_rejected';
    }
    try {
      await reporter.report({ stage: 'publish', result: published, review: reviewed, integrationBranch: claim.run.integration_branch });
    } catch (err) {
      if (err instanceof SupervisorError && err.code === 'LEASE_LOST' && !integration.sharedUrl) {
        await dropCommitOfEndedPhase({ git, supervisor: deps.supervisor, workspace }, claim, published, log);
      }
      throw err;
    }
    log.info({ sha: published.sha }, 'phase committed');
    // CI ran on exactly the tree of this commit: the next phase's baseline, already known.
    if (verified.kind === 'ci_accepted') verifier.rememberBaseline(published.sha, verified.ci);
    return 'complete';
  } finally {
    change.restore();
  }
}
