import { Injectable } from '@nestjs/common';
import client from 'prom-client';
import { StatsRepository } from '../repositories/index.js';

/** LLM usage to count: the provider and model it was reported with (`unknown` when the report named none). */
export interface LlmUsageSample {
  provider?: string;
  model?: string;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

/**
 * Prometheus metrics (prom-client, own registry per app so tests can run several apps).
 *
 * - Default process metrics under their standard names (`process_*`, `nodejs_*`).
 * - Counters (`*_total`) and histograms are observed in this process when the change they
 *   count commits (LLM usage, attempts ended, lease expiries, claims, HTTP requests): each
 *   replica reports its own, and Prometheus sums replicas.
 * - State gauges (runs, phases, leases, queue depths) are read from the database at scrape
 *   time, so every replica reports the same truth.
 */
@Injectable()
export class MetricsService {
  readonly registry = new client.Registry();
  readonly httpRequests = new client.Counter({
    name: 'autopack_http_requests_total',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new client.Histogram({
    name: 'autopack_http_request_duration_seconds',
    help: 'HTTP request latency by method, route pattern and status (a claim long-poll counts its wait)',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly claimWakeups = new client.Counter({
    name: 'autopack_claim_wakeups_total',
    help: 'Ends of long-poll claim waits: notify (a NOTIFY arrived), timeout (the safety-net timer), shutdown',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly claimsWaiting = new client.Gauge({
    name: 'autopack_claims_waiting',
    help: 'Long-poll claims waiting for a claimable phase right now',
    registers: [this.registry],
  });

  readonly claimWait = new client.Histogram({
    name: 'autopack_claim_wait_seconds',
    help: 'How long a claim waited (long poll) before it got a phase (result="claimed") or gave up (result="empty")',
    labelNames: ['result'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly phaseDuration = new client.Histogram({
    name: 'autopack_phase_duration_seconds',
    help: 'Phase attempts by outcome: seconds from the claim to the end of the attempt',
    labelNames: ['outcome'] as const,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
    registers: [this.registry],
  });

  readonly coordinatorStage = new client.Histogram({
    name: 'autopack_coordinator_stage_seconds',
    help: 'Seconds a service spent in a coordinator stage, observed when the stage ends',
    labelNames: ['stage'] as const,
    buckets: [10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 7 * 24 * 3600],
    registers: [this.registry],
  });

  readonly leaseExpiries = new client.Counter({
    name: 'autopack_lease_expiries_total',
    help: 'Leases the sweeper reclaimed after they expired',
    registers: [this.registry],
  });

  readonly llmTokens = new client.Counter({
    name: 'autopack_llm_tokens_total',
    help: 'LLM tokens reported by executors, by provider, model and kind (prompt, completion)',
    labelNames: ['provider', 'model', 'kind'] as const,
    registers: [this.registry],
  });

  readonly llmCost = new client.Counter({
    name: 'autopack_llm_cost_usd_total',
    help: 'LLM cost in USD reported by executors, by provider and model',
    labelNames: ['provider', 'model'] as const,
    registers: [this.registry],
  });

  constructor(private readonly stats: StatsRepository) {
    client.collectDefaultMetrics({ register: this.registry });
    const db = this.stats;
    new client.Gauge({
      name: 'autopack_runs',
      help: 'Runs by state',
      labelNames: ['state'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of await db.runsByState()) this.set({ state: r.state }, r.n);
      },
    });
    new client.Gauge({
      name: 'autopack_phases',
      help: 'Phases by state',
      labelNames: ['state'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of await db.phasesByState()) this.set({ state: r.state }, r.n);
      },
    });
    new client.Gauge({
      name: 'autopack_phases_queued',
      help: 'Queue depth: phases waiting to be claimed (QUEUED) in runs that are not over',
      registers: [this.registry],
      async collect() {
        this.set(await db.queuedPhases());
      },
    });
    new client.Gauge({
      name: 'autopack_job_queue_depth',
      help: 'Jobs of the durable queue (pg-boss) waiting to run (created or retry), by queue',
      labelNames: ['queue'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of await db.jobQueueDepth()) this.set({ queue: r.queue }, r.n);
      },
    });
    new client.Gauge({
      name: 'autopack_active_leases',
      help: 'Phases currently leased by an executor',
      registers: [this.registry],
      async collect() {
        this.set(await db.activeLeases());
      },
    });
  }

  /** Counts reported LLM usage (call it once the write that recorded it has committed). */
  recordLlmUsage(u: LlmUsageSample): void {
    const provider = u.provider ?? 'unknown';
    const model = u.model ?? 'unknown';
    if (u.promptTokens > 0) this.llmTokens.inc({ provider, model, kind: 'prompt' }, u.promptTokens);
    if (u.completionTokens > 0) this.llmTokens.inc({ provider, model, kind: 'completion' }, u.completionTokens);
    if (u.costUsd > 0) this.llmCost.inc({ provider, model }, u.costUsd);
  }

  /** The text exposition format. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
