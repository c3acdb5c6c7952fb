// Plain JS: Jest loads global setup outside its module mapper, so this uses the built
// supervisor (`npm test` builds first).
import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * Real PostgreSQL for every test that touches state: the server in DATABASE_URL when set,
 * otherwise an embedded cluster under .autopack/test-pg. Each test file then creates its
 * own scratch database (test/support/database.ts), so files never see each other's rows.
 */
export default async function globalSetup() {
  if (process.env.DATABASE_URL) {
    process.env.AUTOPACK_TEST_ADMIN_URL = process.env.DATABASE_URL;
    return;
  }
  const built = path.resolve('dist/apps/supervisor/src/database/embedded-postgres.js');
  if (!existsSync(built)) throw new Error('dist/ is missing: run `npm run build` (npm test does it for you)');
  const { startEmbeddedPostgres } = await import(built);
  const handle = await startEmbeddedPostgres({ dir: path.resolve('.autopack/test-pg'), database: 'postgres', fast: true });
  process.env.AUTOPACK_TEST_ADMIN_URL = handle.url;
  globalThis.__AUTOPACK_EMBEDDED_PG__ = handle;
}
