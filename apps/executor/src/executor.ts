import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import {
  type CiSpec,
  type ClaimResponse,
  type LlmCallRecord,
  type SubmitChangesArgs,
  SubmitChangesArgsSchema,
  type SubmitReviewArgs,
  SubmitReviewArgsSchema,
  type SuggestedIssue,
  TERMINAL_PHASE_STATES,
  TERMINAL_RUN_STATES,
  TOOL_NAMES,
  type ToolIssue,
  type UsageReport,
  toolInputJsonSchema,
} from '@app/contracts';
import {
  GitError,
  assertCleanWorktree,
  commitChanges,
  currentBranch,
  findPhaseCommit,
  formatCommitMessage,
  headCommit,
  isHttpUrl,
  isRepository,
  redactUrl,
  removeStrayTempFiles,
  resetBranchToRemote,
} from '@app/git';
import { qualityGate } from '@app/domain';
import { type ForcedToolCallRequest, type ForcedToolCallResult, type LlmClient, LlmError, costUsd, estimateTokens, priceFor, worstCaseCostUsd } from '@app/llm';
import type { Logger } from 'pino';
import { REPEATED_EDITS_REASON, escalationStep, findRepeatedAttempt } from './attempt-history.js';
import { CiBaselineCache, type CiResult, type CiVerdict, judgeCi, runCi, scrubbedEnvironment } from './ci-runner.js';
import { ExecutorConfigError, type ExecutorConfig } from './config.js';
import { buildContext } from './context.js';
import { describePlan } from './diff.js';
import { type AppliedChange, DEFAULT_APPLY_LIMITS, EditRefusedError, type ApplyPlan, applyPlan, planEdits, restoreChange } from './governed-apply.js';
import { AttemptStoppedError, LeaseKeeper } from './lease-keeper.js';
import { type ModelChoice, type ModelRouting, type RoutedRole, type TaskProfile, fallbackFor, modelFor } from './models.js';
import { AUDITOR_SYSTEM_PROMPT, BUILDER_SYSTEM_PROMPT, type CiReport, auditorPrompt, builderPrompt } from './prompts.js';
import { SupervisorError, SupervisorUnreachableError, type SupervisorClient } from './supervisor-client.js';
import { clearInflight, markInflight, recoverInflight } from './inflight.js';
import { type IntegrationBranch, checkOutIntegrationBranch, dropCommitsOfEndedPhases, integrationBranchOf, publishCommit } from './integration-branch.js';
import type { WorkspaceLock } from './workspace-lock.js';

/** Everything the executor talks to; the composition root (main.ts) builds them. */
export interface ExecutorDeps {
  config: ExecutorConfig;
  supervisor: SupervisorClient;
  llm: LlmClient;
  routing: ModelRouting;
  log: Logger;
  /** The executor's own environment; the CI subprocess gets a scrubbed copy. */
  env: NodeJS.ProcessEnv;
  /** Keeps other executor processes out of the workspace while this one uses it. */
  workspaceLock: WorkspaceLock;
  /** Where the one line that explains a non-zero exit goes (default: stderr). */
  say?: (line: string) => void;
}

/** Exit codes of CONTRACT.md section 3. */
export const EXIT = { ok: 0, usage: 1, unreachable: 2, runFailed: 3 } as const;

/**
 * The provider refused a call (key, permission, model, quota, request) or stayed unavailable
 * past every retry and the fallback. The model produced nothing to judge, so the lease was
 * handed back uncharged; the executor stops with exit code 1 and this one line.
 */
export class ProviderProblemError extends Error {
  constructor(
    message: string,
    readonly llmError: LlmError,
  ) {
    super(message);
    this.name = 'ProviderProblemError';
  }
}

const BUILDER_TOOL = {
  name: TOOL_NAMES.builder,
  description: 'Submit the complete set of file edits for this phase.',
  inputSchema: toolInputJsonSchema(SubmitChangesArgsSchema),
};
const AUDITOR_TOOL = {
  name: TOOL_NAMES.auditor,
  description: 'Submit your review of the change.',
  inputSchema: toolInputJsonSchema(SubmitReviewArgsSchema),
};

const AUTHOR = { name: 'Autopack', email: 'autopack@localhost' };

/** The supervisor refused to reserve a call's worst case: the call is not made. */
export class BudgetRefusedError extends Error {
  readonly code = 'BUDGET_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'BudgetRefusedError';
  }
}

/** Per-attempt context for LLM calls: the lease their budget is reserved under, and the calls not yet reported. */
interface CallContext {
  claim: ClaimResponse;
  records: LlmCallRecord[];
}

/** Takes the calls made since the last report, for the next report's audit trail. */
function drainCalls(ctx: CallContext): { llm_calls?: LlmCallRecord[] } {
  const calls = ctx.records.splice(0);
  return calls.length ? { llm_calls: calls } : {};
}

/**
 * The LLM calls made since the last report, as a usage report of their own: what an attempt
 * handed back on shutdown still owes the budgets. Empty when every call was reported.
 */
function unreportedUsage(ctx: CallContext): { usage?: UsageReport; llm_calls?: LlmCallRecord[] } {
  const drained = drainCalls(ctx);
  const records = drained.llm_calls;
  if (!records) return {};
  const sum = (f: (r: LlmCallRecord) => number) => records.reduce((n, r) => n + f(r), 0);
  const { run_id: runId, phase_id: phaseId, attempt } = ctx.claim;
  return {
    usage: {
      prompt_tokens: sum((r) => r.prompt_tokens),
      completion_tokens: sum((r) => r.completion_tokens),
      cached_tokens: sum((r) => r.cached_tokens),
      cost_usd: sum((r) => r.cost_usd),
      calls: records.length,
      report_id: `${runId}:${phaseId}:${attempt}:unreported`,
    },
    llm_calls: records,
  };
}

