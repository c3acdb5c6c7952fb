/**
 * Fakes of the attempt pipeline's side effects (apps/executor/src/attempt/ports.ts), for the
 * stage and reporter unit specs: no database, no network, no spawned process.
 */
import type { ClaimResponse, HeartbeatResponse, PhaseState, PhaseWriteResponse, RunResponse } from '@app/contracts';
import type { ForcedToolCallRequest, ForcedToolCallResult, Provider } from '@app/llm';
import pino from 'pino';
import type { PromoteBranchOptions, PromotionResult, ResetBranchToOptions, ResetBranchToResult } from '@app/git';
import type { AttemptGit, AttemptLlm, AttemptSupervisor, BuildGit, CiRunner, Clock } from '../../apps/executor/src/attempt/ports.js';
import type { CiResult } from '../../apps/executor/src/ci-runner.js';
import type { IntegrationBranch, PublishResult } from '../../apps/executor/src/integration-branch.js';
import { resolveModelRouting } from '../../apps/executor/src/models.js';

export const silentLog = pino({ level: 'silent' });

/** Routing with both providers: OpenAI builds, Anthropic audits, OpenAI is the second auditor. */
export const bothProviders = () => resolveModelRouting({ openai: true, anthropic: true });

type ClaimPatch = Partial<Omit<ClaimResponse, 'phase' | 'strategy' | 'run'>> & {
  phase?: Partial<ClaimResponse['phase']>;
  strategy?: Partial<ClaimResponse['strategy']>;
  run?: Partial<ClaimResponse['run']>;
};

/** A claim of phase `p1` (attempt 1) of run `r1`, patched. */
export function makeClaim(patch: ClaimPatch = {}): ClaimResponse {
  const { phase, strategy, run, ...rest } = patch;
  return {
    run_id: 'r1',
    phase_id: 'p1',
    lease_token: '00000000-0000-4000-8000-000000000001',
    lease_expires_at: '2026-01-01T00:00:00.000Z',
    lease_seconds: 60,
    attempt: 1,
    max_attempts: 3,
    budget_left: { tokens: 1_000_000, cost_usd: null, phase_tokens: 100_000, minutes: 60, ci_runs: 10 },
    previous_attempts: [],
    ...rest,
    phase: {
      phase_id: 'p1',
      tier_id: 't1',
      phase_index: 0,
      name: 'Add a greeting',
      description: 'Write hello.txt',
      task_category: 'feature_scaffolding',
      complexity: 'low',
      builder_mode: null,
      scope: null,
      acceptance_criteria: [],
      ci: null,
      allow_mass_deletion: false,
      allow_mass_addition: false,
      ...phase,
      kind: phase?.kind ?? 'code',
      requires: phase?.requires ?? [],
    },
    strategy: {
      task_category: 'feature_scaffolding',
      resolved_category: 'feature_scaffolding',
      high_risk: false,
      complexity: 'low',
      max_builder_attempts: 3,
      max_auditor_attempts: 2,
      incident_token_cap: 100_000,
      ci_profile: 'normal',
      auditor_profile: null,
      auto_apply: true,
      dual_audit: false,
      default_severity: 'minor',
      ...strategy,
    },
    run: {
      run_id: 'r1',
      base_branch: 'main',
      integration_branch: 'autonomous/r1',
      repo_url: null,
      safety_profile: 'normal',
      ci: null,
      protected_paths: [],
      ...run,
    },
  };
}

/** One supervisor call as the fake saw it. */
export interface SupervisorCall {
  method: keyof AttemptSupervisor | 'claim' | 'heartbeat';
  runId: string;
  phaseId?: string;
  body?: unknown;
}

/** Records every call; answers writes with `phaseState` (per method if set), or throws what `failWith` names. */
export class FakeSupervisor implements AttemptSupervisor {
  readonly calls: SupervisorCall[] = [];
  readonly failWith: Partial<Record<SupervisorCall['method'], Error>> = {};
  readonly phaseStateOf: Partial<Record<keyof AttemptSupervisor, PhaseState>> = {};
  /** What `getRun` answers (with `run_id` added). */
  run: Partial<RunResponse> & Pick<RunResponse, 'state' | 'phases'> = { state: 'PHASE_EXECUTION', phases: [] };
  /** What successive claims answer; null (no phase) once they run out. */
  readonly claims: (ClaimResponse | null)[] = [];
  /** Called with each call as it arrives (to look at the workspace at that moment). */
  onCall: ((call: SupervisorCall) => void) | undefined;
  private reservations = 0;

