import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import { AppLogger } from '../http/logger.js';
import { MetricsService } from './metrics.service.js';
import { CLAIMABLE_CHANNEL, RUN_EVENTS_CHANNEL } from './progress.service.js';

/** What ended a long-poll wait: a NOTIFY, the safety-net timer, or the process shutting down. */
export type WakeReason = 'notify' | 'timeout' | 'shutdown';

/** Database URL token (resolved at bootstrap: the configured server or the embedded one). */
export const DATABASE_URL = Symbol('DATABASE_URL');

/** Whether a NOTIFY payload concerns a waiter on `runId` (any run when undefined); '' wakes everyone. */
function concerns(payload: string, runId: string | undefined): boolean {
  return !runId || payload === '' || payload === runId;
}

/**
 * Ends a connection we are done with. A dying connection may still report an error while it
 * ends: with no listener, that would be an uncaught exception taking the supervisor down.
 */
async function discard(client: pg.Client): Promise<void> {
  client.removeAllListeners();
  client.on('error', () => undefined);
  await client.end().catch(() => undefined);
}

/**
 * One LISTEN connection per supervisor process. Long-polling claims wait here for a
 * NOTIFY instead of polling the database; a lost connection is re-established with backoff.
 */
@Injectable()
export class NotificationHub implements OnModuleInit, OnModuleDestroy {
  private readonly emitter = new EventEmitter();
  private client: pg.Client | undefined;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(DATABASE_URL) private readonly url: string,
    @Inject(SUPERVISOR_CONFIG) private readonly _config: SupervisorConfig,
    private readonly log: AppLogger,
    private readonly metrics: MetricsService,
  ) {
    this.emitter.setMaxListeners(0);
  }

  async onModuleInit(): Promise<void> {
    await this.connect(0);
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.emitter.emit('close');
    const client = this.client;
    this.client = undefined;
    if (client) await discard(client);
  }

  /**
   * Resolves on the next NOTIFY for `runId` (or any run when undefined), or after `ms`, with
   * what ended the wait (counted in `autopack_claim_wakeups_total`).
   */
  waitForClaimable(ms: number, runId?: string): Promise<WakeReason> {
    return new Promise((resolve) => {
      const done = (reason: WakeReason) => {
        clearTimeout(timer);
        this.emitter.off('claimable', onNotify);
        this.emitter.off('close', onClose);
        this.metrics.claimWakeups.inc({ reason });
        this.metrics.claimsWaiting.dec();
        resolve(reason);
      };
      const onNotify = (id: string) => {
        if (concerns(id, runId)) done('notify');
      };
      const onClose = () => done('shutdown');
      const timer = setTimeout(() => done('timeout'), ms);
      this.metrics.claimsWaiting.inc();
      this.emitter.on('claimable', onNotify);
      this.emitter.once('close', onClose);
    });
  }

  /** Calls `listener` on every NOTIFY for `runId` (claimable work or other new events); returns the unsubscribe function. */
  subscribe(runId: string, listener: () => void): () => void {
    const onNotify = (id: string) => {
      if (concerns(id, runId)) listener();
    };
    this.emitter.on('claimable', onNotify);
    this.emitter.on('run_event', onNotify);
    return () => {
      this.emitter.off('claimable', onNotify);
      this.emitter.off('run_event', onNotify);
    };
  }

  private async connect(attempt: number): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000 });
    client.on('notification', (msg) => {
      if (msg.channel === CLAIMABLE_CHANNEL) this.emitter.emit('claimable', msg.payload ?? '');
      else if (msg.channel === RUN_EVENTS_CHANNEL) this.emitter.emit('run_event', msg.payload ?? '');
    });
    client.on('error', () => this.scheduleReconnect(client, attempt + 1));
    client.on('end', () => this.scheduleReconnect(client, attempt + 1));
    try {
      await client.connect();
      await client.query(`LISTEN ${CLAIMABLE_CHANNEL}`);
      await client.query(`LISTEN ${RUN_EVENTS_CHANNEL}`);
      if (this.closed) {
        // The hub closed while this connection was being made: nobody else would end it.
        await discard(client);
        return;
      }
      this.client = client;
      // Anything may have happened while we were not listening: wake every waiter once.
      if (attempt > 0) this.emitter.emit('claimable', '');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'LISTEN connection failed; retrying');
      this.scheduleReconnect(client, attempt + 1);
    }
  }

  private scheduleReconnect(client: pg.Client, attempt: number): void {
    if (this.closed || (this.client && this.client !== client)) return;
    this.client = undefined;
    void discard(client);
    if (this.retryTimer) return;
    const delay = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect(attempt);
    }, delay);
  }
}
