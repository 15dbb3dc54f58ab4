import type { SQL } from 'drizzle-orm';
import type { Database } from './connect.js';

/** What raw queries run on: the database, or a transaction of it. */
export type SqlRunner = Pick<Database, 'execute'>;

/** The rows of a raw query: both drivers answer with `{ rows }`, which drizzle's shared type leaves unknown. */
export async function rowsOf<T>(db: SqlRunner, query: SQL): Promise<T[]> {
  return ((await db.execute(query)) as unknown as { rows: T[] }).rows;
}
