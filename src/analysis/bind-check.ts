import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { hardenDuckDb } from '../duckdb/harden.js';
import { oneAtATime } from '../duckdb/one-at-a-time.js';
import { AppError } from '../errors/app-error.js';
import { sqlIdentifier } from '../duckdb/sql-literals.js';
import type { CatalogueDataset } from './analyse-query.js';

/**
 * Binds an operator's SQL with DuckDB against empty tables that have the catalogue's columns and types, in the
 * API process, before a job is queued or a dry run answers.
 *
 * Why: the analyser checks what a query may do with each column, not whether DuckDB can run it. A column left out
 * of GROUP BY, `sum` of a text column or a date compared with a number passed the dry run and then failed in the
 * sandbox as QUERY_FAILED, whose reason is generic on purpose (an engine error there can quote a value from the
 * data). Over tables with no rows, the binder's message can only quote the operator's own SQL and the catalogue's
 * column names and types, so it is safe to show, and the operator learns what to fix before anything runs.
 * Errors that only data can raise (a cast of a stored string) still fail in the sandbox, generically.
 *
 * It is also a second reading of the query: DuckDB's count of output columns must equal the analyser's. A
 * disagreement means the two read the SQL differently (the kind of gap that let a case-differing name through),
 * and the job is refused rather than run.
 *
 * The optimizer is off, so constant folding (`repeat('x', 1e9)` took 17 s in `prepare`) never runs here, and the
 * instance is hardened like the sandbox's and capped in memory and threads.
 */
export function createBindCheck() {
  let current: { catalogue: Map<string, CatalogueDataset>; connection: Promise<{ instance: DuckDBInstance; connection: DuckDBConnection }> } | undefined;
  const exclusive = oneAtATime();

  /** One instance per catalogue view: the analysis catalogue hands out a new map whenever the catalogue changed. */
  function connectionFor(catalogue: Map<string, CatalogueDataset>) {
    if (current?.catalogue !== catalogue) {
      const previous = current;
      current = { catalogue, connection: openEmptyCatalogue(catalogue) };
      void previous?.connection.then(closeQuietly, () => undefined);
    }
    return current.connection;
  }

  return {
    /**
     * Resolves with the output columns' names and DuckDB types when DuckDB binds `sql` and finds `expectedColumns`
     * output columns (when given); otherwise throws BIND_ERROR with DuckDB's reason, or UNSUPPORTED_QUERY_SHAPE
     * when the counts disagree.
     */
    confirm(catalogue: Map<string, CatalogueDataset>, sql: string, expectedColumns?: number, subject = 'the SQL'): Promise<Array<{ name: string; type: string }>> {
      return exclusive(async () => {
        const { connection } = await connectionFor(catalogue);
        let columns: Array<{ name: string; type: string }>;
        try {
          const statement = await connection.prepare(sql);
          columns = Array.from({ length: statement.columnCount }, (_, index) => ({ name: statement.columnName(index), type: statement.columnType(index).toString() }));
          statement.destroySync();
        } catch (error) {
          throw new AppError('BIND_ERROR', `${subject} does not fit the datasets' columns and types: ${binderMessage(error instanceof Error ? error.message : '')}`);
        }
        if (expectedColumns !== undefined && columns.length !== expectedColumns) {
          throw new AppError('UNSUPPORTED_QUERY_SHAPE', 'DuckDB and the analyser read this query differently; rewrite it with each output column named plainly');
        }
        return columns;
      });
    },
    close(): Promise<void> {
      const closing = current?.connection.then(closeQuietly, () => undefined);
      current = undefined;
      return closing ?? Promise.resolve();
    },
  };
}

export type BindCheck = ReturnType<typeof createBindCheck>;

async function openEmptyCatalogue(catalogue: Map<string, CatalogueDataset>) {
  const instance = await DuckDBInstance.create(':memory:', { threads: '1', memory_limit: '256MB' });
  const connection = await instance.connect();
  for (const dataset of catalogue.values()) {
    const columns = dataset.columns.map((column) => `${sqlIdentifier(column.name)} ${column.type ?? 'VARCHAR'}`).join(', ');
    try {
      await connection.run(`CREATE TABLE ${sqlIdentifier(dataset.id)} (${columns})`);
    } catch {
      // A type DuckDB refuses (registered before registration checked it) cannot hold data either: that dataset's
      // jobs fail to bind, and nobody else's.
    }
  }
  await connection.run('PRAGMA disable_optimizer');
  await hardenDuckDb(connection);
  return { instance, connection };
}

function closeQuietly({ instance, connection }: { instance: DuckDBInstance; connection: DuckDBConnection }) {
  connection.closeSync();
  instance.closeSync();
}

/**
 * The first line of DuckDB's message, without its "Binder Error:" prefix: the later lines hold a caret excerpt of
 * the SQL and advice that does not apply here ("use ANY_VALUE(x)", which policy refuses on protected data).
 * Kinds of error other than these four (out of memory, an internal error) get a generic message.
 */
export function binderMessage(raw: string): string {
  const first = raw.split('\n')[0]!.trim();
  const match = /^(Binder|Catalog|Conversion|Invalid Input) Error:\s*(.+)$/.exec(first);
  return match ? match[2]!.slice(0, 500) : 'DuckDB could not bind the SQL to the datasets';
}
