import { Inject, Injectable } from '@nestjs/common';
import {
  type CoordinatorCycleTimes,
  type CoordinatorPassResponse,
  type CoordinatorService as CoordinatorServiceView,
  type ObserveServiceRequest,
  type ObserveServiceResponse,
  type RunStartRequest,
  type ServiceStage,
  TERMINAL_RUN_STATES,
} from '@app/contracts';
import { type StageChange, cycleTimes, medianAndP90 } from '@app/domain';
import { randomUUID } from 'node:crypto';
import { DataSource, type EntityManager } from 'typeorm';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import { CoordinatorRepository, EventRepository, type StageChangeRow } from '../repositories/index.js';
import { BuildOrchestrator } from './build-orchestrator.service.js';
import { MetricsService } from './metrics.service.js';
import { CLAIMABLE_CHANNEL } from './progress.service.js';
import { RunService } from './run.service.js';

/** The one-phase runs the coordinator starts for a stage (CONTRACT.md section 9). */
const STAGE_RUNS: Partial<Record<ServiceStage, { phaseId: string; name: string; category: string; requires: string[]; description: (svc: string) => string }>> = {
  needs_tests: {
    phaseId: 'write-tests',
    name: 'Write tests',
    category: 'tests',
    requires: ['tester'],
    description: (svc) => `Service ${svc} has code but no tests. Write automated tests for its behaviour so that its test command runs them and passes.`,
  },
  tests_failing: {
    phaseId: 'fix-tests',
    name: 'Fix failing tests',
    // No bug-fix category in the strategy tables: it resolves to the generic defaults.
    category: 'bug_fix',
    requires: ['builder'],
    description: (svc) => `The tests of service ${svc} fail. Fix the code (or a wrong test) so that its test command passes.`,
  },
};

/**
 * The assembly line: each service's stage as coordinators observe it, at most one active run
 * per service, stage changes with their times.
 */
@Injectable()
export class CoordinatorService {
  constructor(
    private readonly ds: DataSource,
    private readonly repo: CoordinatorRepository,
    private readonly builds: BuildOrchestrator,
    private readonly runs: RunService,
    private readonly events: EventRepository,
    private readonly metrics: MetricsService,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
  ) {}

  /**
   * `POST /coordinator/services/{service}/observe`: in one transaction holding the service's
   * row, records the stage, clears a finished active run and, when none is active, starts the
   * work that moves the stage on. A run that just succeeded gets one pass to be promoted (by
   * the coordinator, into the service's base branch) before new work is started.
   */
  async observe(service: string, req: ObserveServiceRequest): Promise<ObserveServiceResponse> {
    let ended: { stage: string; seconds: number } | undefined;
    const answer = await this.ds.transaction(async (em) => {
      const observed: ServiceStage = req.stage === 'ready_for_deploy' && (await this.repo.deployed(em, req.path)) ? 'production' : req.stage;
      const { row } = await this.repo.lockService(em, service, { path: req.path, stage: observed });
      await this.repo.setPath(em, service, req.path);
      if (row.stage !== observed) ended = { stage: row.stage, seconds: await this.repo.changeStage(em, service, row.stage, observed) };
      let active = row.activeRunId;
      let justSucceeded = false;
      if (active) {
        const state = await this.repo.runState(em, active);
        if (state === null || (TERMINAL_RUN_STATES as readonly string[]).includes(state)) {
          justSucceeded = state === 'DONE_SUCCESS' && row.activeKind === 'run' && !ended;
          await this.repo.setActiveRun(em, service, null);
          active = null;
        }
      }
      let started = false;
      if (!active && !justSucceeded) {
        const run = await this.startWork(em, service, observed, req);
        if (run) {
          await this.repo.setActiveRun(em, service, run);
          active = run.runId;
          started = true;
        }
      }
      const { row: now } = await this.repo.lockService(em, service, { path: req.path, stage: observed });
      return { service, stage: observed, stage_since: now.stageSince.toISOString(), active_run_id: active, started };
    });
    if (ended) this.metrics.coordinatorStage.observe({ stage: ended.stage }, ended.seconds);
    return answer;
  }

