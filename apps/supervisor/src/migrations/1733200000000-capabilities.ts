import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Capabilities (CONTRACT.md section 9): a phase may require some (`requires`, matched in the
 * claim query itself), and every executor that claims is remembered with the capabilities it
 * claimed with and when it was last seen (claims and heartbeats), for `GET /executors` and to
 * tell a phase that no live executor can take.
 */
export class Capabilities1733200000000 implements MigrationInterface {
  name = 'Capabilities1733200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE phases ADD COLUMN requires text[] NOT NULL DEFAULT '{}'`);
    await q.query(`
      CREATE TABLE executors (
        executor_id text PRIMARY KEY,
        capabilities text[] NOT NULL,
        first_seen_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX executors_last_seen_idx ON executors (last_seen_at)`);
    await q.query(`CREATE INDEX phase_attempts_executor_idx ON phase_attempts (executor_id) WHERE executor_id IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX phase_attempts_executor_idx`);
    await q.query(`DROP TABLE executors`);
    await q.query(`ALTER TABLE phases DROP COLUMN requires`);
  }
}
