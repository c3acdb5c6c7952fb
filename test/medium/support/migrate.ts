import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../../apps/supervisor/src/database/data-source.js';
import type { MIGRATIONS } from '../../../apps/supervisor/src/migrations/index.js';

/** Runs `migrations` (a prefix of MIGRATIONS, to test one migration over older rows) on `url`. */
export async function migrate(url: string, migrations: typeof MIGRATIONS): Promise<void> {
  const ds = new DataSource({ ...dataSourceOptions(url), migrations });
  await ds.initialize();
  try {
    await ds.runMigrations({ transaction: 'each' });
  } finally {
    await ds.destroy();
  }
}
