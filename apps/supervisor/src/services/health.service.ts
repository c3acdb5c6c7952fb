import { Injectable } from '@nestjs/common';
import { HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { AUTOPACK_VERSION } from '../version.js';

/** How long the database may take to answer a health ping. */
const PING_TIMEOUT_MS = 2000;

/**
 * Health of the process and its database, checked by @nestjs/terminus (its TypeORM ping with a
 * timeout) and answered in the contract's shape (`{status, database, version}`), not terminus's.
 */
@Injectable()
export class HealthService {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
  ) {}

  /** Pings the database with a short timeout. */
  async check(): Promise<{ status: 'ok' | 'unavailable'; database: 'up' | 'down'; version: string }> {
    // terminus answers a failed check by throwing (a 503 exception carrying the details).
    const up = await this.health.check([() => this.db.pingCheck('database', { timeout: PING_TIMEOUT_MS })]).then(
      (r) => r.status === 'ok',
      () => false,
    );
    return { status: up ? 'ok' : 'unavailable', database: up ? 'up' : 'down', version: AUTOPACK_VERSION };
  }
}
