import type { ClaimResponse } from '@app/contracts';
import { SupervisorError, type SupervisorClient } from './supervisor-client.js';

/** Why an attempt was stopped from outside. */
export type StopReason = 'lease_lost' | 'run_stopped' | 'shutdown';

/** Thrown into an attempt when it must stop. */
export class AttemptStoppedError extends Error {
  readonly code = 'ATTEMPT_STOPPED';
  constructor(readonly reason: StopReason) {
    super(`attempt stopped: ${reason}`);
    this.name = 'AttemptStoppedError';
  }
}

/**
 * Keeps a lease alive with heartbeats every third of its length and aborts the attempt's
 * signal when the lease is lost or the run stops, so no work continues without a lease.
 */
export class LeaseKeeper {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;

  constructor(
    private readonly supervisor: Pick<SupervisorClient, 'heartbeat'>,
    private readonly claim: ClaimResponse,
    private readonly log: (msg: string) => void,
  ) {}

  /** Aborted when the attempt must stop; `reason` is an AttemptStoppedError. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  start(): void {
    const every = Math.max(500, Math.floor((this.claim.lease_seconds * 1000) / 3));
    this.timer = setInterval(() => void this.beat(), every);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Stops the attempt from outside (graceful shutdown). */
  abort(reason: StopReason): void {
    if (!this.controller.signal.aborted) this.controller.abort(new AttemptStoppedError(reason));
  }

  private async beat(): Promise<void> {
    if (this.inFlight || this.controller.signal.aborted) return;
    this.inFlight = true;
    try {
      const hb = await this.supervisor.heartbeat(this.claim.run_id, this.claim.phase_id, this.claim.lease_token);
      if (hb.stop_requested) this.abort('run_stopped');
    } catch (err) {
      if (err instanceof SupervisorError && (err.code === 'LEASE_LOST' || err.status === 404)) {
        this.log(`lease lost for ${this.claim.phase_id}`);
        this.abort('lease_lost');
      } else {
        // Transient: the next beat tries again; the lease outlives two missed beats.
        this.log(`heartbeat failed: ${(err as Error).message}`);
      }
    } finally {
      this.inFlight = false;
    }
  }
}
