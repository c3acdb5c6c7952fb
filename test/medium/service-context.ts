import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import type { Type } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import type { PhaseState } from '@app/contracts';
import { DEFAULT_MAX_ABANDONMENTS, type StrategyPhaseInput, compileStrategy } from '@app/domain';
import { AppModule } from '../../apps/supervisor/src/app.module.js';
import { type SupervisorConfig, loadSupervisorConfig } from '../../apps/supervisor/src/config.js';
import { PhaseEntity, RunEntity, TierEntity } from '../../apps/supervisor/src/entities/index.js';
import { AppLogger, createRootLogger } from '../../apps/supervisor/src/http/logger.js';
import { type TestDatabase, createTestDatabase } from '../support/database.js';

/*
 * A small stand-in for the medium tier's shared support (template database and factories,
 * built on another branch): the same shape, `createServiceContext()` with
 * `factory.makeRun`, `makeTier` and `makePhase({ state, lease })`, so these specs move onto
 * it by changing one import.
 */

const LEASED: readonly PhaseState[] = ['EXECUTING', 'GATE', 'CI_RUNNING'];

/** A lease for `makePhase`; `expiresInSeconds` < 0 gives an expired one. */
export interface LeaseSpec {
  token?: string;
  owner?: string;
  expiresInSeconds?: number;
}

/** Rows for medium specs, inserted through the supervisor's entities, as `POST /runs/start` would store them. */
export class Factories {
  private seq = 0;

  constructor(private readonly ds: DataSource) {}

  /** A run in PHASE_EXECUTION, started now, nothing used, no tiers or phases yet. */
  async makeRun(o: Partial<RunEntity> = {}): Promise<RunEntity> {
    const runId = o.runId ?? `run-${++this.seq}`;
    const strategy = compileStrategy({ safetyProfile: 'normal', tierIds: [], phases: [] });
    await this.ds.getRepository(RunEntity).insert({
      projectId: 'default',
      state: 'PHASE_EXECUTION',
      safetyProfile: 'normal',
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
      maxMinorIssuesTotal: 30,
      tokensUsed: 0,
      costUsedUsd: 0,
      ciRunsUsed: 0,
      minorIssuesCount: 0,
      majorIssuesCount: 0,
      failureReason: null,
      failureCap: null,
      debtStatus: null,
      maxParallelPhases: 1,
      approvedThroughTierIndex: -1,
      approvalState: 'not_required',
      approvalNotes: null,
      approvedAt: null,
      version: 1,
      startedAt: () => 'now()',
      completedAt: null,
      strategy,
      ...o,
      runId,
    });
    return this.ds.getRepository(RunEntity).findOneByOrFail({ runId });
  }

  /** A PENDING tier after the run's last one. */
  async makeTier(o: Partial<TierEntity> & { runId: string }): Promise<TierEntity> {
    const tiers = await this.ds.getRepository(TierEntity).find({ where: { runId: o.runId } });
    const tierIndex = o.tierIndex ?? Math.max(-1, ...tiers.map((t) => t.tierIndex)) + 1;
    const tierId = o.tierId ?? `tier-${++this.seq}`;
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

  /** A phase, QUEUED by default, in `tierId` or the run's last tier; a leased state gets a live lease unless `lease` says otherwise. */
  async makePhase(o: Partial<Omit<PhaseEntity, 'leaseToken' | 'leaseOwner' | 'leaseExpiresAt'>> & { runId: string; lease?: LeaseSpec | null }): Promise<PhaseEntity> {
    const { lease, ...columns } = o;
    const state = o.state ?? 'QUEUED';
    const tiers = await this.ds.getRepository(TierEntity).find({ where: { runId: o.runId }, order: { tierIndex: 'DESC' } });
    const tierId = o.tierId ?? tiers[0]?.tierId ?? (await this.makeTier({ runId: o.runId })).tierId;
    const phases = await this.ds.getRepository(PhaseEntity).find({ where: { runId: o.runId } });
    const phaseIndex = o.phaseIndex ?? Math.max(-1, ...phases.map((p) => p.phaseIndex)) + 1;
    const phaseId = o.phaseId ?? `phase-${++this.seq}`;
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
      failureCap: null,
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
            leaseExpiresAt: () => `now() + make_interval(secs => ${Number(leased.expiresInSeconds ?? 60)})`,
          }
        : { leaseToken: null, leaseOwner: null, leaseExpiresAt: null }),
    });
    await this.recompileStrategy(o.runId);
    return this.ds.getRepository(PhaseEntity).findOneByOrFail({ runId: o.runId, phaseId });
  }

  /** The run's strategy as if its plan had been started whole (budgets per tier and phase). */
  private async recompileStrategy(runId: string): Promise<void> {
    const run = await this.ds.getRepository(RunEntity).findOneByOrFail({ runId });
    const tiers = await this.ds.getRepository(TierEntity).find({ where: { runId }, order: { tierIndex: 'ASC' } });
    const phases = await this.ds.getRepository(PhaseEntity).find({ where: { runId } });
    const strategy = compileStrategy({
      safetyProfile: run.safetyProfile,
      tierIds: tiers.map((t) => t.tierId),
      phases: phases.map((p) => ({ phaseId: p.phaseId, tierId: p.tierId, taskCategory: p.taskCategory, complexity: p.complexity as StrategyPhaseInput['complexity'] })),
      run: { tokenCap: run.tokenCap, maxPhases: run.maxPhases, maxDurationMinutes: run.maxDurationMinutes },
    });
    await this.ds.getRepository(RunEntity).update({ runId }, { strategy });
  }
}

/** The supervisor's services on a database of their own, for one spec file. */
export interface ServiceContext {
  db: TestDatabase;
  ds: DataSource;
  config: SupervisorConfig;
  factory: Factories;
  get<T>(type: Type<T>): T;
  close(): Promise<void>;
}

/**
 * Builds the supervisor's real module (every provider, TypeORM on a fresh migrated database).
 * Nothing listens on HTTP and no lifecycle hook runs: no sweeper acts behind a spec's back.
 */
export async function createServiceContext(): Promise<ServiceContext> {
  const db = await createTestDatabase();
  let module: TestingModule | undefined;
  try {
    const config = loadSupervisorConfig({ AUTOPACK_LOG_LEVEL: 'silent' });
    const logger = new AppLogger(createRootLogger(config.logLevel));
    module = await Test.createTestingModule({ imports: [AppModule.forRoot(config, db.url, logger)] })
      .setLogger(logger)
      .compile();
    const m = module;
    return {
      db,
      ds: m.get(DataSource),
      config,
      factory: new Factories(m.get(DataSource)),
      get: (type) => m.get(type),
      close: async () => {
        await m.close();
        await db.drop();
      },
    };
  } catch (err) {
    await module?.close();
    await db.drop();
    throw err;
  }
}
