/**
 * The failure-caps migration gives runs that ended on a budget before it the cap their
 * reason names, so `budget_analysis` counts them as it did when it parsed the reason.
 */
import { FailureCaps1732700000000 } from '../../../apps/supervisor/src/migrations/1732700000000-failure-caps.js';
import { MIGRATIONS } from '../../../apps/supervisor/src/migrations/index.js';
import { type TestDatabase, createTestDatabase } from '../../support/database.js';
import { migrate } from '../support/migrate.js';

describe(FailureCaps1732700000000.name, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await migrate(db.url, MIGRATIONS.slice(0, MIGRATIONS.indexOf(FailureCaps1732700000000)));
  });
  afterAll(() => db.drop());

  it('stores the cap named by the reason of every run that ended on a budget, and none for other runs', async () => {
    const runs: [string, string, string | null][] = [
      ['tokens', 'DONE_FAILED_BUDGET_EXHAUSTED', 'token_cap exhausted: 1000 of 1000 tokens used'],
      ['cost', 'DONE_FAILED_BUDGET_EXHAUSTED', 'cost_cap_usd exhausted: $1.0000 of $1.0000 spent'],
      ['time', 'DONE_FAILED_BUDGET_EXHAUSTED', 'max_duration_minutes exhausted: 61.0 of 60 minutes elapsed'],
      ['phases', 'DONE_FAILED_BUDGET_EXHAUSTED', 'max_phases exhausted: 3 of 3 phases started'],
      ['minor', 'DONE_FAILED_BUDGET_EXHAUSTED', 'max_minor_issues_total exceeded: 10 of 9 minor issues'],
      ['tier-tokens', 'DONE_FAILED_BUDGET_EXHAUSTED', 'tier t-1 token_cap exhausted: 500 of 500 tokens used'],
      ['tier-ci', 'DONE_FAILED_BUDGET_EXHAUSTED', 'tier t-1 ci_run_cap exhausted: 2 of 2 CI runs used'],
      ['unnamed', 'DONE_FAILED_BUDGET_EXHAUSTED', 'something else'],
      ['review', 'DONE_FAILED_REQUIRES_HUMAN_REVIEW', 'phase(s) failed: p1 (token_cap exhausted: 1 of 1 tokens used)'],
      ['running', 'PHASE_EXECUTION', null],
    ];
    for (const [runId, state, reason] of runs) {
      await db.query(
        `INSERT INTO runs (run_id, state, safety_profile, run_scope, approval_mode, base_branch, token_cap, max_phases, max_duration_minutes, max_minor_issues_total, strategy, failure_reason)
         VALUES ($1, $2, 'normal', 'multi_tier', 'auto', 'main', 1000, 3, 60, 9, '{}', $3)`,
        [runId, state, reason],
      );
    }
    await migrate(db.url, MIGRATIONS);
    const caps = await db.query<{ run_id: string; failure_cap: string | null }>('SELECT run_id, failure_cap FROM runs ORDER BY run_id');
    expect(Object.fromEntries(caps.map((r) => [r.run_id, r.failure_cap]))).toEqual({
      tokens: 'token_cap',
      cost: 'cost_cap_usd',
      time: 'max_duration_minutes',
      phases: 'max_phases',
      minor: 'max_minor_issues_total',
      'tier-tokens': 'tier_token_cap',
      'tier-ci': 'tier_ci_run_cap',
      unnamed: null,
      review: null,
      running: null,
    });
    expect(await db.query('SELECT count(*)::int AS n FROM phases WHERE failure_cap IS NOT NULL')).toEqual([{ n: 0 }]);
  });
});
