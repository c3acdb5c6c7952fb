/**
 * Idempotency keys are stored only with their answer: the migration drops the rows an old
 * supervisor left `in_progress` (they answer nothing) and keeps every stored answer as it was.
 */
import { IdempotencyAnswersOnly1732800000000 } from '../../../apps/supervisor/src/migrations/1732800000000-idempotency-answers-only.js';
import { MIGRATIONS } from '../../../apps/supervisor/src/migrations/index.js';
import { type TestDatabase, createTestDatabase } from '../../support/database.js';
import { migrate } from '../support/migrate.js';

describe(IdempotencyAnswersOnly1732800000000.name, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await migrate(db.url, MIGRATIONS.slice(0, MIGRATIONS.indexOf(IdempotencyAnswersOnly1732800000000)));
  });
  afterAll(() => db.drop());

  it('drops unanswered keys, keeps every answer, and requires a status from then on', async () => {
    await db.query(
      `INSERT INTO idempotency_keys (route, key, request_hash, state, status, response) VALUES
         ('POST /runs/start', 'answered', 'h1', 'done', 201, '{"run_id":"r1"}'),
         ('POST /runs/start', 'unanswered', 'h2', 'in_progress', NULL, NULL)`,
    );
    await migrate(db.url, MIGRATIONS);
    expect(await db.query('SELECT route, key, request_hash, status, response FROM idempotency_keys ORDER BY key')).toEqual([
      { route: 'POST /runs/start', key: 'answered', request_hash: 'h1', status: 201, response: { run_id: 'r1' } },
    ]);
    await expect(db.query(`INSERT INTO idempotency_keys (route, key, request_hash, response) VALUES ('POST /x', 'k', 'h', 'null')`)).rejects.toThrow(/status/);
  });
});
