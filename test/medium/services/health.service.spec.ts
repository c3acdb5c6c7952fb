import { HealthService } from '../../../apps/supervisor/src/services/health.service.js';
import { AUTOPACK_VERSION } from '../../../apps/supervisor/src/version.js';
import { type MediumContext, createMediumContext } from '../support/medium.js';

let ctx: MediumContext;
beforeAll(async () => {
  ctx = await createMediumContext();
});
afterAll(() => ctx?.close());

describe('HealthService', () => {
  it('is ok while the database answers', async () => {
    expect(await ctx.get(HealthService).check()).toEqual({ status: 'ok', database: 'up', version: AUTOPACK_VERSION });
  });

  it('says the database is down, without throwing, once it is gone', async () => {
    const own = await createMediumContext();
    try {
      // Gone for good: connections are cut and the database dropped under the module.
      await own.db.drop();
      expect(await own.get(HealthService).check()).toEqual({ status: 'unavailable', database: 'down', version: AUTOPACK_VERSION });
    } finally {
      await own.module.close();
    }
  });
});
