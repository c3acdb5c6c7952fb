import { Injectable } from '@nestjs/common';
import client from 'prom-client';
import { StatsRepository } from '../repositories/index.js';

/**
 * Prometheus metrics (prom-client, own registry per app so tests can run several apps).
 * Request counters are observed by middleware; state gauges are read from the database at
 * scrape time, so every replica reports the same truth.
 */
@Injectable()
export class MetricsService {
  readonly registry = new client.Registry();
  readonly httpRequests = new client.Counter({
    name: 'autopack_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new client.Histogram({
    name: 'autopack_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['method', 'route'] as const,
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

  constructor(private readonly stats: StatsRepository) {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'autopack_process_' });
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
      name: 'autopack_llm_tokens_used',
      help: 'LLM tokens reported by executors, over all runs',
      registers: [this.registry],
      async collect() {
        this.set(await db.tokensUsed());
      },
    });
    new client.Gauge({
      name: 'autopack_llm_cost_usd',
      help: 'LLM cost in USD reported by executors, over all runs',
      registers: [this.registry],
      async collect() {
        this.set(await db.costUsedUsd());
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

  /** The text exposition format. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
