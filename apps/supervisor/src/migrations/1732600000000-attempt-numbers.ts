import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Separates a phase's attempt number from the attempts it is charged. `claims_count` numbers
 * every claim (commit trailers, usage report ids and attempt records need a number that never
 * repeats), while `attempts_used` counts only the attempts that the model's work used up: a
 * lease handed back uncharged (shutdown, a provider outage or refusal, a lost push) refunds it.
 */
export class AttemptNumbers1732600000000 implements MigrationInterface {
  name = 'AttemptNumbers1732600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE phases ADD COLUMN claims_count int NOT NULL DEFAULT 0 CHECK (claims_count >= 0)`);
    // Until now every claim was charged, so the claims made so far equal the attempts used.
    await q.query(`UPDATE phases SET claims_count = attempts_used`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE phases DROP COLUMN claims_count`);
  }
}
