import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import PgBoss from 'pg-boss';
import type { EntityManager } from 'typeorm';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import { JOB_QUEUE_SCHEMA, type JobQueueName } from '../database/job-queue-schema.js';
import { AppLogger } from '../http/logger.js';
import { execSql } from '../repositories/sql.js';
import { DATABASE_URL } from './notification-hub.js';

/** A job as its handler sees it. */
export interface QueuedJob<T> {
  id: string;
  data: T;
}

/** Works one job; throwing fails the attempt, and the queue retries it with backoff while its retries last. */
export type JobHandler<T> = (job: QueuedJob<T>) => Promise<void>;

/** How a job is retried and when it counts as lost. */
export interface EnqueueOptions {
  /** Our own id for the job (so the caller can store it with the job in one statement). */
  id: string;
  /** Further runs after a failed one. */
  retryLimit: number;
  /** First retry delay; each further one about doubles (pg-boss `retryBackoff`, with jitter). */
  retryDelaySeconds: number;
  /**
   * How long a run may stay active: past it (its process died), the queue's maintenance
   * fails the run and retries the job. Must exceed the longest run.
   */
  expireInSeconds: number;
}

/** How long shutdown waits for running jobs before handing them back to the queue. */
const SHUTDOWN_GRACE_MS = 15_000;

/**
 * The durable job queue: pg-boss in schema `pgboss` of the supervisor's database (created by
 * the migrations). Jobs are enqueued inside the caller's TypeORM transaction, so a job exists
 * exactly when the change that asked for it committed. Workers start with the application
 * (`AUTOPACK_QUEUE_CONCURRENCY` per queue) and stop before the database connections close;
 * a job running when the process dies is retried once its expiry passes.
 */
@Injectable()
export class JobQueue implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly boss: PgBoss;
  private readonly handlers = new Map<JobQueueName, JobHandler<never>>();
  private readonly maintenanceListeners: (() => void)[] = [];
  private started = false;

  constructor(
    @Inject(DATABASE_URL) url: string,
    @Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig,
    private readonly log: AppLogger,
  ) {
    this.boss = new PgBoss({
      connectionString: url,
      schema: JOB_QUEUE_SCHEMA,
      application_name: 'autopack-supervisor-queue',
      max: 3,
      migrate: true,
      supervise: true,
      schedule: false,
      maintenanceIntervalSeconds: config.queueMaintenanceSeconds,
    });
    this.boss.on('error', (err: Error) => this.log.warn({ err: err.message }, 'job queue error'));
    this.boss.on('maintenance', () => {
      for (const listener of this.maintenanceListeners) listener();
    });
  }

  /** Registers the handler of a queue; call it from a provider's constructor, before the application starts. */
  handle<T>(queue: JobQueueName, handler: JobHandler<T>): void {
    if (this.started) throw new Error(`job queue already started: handler for ${queue} registered too late`);
    this.handlers.set(queue, handler as JobHandler<never>);
  }

  /** Calls `listener` after each run of the queue's maintenance (in the process that ran it). */
  onMaintenance(listener: () => void): void {
    this.maintenanceListeners.push(listener);
  }

  /**
   * Enqueues a job in the caller's transaction `em`: it becomes visible to workers when that
   * transaction commits, and disappears with it on rollback.
   */
  async enqueue(em: EntityManager, queue: JobQueueName, data: object, opts: EnqueueOptions): Promise<void> {
    const db: PgBoss.Db = { executeSql: async (text, values) => ({ rows: (await execSql(em, text, values)).rows }) };
    const id = await this.boss.send(queue, data, {
      id: opts.id,
      db,
      retryLimit: opts.retryLimit,
      retryDelay: opts.retryDelaySeconds,
      retryBackoff: true,
      expireInSeconds: opts.expireInSeconds,
    });
    // pg-boss answers null, not an error, when the queue does not exist.
    if (id !== opts.id) throw new Error(`job queue ${queue} did not take the job (is the queue created?)`);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.boss.start();
    this.started = true;
    for (const [queue, handler] of this.handlers) {
      for (let i = 0; i < this.config.queueConcurrency; i++) {
        await this.boss.work<object>(queue, { batchSize: 1, pollingIntervalSeconds: this.config.queuePollSeconds }, async (jobs) => {
          for (const job of jobs) await handler({ id: job.id, data: job.data as never });
        });
      }
    }
    this.log.info({ queues: [...this.handlers.keys()], concurrency: this.config.queueConcurrency }, 'job queue started');
  }

  /**
   * Stops the workers first (onModuleDestroy runs before the database connections close):
   * running jobs get {@link SHUTDOWN_GRACE_MS} to finish, the rest are handed back and retried.
   */
  async onModuleDestroy(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.boss.stop({ graceful: true, wait: true, close: true, timeout: SHUTDOWN_GRACE_MS });
  }
}
