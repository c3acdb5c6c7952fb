import { type AttemptOutcome, type ClaimResponse, type ClaimedBuild, LIMITS, type PhaseWriteResponse, type SubmitPlanArgs, type UpdateStatusRequest, failureReason } from '@app/contracts';
import type { Logger } from 'pino';
import { repositoryMap } from '../context.js';
import type { IntegrationBranch } from '../integration-branch.js';
import type { ModelRouting } from '../models.js';
import { renderSpecMarkdown } from '../spec-markdown.js';
import type { MeteredLlm } from './metered-llm.js';
import { packageFoundation } from './package.js';
import { planBuild } from './plan.js';
import { type AttemptGit, type AttemptSupervisor, type BuildGit, type CiRunner, branchHeadOrNull } from './ports.js';
import { promoteBuild } from './promote.js';
import { rollbackPromotion } from './rollback.js';
import { commitSpec, resumePlanFromCommit } from './spec-commit.js';
import { syncBranch } from './sync.js';
import { verifyBuild } from './verify-step.js';

/** What every build step shares for the executor's lifetime. */
export interface BuildStepDeps {
  workspace: string;
  git: AttemptGit;
  buildGit: BuildGit;
  supervisor: AttemptSupervisor;
  ci: CiRunner;
  routing: ModelRouting;
}

/** What one build-step attempt brings. */
export interface BuildStepScope {
  claim: ClaimResponse & { build: ClaimedBuild };
  signal: AbortSignal;
  log: Logger;
  llm: MeteredLlm;
}

/** Whether a claim is a droplet build's own step (not a planned code phase). */
export function isBuildStepClaim(claim: ClaimResponse): claim is ClaimResponse & { build: ClaimedBuild } {
  return claim.build !== undefined && claim.phase.kind !== 'code';
}