function toSuggested(issues: ToolIssue[], source: string): SuggestedIssue[] {
  return issues.map((i) => ({
    issue_key: i.issue_key,
    severity: i.severity,
    category: i.category,
    description: i.description,
    ...(i.location ? { location: i.location } : {}),
    source,
  }));
}

/** The fields every review report carries: the auditors' notes and issues, the attempt's usage, and the LLM calls since the last report. */
function reviewReport(review: { summary: string; issues: ToolIssue[] }, usage: UsageReport, calls: CallContext) {
  return {
    review_notes: review.summary.slice(0, 20_000),
    issues_found: toSuggested(review.issues, 'auditor'),
    tokens_used: usage.prompt_tokens + usage.completion_tokens,
    usage,
    ...drainCalls(calls),
  };
}

function formatIssues(issues: ToolIssue[]): string {
  return issues.map((i) => `- [${i.severity}] ${i.issue_key} (${i.category})${i.location ? ` at ${i.location}` : ''}: ${i.description}`).join('\n');
}

/** What routes match for a claimed phase. */
function taskProfile(claim: ClaimResponse): TaskProfile {
  return { category: claim.strategy.task_category, resolvedCategory: claim.strategy.resolved_category, complexity: claim.strategy.complexity };
}

/** The next attempt's feedback after a CI failure; with a failing baseline, it names what is new. */
function ciFailureFeedback(command: string, exit: string, result: CiResult, verdict: CiVerdict): string {
  const news = verdict.newFailures.slice(0, 30).map((l) => `- ${l.slice(0, 300)}`);
  const baselineNote = verdict.baselineFailed
    ? `\nThe command already failed before your change, so only new failures count.${news.length ? ` These failures are new:\n${news.join('\n')}` : ''}`
    : '';
  return `The CI command \`${command}\` failed (${exit}) after your previous change, which was discarded.${baselineNote}\nLast output:\n${result.outputTail.slice(-4000)}`;
}

/** What one attempt ended with (for logs and tests). */
export type AttemptOutcome = 'complete' | 'resumed' | 'builder_failed' | 'refused' | 'repeated_edits' | 'ci_failed' | 'auditor_rejected' | 'push_rejected' | 'stopped';

/**
 * How an error that ends the executor maps to its exit code and the one line that explains it
 * (CONTRACT.md section 3); undefined for an error nobody expected (a bug: its stack is shown
 * with AUTOPACK_DEBUG).
 */
function exitFor(err: unknown): { code: number; line?: string } | undefined {
  // Stopped (a signal) while waiting for the workspace or a claim.
  if (err instanceof AttemptStoppedError) return { code: EXIT.ok };
  if (err instanceof SupervisorUnreachableError) return { code: EXIT.unreachable, line: `supervisor unreachable: ${err.message}` };
  if (err instanceof ExecutorConfigError || err instanceof ProviderProblemError) return { code: EXIT.usage, line: err.message };
  // A refusal the loop cannot act on (a wrong API key, a route another version does not know).
  if (err instanceof SupervisorError) return { code: EXIT.usage, line: `the supervisor refused the executor: ${err.status} ${err.code}: ${err.message}` };
  return undefined;
}

/**
 * The executor: claim, build, apply, CI, audit, commit, report; one attempt per claim.
 *
 * Invariant: once claimed, a phase is always reported (complete, failed, or handed back on
 * shutdown), or its lease is left to expire on purpose because it was already lost. A
 * rejected attempt restores the working copy byte for byte before it is reported.
 */
export class Executor {
  /** Aborted by the first stop signal. */
  private readonly stop = new AbortController();
  private current: LeaseKeeper | undefined;
  private readonly secrets: string[];
  private readonly baselines = new CiBaselineCache();

  constructor(private readonly deps: ExecutorDeps) {
    const c = deps.config;
    this.secrets = [c.apiKey, c.openaiKey, c.anthropicKey].filter((s): s is string => !!s);
  }

  /** First signal: stop claiming and hand the current lease back. */
  requestStop(): void {
    this.stop.abort(new AttemptStoppedError('shutdown'));
    this.current?.abort('shutdown');
  }

  /** The one line that explains a non-zero exit. */
  private fatal(line: string): void {
    (this.deps.say ?? ((l: string) => process.stderr.write(`autopack executor: ${l}\n`)))(line);
  }

  /**
   * The main loop; resolves to the process exit code. Workspace problems end it before
   * anything is claimed and before it says it started.
   */
  async run(): Promise<number> {
    const { config, supervisor, log, routing } = this.deps;
    try {
      await this.checkWorkspace();
      log.info({ run_id: config.runId ?? null, workspace: config.workspace, builder: routing.defaults.builder, auditor: routing.defaults.auditor }, 'executor started');
      let iterations = 0;
      while (!this.stop.signal.aborted) {
        if (config.maxIterations !== undefined && iterations >= config.maxIterations) {
          log.info({ iterations }, 'max iterations reached');
          return EXIT.ok;
        }
        const claim = await supervisor.claim({
          executor_id: config.executorId,
          ...(config.runId ? { run_id: config.runId } : {}),
          wait_ms: Math.min(30_000, Math.round(config.pollIntervalSeconds * 1000)),
        });
        if (!claim) {
          const exit = await this.nothingLeft();
          if (exit !== undefined) return exit;
          continue;
        }
        iterations++;
        await this.runClaim(claim);
      }
      return EXIT.ok;
    } catch (err) {
      const exit = exitFor(err);
      if (!exit) throw err;
      if (exit.line) this.fatal(exit.line);
      return exit.code;
    }
  }

