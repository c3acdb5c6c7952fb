import { realpathSync, statSync } from 'node:fs';
import { type AttemptOutcome, type ClaimResponse, type RunResponse, TERMINAL_PHASE_STATES, TERMINAL_RUN_STATES, failureReason } from '@app/contracts';
import { GitError, assertCleanWorktree, currentBranch, isHttpUrl, isRepository, removeStrayTempFiles } from '@app/git';
import { type LlmClient, LlmError } from '@app/llm';
import type { Logger } from 'pino';
import { BudgetRefusedError, MeteredLlm } from './attempt/metered-llm.js';
import { type BuildStepDeps, isBuildStepClaim, runBuildStep } from './attempt/build-step.js';
import { type PipelineDeps, runAttempt } from './attempt/pipeline.js';
import { type AttemptGit, type AttemptSupervisor, type BuildGit, type CiRunner, type Clock, systemClock, workspaceBuildGit, workspaceCi, workspaceGit } from './attempt/ports.js';
import { AttemptReporter } from './attempt/reporter.js';
import { dropEndedCommits } from './attempt/sync.js';
import { Verifier } from './attempt/verify.js';
import { ExecutorConfigError, type ExecutorConfig } from './config.js';
import { recoverInflight } from './inflight.js';
import { AttemptStoppedError, LeaseKeeper } from './lease-keeper.js';
import type { ModelRouting } from './models.js';
import { localPathOf } from './integration-branch.js';
import { SupervisorError, SupervisorUnreachableError, type SupervisorClient } from './supervisor-client.js';
import { WorkspaceLock } from './workspace-lock.js';


/** The supervisor as the executor uses it: claims and heartbeats, and what an attempt writes. */
export type ExecutorSupervisor = AttemptSupervisor & Pick<SupervisorClient, 'claim' | 'heartbeat'>;

/** Everything the executor talks to; the composition root (main.ts) builds them. */
export interface ExecutorDeps {
  config: ExecutorConfig;
  supervisor: ExecutorSupervisor;
  llm: Pick<LlmClient, 'callTool' | 'hasProvider'>;
  routing: ModelRouting;
  log: Logger;
  /** The executor's own environment; the CI subprocess gets a scrubbed copy. */
  env: NodeJS.ProcessEnv;
  /** Keeps other executor processes out of the workspace while this one uses it. */
  workspaceLock: WorkspaceLock;
  /**
   * The lock of another repository a run is worked in (a local `repo_url`); default a
   * `WorkspaceLock` of that repository for this executor id.
   */
  lockFor?: (workspace: string) => WorkspaceLock;
  /** Git on the workspace's integration branch (default: isomorphic-git through @app/git). */
  git?: AttemptGit;
  /** Git of a build's steps: reading commits, moving the base branch (default: isomorphic-git through @app/git). */
  buildGit?: BuildGit;
  /** Runs CI commands (default: `sh -c` in the workspace with a scrubbed environment). */
  ci?: CiRunner;
  /** Times LLM calls (default: the system clock). */
  clock?: Clock;
  /** Where the one line that explains a non-zero exit goes (default: stderr). */
  say?: (line: string) => void;
  /** A live view of the run being served (a terminal's progress bar); none by default. */
  progress?: { show(run: RunResponse): void; stop(): void };
}

/** What an attempt works with in one workspace: its lock and the side effects bound to its path. */
interface WorkspaceTools {
  workspace: string;
  lock: WorkspaceLock;
  pipeline: PipelineDeps;
  buildSteps: BuildStepDeps;
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
  private readonly git: AttemptGit;
  private readonly clock: Clock;
  private readonly secrets: string[];
  /**
   * The tools of each workspace this executor has worked in, by path: `--workspace`, and the
   * local repositories runs name as their `repo_url` (worked in place). The pipeline's CI
   * baseline cache lives as long as the executor.
   */
  private readonly workspaces = new Map<string, WorkspaceTools>();
  /** The progress view's pending look at the run (looks are made one after another). */
  private progressLook: Promise<void> = Promise.resolve();

  constructor(private readonly deps: ExecutorDeps) {
    const c = deps.config;
    this.secrets = [c.apiKey, c.openaiKey, c.anthropicKey].filter((s): s is string => !!s);
    this.git = deps.git ?? workspaceGit;
    this.clock = deps.clock ?? systemClock;
    this.workspaces.set(c.workspace, this.makeTools(c.workspace, deps.workspaceLock));
  }

