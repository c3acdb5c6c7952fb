/**
 * Builds add a `kind` to every phase: the phases and runs already stored are code phases and
 * keep every other column as it was.
 */
import { Builds1733000000000 } from '../../../apps/supervisor/src/migrations/1733000000000-builds.js';
import { MIGRATIONS } from '../../../apps/supervisor/src/migrations/index.js';
import { type TestDatabase, createTestDatabase } from '../../support/database.js';
import { migrate } from '../support/migrate.js';

describe(Builds1733000000000.name, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await migrate(db.url, MIGRATIONS.slice(0, MIGRATIONS.indexOf(Builds1733000000000)));
  });
  afterAll(() => db.drop());

  it('makes existing phases code phases, leaves the rest as it was, and checks kinds from then on', async () => {
    expect(await db.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'phases' AND column_name = 'kind'`)).toEqual([]);
    // A run as an earlier supervisor stored it, with one phase.
    await db.query(
      `INSERT INTO runs (run_id, project_id, state, safety_profile, run_scope, approval_mode, base_branch, token_cap, max_phases, max_duration_minutes, max_minor_issues_total, strategy)
       VALUES ('r1', 'default', 'PHASE_EXECUTION', 'normal', 'multi_tier', 'auto', 'main', 1000, 10, 60, 10, '{}'::jsonb)`,
    );
    await db.query(`INSERT INTO tiers (run_id, tier_id, tier_index, name, state) VALUES ('r1', 't1', 0, 'T', 'PENDING')`);
    await db.query(`INSERT INTO phases (run_id, phase_id, tier_id, phase_index, name, state, max_attempts) VALUES ('r1', 'p1', 't1', 0, 'P', 'QUEUED', 3)`);
    const before = await db.query(`SELECT * FROM phases`);

    // This migration alone: later ones add columns of their own.
    await migrate(db.url, MIGRATIONS.slice(0, MIGRATIONS.indexOf(Builds1733000000000) + 1));
    const after = await db.query(`SELECT * FROM phases`);
    expect(after).toEqual(before.map((p: Record<string, unknown>) => ({ ...p, kind: 'code' })));
    await expect(db.query(`UPDATE phases SET kind = 'dance'`)).rejects.toThrow(/check/i);
    await db.query(`UPDATE phases SET kind = 'verify'`);
    // A build belongs to its run and goes with it, steps included.
    await db.query(`INSERT INTO builds (run_id, intent, approval_mode, auto_deploy) VALUES ('r1', 'hats', 'auto', true)`);
    await db.query(`INSERT INTO build_steps (run_id, step) VALUES ('r1', 1)`);
    await expect(db.query(`INSERT INTO build_steps (run_id, step) VALUES ('r1', 7)`)).rejects.toThrow(/check/i);
    await expect(db.query(`UPDATE builds SET status = 'awaiting_approval'`)).rejects.toThrow(/check/i);
    await db.query(`DELETE FROM runs WHERE run_id = 'r1'`);
    expect(await db.query(`SELECT (SELECT count(*)::int FROM builds) AS builds, (SELECT count(*)::int FROM build_steps) AS steps`)).toEqual([{ builds: 0, steps: 0 }]);
  });
});
