import type { MigrationInterface, QueryRunner } from 'typeorm';
import { JOB_QUEUES, JOB_QUEUE_SCHEMA, jobQueueConstructionSql } from '../database/job-queue-schema.js';

/**
 * The durable job queue (pg-boss, in schema `pgboss`) and the outbound deliveries it works:
 * build hooks and notifications. A delivery row is written in the same transaction as its
 * job, before anything is called; each attempt is a row of `delivery_attempts`.
 *
 * The queue's schema is created here rather than by pg-boss on start, so every database the
 * supervisor migrates (a fresh one, the embedded cluster, the medium tier's template) can
 * enqueue jobs before any worker has started.
 */
export class Deliveries1732900000000 implements MigrationInterface {
  name = 'Deliveries1732900000000';

  async up(q: QueryRunner): Promise<void> {
    const [{ installed }] = (await q.query(`SELECT to_regclass($1) IS NOT NULL AS installed`, [`${JOB_QUEUE_SCHEMA}.version`])) as [{ installed: boolean }];
    // A pg-boss schema already there (shared database) is pg-boss's to migrate on start.
    if (!installed) await q.query(jobQueueConstructionSql());
    // The queues of this migration's time (later migrations create theirs): a migration never changes.
    for (const name of [JOB_QUEUES.delivery]) {
      await q.query(`SELECT ${JOB_QUEUE_SCHEMA}.create_queue($1, $2::json)`, [name, JSON.stringify({ policy: 'standard' })]);
    }
    await q.query(`
      CREATE TABLE deliveries (
        subject_id text NOT NULL,
        step text NOT NULL,
        kind text NOT NULL,
        channel text NOT NULL CHECK (channel IN ('http','email')),
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','failed')),
        request jsonb NOT NULL,
        secrets jsonb,
        max_attempts int NOT NULL CHECK (max_attempts >= 1),
        attempts int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        job_id uuid,
        response_status int,
        response_url text,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        settled_at timestamptz,
        PRIMARY KEY (subject_id, step, kind),
        CHECK ((state = 'pending') = (settled_at IS NULL)),
        CHECK (state = 'pending' OR secrets IS NULL)
      )`);
    await q.query(`CREATE INDEX deliveries_pending_idx ON deliveries (created_at) WHERE state = 'pending'`);
    await q.query(`
      CREATE TABLE delivery_attempts (
        subject_id text NOT NULL,
        step text NOT NULL,
        kind text NOT NULL,
        attempt int NOT NULL CHECK (attempt >= 1),
        started_at timestamptz NOT NULL DEFAULT now(),
        outcome text CHECK (outcome IN ('succeeded','failed')),
        response_status int,
        error text,
        duration_ms int,
        PRIMARY KEY (subject_id, step, kind, attempt),
        FOREIGN KEY (subject_id, step, kind) REFERENCES deliveries ON DELETE CASCADE
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE delivery_attempts`);
    await q.query(`DROP TABLE deliveries`);
    await q.query(`DROP SCHEMA ${JOB_QUEUE_SCHEMA} CASCADE`);
  }
}
