import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { BuildStepStatus, PhaseState } from '@app/contracts';
import { DEFAULT_MAX_ABANDONMENTS, type StrategyPhaseInput, compileStrategy } from '@app/domain';
import {
  BacklogEntity,
  BuildEntity,
  EventEntity,
  PhaseAttemptEntity,
  PhaseEntity,
  PhaseIssueEntity,
  RunEntity,
  TierEntity,
} from '../../../apps/supervisor/src/entities/index.js';

/** Phase states that hold a lease (the schema's CHECK: a lease exactly in these states). */
const LEASED: readonly PhaseState[] = ['EXECUTING', 'GATE', 'CI_RUNNING'];

/** A lease for {@link Factories.makePhase}; `expiresInSeconds` < 0 gives an expired one. */
export interface LeaseSpec {
  token?: string;
  owner?: string;
  expiresInSeconds?: number;
}

export type MakeRun = Partial<RunEntity>;
export type MakeTier = Partial<TierEntity> & { runId: string };
export type MakePhase = Partial<Omit<PhaseEntity, 'leaseToken' | 'leaseOwner' | 'leaseExpiresAt'>> & {
  runId: string;
  /** A live lease by default in a leased state; `null` or absent otherwise. */
  lease?: LeaseSpec | null;
};
export type MakeAttempt = Partial<PhaseAttemptEntity> & { runId: string; phaseId: string };
export type MakeEvent = Partial<EventEntity> & { runId: string; type: string };
export type MakeIssue = Partial<PhaseIssueEntity> & { runId: string; phaseId: string };
export interface MakeBuildStep {
  status?: BuildStepStatus;
  tries?: number;
  error?: string;
  startedSecondsAgo?: number;
  completedSecondsAgo?: number;
}
export type MakeBuild = Partial<Pick<BuildEntity, 'runId' | 'status' | 'checkpoint' | 'approvalMode' | 'autoDeploy' | 'notifyChannels' | 'hooks' | 'error' | 'deploymentUrl'>> & {
  dropletId?: string;
  dropletName?: string;
  intent?: string;
  /** How long it has been queued (FIFO order). */
  queuedSecondsAgo?: number;
  /** Steps by number. */
  steps?: Partial<Record<number, MakeBuildStep>>;
};
export type MakeBacklogEntry = Partial<BacklogEntity> & { issueKey: string };

/**
 * Rows for medium specs, inserted through the supervisor's TypeORM entities (plain SQL for
 * the tables that have no entity). Every factory fills the columns a test does not care
 * about with what `POST /runs/start` would have stored, and returns the row as read back.
 *
 * A run's `strategy` is recompiled whenever a tier or phase is added to it, so it covers its
 * plan as if the plan had been started whole; pass `strategy` to `makeRun` to keep your own.
 */
export class Factories {
  private seq = 0;
  private readonly ownStrategy = new Set<string>();

  constructor(private readonly ds: DataSource) {}

  private next(prefix: string): string {
    return `${prefix}-${++this.seq}`;
  }

  /** A run in PHASE_EXECUTION (started now, nothing used), with no tiers or phases yet. */
  async makeRun(o: MakeRun = {}): Promise<RunEntity> {
    const runId = o.runId ?? this.next('run');
    if (o.strategy) this.ownStrategy.add(runId);
    const safetyProfile = o.safetyProfile ?? 'normal';
    const strategy =
      o.strategy ??
      compileStrategy({ safetyProfile, tierIds: [], phases: [], run: { tokenCap: o.tokenCap, maxPhases: o.maxPhases, maxDurationMinutes: o.maxDurationMinutes } });
    await this.ds.getRepository(RunEntity).insert({
      projectId: 'default',
      state: 'PHASE_EXECUTION',
      runScope: 'multi_tier',
      approvalMode: 'auto',
      baseBranch: 'main',
      repoUrl: null,
      ci: null,
      protectedPaths: [],
      tokenCap: strategy.run.tokenCap,
      costCapUsd: null,
      maxPhases: strategy.run.maxPhases,
      maxDurationMinutes: strategy.run.maxDurationMinutes,
      maxMinorIssuesTotal: strategy.run.maxMinorIssuesTotal,
      tokensUsed: 0,
      costUsedUsd: 0,
      ciRunsUsed: 0,
      minorIssuesCount: 0,
      majorIssuesCount: 0,
      failureReason: null,
      debtStatus: null,
      maxParallelPhases: 1,
      approvedThroughTierIndex: -1,
      approvalState: 'not_required',
      approvalNotes: null,
      approvedAt: null,
      version: 1,
      startedAt: () => 'now()',
      completedAt: null,
      ...o,
      runId,
      safetyProfile,
      strategy,
    });
    return this.ds.getRepository(RunEntity).findOneByOrFail({ runId });
  }

