import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Issue tracking, project backlog, rulesets, budget reservations, idempotent usage, approvals. */
export class ControlPlane1732400000000 implements MigrationInterface {
  name = 'ControlPlane1732400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE runs
      ADD COLUMN max_parallel_phases int NOT NULL DEFAULT 1 CHECK (max_parallel_phases BETWEEN 1 AND 64),
      ADD COLUMN approved_through_tier_index int NOT NULL DEFAULT -1,
      ADD COLUMN approval_state text NOT NULL DEFAULT 'not_required' CHECK (approval_state IN ('not_required','pending','approved','rejected')),
      ADD COLUMN approval_notes text,
      ADD COLUMN approved_at timestamptz`);
    await q.query(`
      CREATE TABLE phase_issues (
        id serial PRIMARY KEY,
        run_id text NOT NULL,
        phase_id text NOT NULL,
        tier_id text NOT NULL,
        issue_key text NOT NULL,
        severity text NOT NULL CHECK (severity IN ('minor','major')),
        effective_severity text NOT NULL CHECK (effective_severity IN ('minor','major')),
        source text NOT NULL,
        category text NOT NULL,
        description text,
        location text,
        evidence_refs jsonb NOT NULL DEFAULT '[]',
        occurrence_count int NOT NULL DEFAULT 1,
        last_seen_attempt int NOT NULL,
        status text NOT NULL DEFAULT 'open' CHECK (status IN ('open','fixed_in_phase')),
        first_seen_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (run_id, phase_id) REFERENCES phases(run_id, phase_id) ON DELETE CASCADE,
        UNIQUE (run_id, phase_id, issue_key)
      )`);
    await q.query(`CREATE INDEX phase_issues_run_idx ON phase_issues (run_id, issue_key)`);
    await q.query(`
      CREATE TABLE project_backlog (
        project_id text NOT NULL,
        issue_key text NOT NULL,
        category text NOT NULL,
        base_severity text NOT NULL CHECK (base_severity IN ('minor','major')),
        effective_severity text NOT NULL CHECK (effective_severity IN ('minor','major')),
        age_in_runs int NOT NULL,
        age_in_tiers int NOT NULL,
        occurrence_count int NOT NULL,
        seen_in_runs jsonb NOT NULL DEFAULT '[]',
        seen_in_tiers jsonb NOT NULL DEFAULT '[]',
        first_seen_run_id text NOT NULL,
        last_seen_run_id text NOT NULL,
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        status text NOT NULL CHECK (status IN ('open','needs_cleanup','resolved')),
        resolved_by_run_id text,
        resolved_at timestamptz,
        PRIMARY KEY (project_id, issue_key)
      )`);
    await q.query(`
      CREATE TABLE project_rulesets (
        project_id text PRIMARY KEY,
        ruleset jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE budget_reservations (
        id uuid PRIMARY KEY,
        run_id text NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        phase_id text NOT NULL,
        tier_id text NOT NULL,
        tokens bigint NOT NULL CHECK (tokens >= 0),
        cost_usd numeric NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX budget_reservations_run_idx ON budget_reservations (run_id)`);
    await q.query(`
      CREATE TABLE usage_reports (
        report_id text PRIMARY KEY,
        run_id text NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        phase_id text NOT NULL,
        tokens bigint NOT NULL,
        cost_usd numeric NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE usage_reports`);
    await q.query(`DROP TABLE budget_reservations`);
    await q.query(`DROP TABLE project_rulesets`);
    await q.query(`DROP TABLE project_backlog`);
    await q.query(`DROP TABLE phase_issues`);
    await q.query(`ALTER TABLE runs DROP COLUMN max_parallel_phases, DROP COLUMN approved_through_tier_index, DROP COLUMN approval_state, DROP COLUMN approval_notes, DROP COLUMN approved_at`);
  }
}
