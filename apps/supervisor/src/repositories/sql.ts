import type { EntityManager } from 'typeorm';

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
