import type { MigrationInterface, QueryRunner } from 'typeorm';
import { JOB_QUEUES, JOB_QUEUE_SCHEMA } from '../database/job-queue-schema.js';

/**
 * Droplet builds run as runs: the tiers a run waits after for approval (a build's
 * checkpoints), the plan a build's planning step had accepted, the build's generation (a
 * retry starts a new one, so its hooks are called anew), whether promotion has recorded where
 * the base branch was before it moved (`promoted_from` may be null: no base branch), the `deploy` phase kind (the
 * supervisor's own work: never claimed), and the queue of the build orchestration's jobs.
 */
export class BuildOrchestration1733100000000 implements MigrationInterface {
  name = 'BuildOrchestration1733100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE runs ADD COLUMN checkpoint_tiers int[]`);
    await q.query(
      `ALTER TABLE builds ADD COLUMN plan jsonb, ADD COLUMN generation int NOT NULL DEFAULT 0 CHECK (generation >= 0), ADD COLUMN promotion_started boolean NOT NULL DEFAULT false`,
    );
    await q.query(`ALTER TABLE phases DROP CONSTRAINT phases_kind_check`);
    await q.query(`ALTER TABLE phases ADD CONSTRAINT phases_kind_check CHECK (kind IN ('code','plan','package','verify','promote','rollback','deploy'))`);
    await q.query(`SELECT ${JOB_QUEUE_SCHEMA}.create_queue($1, $2::json)`, [JOB_QUEUES.build, JSON.stringify({ policy: 'standard' })]);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`SELECT ${JOB_QUEUE_SCHEMA}.delete_queue($1)`, [JOB_QUEUES.build]);
    await q.query(`ALTER TABLE phases DROP CONSTRAINT phases_kind_check`);
    await q.query(`ALTER TABLE phases ADD CONSTRAINT phases_kind_check CHECK (kind IN ('code','plan','package','verify','promote','rollback'))`);
    await q.query(`ALTER TABLE builds DROP COLUMN promotion_started, DROP COLUMN generation, DROP COLUMN plan`);
    await q.query(`ALTER TABLE runs DROP COLUMN checkpoint_tiers`);
  }
}
