import type { AuditorRequest, AuditorResultRequest, BuilderResultRequest, CiSpec, PhaseWriteResponse, ReserveBudgetRequest, ReserveBudgetResponse, RunResponse, StepResultRequest, StepResultResponse, UpdateStatusRequest } from '@app/contracts';
import {
  type CommitChangesInput,
  type FileChange,
  type PromoteBranchOptions,
  type PromotionResult,
  type ResetBranchToOptions,
  type ResetBranchToResult,
  changedFilesBetween,
  commitChanges,
  fetchBranch,
  findPhaseCommit,
  headCommit,
  isGitError,
  listTrackedFiles,
  promoteBranch,
  readFileAtRef,
  resetBranchTo,
  resetBranchToRemote,
  resetBranchToUnborn,
} from '@app/git';
import type { ForcedToolCallRequest, ForcedToolCallResult, Provider } from '@app/llm';
import { type CiResult, runCi, scrubbedEnvironment } from '../ci-runner.js';
import { type EndedPhaseCommits, type IntegrationBranch, type PublishResult as BranchPublishResult, checkOutIntegrationBranch, dropCommitsOfEndedPhases, publishCommit } from '../integration-branch.js';

/*
 * The side effects of an attempt, each behind a small interface (Temporal's activities), so
 * every stage and the reporter run against fakes in unit specs. main.ts wires the real ones.
 */

/** The supervisor routes an attempt writes to (a subset of SupervisorClient). */
export interface AttemptSupervisor {
  builderResult(runId: string, phaseId: string, body: BuilderResultRequest): Promise<PhaseWriteResponse>;
  auditorRequest(runId: string, phaseId: string, body: AuditorRequest): Promise<PhaseWriteResponse>;
  auditorResult(runId: string, phaseId: string, body: AuditorResultRequest): Promise<PhaseWriteResponse>;
  updateStatus(runId: string, phaseId: string, body: UpdateStatusRequest): Promise<PhaseWriteResponse>;
  reserveBudget(runId: string, phaseId: string, body: ReserveBudgetRequest): Promise<ReserveBudgetResponse>;
  getRun(runId: string): Promise<RunResponse>;
  stepResult(runId: string, phaseId: string, body: StepResultRequest): Promise<StepResultResponse>;
}

/** The LLM client as an attempt uses it (a subset of LlmClient). */
export interface AttemptLlm {
  callTool(req: ForcedToolCallRequest): Promise<ForcedToolCallResult>;
  hasProvider(provider: Provider): boolean;
}

/** The git operations of an attempt on the workspace's integration branch. */
export interface AttemptGit {
  /** Checks the integration branch out (synced from the shared repository if any); returns its head, `null` while it is unborn (empty repository). */
  checkOut(b: IntegrationBranch): Promise<string | null>;
  /** Removes the commits of phases that ended without completing (see `commitsOfEndedPhases`). */
  dropEndedCommits(b: Pick<IntegrationBranch, 'workspace' | 'branch' | 'runId' | 'sharedUrl'>, states: Readonly<Record<string, string>>, runEnded: boolean): Promise<EndedPhaseCommits & { shared: boolean }>;
  findPhaseCommit(workspace: string, q: { branch: string; runId: string; phaseId: string }): Promise<{ sha: string } | null>;
  headCommit(workspace: string, ref: string): Promise<string>;
  commit(workspace: string, input: CommitChangesInput): Promise<string>;
  /** Makes a new branch head final (pushes it when the run has a shared repository); `parent` is null for a root commit. */
  publish(b: IntegrationBranch, commit: { commit: string; parent: string | null }): Promise<BranchPublishResult>;
  /** Moves the checked-out branch to `commit`; `null` takes it back to unborn (undoing a root commit). */
  resetBranch(workspace: string, to: { branch: string; commit: string | null }): Promise<unknown>;
  /** The files that differ between two commits (`changedFilesBetween`): what a run changed since its base. */
  changedFiles(workspace: string, from: string, to: string): Promise<ReadonlyMap<string, FileChange>>;
}

/**
 * The git operations of a build's non-code steps beyond the integration branch: reading what a
 * commit holds (the SPEC, the foundation files), and moving the base branch (promotion and
 * rollback). None touches the working tree: the workspace keeps the integration branch
 * checked out throughout.
 */
export interface BuildGit {
  /** `filepath` in the commit `ref` names, as UTF-8, or `null` when that commit has no such file. */
  readFileAtRef(workspace: string, ref: string, filepath: string): Promise<string | null>;
  /** Every file tracked in the commit `ref` names. */
  listTrackedFiles(workspace: string, ref: string): Promise<string[]>;
  /** Moves the base branch to head: fast-forward, merge commit, created or already up to date (`promoteBranch`). */
  promote(workspace: string, options: PromoteBranchOptions): Promise<PromotionResult>;
  /** Moves a branch back to where it was, guarded by where it must be now (`resetBranchTo`). */
  resetBranchTo(workspace: string, options: ResetBranchToOptions): Promise<ResetBranchToResult>;
  /** Fetches a branch of a shared repository (its objects and remote-tracking ref; local branches stay); its commit, `null` when it has none. */
  fetchBranch(workspace: string, options: { url: string; branch: string }): Promise<string | null>;
}

/** The branch's head, or `null` while it is unborn (the first commit of a run in an empty repository). */
export async function branchHeadOrNull(git: Pick<AttemptGit, 'headCommit'>, workspace: string, branch: string): Promise<string | null> {
  try {
    return await git.headCommit(workspace, branch);
  } catch (err) {
    if (isGitError(err, 'REF_NOT_FOUND')) return null;
    throw err;
  }
}

/** Runs a CI command in the workspace. */
export interface CiRunner {
  run(spec: CiSpec, signal: AbortSignal): Promise<CiResult>;
}

/** Wall-clock milliseconds (Date.now), for call durations. */
export interface Clock {
  now(): number;
}

/** The real git operations (isomorphic-git through @app/git). */
export const workspaceGit: AttemptGit = {
  checkOut: checkOutIntegrationBranch,
  dropEndedCommits: dropCommitsOfEndedPhases,
  findPhaseCommit,
  headCommit,
  commit: commitChanges,
  publish: publishCommit,
  resetBranch: (workspace, { branch, commit }) => (commit === null ? resetBranchToUnborn(workspace, branch) : resetBranchToRemote(workspace, { branch, commit })),
  changedFiles: changedFilesBetween,
};

/** The real git operations of the build steps (isomorphic-git through @app/git). */
export const workspaceBuildGit: BuildGit = {
  readFileAtRef,
  listTrackedFiles,
  promote: promoteBranch,
  resetBranchTo,
  fetchBranch,
};

/** The real CI runner: `sh -c` in the workspace with a scrubbed environment (no known secrets). */
export function workspaceCi(workspace: string, env: NodeJS.ProcessEnv, secrets: string[]): CiRunner {
  return {
    run: (spec, signal) => runCi({ command: spec.command, cwd: workspace, timeoutMs: (spec.timeout_s ?? 600) * 1000, env: scrubbedEnvironment(env, secrets), signal }),
  };
}

/** The system clock. */
export const systemClock: Clock = { now: () => Date.now() };
