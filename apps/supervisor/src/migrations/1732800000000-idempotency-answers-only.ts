import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An idempotency key is stored only with its finished answer, in the transaction of the change
 * it describes, so the `in_progress` state of the first version is never written. Rows an old
 * supervisor left in it answer nothing (their change committed without an answer, or never
 * happened): they are dropped, and with them the state column; every answer has a status.
 */
export class IdempotencyAnswersOnly1732800000000 implements MigrationInterface {
  name = 'IdempotencyAnswersOnly1732800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM idempotency_keys WHERE state <> 'done' OR status IS NULL`);
    await q.query(`ALTER TABLE idempotency_keys DROP COLUMN state`);
    await q.query(`ALTER TABLE idempotency_keys ALTER COLUMN status SET NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE idempotency_keys ALTER COLUMN status DROP NOT NULL`);
    await q.query(`ALTER TABLE idempotency_keys ADD COLUMN state text NOT NULL DEFAULT 'done' CHECK (state IN ('in_progress','done'))`);
  }
}
