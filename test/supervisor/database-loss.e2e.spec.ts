import { DataSource } from 'typeorm';
import { mapError } from '../../apps/supervisor/src/http/error-mapping.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * The errors a real PostgreSQL and TypeORM produce when a connection dies under a request must
 * map to 503 DATABASE_UNAVAILABLE (retry later), never to a 500: the executor gives up on a
 * 500 but waits out a 503.
 */
let db: TestDatabase;
let ds: DataSource;
beforeAll(async () => {
  db = await createTestDatabase();
  ds = new DataSource({ type: 'postgres', url: db.url, poolSize: 2 });
  await ds.initialize();
});
afterAll(async () => {
  await ds?.destroy();
  await db?.drop();
});

async function failureOf(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (err) {
    return err;
  }
  throw new Error('expected the work to fail');
}

const terminate = (pid: number) => db.query('SELECT pg_terminate_backend($1)', [pid]);
/** Kills the backend while the query sent just before is running. */
const killSoon = async (pid: number) => {
  await new Promise((r) => setTimeout(r, 100));
  await terminate(pid);
};

describe('a connection killed under a request', () => {
  it('mid-transaction, before the commit: 503', async () => {
    const err = await failureOf(() =>
      ds.transaction(async (em) => {
        const [{ pid }] = (await em.query('SELECT pg_backend_pid() AS pid')) as { pid: number }[];
        await terminate(pid);
        await new Promise((r) => setTimeout(r, 200));
      }),
    );
    expect(mapError(err)).toMatchObject({ status: 503, unexpected: false, body: { error: { code: 'DATABASE_UNAVAILABLE' } } });
  });

  it('mid-transaction, before the next query: 503', async () => {
    const err = await failureOf(() =>
      ds.transaction(async (em) => {
        const [{ pid }] = (await em.query('SELECT pg_backend_pid() AS pid')) as { pid: number }[];
        await terminate(pid);
        await new Promise((r) => setTimeout(r, 200));
        await em.query('SELECT 1');
      }),
    );
    expect(mapError(err)).toMatchObject({ status: 503, unexpected: false, body: { error: { code: 'DATABASE_UNAVAILABLE' } } });
  });

  it('during a query inside a transaction: 503', async () => {
    const err = await failureOf(() =>
      ds.transaction(async (em) => {
        const [{ pid }] = (await em.query('SELECT pg_backend_pid() AS pid')) as { pid: number }[];
        await Promise.all([em.query('SELECT pg_sleep(5)'), killSoon(pid)]);
      }),
    );
    expect(mapError(err)).toMatchObject({ status: 503, unexpected: false });
  });

  it('on a plain query: 503', async () => {
    const err = await failureOf(async () => {
      const runner = ds.createQueryRunner();
      try {
        const [{ pid }] = (await runner.query('SELECT pg_backend_pid() AS pid')) as { pid: number }[];
        await Promise.all([runner.query('SELECT pg_sleep(5)'), killSoon(pid)]);
      } finally {
        await runner.release().catch(() => undefined);
      }
    });
    expect(mapError(err)).toMatchObject({ status: 503, unexpected: false });
  });

  it('anything else is still a 500 with only an error id', () => {
    expect(mapError(new Error('a bug'))).toMatchObject({ status: 500, unexpected: true, body: { error: { code: 'INTERNAL_ERROR' } } });
  });
});