  private makeTools(workspace: string, lock: WorkspaceLock): WorkspaceTools {
    const { deps } = this;
    // An injected CI runner (tests) serves every workspace; the real one runs in each workspace.
    const ci = deps.ci ?? workspaceCi(workspace, deps.env, this.secrets);
    return {
      workspace,
      lock,
      pipeline: { workspace, git: this.git, supervisor: deps.supervisor, verifier: new Verifier({ git: this.git, ci, workspace }), routing: deps.routing, dualAuditor: deps.config.dualAuditor },
      buildSteps: { workspace, git: this.git, buildGit: deps.buildGit ?? workspaceBuildGit, supervisor: deps.supervisor, ci, routing: deps.routing },
    };
  }

  /** The tools of `--workspace`. */
  private get home(): WorkspaceTools {
    return this.workspaces.get(this.deps.config.workspace)!;
  }

  /**
   * Where a run is worked: a `repo_url` that is a local path to a git repository (not an
   * http(s) URL) is worked in place, in that repository; every other run in `--workspace`.
   */
  private async toolsForRun(run: { repo_url: string | null }): Promise<WorkspaceTools> {
    const repoUrl = run.repo_url;
    if (!repoUrl || isHttpUrl(repoUrl)) return this.home;
    let dir: string;
    try {
      dir = realpathSync(localPathOf(repoUrl));
      if (!statSync(dir).isDirectory() || !(await isRepository(dir))) return this.home;
    } catch {
      return this.home;
    }
    if (dir === this.tryRealpath(this.deps.config.workspace)) return this.home;
    let tools = this.workspaces.get(dir);
    if (!tools) {
      const lock = this.deps.lockFor ? this.deps.lockFor(dir) : new WorkspaceLock(dir, this.deps.config.executorId);
      tools = this.makeTools(dir, lock);
      this.workspaces.set(dir, tools);
    }
    return tools;
  }

  private tryRealpath(p: string): string {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  }