  /** After an empty claim: the exit code when the executor is done, undefined to claim again. */
  private async nothingLeft(): Promise<number | undefined> {
    const { config, supervisor, log } = this.deps;
    if (!config.runId) return config.exitWhenIdle ? EXIT.ok : undefined;
    let run;
    try {
      run = await supervisor.getRun(config.runId);
    } catch (err) {
      if (err instanceof SupervisorError && err.status === 404) throw new ExecutorConfigError(`run ${config.runId} does not exist`);
      throw err;
    }
    if (TERMINAL_RUN_STATES.includes(run.state)) {
      log.info({ run_id: run.run_id, state: run.state, failure_reason: run.failure_reason }, 'run is terminal');
      // The last holder of the workspace leaves no commit of a phase that did not complete.
      const integration = {
        workspace: config.workspace,
        branch: run.integration_branch,
        runId: run.run_id,
        sharedUrl: run.repo_url && isHttpUrl(run.repo_url) ? run.repo_url : undefined,
      };
      const states = Object.fromEntries(run.phases.map((p) => [p.phase_id, p.state]));
      await this.holdingWorkspace(this.stop.signal, log, () => this.dropEndedCommits(integration, states, true, log));
      if (run.state === 'DONE_SUCCESS') return EXIT.ok;
      this.fatal(`run ${run.run_id} ended ${run.state}${run.failure_reason ? `: ${run.failure_reason.slice(0, 500)}` : ''}`);
      return EXIT.runFailed;
    }
    // A phase another executor holds is not settled yet: its lease may expire, or its push be
    // rejected, and hand it back. Exiting then could leave a phase nobody is left to claim.
    if (config.exitWhenIdle && !run.phases.some((p) => !TERMINAL_PHASE_STATES.includes(p.state))) return EXIT.ok;
    return undefined;
  }

  /**
   * Checks the workspace before anything is claimed, so each problem is one clear line and
   * exit code 1: missing, not a directory, not a repository, uncommitted changes, or checked
   * out on the integration branch of another run that is still going.
   */
  private async checkWorkspace(): Promise<void> {
    const ws = this.deps.config.workspace;
    let isDirectory: boolean;
    try {
      isDirectory = statSync(ws).isDirectory();
    } catch {
      throw new ExecutorConfigError(`--workspace ${ws} does not exist`);
    }
    if (!isDirectory) throw new ExecutorConfigError(`--workspace ${ws} is not a directory`);
    if (!(await isRepository(ws))) throw new ExecutorConfigError(`--workspace ${ws} is not a git repository (run \`git init\` there, or point --workspace at a clone)`);
    await this.holdingWorkspace(this.stop.signal, this.deps.log, async () => {
      try {
        await assertCleanWorktree(ws);
      } catch (err) {
        if (err instanceof GitError && err.code === 'DIRTY_WORKTREE') {
          const paths = ((err.data as { paths?: string[] }).paths ?? []).slice(0, 10).join(', ');
          throw new ExecutorConfigError(`--workspace ${ws} has uncommitted changes (${paths}); commit or stash them first`);
        }
        throw err;
      }
    });
    await this.assertNotServingAnotherRun(ws);
  }

  /**
   * A workspace checked out on `autonomous/<other run>` may be in use by an executor serving
   * that run: both would switch the working copy under each other. Refused while that run is
   * still going; a finished (or unknown) run's branch is simply left behind.
   */
  private async assertNotServingAnotherRun(ws: string): Promise<void> {
    const { config, supervisor } = this.deps;
    const branch = await currentBranch(ws);
    const other = branch?.startsWith('autonomous/') ? branch.slice('autonomous/'.length) : undefined;
    if (!config.runId || !other || other === config.runId) return;
    let state: string;
    try {
      state = (await supervisor.getRun(other)).state;
    } catch (err) {
      if (err instanceof SupervisorError && err.status === 404) return;
      throw err;
    }
    if (TERMINAL_RUN_STATES.includes(state as (typeof TERMINAL_RUN_STATES)[number])) return;
    throw new ExecutorConfigError(
      `--workspace ${ws} is on ${branch}, the branch of run ${other}, which is still ${state}; serve run ${other} there, or give run ${config.runId} its own clone`,
    );
  }

  /**
   * Runs `work` holding the workspace lock, waiting while another executor process uses the
   * workspace. An in-flight marker found then was left by a holder that died mid-attempt (every
   * other path clears it), so its files are put back first.
   */
  private async holdingWorkspace<T>(signal: AbortSignal, log: Logger, work: () => Promise<T>): Promise<T> {
    const { workspaceLock, config } = this.deps;
    const takeover = await workspaceLock.acquire({
      signal,
      onWait: (h) => log.info({ holder_pid: h.pid, holder_executor_id: h.executor_id, held_since: h.acquired_at, lock_file: workspaceLock.file }, 'waiting for another executor to release the workspace'),
    });
    try {
      if (takeover) log.warn({ holder_pid: takeover.holder?.pid, holder_executor_id: takeover.holder?.executor_id }, 'took over the workspace lock of an executor that is gone');
      const recovered = await recoverInflight(config.workspace);
      if (recovered) log.warn({ run_id: recovered.runId, phase_id: recovered.phaseId, attempt: recovered.attempt, paths: recovered.paths.length }, 'restored the working copy of an attempt interrupted by a crash');
      const strays = await removeStrayTempFiles(config.workspace);
      if (strays) log.warn({ files: strays }, 'removed temporary files a killed executor left in .git');
      return await work();
    } finally {
      workspaceLock.release();
    }
  }

