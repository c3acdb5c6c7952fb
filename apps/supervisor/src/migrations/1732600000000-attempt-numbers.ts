import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Separates a phase's attempt number from the attempts it is charged. `claims_count` numbers
 * every claim (commit trailers, usage report ids and attempt records need a number that never
 * repeats), while `attempts_used` counts only the attempts that the model's work used up: a
 * lease handed back uncharged (shutdown, a provider outage or refusal, a lost push) refunds it,
 * and so does a lease that expired (its executor crashed or lost the supervisor). Expiries are
 * counted in `abandonments` instead, up to `max_abandonments` (then the phase is `abandoned`).
 */
export class AttemptNumbers1732600000000 implements MigrationInterface {
  name = 'AttemptNumbers1732600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE phases ADD COLUMN claims_count int NOT NULL DEFAULT 0 CHECK (claims_count >= 0)`);
    await q.query(`ALTER TABLE phases ADD COLUMN abandonments int NOT NULL DEFAULT 0 CHECK (abandonments >= 0)`);
    await q.query(`ALTER TABLE phases ADD COLUMN max_abandonments int NOT NULL DEFAULT 10 CHECK (max_abandonments >= 1)`);
    // Until now every claim was charged, so the claims made so far equal the attempts used.
    await q.query(`UPDATE phases SET claims_count = attempts_used`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE phases DROP COLUMN claims_count, DROP COLUMN abandonments, DROP COLUMN max_abandonments`);
  }
}
