import type { IdempotencyRepository, StoredAnswer } from '../repositories/index.js';
import { IdempotencyService } from './idempotency.service.js';

/**
 * The release path needs a database that fails on cue, which a real PostgreSQL cannot do
 * between two statements; the SQL itself is covered by test/supervisor/idempotency.e2e.spec.ts.
 */
class FlakyKeys {
  releases = 0;
  constructor(private failingReleases: number) {}
  async reserve(): Promise<StoredAnswer | null> {
    return null;
  }
  async release(): Promise<void> {
    this.releases++;
    if (this.failingReleases-- > 0) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
  }
  async complete(): Promise<void> {
    throw new Error('a failed request must not be stored');
  }
}

describe('IdempotencyService release', () => {
  it('keeps releasing the key of a failed request in the background until the database is back', async () => {
    const keys = new FlakyKeys(2);
    const service = new IdempotencyService(keys as unknown as IdempotencyRepository);
    await expect(service.run('POST /x', 'k-1', { a: 1 }, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(keys.releases).toBe(1);
    const deadline = Date.now() + 10_000;
    while (keys.releases < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(keys.releases).toBe(3);
  });
});
