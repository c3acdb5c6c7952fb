import PgBoss from 'pg-boss';

/** The PostgreSQL schema of the job queue (pg-boss), beside the supervisor's own tables. */
export const JOB_QUEUE_SCHEMA = 'pgboss';

/** The queues the supervisor works, by purpose. Each is created by the migrations. */
export const JOB_QUEUES = {
  /** Outbound deliveries: build hooks and notifications. */
  delivery: 'autopack-delivery',
  /** Moving droplet builds on after a step (hooks to request, the next build to admit). */
  build: 'autopack-build',
} as const;
/** A queue name. */
export type JobQueueName = (typeof JOB_QUEUES)[keyof typeof JOB_QUEUES];

/**
 * pg-boss's own schema-construction SQL, without the `BEGIN`/`COMMIT` it wraps itself in, so
 * the supervisor's migration runs it inside the migration's transaction: the queue's tables
 * and the supervisor's exist together or not at all. pg-boss migrates its schema itself on
 * start when a later version needs it. Throws if pg-boss ever shapes its plan differently
 * (the migration must not commit halfway).
 */
export function jobQueueConstructionSql(): string {
  const plan = PgBoss.getConstructionPlans(JOB_QUEUE_SCHEMA);
  const block = /^\s*BEGIN;([\s\S]*)COMMIT;\s*$/.exec(plan);
  if (!block || /\b(BEGIN|COMMIT)\s*;/i.test(block[1])) throw new Error('pg-boss construction plan is not a single BEGIN ... COMMIT block');
  return block[1];
}