  /** A PENDING tier after the run's last one. */
  async makeTier(o: MakeTier): Promise<TierEntity> {
    const tiers = await this.ds.getRepository(TierEntity).find({ where: { runId: o.runId } });
    const tierIndex = o.tierIndex ?? Math.max(-1, ...tiers.map((t) => t.tierIndex)) + 1;
    const tierId = o.tierId ?? this.next('tier');
    await this.ds.getRepository(TierEntity).insert({
      name: `Tier ${tierIndex}`,
      description: null,
      state: 'PENDING',
      cleanliness: 'clean',
      minorIssuesCount: 0,
      majorIssuesCount: 0,
      tokensUsed: 0,
      ciRunsUsed: 0,
      version: 1,
      ...o,
      tierId,
      tierIndex,
    });
    await this.recompileStrategy(o.runId);
    return this.ds.getRepository(TierEntity).findOneByOrFail({ runId: o.runId, tierId });
  }

  /**
   * A phase, QUEUED by default, in `tierId` or else the run's last tier (made when the run
   * has none). A leased state gets a live lease unless `lease` says otherwise.
   */
  async makePhase(o: MakePhase): Promise<PhaseEntity> {
    const { lease, ...columns } = o;
    const state = o.state ?? 'QUEUED';
    const tierId = o.tierId ?? (await this.lastTierId(o.runId)) ?? (await this.makeTier({ runId: o.runId })).tierId;
    const phases = await this.ds.getRepository(PhaseEntity).find({ where: { runId: o.runId } });
    const phaseIndex = o.phaseIndex ?? Math.max(-1, ...phases.map((p) => p.phaseIndex)) + 1;
    const phaseId = o.phaseId ?? this.next('phase');
    const leased = lease ?? (LEASED.includes(state) && lease === undefined ? {} : null);
    await this.ds.getRepository(PhaseEntity).insert({
      name: `Phase ${phaseIndex}`,
      description: null,
      taskCategory: null,
      complexity: null,
      builderMode: null,
      scope: null,
      acceptanceCriteria: [],
      ci: null,
      allowMassDeletion: false,
      allowMassAddition: false,
      attemptsUsed: leased ? 1 : 0,
      claimsCount: leased ? 1 : 0,
      abandonments: 0,
      maxAbandonments: DEFAULT_MAX_ABANDONMENTS,
      maxAttempts: 3,
      builderAttempts: 0,
      auditorAttempts: 0,
      tokensUsed: 0,
      minorIssuesCount: 0,
      majorIssuesCount: 0,
      qualityLevel: null,
      lastFailureReason: null,
      commitSha: null,
      filesChanged: [],
      linesAdded: 0,
      linesRemoved: 0,
      version: 1,
      ...columns,
      runId: o.runId,
      tierId,
      phaseIndex,
      phaseId,
      state,
      ...(leased
        ? {
            leaseToken: leased.token ?? randomUUID(),
            leaseOwner: leased.owner ?? 'executor-1',
            // Database time, as the supervisor computes leases.
            leaseExpiresAt: () => `now() + make_interval(secs => ${Number(leased.expiresInSeconds ?? 60)})`,
          }
        : { leaseToken: null, leaseOwner: null, leaseExpiresAt: null }),
    });
    await this.recompileStrategy(o.runId);
    return this.ds.getRepository(PhaseEntity).findOneByOrFail({ runId: o.runId, phaseId });
  }

