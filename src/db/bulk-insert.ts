import { getTableColumns, getTableName, SQL, sql } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import type { Database } from './connect.js';

type Executor = Pick<Database, 'execute'>;

/**
 * Inserts many rows as one JSON parameter unpacked by `jsonb_to_recordset`, instead of a multi-row VALUES list
 * with one bound parameter per cell. On PGlite every parameter is serialised and parsed on the JavaScript thread;
 * measured on 256 audit leaves and metering rows (bench/products.ts), the per-row cost fell from about 160 µs
 * to under 60 µs, and drizzle's own statement building, which grows with the parameter count, disappears.
 * Several tables go in one statement (data-modifying CTEs), since on PGlite each statement has a fixed cost
 * of a few hundred microseconds; so can other data-modifying statements the caller writes (the product-call
 * ledger's quota upsert). Both PGlite and PostgreSQL run the same statement.
 *
 * Columns left out of a row take NULL, not their default: callers pass every column they mean to set.
 */
export type RowsFor<T extends PgTable> = { table: T; rows: Array<T['$inferInsert']> };

/** Rows for tables, and any other data-modifying statement (an upsert, say) to run in the same statement. */
export async function bulkInsert(db: Executor, ...inserts: Array<RowsFor<PgTable> | SQL>): Promise<void> {
  const statements = inserts.flatMap((insert) => (insert instanceof SQL ? [insert] : insert.rows.length > 0 ? [insertStatement(insert.table, insert.rows)] : []));
  if (statements.length === 0) return;
  const last = statements.pop()!;
  const ctes = statements.map((statement, position) => sql`${sql.raw(`insert_${position}`)} AS (${statement})`);
  await db.execute(ctes.length === 0 ? last : sql`WITH ${sql.join(ctes, sql`, `)} ${last}`);
}

/** Typed entry for bulkInsert, so each table's rows are checked against that table. */
export const rowsFor = <T extends PgTable>(table: T, rows: Array<T['$inferInsert']>): RowsFor<PgTable> => ({ table, rows }) as unknown as RowsFor<PgTable>;

function insertStatement(table: PgTable, rows: Array<Record<string, unknown>>) {
  const columns = Object.entries(getTableColumns(table));
  const names = columns.map(([, column]) => `"${column.name}"`).join(', ');
  const recordType = columns.map(([, column]) => `"${column.name}" ${column.getSQLType()}`).join(', ');
  const records = rows.map((row) => {
    const record: Record<string, unknown> = {};
    for (const [key, column] of columns) {
      const value = row[key];
      if (value !== undefined) record[column.name] = value instanceof Date ? value.toISOString() : value;
    }
    return record;
  });
  return sql`INSERT INTO ${sql.identifier(getTableName(table))} (${sql.raw(names)}) SELECT ${sql.raw(names)} FROM jsonb_to_recordset(${JSON.stringify(records)}::jsonb) AS row_values(${sql.raw(recordType)})`;
}