  /** Runs one claimed attempt with a heartbeat, and guarantees it is reported. */
  private async runClaim(claim: ClaimResponse): Promise<AttemptOutcome> {
    const log = this.deps.log.child({ run_id: claim.run_id, phase_id: claim.phase_id, attempt: claim.attempt });
    const lease = new LeaseKeeper(this.deps.supervisor, claim, (m) => log.warn(m));
    this.current = lease;
    lease.start();
    const calls: CallContext = { claim, records: [] };
    try {
      const outcome = await this.holdingWorkspace(lease.signal, log, () => this.attempt(claim, lease.signal, log, calls));
      log.info({ outcome }, 'attempt finished');
      return outcome;
    } catch (err) {
      const stop = err instanceof AttemptStoppedError ? err : lease.signal.aborted ? (lease.signal.reason as AttemptStoppedError) : undefined;
      if (stop) {
        log.warn({ reason: stop.reason }, 'attempt stopped');
        // A shutdown hands the lease back with the calls it made. A lost lease or a stopped run
        // has no lease left to report with: a stale token changes nothing (CONTRACT.md section 6).
        if (stop.reason === 'shutdown') {
          await this.report(() => this.deps.supervisor.updateStatus(claim.run_id, claim.phase_id, { lease_token: claim.lease_token, state: 'QUEUED', ...unreportedUsage(calls) }), log);
        }
        return 'stopped';
      }
      if (err instanceof SupervisorUnreachableError || err instanceof ExecutorConfigError) throw err;
      if (err instanceof LlmError && err.kind !== 'aborted') return await this.handBackForProvider(claim, err, log, calls);
      if (err instanceof BudgetRefusedError) {
        log.warn({ reason: err.message }, 'LLM call not admitted by the budget');
        await this.report(
          () =>
            this.deps.supervisor.updateStatus(claim.run_id, claim.phase_id, {
              lease_token: claim.lease_token,
              state: 'FAILED',
              failure_reason: `budget: ${err.message}`.slice(0, 2000),
              ...drainCalls(calls),
            }),
          log,
        );
        return 'builder_failed';
      }
      if (err instanceof SupervisorError && err.code === 'LEASE_LOST') {
        log.warn('lease lost while reporting');
        return 'stopped';
      }
      // Anything else is this attempt's failure, reported with a code and message, never a stack.
      const reason = err instanceof LlmError ? `llm_error: ${err.code}: ${err.message}` : `executor_error: ${(err as Error).message}`;
      log.error({ err: (err as Error).message }, 'attempt failed unexpectedly');
      await this.report(
        () =>
          this.deps.supervisor.updateStatus(claim.run_id, claim.phase_id, {
            lease_token: claim.lease_token,
            state: 'FAILED',
            failure_reason: reason.slice(0, 2000),
            feedback: reason.slice(0, 2000),
            ...drainCalls(calls),
          }),
        log,
      );
      return 'builder_failed';
    } finally {
      lease.stop();
      this.current = undefined;
    }
  }

  /**
   * The provider refused the call or stayed down past its retries and the fallback: nothing the
   * model produced can be judged, so the attempt is not charged (CONTRACT.md section 3). The
   * lease goes back with the calls made, and the executor stops with one line that says why.
   */
  private async handBackForProvider(claim: ClaimResponse, err: LlmError, log: Logger, calls: CallContext): Promise<never> {
    const model = calls.records.at(-1)?.model;
    const problem = err.describe(model);
    log.warn({ code: err.code, provider: err.provider, status: err.status }, 'provider problem: handing the phase back uncharged');
    await this.report(
      () =>
        this.deps.supervisor.updateStatus(claim.run_id, claim.phase_id, {
          lease_token: claim.lease_token,
          state: 'QUEUED',
          failure_reason: `provider_error: ${problem}: ${err.message}`.slice(0, 2000),
          ...unreportedUsage(calls),
        }),
      log,
    );
    const hint =
      err.kind === 'transient'
        ? 'run the executor again when the provider answers'
        : `check ${err.provider === 'openai' ? 'OPENAI_API_KEY (--openai-key)' : 'ANTHROPIC_API_KEY (--anthropic-key)'} and the model routing`;
    throw new ProviderProblemError(`${problem}; phase ${claim.phase_id} of run ${claim.run_id} was handed back uncharged; ${hint}`, err);
  }

