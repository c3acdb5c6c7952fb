import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Stores the cap behind a failure as a code (`FailureCap` in libs/domain), so reports read it
 * instead of parsing `failure_reason`. Runs that ended on a budget before this migration get
 * the code their reason names (the reasons were always written by the same few checks).
 */
export class FailureCaps1732700000000 implements MigrationInterface {
  name = 'FailureCaps1732700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE runs ADD COLUMN failure_cap text`);
    await q.query(`ALTER TABLE phases ADD COLUMN failure_cap text`);
    await q.query(
      `UPDATE runs SET failure_cap = CASE
         WHEN failure_reason ~ '^tier \\S+ token_cap exhausted' THEN 'tier_token_cap'
         WHEN failure_reason ~ '^tier \\S+ ci_run_cap exhausted' THEN 'tier_ci_run_cap'
         ELSE substring(failure_reason from '([a-z_]+) (?:exhausted|exceeded)')
       END
       WHERE state = 'DONE_FAILED_BUDGET_EXHAUSTED'`,
    );
    await q.query(
      `UPDATE runs SET failure_cap = NULL
        WHERE failure_cap NOT IN ('token_cap','cost_cap_usd','max_duration_minutes','max_phases','max_minor_issues_total','tier_token_cap','tier_ci_run_cap')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE runs DROP COLUMN failure_cap`);
    await q.query(`ALTER TABLE phases DROP COLUMN failure_cap`);
  }
}