  /** Bodies sent to `method`, in order. */
  bodies(method: SupervisorCall['method']): unknown[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.body);
  }

  /** `method` or `method:state` for each call, in order (the report sequence). */
  sequence(): string[] {
    return this.calls.map((c) =>
      c.method === 'updateStatus' ? `updateStatus:${(c.body as { state: string }).state}` : (c.body as { start_ci?: boolean } | undefined)?.start_ci ? `${c.method}+CI_RUNNING` : c.method,
    );
  }

  private record(method: SupervisorCall['method'], runId: string, phaseId?: string, body?: unknown): void {
    const call = { method, runId, ...(phaseId !== undefined ? { phaseId } : {}), ...(body !== undefined ? { body } : {}) };
    this.calls.push(call);
    this.onCall?.(call);
    const err = this.failWith[method];
    if (err) throw err;
  }

  private async write(method: keyof AttemptSupervisor, runId: string, phaseId: string, body: unknown): Promise<PhaseWriteResponse> {
    this.record(method, runId, phaseId, body);
    const asked = body as { state?: PhaseState; start_ci?: boolean };
    const state = this.phaseStateOf[method] ?? asked.state ?? (asked.start_ci ? 'CI_RUNNING' : 'EXECUTING');
    return { message: 'ok', run_id: runId, phase_id: phaseId, phase_state: state, run_state: 'RUNNING', attempt: 1, attempts_left: 2 };
  }

  builderResult = (runId: string, phaseId: string, body: unknown) => this.write('builderResult', runId, phaseId, body);
  auditorRequest = (runId: string, phaseId: string, body: unknown) => this.write('auditorRequest', runId, phaseId, body);
  auditorResult = (runId: string, phaseId: string, body: unknown) => this.write('auditorResult', runId, phaseId, body);
  updateStatus = (runId: string, phaseId: string, body: unknown) => this.write('updateStatus', runId, phaseId, body);

  /** What `stepResult` answers for a plan: accepted unless this lists problems. */
  planProblems: string[] | undefined;

  async stepResult(runId: string, phaseId: string, body: unknown) {
    const written = await this.write('stepResult', runId, phaseId, body);
    const problems = (body as { kind: string }).kind === 'plan' ? this.planProblems : undefined;
    return { ...written, phase_state: problems ? ('QUEUED' as const) : written.phase_state, accepted: !problems, ...(problems ? { problems } : {}) };
  }

  async reserveBudget(runId: string, phaseId: string, body: unknown) {
    this.record('reserveBudget', runId, phaseId, body);
    return { reservation_id: `res-${++this.reservations}`, budget_left: { tokens: 1, cost_usd: null, phase_tokens: 1, minutes: 1, ci_runs: 1 } };
  }

  async claim(req: { run_id?: string }): Promise<ClaimResponse | null> {
    this.record('claim', req.run_id ?? '', undefined, req);
    return this.claims.shift() ?? null;
  }

  async heartbeat(runId: string, phaseId: string): Promise<HeartbeatResponse> {
    this.record('heartbeat', runId, phaseId);
    return { lease_expires_at: '2026-01-01T00:00:00.000Z', run_state: 'PHASE_EXECUTION', stop_requested: false };
  }

  async getRun(runId: string): Promise<RunResponse> {
    this.record('getRun', runId);
    return { run_id: runId, ...this.run } as unknown as RunResponse;
  }
}

/** What the fake LLM answers one call with: a tool input (or a patch of the result), or an error to throw. */
export type FakeReply = { toolInput: unknown } | Partial<ForcedToolCallResult> | Error;

/** Answers calls from a queue of replies, echoing the requested provider and model; records every request. */
export class FakeLlm implements AttemptLlm {
  readonly requests: ForcedToolCallRequest[] = [];
  constructor(
    readonly replies: FakeReply[] = [],
    private readonly providers: Provider[] = ['openai', 'anthropic'],
  ) {}

  hasProvider(provider: Provider): boolean {
    return this.providers.includes(provider);
  }

  async callTool(req: ForcedToolCallRequest): Promise<ForcedToolCallResult> {
    this.requests.push(req);
    const reply = this.replies.shift();
    if (reply === undefined) throw new Error('FakeLlm: no reply queued');
    if (reply instanceof Error) throw reply;
    return {
      provider: req.provider,
      model: req.model,
      toolInput: undefined,
      text: '',
      usage: { promptTokens: 1000, completionTokens: 200, cachedTokens: 100 },
      stopReason: 'tool_calls',
      truncated: false,
      durationMs: 7,
      ...reply,
    };
  }
}

/** A clock that moves `step` ms each time it is read. */
export function steppingClock(step = 25, start = 1_000_000): Clock {
  let t = start - step;
  return { now: () => (t += step) };
}

/** A CI result. */
export function ciResult(patch: Partial<CiResult> = {}): CiResult {
  return { passed: true, exitCode: 0, timedOut: false, durationMs: 1500, outputTail: 'ok\n', outputBytes: 3, ...patch };
}

/** Answers CI runs from a queue; records every spec run. */
export class FakeCi implements CiRunner {
  readonly runs: string[] = [];
  constructor(readonly results: (CiResult | ((signal: AbortSignal) => CiResult))[] = []) {}

