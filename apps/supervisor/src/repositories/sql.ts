import type { EntityManager, EntityMetadata, EntityTarget, ObjectLiteral } from 'typeorm';

/**
 * Runs a statement and returns its rows and row count whatever the command: TypeORM's
 * postgres driver answers UPDATE/DELETE with `[rows, count]` and SELECT with `rows`.
 */
export async function execSql<T = Record<string, unknown>>(
  em: EntityManager,
  sql: string,
  params: unknown[] = [],
): Promise<{ rows: T[]; count: number }> {
  const raw: unknown = await em.query(sql, params);
  if (Array.isArray(raw) && raw.length === 2 && Array.isArray(raw[0]) && typeof raw[1] === 'number') {
    return { rows: raw[0] as T[], count: raw[1] };
  }
  const rows = (Array.isArray(raw) ? raw : []) as T[];
  return { rows, count: rows.length };
}

/** now() of each open transaction, by its entity manager (one per transaction). */
const transactionNow = new WeakMap<EntityManager, number>();

/**
 * The clock of the caller's transaction when a query already read it (now() is the
 * transaction's start in PostgreSQL, so it cannot have moved since); undefined otherwise.
 */
export function knownTransactionNow(em: EntityManager): Date | undefined {
  const known = em.queryRunner?.isTransactionActive === true ? transactionNow.get(em) : undefined;
  return known === undefined ? undefined : new Date(known);
}

/** Remembers now() as read inside the caller's transaction (outside one, nothing is kept). */
export function rememberTransactionNow(em: EntityManager, now: Date): void {
  if (em.queryRunner?.isTransactionActive === true) transactionNow.set(em, now.getTime());
}

/**
 * `alias.column AS "property"` for every column of an entity (but the properties in `except`): a raw statement's `RETURNING`
 * list whose rows `hydrateRow` turns into the entity without a second read.
 */
export function entityColumns(em: EntityManager, target: EntityTarget<ObjectLiteral>, alias: string, except: readonly string[] = []): string {
  return em.connection
    .getMetadata(target)
    .columns.filter((c) => !except.includes(c.propertyName))
    .map((c) => `${alias}.${c.databaseName} AS "${c.propertyName}"`)
    .join(', ');
}

/** A row selected with `entityColumns` as the entity TypeORM would have read (column transformers applied). */
export function hydrateRow<T extends ObjectLiteral>(em: EntityManager, target: EntityTarget<T>, row: Record<string, unknown>): T {
  const metadata: EntityMetadata = em.connection.getMetadata(target);
  const entity = metadata.create() as T;
  for (const c of metadata.columns) {
    let value = row[c.propertyName];
    const transformers = c.transformer === undefined ? [] : Array.isArray(c.transformer) ? [...c.transformer].reverse() : [c.transformer];
    for (const t of transformers) value = t.from(value);
    (entity as Record<string, unknown>)[c.propertyName] = value;
  }
  return entity;
}