  /** A finished attempt of a phase, numbered after the phase's last one. */
  async makeAttempt(o: MakeAttempt): Promise<PhaseAttemptEntity> {
    const previous = await this.ds.getRepository(PhaseAttemptEntity).find({ where: { runId: o.runId, phaseId: o.phaseId } });
    const attempt = o.attempt ?? Math.max(0, ...previous.map((a) => a.attempt)) + 1;
    await this.ds.getRepository(PhaseAttemptEntity).insert({
      outcome: 'failed',
      reason: null,
      feedback: null,
      editsHash: null,
      executorId: 'executor-1',
      commitSha: null,
      ...o,
      attempt,
    });
    return this.ds.getRepository(PhaseAttemptEntity).findOneByOrFail({ runId: o.runId, phaseId: o.phaseId, attempt });
  }

  /** An audit event. */
  async makeEvent(o: MakeEvent): Promise<EventEntity> {
    const { identifiers } = await this.ds.getRepository(EventEntity).insert({ phaseId: null, ...o, payload: (o.payload ?? {}) as object });
    return this.ds.getRepository(EventEntity).findOneByOrFail({ id: String(identifiers[0].id) });
  }

  /** An open minor issue of a phase, seen once at attempt 1 (its tier is the phase's). */
  async makeIssue(o: MakeIssue): Promise<PhaseIssueEntity> {
    const phase = await this.ds.getRepository(PhaseEntity).findOneByOrFail({ runId: o.runId, phaseId: o.phaseId });
    const { identifiers } = await this.ds.getRepository(PhaseIssueEntity).insert({
      tierId: phase.tierId,
      issueKey: this.next('issue'),
      severity: 'minor',
      effectiveSeverity: o.severity ?? 'minor',
      source: 'auditor',
      category: 'style',
      description: null,
      location: null,
      evidenceRefs: [],
      occurrenceCount: 1,
      lastSeenAttempt: 1,
      status: 'open',
      ...o,
    });
    return this.ds.getRepository(PhaseIssueEntity).findOneByOrFail({ id: identifiers[0].id as number });
  }

  /** An open minor backlog entry of the default project, seen in one run and one tier. */
  async makeBacklogEntry(o: MakeBacklogEntry): Promise<BacklogEntity> {
    const projectId = o.projectId ?? 'default';
    await this.ds.getRepository(BacklogEntity).insert({
      category: 'style',
      baseSeverity: 'minor',
      effectiveSeverity: o.baseSeverity ?? 'minor',
      ageInRuns: 1,
      ageInTiers: 1,
      occurrenceCount: 1,
      seenInRuns: ['run-0'],
      seenInTiers: ['run-0/tier-0'],
      firstSeenRunId: 'run-0',
      lastSeenRunId: 'run-0',
      status: 'open',
      resolvedByRunId: null,
      resolvedAt: null,
      ...o,
      projectId,
    });
    return this.ds.getRepository(BacklogEntity).findOneByOrFail({ projectId, issueKey: o.issueKey });
  }