  async run(spec: { command: string }, signal: AbortSignal): Promise<CiResult> {
    this.runs.push(spec.command);
    const next = this.results.shift();
    if (next === undefined) throw new Error('FakeCi: no result queued');
    return typeof next === 'function' ? next(signal) : next;
  }
}

/** Git on a branch that lives in memory: heads, commits, pushes; every operation is logged. */
export class FakeGit implements AttemptGit {
  readonly ops: string[] = [];
  head = 'base0000';
  phaseCommit: { sha: string } | null = null;
  publishAs: PublishResult | Error = { kept: true };
  commitFails: Error | undefined;
  dropped: { states: Record<string, string>; runEnded: boolean }[] = [];
  lastCommitMessage = '';
  private commits = 0;

  async checkOut(b: IntegrationBranch) {
    this.ops.push(`checkOut ${b.branch}`);
    return this.head;
  }

  async changedFiles(_workspace: string, _from: string, _to: string): Promise<Map<string, 'added' | 'modified' | 'removed'>> {
    return new Map();
  }

  async dropEndedCommits(_b: unknown, states: Readonly<Record<string, string>>, runEnded: boolean) {
    this.ops.push('dropEndedCommits');
    this.dropped.push({ states: { ...states }, runEnded });
    return { resetTo: null, dropped: [], buried: [], shared: false };
  }

  async findPhaseCommit(_ws: string, q: { branch: string; runId: string; phaseId: string }) {
    this.ops.push(`findPhaseCommit ${q.runId}/${q.phaseId}`);
    return this.phaseCommit;
  }

  async headCommit(_ws: string, ref: string) {
    this.ops.push(`headCommit ${ref}`);
    return this.head;
  }

  async commit(_ws: string, input: { message: string; written: string[]; deleted: string[] }) {
    this.ops.push(`commit ${input.written.join(',')}|${input.deleted.join(',')}`);
    if (this.commitFails) throw this.commitFails;
    this.lastCommitMessage = input.message;
    this.head = `commit${++this.commits}`;
    return this.head;
  }

  async publish(_b: IntegrationBranch, c: { commit: string; parent: string }) {
    this.ops.push(`publish ${c.commit} on ${c.parent}`);
    if (this.publishAs instanceof Error) throw this.publishAs;
    return this.publishAs;
  }

  async resetBranch(_ws: string, to: { branch: string; commit: string }) {
    this.ops.push(`resetBranch ${to.branch} ${to.commit}`);
    this.head = to.commit;
    return { branch: to.branch, head: to.commit };
  }
}

/** The build steps' git (ports.ts BuildGit) in memory: files per ref, and answers (or errors) per operation; every call is logged. */
export class FakeBuildGit implements BuildGit {
  readonly ops: string[] = [];
  /** What `readFileAtRef` finds: ref -> path -> text. */
  files: Record<string, Record<string, string>> = {};
  /** What `listTrackedFiles` answers. */
  tracked: string[] = [];
  promoteAs: PromotionResult | Error = { kind: 'fast_forward', previous: 'base0000', sha: 'head0000', pushed: false };
  resetAs: ResetBranchToResult | Error = { branch: 'main', previous: 'head0000', sha: 'base0000', changed: true, pushed: false };
  /** What `fetchBranch` answers. */
  sharedHead: string | null = null;
  readonly promotions: PromoteBranchOptions[] = [];
  readonly resets: ResetBranchToOptions[] = [];
  /** Called inside `promote` (to abort a signal mid-call, say). */
  onPromote: ((options: PromoteBranchOptions) => void) | undefined;

  async readFileAtRef(_ws: string, ref: string, filepath: string) {
    this.ops.push(`readFileAtRef ${ref} ${filepath}`);
    return this.files[ref]?.[filepath] ?? null;
  }

  async listTrackedFiles(_ws: string, ref: string) {
    this.ops.push(`listTrackedFiles ${ref}`);
    return [...this.tracked];
  }

  async promote(_ws: string, options: PromoteBranchOptions) {
    this.ops.push(`promote ${options.head} into ${options.base}`);
    this.promotions.push(options);
    this.onPromote?.(options);
    if (this.promoteAs instanceof Error) throw this.promoteAs;
    return this.promoteAs;
  }

  async resetBranchTo(_ws: string, options: ResetBranchToOptions) {
    this.ops.push(`resetBranchTo ${options.branch} ${options.sha} from ${options.expected}${options.url ? ' shared' : ''}`);
    this.resets.push(options);
    if (this.resetAs instanceof Error) throw this.resetAs;
    return this.resetAs;
  }

  async fetchBranch(_ws: string, options: { url: string; branch: string }) {
    this.ops.push(`fetchBranch ${options.branch}`);
    return this.sharedHead;
  }
}
