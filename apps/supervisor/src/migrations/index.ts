import { InitialSchema1732300000000 } from './1732300000000-initial-schema.js';

/** Migrations in order; run on start (never `synchronize`). */
export const MIGRATIONS = [InitialSchema1732300000000];