const cut = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 4)}\n...` : s);

/**
 * One attempt of a droplet build's step (CONTRACT.md section 8), picked by the claimed phase's
 * kind: `plan` (planner, plan reported and accepted, SPEC.md committed), `package`
 * (foundation files), `verify` (the plan's CI on the branch head), `promote` (the base branch
 * moved, where from and to reported first) and `rollback` (the base branch put back). Each
 * ends with exactly one report that ends the attempt (COMPLETE, or FAILED with the reason).
 * A commit of this phase already on the branch (an attempt that died after committing) is
 * reported instead of working again.
 */
export async function runBuildStep(deps: BuildStepDeps, scope: BuildStepScope): Promise<AttemptOutcome> {
  const { git, supervisor, workspace } = deps;
  const { claim, signal, log, llm } = scope;
  const { run_id: runId, phase_id: phaseId } = claim;
  const token = claim.lease_token;
  const end = (body: Omit<UpdateStatusRequest, 'lease_token'>): Promise<PhaseWriteResponse> => supervisor.updateStatus(runId, phaseId, { lease_token: token, ...body, ...llm.unreportedUsage() });
  const fail = async (reason: string, feedback?: string, ciFailed = false): Promise<AttemptOutcome> => {
    log.warn({ reason }, 'build step failed');
    await end({ state: 'FAILED', failure_reason: cut(reason, LIMITS.failureReasonChars), ...(feedback ? { feedback: cut(feedback, LIMITS.feedbackChars) } : {}), ...(ciFailed ? { ci_passed: false } : {}) });
    return ciFailed ? 'ci_failed' : 'builder_failed';
  };
  const complete = async (sha: string | null): Promise<AttemptOutcome> => {
    await end({ state: 'COMPLETE', ...(sha ? { commit_sha: sha } : {}) });
    return 'complete';
  };

  const synced = await syncBranch({ git, workspace, log }, claim);
  const kind = claim.phase.kind;
  if (synced.kind === 'resume') {
    // Only the SPEC's and the package's commits are phase commits.
    if (kind === 'plan' && !claim.build.plan) {
      const resumed = await resumePlanFromCommit({ git: deps.buildGit, workspace, log }, synced.sha);
      if (resumed.kind === 'resume_failed') return fail(`executor_error: ${resumed.reason}`);
      const answer = await supervisor.stepResult(runId, phaseId, { kind: 'plan', lease_token: token, plan: resumed.plan });
      if (!answer.accepted) return 'builder_failed';
    }
    return complete(synced.sha);
  }
  const integration = synced.integration;
  switch (kind) {
    case 'plan':
      return planStep(deps, scope, integration, { fail, complete });
    case 'package': {
      const plan = claim.build.plan;
      if (!plan) return fail('executor_error: the build has no accepted plan to package');
      const r = await packageFoundation({ git, buildGit: deps.buildGit, workspace, log }, claim, integration, {
        intent: claim.build.intent,
        ...(claim.build.droplet_name ? { name: claim.build.droplet_name } : {}),
        plan,
        runCi: claim.run.ci,
        signal,
      });
      if (r.kind === 'push_lost') return r.phaseCommit ? complete(r.phaseCommit) : fail('push_rejected: another executor moved the integration branch first');
      return complete(r.sha);
    }
    case 'verify': {
      const plan = claim.build.plan;
      const r = await verifyBuild({ git, ci: deps.ci, workspace, log }, integration, { runCi: claim.run.ci, phaseCis: plan?.phases.map((p) => p.ci) ?? [], signal });
      if (r.kind === 'verify_failed') return fail(r.reason, `CI failed on the integration branch head ${r.head ?? ''}:\n${r.outputTail}`, true);
      return complete(null);
    }
    case 'promote': {
      // Where the base branch is now, recorded before it moves: an attempt resumed after the
      // move (the executor died before reporting) must not take the promoted commit for it.
      const before = integration.sharedUrl
        ? await deps.buildGit.fetchBranch(workspace, { url: integration.sharedUrl, branch: integration.baseBranch })
        : await branchHeadOrNull(git, workspace, integration.baseBranch);
      await supervisor.stepResult(runId, phaseId, { kind: 'promoting', lease_token: token, from: before });
      const r = await promoteBuild({ git: deps.buildGit, log }, integration, { signal });
      if (r.kind === 'promotion_failed') return fail(`executor_error: promotion failed (${r.code}): ${r.reason}`);
      await supervisor.stepResult(runId, phaseId, { kind: 'promoted', lease_token: token, from: r.previous, to: r.sha, pushed: r.pushed });
      return complete(null);
    }
    case 'rollback': {
      const { promoted_from: previous, promoted_to: promoted } = claim.build;
      if (!promoted) return complete(null);
      const r = await rollbackPromotion({ git, buildGit: deps.buildGit, log }, integration, { previous, promoted, signal });
      if (r.kind === 'rollback_failed') return fail(`executor_error: rollback failed (${r.code}): ${r.reason}`);
      log.info({ sha: r.sha, changed: r.changed, pushed: r.pushed }, 'base branch put back');
      return complete(null);
    }
    default:
      return fail(`executor_error: this executor cannot work a '${kind}' phase`);
  }
}

/** Step 1: plan (or take the plan accepted earlier), have it accepted, then commit SPEC.md. */
async function planStep(
  deps: BuildStepDeps,
  scope: BuildStepScope,
  integration: IntegrationBranch,
  ends: { fail: (reason: string, feedback?: string) => Promise<AttemptOutcome>; complete: (sha: string | null) => Promise<AttemptOutcome> },
): Promise<AttemptOutcome> {
  const { git, supervisor, workspace, routing } = deps;
  const { claim, signal, log, llm } = scope;
  const build = claim.build;
  let plan: SubmitPlanArgs | null = build.plan;
  if (!plan) {
    const planned = await planBuild({ llm, routing, log }, claim, {
      intent: build.intent,
      repository: repositoryMap(workspace),
      budgets: { tokensLeft: build.plan_budgets.tokens_left, costLeftUsd: build.plan_budgets.cost_left_usd, maxPhases: build.plan_budgets.max_phases },
      validation: { runCi: claim.run.ci, takenIds: { tierIds: build.taken_ids.tier_ids, phaseIds: build.taken_ids.phase_ids }, requireCi: true },
    }, { signal });
    if (planned.kind === 'plan_failed') {
      await supervisor.updateStatus(claim.run_id, claim.phase_id, {
        lease_token: claim.lease_token,
        state: 'FAILED',
        failure_reason: failureReason('executor_error', planned.reason, LIMITS.failureReasonChars),
        feedback: planned.feedback,
        usage: planned.usage,
        ...llm.drainCalls(),
      });
      return 'builder_failed';
    }
    const answer = await supervisor.stepResult(claim.run_id, claim.phase_id, { kind: 'plan', lease_token: claim.lease_token, plan: planned.plan, usage: planned.usage, ...llm.drainCalls() });
    if (!answer.accepted) {
      log.warn({ problems: answer.problems }, 'the supervisor refused the plan');
      return 'builder_failed';
    }
    plan = planned.plan;
  }
  const committed = await commitSpec({ git, workspace, log }, claim, integration, { plan, specMarkdown: renderSpecMarkdown(build.intent, plan), signal });
  if (committed.kind === 'push_lost') return committed.phaseCommit ? ends.complete(committed.phaseCommit) : ends.fail('push_rejected: another executor moved the integration branch first');
  return ends.complete(committed.sha);
}
