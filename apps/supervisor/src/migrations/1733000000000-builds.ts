import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Droplet builds: a build is a run made from an intent (`builds.run_id` is that run's id),
 * with its six steps, and every phase gets a `kind` saying what work it is. Existing phases
 * and runs are code phases; nothing else changes for them.
 */
export class Builds1733000000000 implements MigrationInterface {
  name = 'Builds1733000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE builds (
        run_id text PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
        droplet_id text,
        droplet_name text,
        intent text NOT NULL,
        approval_mode text NOT NULL CHECK (approval_mode IN ('auto','checkpoints','final')),
        auto_deploy boolean NOT NULL,
        notify_channels jsonb,
        hooks jsonb NOT NULL DEFAULT '{}'::jsonb,
        status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued','running','awaiting_approval','completed','failed','cancelled')),
        checkpoint text CHECK (checkpoint IN ('spec_generated','built')),
        deployment_url text,
        error text,
        promoted_from text,
        promoted_to text,
        queued_at timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        completed_at timestamptz,
        version int NOT NULL DEFAULT 1,
        CHECK ((status = 'awaiting_approval') = (checkpoint IS NOT NULL))
      )`);
    await q.query(`CREATE INDEX builds_status_queued_at_idx ON builds (status, queued_at)`);
    await q.query(`
      CREATE TABLE build_steps (
        run_id text NOT NULL REFERENCES builds(run_id) ON DELETE CASCADE,
        step int NOT NULL CHECK (step BETWEEN 1 AND 6),
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','running','completed','failed','skipped')),
        started_at timestamptz,
        completed_at timestamptz,
        tries int NOT NULL DEFAULT 0 CHECK (tries >= 0),
        error text,
        PRIMARY KEY (run_id, step)
      )`);
    await q.query(`ALTER TABLE phases ADD COLUMN kind text NOT NULL DEFAULT 'code' CHECK (kind IN ('code','plan','package','verify','promote','rollback'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE phases DROP COLUMN kind`);
    await q.query(`DROP TABLE build_steps`);
    await q.query(`DROP TABLE builds`);
  }
}
