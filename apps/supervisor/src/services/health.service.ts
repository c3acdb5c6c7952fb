import { Injectable } from '@nestjs/common';
import { StatsRepository } from '../repositories/index.js';
import { AUTOPACK_VERSION } from '../version.js';

/** Health of the process and its database. */
@Injectable()
export class HealthService {
  constructor(private readonly stats: StatsRepository) {}

  /** Pings the database with a short timeout. */
  async check(): Promise<{ status: 'ok' | 'unavailable'; database: 'up' | 'down'; version: string }> {
    const ping = this.stats.ping().then(
      () => true,
      () => false,
    );
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000).unref());
    const up = await Promise.race([ping, timeout]);
    return { status: up ? 'ok' : 'unavailable', database: up ? 'up' : 'down', version: AUTOPACK_VERSION };
  }
}