  /** Releases every workspace lock this executor holds (for a process exit past every `finally`). */
  releaseLocks(): void {
    for (const t of this.workspaces.values()) t.lock.release();
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
          capabilities: config.capabilities,
          ...(config.runId ? { run_id: config.runId } : {}),
          wait_ms: Math.min(30_000, Math.round(config.pollIntervalSeconds * 1000)),
        });
        if (!claim) {
          const exit = await this.nothingLeft();
          if (exit !== undefined) return exit;
          continue;
        }
        iterations++;
        this.showProgress(claim.run_id);
        await this.runClaim(claim);
        this.showProgress(claim.run_id);
      }
      return EXIT.ok;
    } catch (err) {
      const exit = exitFor(err);
      if (!exit) throw err;
      if (exit.line) this.fatal(exit.line);
      return exit.code;
    } finally {
      this.deps.progress?.stop();
    }
  }

  /** Looks at the run for the progress view, one look at a time; a failed look is only a missed update. */
  private showProgress(runId: string, known?: RunResponse): void {
    const { progress, supervisor } = this.deps;
    if (!progress) return;
    this.progressLook = this.progressLook.then(async () => progress.show(known ?? (await supervisor.getRun(runId)))).catch(() => undefined);
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
    this.showProgress(run.run_id, run);
    if (TERMINAL_RUN_STATES.includes(run.state)) {
      log.info({ run_id: run.run_id, state: run.state, failure_reason: run.failure_reason }, 'run is terminal');
      // The last holder of the workspace leaves no commit of a phase that did not complete.
      const tools = await this.toolsForRun(run);
      const integration = {
        workspace: tools.workspace,
        branch: run.integration_branch,
        runId: run.run_id,
        sharedUrl: run.repo_url && isHttpUrl(run.repo_url) ? run.repo_url : undefined,
      };
      const states = Object.fromEntries(run.phases.map((p) => [p.phase_id, p.state]));
      await this.holdingWorkspace(tools, this.stop.signal, log, () => dropEndedCommits(this.git, integration, states, true, log));
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
    await this.holdingWorkspace(this.home, this.stop.signal, this.deps.log, async () => {
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
  private async holdingWorkspace<T>(tools: WorkspaceTools, signal: AbortSignal, log: Logger, work: () => Promise<T>): Promise<T> {
    const { lock: workspaceLock, workspace } = tools;
    const takeover = await workspaceLock.acquire({
      signal,
      onWait: (h) => log.info({ holder_pid: h.pid, holder_executor_id: h.executor_id, held_since: h.acquired_at, lock_file: workspaceLock.file }, 'waiting for another executor to release the workspace'),
    });
    try {
      if (takeover) log.warn({ holder_pid: takeover.holder?.pid, holder_executor_id: takeover.holder?.executor_id }, 'took over the workspace lock of an executor that is gone');
      const recovered = await recoverInflight(workspace);
      if (recovered) log.warn({ run_id: recovered.runId, phase_id: recovered.phaseId, attempt: recovered.attempt, paths: recovered.paths.length }, 'restored the working copy of an attempt interrupted by a crash');
      const strays = await removeStrayTempFiles(workspace);
      if (strays) log.warn({ files: strays }, 'removed temporary files a killed executor left in .git');
      return await work();
    } finally {
      workspaceLock.release();
    }
  }


  /**
   * Runs one claimed attempt with a heartbeat, and guarantees it is reported: the pipeline
   * reports every stage result; what ends the attempt from outside it (a stop, a refused
   * budget, a provider problem, an unexpected error) is reported here.
   */
  private async runClaim(claim: ClaimResponse): Promise<AttemptOutcome> {
    const log = this.deps.log.child({ run_id: claim.run_id, phase_id: claim.phase_id, attempt: claim.attempt });
    const lease = new LeaseKeeper(this.deps.supervisor, claim, (m) => log.warn(m));
    this.current = lease;
    lease.start();
    const llm = new MeteredLlm({ llm: this.deps.llm, supervisor: this.deps.supervisor, routing: this.deps.routing, clock: this.clock, log }, claim);
    const reporter = new AttemptReporter(this.deps.supervisor, claim, llm, log);
    try {
      const tools = await this.toolsForRun(claim.run);
      if (tools !== this.home) log.info({ workspace: tools.workspace }, 'working the run in place in its local repository');
      const outcome = await this.holdingWorkspace(tools, lease.signal, log, () =>
        isBuildStepClaim(claim) ? runBuildStep(tools.buildSteps, { claim, signal: lease.signal, log, llm }) : runAttempt(tools.pipeline, { claim, signal: lease.signal, log, llm, reporter }),
      );
      log.info({ outcome }, 'attempt finished');
      return outcome;
    } catch (err) {
      const stop = err instanceof AttemptStoppedError ? err : lease.signal.aborted ? (lease.signal.reason as AttemptStoppedError) : undefined;
      if (stop) {
        log.warn({ reason: stop.reason }, 'attempt stopped');
        // A shutdown hands the lease back with the calls it made. A lost lease or a stopped run
        // has no lease left to report with: a stale token changes nothing (CONTRACT.md section 6).
        if (stop.reason === 'shutdown') await reporter.report({ stage: 'end', ending: { kind: 'handed_back' } });
        return 'stopped';
      }
      if (err instanceof SupervisorUnreachableError || err instanceof ExecutorConfigError) throw err;
      if (err instanceof LlmError && err.kind !== 'aborted') return await this.handBackForProvider(claim, err, log, llm, reporter);
      if (err instanceof BudgetRefusedError) {
        log.warn({ reason: err.message }, 'LLM call not admitted by the budget');
        await reporter.report({ stage: 'end', ending: { kind: 'budget_refused', message: err.message } });
        return 'builder_failed';
      }
      if (err instanceof SupervisorError && err.code === 'LEASE_LOST') {
        log.warn('lease lost while reporting');
        return 'stopped';
      }
      // Anything else is this attempt's failure, reported with a code and message, never a stack.
      const reason = err instanceof LlmError ? failureReason('llm_error', `${err.code}: ${err.message}`) : failureReason('executor_error', (err as Error).message);
      log.error({ err: (err as Error).message }, 'attempt failed unexpectedly');
      await reporter.report({ stage: 'end', ending: { kind: 'attempt_error', reason } });
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
  private async handBackForProvider(claim: ClaimResponse, err: LlmError, log: Logger, llm: MeteredLlm, reporter: AttemptReporter): Promise<never> {
    const problem = err.describe(llm.lastUnreportedModel());
    log.warn({ code: err.code, provider: err.provider, status: err.status }, 'provider problem: handing the phase back uncharged');
    await reporter.report({ stage: 'end', ending: { kind: 'provider_problem', reason: failureReason('provider_error', `${problem}: ${err.message}`) } });
    const hint =
      err.kind === 'transient'
        ? 'run the executor again when the provider answers'
        : `check ${err.provider === 'openai' ? 'OPENAI_API_KEY (--openai-key)' : 'ANTHROPIC_API_KEY (--anthropic-key)'} and the model routing`;
    throw new ProviderProblemError(`${problem}; phase ${claim.phase_id} of run ${claim.run_id} was handed back uncharged; ${hint}`, err);
  }
}
