/** The database every bench section works on: a scratch database, dropped afterwards. */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../apps/supervisor/src/database/embedded-postgres.js';

export interface ScratchDatabase {
  /** Connection URL of the scratch database. */
  url: string;
  /** Drops it (and stops the embedded server when one was started). */
  drop(): Promise<void>;
}

/** A fresh database named `<prefix>_<random>` on DATABASE_URL's server, else on the embedded PostgreSQL (fsync off). */
export async function scratchDatabase(prefix: string): Promise<ScratchDatabase> {
  const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres({ dir: path.resolve('.autopack/bench-pg'), database: 'postgres', fast: true });
  const adminUrl = process.env.DATABASE_URL ?? embedded!.url;
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
      await embedded?.stop();
    },
  };
}