  private async report(fn: () => Promise<unknown>, log: Logger): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (err instanceof SupervisorError && err.code === 'LEASE_LOST') log.warn('lease already lost; nothing to report');
      else throw err;
    }
  }

  private usageOf(r: ForcedToolCallResult, reportId?: string): UsageReport {
    const price = priceFor(r.model, this.deps.routing.prices);
    return {
      ...(reportId ? { report_id: reportId } : {}),
      provider: r.provider,
      model: r.model,
      prompt_tokens: r.usage.promptTokens,
      completion_tokens: r.usage.completionTokens,
      cached_tokens: r.usage.cachedTokens,
      cost_usd: price ? costUsd(price, r.usage) : 0,
      calls: 1,
    };
  }

  private async attempt(claim: ClaimResponse, signal: AbortSignal, log: Logger, calls: CallContext): Promise<AttemptOutcome> {
    const { config, supervisor, routing } = this.deps;
    const ws = config.workspace;
    const { run_id: runId, phase_id: phaseId, lease_token: token } = claim;
    const branch = claim.run.integration_branch;

    // The workspace follows the run's integration branch: the shared one when the run has a
    // repo_url (so commits pushed by other executors are here), else the local one.
    const integration = integrationBranchOf(claim, ws);
    const head = await checkOutIntegrationBranch(integration);
    if (integration.sharedUrl) log.info({ repo: redactUrl(integration.sharedUrl), head }, 'integration branch synced from the run repository');
    // Whoever holds the workspace next removes commits of phases that ended without completing.
    if (claim.run.phase_states) await this.dropEndedCommits(integration, claim.run.phase_states, false, log);

    // Resume: a commit of this phase already on the branch means an earlier attempt died
    // between commit and report, or another executor finished the phase. Report it instead of
    // building again (one commit per phase).
    const existing = await findPhaseCommit(ws, { branch, runId, phaseId });
    if (existing) {
      log.info({ sha: existing.sha }, 'phase commit already on the branch; reporting it');
      await supervisor.updateStatus(runId, phaseId, { lease_token: token, state: 'COMPLETE', commit_sha: existing.sha });
      return 'resumed';
    }

    const phase = claim.phase;
    const ciSpec = phase.ci ?? claim.run.ci;
    // An attempt is held to what the unchanged branch head achieves, so CI runs there first.
    const baseline = ciSpec ? await this.ciBaseline(ws, branch, ciSpec, signal, log) : undefined;

    const routeFor = { task: taskProfile(claim), step: escalationStep(claim.previous_attempts) };
    const builder = modelFor(routing, 'builder', routeFor.task, routeFor.step) ?? routing.defaults.builder;
    const scopePaths = phase.scope?.paths ?? [];
    const context = buildContext({
      root: ws,
      scopePaths,
      readOnlyPaths: phase.scope?.read_only_context ?? [],
      tokenBudget: Math.max(2_000, Math.min(120_000, Math.floor(claim.strategy.incident_token_cap / 4))),
      largeFileLines: DEFAULT_APPLY_LIMITS.maxLinesForReplace,
    });
    const prompt = builderPrompt(claim, context, { baselineFailed: baseline !== undefined && !baseline.passed });

    const maxTokens = routing.builderMaxTokens;
    log.info({ provider: builder.provider, model: builder.model, escalation_step: routeFor.step }, 'calling the builder');
    const { result: built, reservationId } = await this.callModel('builder', builder, { system: BUILDER_SYSTEM_PROMPT, prompt, tool: BUILDER_TOOL, maxTokens, temperature: 0.2, signal }, log, calls);
    // Idempotent: a builder_result retried after a lost response does not count this usage twice.
    const builderUsage: UsageReport = { ...this.usageOf(built, `${runId}:${phaseId}:${claim.attempt}:builder`), reservation_id: reservationId };
    const failBuild = async (reason: string, feedback: string, editsHash?: string) => {
      await supervisor.builderResult(runId, phaseId, {
        lease_token: token,
        status: 'failed',
        failure_reason: reason.slice(0, 2000),
        feedback: feedback.slice(0, 20_000),
        tokens_used: builderUsage.prompt_tokens + builderUsage.completion_tokens,
        usage: builderUsage,
        files_changed: [],
        lines_added: 0,
        lines_removed: 0,
        suggested_issues: [],
        ...(editsHash ? { edits_hash: editsHash } : {}),
        ...drainCalls(calls),
      });
    };
    if (built.toolInput === undefined) {
      const why = built.malformedReason ?? 'no tool call';
      await failBuild(`malformed reply: ${why}`, `Your previous reply was rejected: ${why}. Reply only by calling ${TOOL_NAMES.builder} with arguments that match its schema.`);
      return 'builder_failed';
    }
    const parsed = SubmitChangesArgsSchema.safeParse(built.toolInput);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 10).map((i) => `${i.path.join('.') || '(arguments)'}: ${i.message}`);
      await failBuild(`malformed reply: arguments fail the ${TOOL_NAMES.builder} schema`, `Your previous ${TOOL_NAMES.builder} call had invalid arguments:\n${issues.map((i) => `- ${i}`).join('\n')}`);
      return 'builder_failed';
    }
    const args: SubmitChangesArgs = parsed.data;
    const editsHash = createHash('sha256').update(JSON.stringify(args.edits)).digest('hex');

    // The same change as a failed attempt would fail the same way: do not spend CI and audit on it.
    const repeated = findRepeatedAttempt(claim.previous_attempts, editsHash);
    if (repeated) {
      await failBuild(
        `${REPEATED_EDITS_REASON}: identical to attempt ${repeated.attempt}`,
        `Your edits were identical to those of attempt ${repeated.attempt}, which failed (${(repeated.reason ?? repeated.outcome).slice(0, 500)}), so they were not applied again. Make a different change that fixes what that attempt's feedback reports.`,
        editsHash,
      );
      return 'repeated_edits';
    }

    let plan: ApplyPlan;
    try {
      plan = planEdits(ws, args.edits, {
        scopePaths,
        protectedPaths: claim.run.protected_paths,
        allowMassDeletion: phase.allow_mass_deletion,
        allowMassAddition: phase.allow_mass_addition,
        limits: DEFAULT_APPLY_LIMITS,
      });
    } catch (err) {
      if (!(err instanceof EditRefusedError)) throw err;
      await failBuild(err.message, `Your previous edits were refused and nothing was written:\n${err.problems.map((p) => `- ${p}`).join('\n')}`, editsHash);
      return 'refused';
    }
    if (plan.files.length === 0) {
      await failBuild('no changes: the edits leave every file as it was', 'Your previous edits changed nothing. Make the change the phase asks for.', editsHash);
      return 'refused';
    }

    const { diff, linesAdded, linesRemoved } = describePlan(plan);
    markInflight(ws, { runId, phaseId, attempt: claim.attempt, paths: plan.files.map((f) => f.path) });
    let applied: AppliedChange | undefined = applyPlan(ws, plan);
    const restore = () => {
      if (applied) restoreChange(ws, applied);
      applied = undefined;
      clearInflight(ws);
    };
    try {
      await supervisor.builderResult(runId, phaseId, {
        lease_token: token,
        status: 'success',
        files_changed: plan.files.map((f) => f.path),
        lines_added: linesAdded,
        lines_removed: linesRemoved,
        tokens_used: builderUsage.prompt_tokens + builderUsage.completion_tokens,
        usage: builderUsage,
        suggested_issues: toSuggested(args.issues, 'builder'),
        notes: args.summary.slice(0, 20_000),
        edits_hash: editsHash,
        ...drainCalls(calls),
      });
      this.throwIfStopped(signal);

      let ci: { result: CiResult; verdict: CiVerdict; command: string } | null = null;
      if (ciSpec) {
        const started = await supervisor.updateStatus(runId, phaseId, { lease_token: token, state: 'CI_RUNNING' });
        // The supervisor may refuse CI (the tier's CI budget is spent, which ends the run).
        if (started.phase_state !== 'CI_RUNNING') throw new AttemptStoppedError('run_stopped');
        const result = await this.runCiCommand(ws, ciSpec, signal);
        this.throwIfStopped(signal);
        const verdict = judgeCi(result, baseline);
        ci = { result, verdict, command: ciSpec.command };
        log.info({ passed: result.passed, accepted: verdict.accepted, baseline_failed: verdict.baselineFailed, exit_code: result.exitCode, ms: result.durationMs }, 'CI finished');
        if (!verdict.accepted) {
          restore();
          const exit = result.timedOut ? 'timed out' : `exit code ${result.exitCode}`;
          await supervisor.updateStatus(runId, phaseId, {
            lease_token: token,
            state: 'FAILED',
            ci_passed: false,
            failure_reason: `ci_failed: \`${ciSpec.command}\` ${exit}${verdict.baselineFailed ? ` with ${verdict.newFailures.length} new failure line(s); it already failed before the change` : ''}`,
            feedback: ciFailureFeedback(ciSpec.command, exit, result, verdict),
            edits_hash: editsHash,
          });
          return 'ci_failed';
        }
      }

      await supervisor.auditorRequest(runId, phaseId, {
        lease_token: token,
        ...(ci
          ? {
              ci: { passed: ci.verdict.accepted, exit_code: ci.result.exitCode, duration_seconds: ci.result.durationMs / 1000, output_tail: ci.result.outputTail.slice(-2000) },
              failure_context: JSON.stringify({
                ci: {
                  command: ci.command,
                  exit_code: ci.result.exitCode,
                  baseline_failed: ci.verdict.baselineFailed,
                  baseline_exit_code: baseline?.exitCode ?? null,
                },
              }),
            }
          : {}),
      });
      const ciReport: CiReport | null = ci ? { command: ci.command, passed: ci.verdict.accepted, baselineFailed: ci.verdict.baselineFailed, tail: ci.result.outputTail } : null;
      const review = await this.review(claim, routeFor, diff, ciReport, args.summary, signal, log, calls);
      const usage = review.usage;
      const gate = qualityGate({
        highRisk: claim.strategy.high_risk,
        ciProfile: claim.strategy.ci_profile,
        ciAccepted: ci ? ci.verdict.accepted : null,
        majorIssues: review.issues.filter((i) => i.severity === 'major').length,
        minorIssues: review.issues.filter((i) => i.severity === 'minor').length,
        auditorApproved: review.approved,
      });
      if (gate.level === 'blocked') {
        restore();
        await supervisor.auditorResult(runId, phaseId, {
          lease_token: token,
          recommendation: 'revise',
          ...reviewReport(review, usage, calls),
          quality_level: 'blocked',
          feedback: `Your previous change was blocked (${gate.reasons.join('; ')}) and discarded.\n${review.summary}\n${formatIssues(review.issues)}`.slice(0, 20_000),
          edits_hash: editsHash,
        });
        return 'auditor_rejected';
      }

      this.throwIfStopped(signal);
      const parent = await headCommit(ws, branch);
      const sha = await commitChanges(ws, {
        branch,
        written: plan.written,
        deleted: plan.deleted,
        message: formatCommitMessage({ phaseId, summary: args.summary, runId, attempt: claim.attempt }),
        author: AUTHOR,
      });
      applied = undefined; // committed: the working copy is now the branch head
      clearInflight(ws);
      // With a shared repository the push is the commit point: only a pushed commit is reported.
      const published = await publishCommit(integration, { commit: sha, parent });
      if (!published.kept) return await this.reportLostPush(claim, published.phaseCommit, usage, log, calls);
      try {
        await supervisor.auditorResult(runId, phaseId, {
          lease_token: token,
          recommendation: 'approve',
          ...reviewReport(review, usage, calls),
          quality_level: gate.level,
          commit_sha: sha,
          confidence: review.confidence,
        });
      } catch (err) {
        if (err instanceof SupervisorError && err.code === 'LEASE_LOST' && !integration.sharedUrl) await this.dropCommitOfEndedPhase(claim, { sha, parent }, log);
        throw err;
      }
      log.info({ sha }, 'phase committed');
      return 'complete';
    } finally {
      restore();
    }
  }

  /**
   * The lease was lost between the commit and its report. While the phase can still be claimed,
   * the commit stays: the next attempt finds it and reports it. But a phase that ended without
   * it (its last attempt expired, or it was skipped, or the run ended) must not keep a commit
   * on the branch, so it is dropped, as a rejected attempt's change would be. A commit already
   * pushed to a shared repository is not taken back (that would need a forced push).
   */
  private async dropCommitOfEndedPhase(claim: ClaimResponse, { sha, parent }: { sha: string; parent: string }, log: Logger): Promise<void> {
    const ws = this.deps.config.workspace;
    const branch = claim.run.integration_branch;
    const run = await this.deps.supervisor.getRun(claim.run_id);
    const phase = run.phases.find((p) => p.phase_id === claim.phase_id);
    const ended = TERMINAL_RUN_STATES.includes(run.state) || phase?.state === 'FAILED' || phase?.state === 'SKIPPED';
    if (!ended) {
      log.warn({ sha, phase_state: phase?.state }, 'lease lost after the commit; the next attempt of the phase reports it');
      return;
    }
    if ((await headCommit(ws, branch)) !== sha) return;
    await resetBranchToRemote(ws, { branch, commit: parent });
    log.warn({ sha, phase_state: phase?.state, run_state: run.state }, 'lease lost after the commit and the phase ended without it; the commit was dropped');
  }

  /** Applies the no-commit-without-COMPLETE invariant (see `commitsOfEndedPhases`) and says what it did. */
  private async dropEndedCommits(
    integration: Pick<IntegrationBranch, 'workspace' | 'branch' | 'runId' | 'sharedUrl'>,
    states: Record<string, string>,
    runEnded: boolean,
    log: Logger,
  ): Promise<void> {
    const r = await dropCommitsOfEndedPhases(integration, states, runEnded);
    const describe = (cs: { sha: string; phaseId?: string }[]) => cs.map((c) => `${c.phaseId}@${c.sha.slice(0, 12)}`);
    if (r.shared) log.warn({ commits: describe(r.dropped) }, 'the shared branch holds commits of phases that ended without completing; removing them needs a forced push, left as they are');
    else if (r.dropped.length) log.warn({ commits: describe(r.dropped), head: r.resetTo }, 'removed commits of phases that ended without completing');
    if (r.buried.length) log.warn({ commits: describe(r.buried) }, 'commits of phases that ended without completing lie under commits that stay; left as they are');
  }

  /**
   * Another executor pushed to the integration branch first, so this attempt's commit was
   * dropped. If what won holds this phase's commit, that one completes the phase; otherwise
   * the phase is handed back, to be built again on the new head (not counted as a failure).
   */
  private async reportLostPush(claim: ClaimResponse, phaseCommit: string | null, usage: UsageReport, log: Logger, calls: CallContext): Promise<AttemptOutcome> {
    const { run_id: runId, phase_id: phaseId, lease_token: token } = claim;
    if (phaseCommit) {
      log.info({ sha: phaseCommit }, 'push rejected: the run repository already has a commit of this phase; reporting it');
      await this.deps.supervisor.updateStatus(runId, phaseId, { lease_token: token, state: 'COMPLETE', commit_sha: phaseCommit, usage, ...drainCalls(calls) });
      return 'resumed';
    }
    log.warn('push rejected: another executor moved the integration branch first; handing the phase back');
    await this.deps.supervisor.updateStatus(runId, phaseId, {
      lease_token: token,
      state: 'QUEUED',
      failure_reason: `push_rejected: another executor pushed to ${claim.run.integration_branch} first; the phase is built again on the new head`,
      usage,
      ...drainCalls(calls),
    });
    return 'push_rejected';
  }

  private throwIfStopped(signal: AbortSignal): void {
    if (signal.aborted) throw signal.reason instanceof AttemptStoppedError ? signal.reason : new AttemptStoppedError('shutdown');
  }

  private runCiCommand(ws: string, ci: CiSpec, signal: AbortSignal): Promise<CiResult> {
    return runCi({ command: ci.command, cwd: ws, timeoutMs: (ci.timeout_s ?? 600) * 1000, env: scrubbedEnvironment(this.deps.env, this.secrets), signal });
  }

  /** CI of the clean branch head, run once per (head commit, command) for the executor's lifetime. */
  private async ciBaseline(ws: string, branch: string, ci: CiSpec, signal: AbortSignal, log: Logger): Promise<CiResult> {
    const head = await headCommit(ws, branch);
    return this.baselines.get(head, ci.command, async () => {
      log.info({ head, command: ci.command }, 'running CI on the unchanged branch head (baseline)');
      const result = await this.runCiCommand(ws, ci, signal);
      // A run cut short by a lost lease or shutdown says nothing about the branch.
      this.throwIfStopped(signal);
      log.info({ head, passed: result.passed, exit_code: result.exitCode, ms: result.durationMs }, 'baseline CI finished');
      return result;
    });
  }

  /**
   * One forced tool call, admitted only if the supervisor can reserve its worst case
   * (prompt estimate + max_tokens, priced for the model or its fallback, whichever costs
   * more) from what is left of the run, tier and phase budgets. When the provider still
   * fails after the SDK's own retries (a retryable LlmError), the call is made once more on
   * the routing's fallback, under a reservation of its own.
   */
  private async callModel(
    role: RoutedRole,
    choice: ModelChoice,
    req: Omit<ForcedToolCallRequest, 'provider' | 'model'>,
    log: Logger,
    ctx: CallContext,
  ): Promise<{ result: ForcedToolCallResult; reservationId: string }> {
    const { llm, routing } = this.deps;
    const reservationId = await this.reserve(role, choice, req, ctx);
    try {
      return { result: await this.recordedCall(role, choice, req, ctx), reservationId };
    } catch (err) {
      const fallback = err instanceof LlmError && err.retryable && !req.signal?.aborted ? fallbackFor(routing, role, choice) : undefined;
      if (!fallback || !llm.hasProvider(fallback.provider)) throw err;
      log.warn({ role, failed: choice, code: (err as LlmError).code, fallback }, 'provider still failing after retries; calling the fallback once');
      const fallbackReservation = await this.reserve(role, fallback, req, ctx);
      return { result: await this.recordedCall(role, fallback, req, ctx), reservationId: fallbackReservation };
    }
  }

  /** One call, recorded for the audit trail whatever its outcome. */
  private async recordedCall(role: RoutedRole, choice: ModelChoice, req: Omit<ForcedToolCallRequest, 'provider' | 'model'>, ctx: CallContext): Promise<ForcedToolCallResult> {
    const started = Date.now();
    try {
      const r = await this.deps.llm.callTool({ ...req, ...choice });
      const u = this.usageOf(r);
      ctx.records.push({
        role,
        provider: r.provider,
        model: r.model,
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        cached_tokens: u.cached_tokens ?? 0,
        cost_usd: u.cost_usd ?? 0,
        duration_ms: r.durationMs,
        outcome: r.truncated ? 'truncated' : r.toolInput === undefined ? 'malformed' : 'tool_call',
        ...(r.malformedReason ? { detail: r.malformedReason.slice(0, 500) } : {}),
      });
      return r;
    } catch (err) {
      ctx.records.push({
        role,
        provider: choice.provider,
        model: choice.model,
        prompt_tokens: 0,
        completion_tokens: 0,
        cached_tokens: 0,
        cost_usd: 0,
        duration_ms: Date.now() - started,
        outcome: 'error',
        detail: (err instanceof LlmError ? `${err.code}: ${err.message}` : (err as Error).message).slice(0, 500),
      });
      throw err;
    }
  }

  private async reserve(role: RoutedRole, choice: ModelChoice, req: Omit<ForcedToolCallRequest, 'provider' | 'model'>, ctx: CallContext): Promise<string> {
    const promptTokens = estimateTokens(req.system + req.prompt);
    try {
      const r = await this.deps.supervisor.reserveBudget(ctx.claim.run_id, ctx.claim.phase_id, {
        lease_token: ctx.claim.lease_token,
        tokens: promptTokens + req.maxTokens,
        cost_usd: this.worstCaseCost(role, choice, promptTokens, req.maxTokens),
        purpose: role === 'builder' ? 'builder' : 'auditor',
      });
      return r.reservation_id;
    } catch (err) {
      if (err instanceof SupervisorError && err.code === 'BUDGET_EXHAUSTED') throw new BudgetRefusedError(`${role} call (${choice.model}) not admitted: ${err.message}`);
      throw err;
    }
  }

  /** Upper bound in USD of a call, covering its fallback too (unknown prices count as 0). */
  private worstCaseCost(role: RoutedRole, choice: ModelChoice, promptTokens: number, maxTokens: number): number {
    const { routing } = this.deps;
    const fallback = fallbackFor(routing, role, choice);
    return Math.max(
      ...[choice, ...(fallback ? [fallback] : [])].map((c) => {
        const price = priceFor(c.model, routing.prices);
        return price ? worstCaseCostUsd(price, promptTokens, maxTokens) : 0;
      }),
    );
  }

  /**
   * One auditor, or two (one per provider) for high-risk phases unless disabled. A malformed
   * auditor reply is retried up to the strategy's auditor attempts; after that it rejects.
   */
  private async review(
    claim: ClaimResponse,
    routeFor: { task: TaskProfile; step: number },
    diff: string,
    ci: CiReport | null,
    summary: string,
    signal: AbortSignal,
    log: Logger,
    calls: CallContext,
  ): Promise<{ approved: boolean; summary: string; issues: ToolIssue[]; usage: UsageReport; confidence: 'low' | 'medium' | 'high' }> {
    const { routing, config } = this.deps;
    const auditors: [RoutedRole, ModelChoice][] = [['auditor', modelFor(routing, 'auditor', routeFor.task, routeFor.step) ?? routing.defaults.auditor]];
    const secondary = modelFor(routing, 'secondary_auditor', routeFor.task, routeFor.step);
    if (claim.strategy.dual_audit && config.dualAuditor && secondary) auditors.push(['secondary_auditor', secondary]);
    const prompt = auditorPrompt(claim, diff, ci, summary);
    const total: UsageReport = { prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, cost_usd: 0, calls: 0 };
    const reviews: (SubmitReviewArgs & { by: string })[] = [];
    for (const [role, auditor] of auditors) {
      let review: SubmitReviewArgs | undefined;
      let lastProblem = 'no reply';
      for (let i = 0; i < Math.max(1, claim.strategy.max_auditor_attempts) && !review; i++) {
        const { result: r } = await this.callModel(
          role,
          auditor,
          { system: AUDITOR_SYSTEM_PROMPT, prompt, tool: AUDITOR_TOOL, maxTokens: routing.auditorMaxTokens, temperature: 0.1, signal },
          log,
          calls,
        );
        const u = this.usageOf(r);
        total.prompt_tokens += u.prompt_tokens;
        total.completion_tokens += u.completion_tokens;
        total.cached_tokens = (total.cached_tokens ?? 0) + (u.cached_tokens ?? 0);
        total.cost_usd = (total.cost_usd ?? 0) + (u.cost_usd ?? 0);
        total.calls = (total.calls ?? 0) + 1;
        const parsed = r.toolInput === undefined ? undefined : SubmitReviewArgsSchema.safeParse(r.toolInput);
        if (parsed?.success) review = parsed.data;
        else lastProblem = r.malformedReason ?? parsed?.error.issues[0]?.message ?? 'invalid review';
      }
      if (!review) {
        log.warn({ auditor: auditor.provider, problem: lastProblem }, 'auditor gave no valid review');
        review = {
          approved: false,
          summary: `auditor (${auditor.provider}) gave no valid review: ${lastProblem}`,
          confidence: 'low',
          issues: [{ issue_key: 'auditor_no_valid_review', severity: 'major', category: 'auditor_error', description: lastProblem }],
        };
      }
      reviews.push({ ...review, by: `${auditor.provider}:${auditor.model}` });
    }
    const issues = reviews.flatMap((r) => r.issues);
    return {
      approved: reviews.every((r) => r.approved) && !issues.some((i) => i.severity === 'major'),
      summary: reviews.map((r) => (reviews.length > 1 ? `[${r.by}] ${r.summary}` : r.summary)).join('\n'),
      issues,
      usage: { ...total, provider: auditors[0][1].provider, model: auditors.map(([, a]) => a.model).join('+'), report_id: `${claim.run_id}:${claim.phase_id}:${claim.attempt}:auditor` },
      confidence: reviews.some((r) => r.confidence === 'low') ? 'low' : reviews.some((r) => r.confidence === 'medium') ? 'medium' : 'high',
    };
  }
}
