import { type Stats, lstatSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type ClaimResponse, type SubmitPlanArgs, failureReason } from '@app/contracts';
import type { Logger } from 'pino';
import type { IntegrationBranch } from '../integration-branch.js';
import { SPEC_PATH, parseSpecPlan } from '../spec-markdown.js';
import { AppliedChange } from './applied-change.js';
import type { AttemptGit, BuildGit } from './ports.js';
import { publish } from './publish.js';
import { throwIfStopped } from './stop.js';

/**
 * What committing the SPEC produced: `SPEC.md` is the planning phase's one commit (pushed when
 * the run has a shared repository; `parent` is null for the root commit of an empty
 * repository), or another executor pushed first and the commit was dropped; `phaseCommit` is
 * then this phase's commit on what won, if any (resume from it with
 * {@link resumePlanFromCommit}).
 */
export type SpecCommitResult = { kind: 'spec_committed'; sha: string; parent: string | null } | { kind: 'push_lost'; phaseCommit: string | null };

/** The subject summary of the SPEC commit: `[Autopack] <phase_id>: SPEC: 2 tier(s), 5 phase(s)`. */
export function specCommitSummary(plan: SubmitPlanArgs): string {
  return `SPEC: ${plan.tiers.length} tier(s), ${plan.phases.length} phase(s)`;
}

/** The bytes at `file` in the workspace, `null` when absent; a symlink or directory there is refused. */
function currentSpecBytes(workspace: string, file: string): string | null {
  const abs = path.join(workspace, file);
  let stat: Stats;
  try {
    stat = lstatSync(abs);
  } catch {
    return null;
  }
  // Writing through a symlink would change a file outside the commit (or outside the repository).
  if (!stat.isFile()) throw new Error(`${file} in the workspace is ${stat.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; the SPEC cannot be written there`);
  return readFileSync(abs, 'utf8');
}

/**
 * Step 1, second half: after `planBuild` returned `planned`, writes `SPEC.md` (the rendered
 * SPEC, replacing any earlier one) and commits it on the integration branch as the phase's one
 * commit, with the contract's message and trailers (CONTRACT.md section 5, through `publish`).
 * On an unborn branch (an empty repository) it is the root commit. The working copy is put
 * back byte for byte on every way out unless the commit was kept; the in-flight marker covers
 * an executor killed in between.
 *
 * The caller has synced the branch (`syncBranch` returned `ready`: no commit of this phase
 * yet); a retried phase whose commit is already there resumes with
 * {@link resumePlanFromCommit} instead of planning again.
 */
export async function commitSpec(
  deps: { git: AttemptGit; workspace: string; log: Logger },
  claim: ClaimResponse,
  integration: IntegrationBranch,
  spec: { plan: SubmitPlanArgs; specMarkdown: string; signal: AbortSignal },
): Promise<SpecCommitResult> {
  const { git, workspace, log } = deps;
  throwIfStopped(spec.signal);
  const before = currentSpecBytes(workspace, SPEC_PATH);
  const working = AppliedChange.apply(
    workspace,
    { files: [{ path: SPEC_PATH, before, after: spec.specMarkdown }], written: [SPEC_PATH], deleted: [] },
    { runId: claim.run_id, phaseId: claim.phase_id, attempt: claim.attempt },
  );
  try {
    const published = await publish({ git }, claim, integration, { working, summary: specCommitSummary(spec.plan), written: [SPEC_PATH], deleted: [], signal: spec.signal });
    if (published.kind === 'push_lost') return published;
    log.info({ sha: published.sha, root: published.parent === null, replaced: before !== null }, 'SPEC committed');
    return { kind: 'spec_committed', sha: published.sha, parent: published.parent };
  } finally {
    working.restore();
  }
}

/**
 * What resuming from the planning phase's commit found: the plan its `SPEC.md` carries (to be
 * reported again, without a second commit), or why that commit holds none.
 */
export type SpecResumeResult =
  | { kind: 'plan_resumed'; sha: string; plan: SubmitPlanArgs; specMarkdown: string }
  | { kind: 'resume_failed'; sha: string; reason: string };

/**
 * Step 1 on a retried attempt: the phase's commit is already on the branch (`syncBranch`
 * returned `resume`: an earlier attempt committed the SPEC but its report was lost, or another
 * executor's push won). Reads `SPEC.md` from that commit and parses the plan back from its
 * JSON block, so the plan is reported as it was committed. Reads git objects only.
 *
 * `resume_failed` means the commit is not a SPEC this executor wrote (no `SPEC.md`, or no
 * readable plan in it); it stays on the branch, so the caller can only fail the attempt with
 * the reason.
 */
export async function resumePlanFromCommit(deps: { git: Pick<BuildGit, 'readFileAtRef'>; workspace: string; log: Logger }, sha: string): Promise<SpecResumeResult> {
  const { git, workspace, log } = deps;
  const specMarkdown = await git.readFileAtRef(workspace, sha, SPEC_PATH);
  if (specMarkdown === null) return { kind: 'resume_failed', sha, reason: failureReason('executor_error', `the phase's commit ${sha.slice(0, 12)} has no ${SPEC_PATH} to resume the plan from`) };
  const parsed = parseSpecPlan(specMarkdown);
  if (!parsed.ok) return { kind: 'resume_failed', sha, reason: failureReason('executor_error', `${SPEC_PATH} of the phase's commit ${sha.slice(0, 12)} holds no readable plan: ${parsed.problem}`) };
  log.info({ sha, tiers: parsed.plan.tiers.length, phases: parsed.plan.phases.length }, 'plan read back from the committed SPEC');
  return { kind: 'plan_resumed', sha, plan: parsed.plan, specMarkdown };
}
