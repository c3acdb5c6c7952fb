import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The coordinator (CONTRACT.md section 9): each service on the assembly line with its stage and
 * its one active run, and every stage change with its time (for cycle times).
 */
export class Coordinator1733300000000 implements MigrationInterface {
  name = 'Coordinator1733300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE coordinator_services (
        service text PRIMARY KEY,
        path text NOT NULL,
        stage text NOT NULL,
        stage_since timestamptz NOT NULL DEFAULT now(),
        active_run_id text,
        active_kind text,
        last_run_id text,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE coordinator_stage_changes (
        id bigserial PRIMARY KEY,
        service text NOT NULL REFERENCES coordinator_services (service) ON DELETE CASCADE,
        from_stage text,
        to_stage text NOT NULL,
        at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX coordinator_stage_changes_service_idx ON coordinator_stage_changes (service, at)`);
    // "Assign now" (the dashboard, an operator): a running coordinator makes a pass at once.
    await q.query(`CREATE TABLE coordinator_pass_requests (id bigserial PRIMARY KEY, requested_at timestamptz NOT NULL DEFAULT now())`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE coordinator_pass_requests`);
    await q.query(`DROP TABLE coordinator_stage_changes`);
    await q.query(`DROP TABLE coordinator_services`);
  }
}