  /**
   * A build of a run (made with {@link makeRun} when `runId` names none), `queued` with its
   * six steps `pending` by default; `steps` sets some steps' status and times (seconds ago).
   * A build awaiting approval waits at `checkpoint` (default `built`).
   */
  async makeBuild(o: MakeBuild = {}): Promise<BuildEntity> {
    const runId = o.runId ?? (await this.makeRun()).runId;
    if (!(await this.ds.getRepository(RunEntity).existsBy({ runId }))) await this.makeRun({ runId });
    const status = o.status ?? 'queued';
    const checkpoint = o.checkpoint ?? (status === 'awaiting_approval' ? 'built' : null);
    await this.ds.query(
      `INSERT INTO builds (run_id, droplet_id, droplet_name, intent, approval_mode, auto_deploy, notify_channels, hooks, status, checkpoint, error, deployment_url, queued_at, started_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb,$8::jsonb,$9,$10,$11,$12, now() - make_interval(secs => $13), CASE WHEN $9 = 'queued' THEN NULL ELSE now() END)`,
      [
        runId,
        o.dropletId ?? null,
        o.dropletName ?? null,
        o.intent ?? 'A shop for hats',
        o.approvalMode ?? 'auto',
        o.autoDeploy ?? true,
        o.notifyChannels ? JSON.stringify(o.notifyChannels) : null,
        JSON.stringify(o.hooks ?? {}),
        status,
        checkpoint,
        o.error ?? null,
        o.deploymentUrl ?? null,
        o.queuedSecondsAgo ?? 0,
      ],
    );
    for (let step = 1; step <= 6; step++) {
      const s = o.steps?.[step] ?? {};
      await this.ds.query(
        `INSERT INTO build_steps (run_id, step, status, tries, error, started_at, completed_at)
         VALUES ($1,$2,$3,$4,$5, now() - make_interval(secs => $6::float8), now() - make_interval(secs => $7::float8))`,
        [runId, step, s.status ?? 'pending', s.tries ?? (s.startedSecondsAgo === undefined ? 0 : 1), s.error ?? null, s.startedSecondsAgo ?? null, s.completedSecondsAgo ?? null],
      );
    }
    return this.ds.getRepository(BuildEntity).findOneByOrFail({ runId });
  }

  /** An open budget reservation (the table has no entity). */
  async makeReservation(o: { runId: string; phaseId: string; tierId?: string; tokens: number; costUsd?: number }): Promise<{ id: string }> {
    const id = randomUUID();
    const tierId = o.tierId ?? (await this.ds.getRepository(PhaseEntity).findOneByOrFail({ runId: o.runId, phaseId: o.phaseId })).tierId;
    await this.ds.query(`INSERT INTO budget_reservations (id, run_id, phase_id, tier_id, tokens, cost_usd) VALUES ($1,$2,$3,$4,$5,$6)`, [
      id,
      o.runId,
      o.phaseId,
      tierId,
      o.tokens,
      o.costUsd ?? 0,
    ]);
    return { id };
  }

  /** A stored Idempotency-Key answer, `ageSeconds` old (the table has no entity). */
  async makeIdempotencyKey(o: { route: string; key: string; requestHash?: string; status?: number; response?: unknown; ageSeconds?: number }): Promise<void> {
    await this.ds.query(
      `INSERT INTO idempotency_keys (route, key, request_hash, status, response, created_at)
       VALUES ($1,$2,$3,$4,$5::jsonb, now() - make_interval(secs => $6))`,
      [o.route, o.key, o.requestHash ?? 'hash', o.status ?? 201, JSON.stringify(o.response ?? null), o.ageSeconds ?? 0],
    );
  }

  private async lastTierId(runId: string): Promise<string | undefined> {
    const [last] = await this.ds.getRepository(TierEntity).find({ where: { runId }, order: { tierIndex: 'DESC' }, take: 1 });
    return last?.tierId;
  }

  /** Keeps the run's stored strategy covering its tiers and phases (see the class comment). */
  private async recompileStrategy(runId: string): Promise<void> {
    if (this.ownStrategy.has(runId)) return;
    const run = await this.ds.getRepository(RunEntity).findOneByOrFail({ runId });
    const tiers = await this.ds.getRepository(TierEntity).find({ where: { runId }, order: { tierIndex: 'ASC' } });
    const phases = await this.ds.getRepository(PhaseEntity).find({ where: { runId }, order: { phaseIndex: 'ASC' } });
    const strategy = compileStrategy({
      safetyProfile: run.safetyProfile,
      tierIds: tiers.map((t) => t.tierId),
      phases: phases.map((p) => ({ phaseId: p.phaseId, tierId: p.tierId, taskCategory: p.taskCategory ?? undefined, complexity: (p.complexity ?? undefined) as StrategyPhaseInput['complexity'] })),
      run: { tokenCap: run.tokenCap, maxPhases: run.maxPhases, maxDurationMinutes: run.maxDurationMinutes },
    });
    await this.ds.getRepository(RunEntity).update({ runId }, { strategy });
  }
}