  /** The build or run that moves `stage` on; undefined when nothing is to be done. */
  private async startWork(em: EntityManager, service: string, stage: ServiceStage, req: ObserveServiceRequest): Promise<{ runId: string; kind: string } | undefined> {
    if (stage === 'needs_spec' || stage === 'ready_for_build') {
      const hooks = this.config.hooks;
      const accepted = await this.builds.createIn(em, {
        architect_intent: req.intent ?? `Build the ${service} service.`,
        droplet_id: service,
        droplet_name: service,
        approval_mode: req.approval_mode,
        auto_deploy: !!hooks.deploy,
        base_branch: 'main',
        repo_url: req.path,
      });
      return { runId: accepted.build_id, kind: 'build' };
    }
    if (stage === 'ready_for_deploy') {
      // Deploy and Register: only where there is somewhere to deploy to (a configured deploy
      // hook); without one the service stays ready, and nothing is started pass after pass.
      if (!this.config.hooks.deploy) return undefined;
      const accepted = await this.builds.createIn(
        em,
        { architect_intent: req.intent ?? `Deploy the ${service} service.`, droplet_id: service, droplet_name: service, approval_mode: 'auto', auto_deploy: true, base_branch: 'main', repo_url: req.path },
        { deployOnly: true },
      );
      return { runId: accepted.build_id, kind: 'build' };
    }
    const spec = STAGE_RUNS[stage];
    if (!spec) return undefined;
    const runId = `${service}-${spec.phaseId}-${randomUUID().slice(0, 6)}`;
    const ci = req.test_command ? { command: req.test_command } : undefined;
    const body: RunStartRequest = {
      run: { run_id: runId, base_branch: 'main', repo_url: req.path, approval_mode: 'auto', schedule_debt_cleanup: false, ...(ci ? { ci } : {}) },
      tiers: [{ tier_id: 't1', tier_index: 0, name: spec.name }],
      phases: [
        {
          phase_id: spec.phaseId,
          phase_index: 0,
          tier_id: 't1',
          name: spec.name,
          description: spec.description(service),
          task_category: spec.category,
          requires: spec.requires,
          ...(ci ? { ci } : {}),
        },
      ],
    };
    await this.runs.insertRun(em, body);
    await this.events.notify(em, CLAIMABLE_CHANNEL, runId);
    return { runId, kind: 'run' };
  }

  /** `GET /coordinator/services`. */
  async list(): Promise<CoordinatorServiceView[]> {
    const [rows, changes] = await Promise.all([this.repo.list(), this.repo.stageChanges()]);
    const byService = groupChanges(changes);
    return rows.map((r) => ({
      service: r.service,
      path: r.path,
      stage: r.stage as ServiceStage,
      stage_since: r.stageSince.toISOString(),
      active_run_id: r.activeRunId,
      cycle_times: cycleTimes(byService.get(r.service) ?? []) as Record<string, number>,
      last_run_id: r.lastRunId,
    }));
  }

  /** `GET /coordinator/cycle_times`: median and p90 of finished stays per stage, across services. */
  async cycleTimeStats(): Promise<CoordinatorCycleTimes> {
    const perStage = new Map<string, number[]>();
    for (const changes of groupChanges(await this.repo.stageChanges()).values()) {
      const sorted = [...changes].sort((a, b) => a.at - b.at);
      for (let i = 0; i + 1 < sorted.length; i++) {
        const list = perStage.get(sorted[i].to) ?? [];
        list.push((sorted[i + 1].at - sorted[i].at) / 1000);
        perStage.set(sorted[i].to, list);
      }
    }
    const out: CoordinatorCycleTimes = {};
    for (const [stage, values] of perStage) {
      const s = medianAndP90(values)!;
      out[stage] = { count: values.length, median_s: s.median, p90_s: s.p90 };
    }
    return out;
  }

  /** "Assign now": asks every running coordinator for a pass at once. */
  async requestPass(): Promise<CoordinatorPassResponse> {
    const r = await this.repo.requestPass();
    return { request_id: r.id, requested_at: r.requestedAt.toISOString() };
  }

  /** The newest pass request (a coordinator polls this between passes). */
  async latestPass(): Promise<CoordinatorPassResponse> {
    const r = await this.repo.latestPassRequest();
    return { request_id: r?.id ?? 0, requested_at: r ? r.requestedAt.toISOString() : null };
  }
}

function groupChanges(rows: StageChangeRow[]): Map<string, StageChange[]> {
  const out = new Map<string, StageChange[]>();
  for (const r of rows) {
    const list = out.get(r.service) ?? [];
    list.push({ from: r.from as ServiceStage | null, to: r.to as ServiceStage, at: r.at.getTime() });
    out.set(r.service, list);
  }
  return out;
}
