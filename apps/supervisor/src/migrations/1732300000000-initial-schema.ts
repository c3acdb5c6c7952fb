import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Runs, tiers, phases, attempts and events; states are CHECK-constrained to the contract's values. */
export class InitialSchema1732300000000 implements MigrationInterface {
  name = 'InitialSchema1732300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE runs (
        run_id text PRIMARY KEY,
        project_id text NOT NULL DEFAULT 'default',
        state text NOT NULL CHECK (state IN ('PLAN_BOOTSTRAP','RUN_CREATED','PHASE_QUEUEING','PHASE_EXECUTION','GATE','CI_RUNNING','SNAPSHOT_CREATED','AWAITING_APPROVAL','DONE_SUCCESS','DONE_FAILED_BUDGET_EXHAUSTED','DONE_FAILED_POLICY_VIOLATION','DONE_FAILED_REQUIRES_HUMAN_REVIEW','DONE_FAILED_ENVIRONMENT','CANCELLED')),
        safety_profile text NOT NULL CHECK (safety_profile IN ('normal','safety_critical')),
        run_scope text NOT NULL,
        approval_mode text NOT NULL CHECK (approval_mode IN ('auto','checkpoints','final')),
        base_branch text NOT NULL,
        repo_url text,
        ci jsonb,
        protected_paths jsonb NOT NULL DEFAULT '[]',
        token_cap bigint NOT NULL CHECK (token_cap > 0),
        cost_cap_usd numeric,
        max_phases int NOT NULL,
        max_duration_minutes int NOT NULL,
        max_minor_issues_total int NOT NULL,
        tokens_used bigint NOT NULL DEFAULT 0 CHECK (tokens_used >= 0),
        cost_used_usd numeric NOT NULL DEFAULT 0,
        ci_runs_used int NOT NULL DEFAULT 0,
        minor_issues_count int NOT NULL DEFAULT 0,
        major_issues_count int NOT NULL DEFAULT 0,
        failure_reason text,
        debt_status text,
        strategy jsonb NOT NULL,
        version int NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        completed_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX runs_state_created_idx ON runs (state, created_at)`);
    await q.query(`
      CREATE TABLE tiers (
        id serial PRIMARY KEY,
        run_id text NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        tier_id text NOT NULL,
        tier_index int NOT NULL,
        name text NOT NULL,
        description text,
        state text NOT NULL CHECK (state IN ('PENDING','IN_PROGRESS','COMPLETE','FAILED','SKIPPED')),
        cleanliness text NOT NULL DEFAULT 'clean' CHECK (cleanliness IN ('clean','not_clean')),
        minor_issues_count int NOT NULL DEFAULT 0,
        major_issues_count int NOT NULL DEFAULT 0,
        tokens_used bigint NOT NULL DEFAULT 0,
        ci_runs_used int NOT NULL DEFAULT 0,
        version int NOT NULL DEFAULT 1,
        UNIQUE (run_id, tier_id),
        UNIQUE (run_id, tier_index)
      )`);
    await q.query(`
      CREATE TABLE phases (
        id serial PRIMARY KEY,
        run_id text NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        phase_id text NOT NULL,
        tier_id text NOT NULL,
        phase_index int NOT NULL,
        name text NOT NULL,
        description text,
        task_category text,
        complexity text,
        builder_mode text,
        scope jsonb,
        acceptance_criteria jsonb NOT NULL DEFAULT '[]',
        ci jsonb,
        allow_mass_deletion boolean NOT NULL DEFAULT false,
        allow_mass_addition boolean NOT NULL DEFAULT false,
        state text NOT NULL CHECK (state IN ('QUEUED','EXECUTING','GATE','CI_RUNNING','COMPLETE','FAILED','SKIPPED')),
        attempts_used int NOT NULL DEFAULT 0 CHECK (attempts_used >= 0),
        max_attempts int NOT NULL CHECK (max_attempts >= 1),
        lease_token uuid,
        lease_owner text,
        lease_expires_at timestamptz,
        builder_attempts int NOT NULL DEFAULT 0,
        auditor_attempts int NOT NULL DEFAULT 0,
        tokens_used bigint NOT NULL DEFAULT 0,
        minor_issues_count int NOT NULL DEFAULT 0,
        major_issues_count int NOT NULL DEFAULT 0,
        quality_level text,
        last_failure_reason text,
        commit_sha text,
        files_changed jsonb NOT NULL DEFAULT '[]',
        lines_added int NOT NULL DEFAULT 0,
        lines_removed int NOT NULL DEFAULT 0,
        version int NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (run_id, phase_id),
        FOREIGN KEY (run_id, tier_id) REFERENCES tiers(run_id, tier_id),
        -- A leased state always has a lease, and only leased states have one.
        CHECK ((state IN ('EXECUTING','GATE','CI_RUNNING')) = (lease_token IS NOT NULL))
      )`);
    await q.query(`CREATE INDEX phases_claim_idx ON phases (run_id, state, phase_index)`);
    await q.query(`CREATE INDEX phases_lease_idx ON phases (lease_expires_at) WHERE lease_token IS NOT NULL`);
    await q.query(`
      CREATE TABLE phase_attempts (
        id serial PRIMARY KEY,
        run_id text NOT NULL,
        phase_id text NOT NULL,
        attempt int NOT NULL,
        outcome text NOT NULL,
        reason text,
        feedback text,
        edits_hash text,
        executor_id text,
        commit_sha text,
        created_at timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (run_id, phase_id) REFERENCES phases(run_id, phase_id) ON DELETE CASCADE,
        UNIQUE (run_id, phase_id, attempt)
      )`);
    await q.query(`
      CREATE TABLE events (
        id bigserial PRIMARY KEY,
        run_id text NOT NULL,
        phase_id text,
        type text NOT NULL,
        payload jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX events_run_idx ON events (run_id, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE events`);
    await q.query(`DROP TABLE phase_attempts`);
    await q.query(`DROP TABLE phases`);
    await q.query(`DROP TABLE tiers`);
    await q.query(`DROP TABLE runs`);
  }
}
