import fs from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { sqlIdentifier, sqlString } from '../duckdb/sql-literals.js';
import type { SnapshotStore } from './snapshot-store.js';

/**
 * Writes columns of one snapshot to a CSV file in staging, inside DuckDB (rows never pass through JavaScript),
 * readable by this user only. Shared data leaves this way alone: through a sharing channel (art. 17) or to the
 * city platform for an approved external request (art. 19). The caller streams and deletes the file.
 *
 * `forSpreadsheet` is for a person who opens the file in a spreadsheet: there `=HYPERLINK(…)` in a registered
 * name would run (CSV injection), so text columns' values that start like a formula get a leading apostrophe, as
 * the API's own CSVs do. Numbers, dates and files for systems (the default) stay exactly as stored.
 */
export async function exportColumnsToCsv(
  store: SnapshotStore,
  dataset: { id: string; columns: Array<{ name: string; type: string }> },
  contentHash: string,
  columns: string[],
  options: { forSpreadsheet?: boolean } = {},
): Promise<{ file: string; rowCount: number }> {
  const file = store.stagingPath('.csv');
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const connection = await instance.connect();
  try {
    await connection.run(`ATTACH ${sqlString(store.snapshotPath(dataset.id, contentHash))} AS shared (READ_ONLY)`);
    // Text columns, from the catalogue's types: only their values can start like a formula.
    const defused = new Set(options.forSpreadsheet ? dataset.columns.filter((column) => column.type === 'VARCHAR').map((column) => column.name) : []);
    const projection = columns.map((column) => {
      const name = sqlIdentifier(column);
      return defused.has(column) ? `CASE WHEN regexp_matches(${name}, '^[=+\\-@\\t\\r]') THEN '''' || ${name} ELSE ${name} END AS ${name}` : name;
    });
    const result = await connection.runAndReadAll(`COPY (SELECT ${projection.join(', ')} FROM shared.data) TO ${sqlString(file)} (HEADER, DELIMITER ',')`);
    fs.chmodSync(file, 0o600);
    return { file, rowCount: Number(result.getRows()[0]?.[0] ?? 0) };
  } catch (error) {
    fs.rmSync(file, { force: true });
    throw error;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
