import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../../apps/supervisor/src/database/data-source.js';
import { type TestDatabase, adminUrl, createTestDatabase, databaseUrl } from '../../support/database.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../../apps/supervisor/src/migrations/', import.meta.url));

/** Serializes building and cloning the template across Jest workers and concurrent runs. */
const TEMPLATE_LOCK = 'autopack_medium_template';

/**
 * The template's name: a hash of the migration sources, so a changed or added migration
 * builds a new template while an unchanged schema reuses the one already on the server.
 */
export function templateName(): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts')).sort()) {
    hash.update(file).update('\0').update(readFileSync(path.join(MIGRATIONS_DIR, file))).update('\0');
  }
  return `autopack_template_${hash.digest('hex').slice(0, 12)}`;
}

async function exists(admin: pg.Client, name: string): Promise<boolean> {
  return (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
}

/**
 * Runs the supervisor's migrations into a scratch database and renames it to `name`, so a
 * template exists whole or not at all (a run killed halfway leaves only the scratch copy).
 */
async function buildTemplate(admin: pg.Client, name: string): Promise<void> {
  const building = `${name}_building`;
  await admin.query(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${building}`);
  const ds = new DataSource(dataSourceOptions(databaseUrl(building)));
  await ds.initialize();
  try {
    await ds.runMigrations({ transaction: 'each' });
  } finally {
    await ds.destroy();
  }
  await admin.query(`ALTER DATABASE ${building} RENAME TO ${name}`);
}

/**
 * A database for one medium spec file: `CREATE DATABASE … TEMPLATE autopack_template_<hash>`,
 * the template being migrated once per schema (the first file to need it builds it). A
 * clone takes a few tens of milliseconds, against about a second for the migrations.
 */
export async function createMediumDatabase(): Promise<TestDatabase> {
  adminUrl(); // fails clearly when global setup did not run
  const template = templateName();
  return createTestDatabase(async (admin, name) => {
    // A session-level advisory lock on the maintenance database: every worker and every
    // concurrent run on this server connects there, so they all see the same lock.
    await admin.query('SELECT pg_advisory_lock(hashtext($1))', [TEMPLATE_LOCK]);
    try {
      if (!(await exists(admin, template))) await buildTemplate(admin, template);
      // Cloning needs the template free of connections; holding the lock keeps builders out.
      await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
    } finally {
      await admin.query('SELECT pg_advisory_unlock(hashtext($1))', [TEMPLATE_LOCK]);
    }
  });
}
