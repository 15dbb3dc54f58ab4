import fs from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { sqlIdentifier, sqlString } from '../duckdb/sql-literals.js';
import type { SnapshotStore } from './snapshot-store.js';

/**
 * Writes columns of one snapshot to a CSV file in staging, inside DuckDB (rows never pass through JavaScript),
 * readable by this user only. Shared data leaves this way alone: through a sharing channel (art. 17) or to the
 * city platform for an approved external request (art. 19). The caller streams and deletes the file.
 *
 * `spreadsheetSafe` names the text columns whose values must not start like a formula: for a person who opens the
 * file in a spreadsheet, `=HYPERLINK(…)` in a registered name would run (CSV injection). Those values get a leading
 * apostrophe, as the API's own CSVs do; numbers, dates and files for systems (the default) stay exactly as stored.
 */
export async function exportColumnsToCsv(
  store: SnapshotStore,
  datasetId: string,
  contentHash: string,
  columns: string[],
  options: { spreadsheetSafe?: string[] } = {},
): Promise<{ file: string; rowCount: number }> {
  const file = store.stagingPath('.csv');
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const connection = await instance.connect();
  try {
    await connection.run(`ATTACH ${sqlString(store.snapshotPath(datasetId, contentHash))} AS shared (READ_ONLY)`);
    const text = new Set(options.spreadsheetSafe ?? []);
    const projection = columns.map((column) => {
      const name = sqlIdentifier(column);
      return text.has(column) ? `CASE WHEN regexp_matches(${name}, '^[=+\\-@\\t\\r]') THEN '''' || ${name} ELSE ${name} END AS ${name}` : name;
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

/** The columns of `columns` that hold text, from the catalogue's types: what `spreadsheetSafe` takes. */
export const textColumns = (registered: Array<{ name: string; type: string }>, columns: string[]): string[] =>
  columns.filter((name) => registered.find((column) => column.name === name)?.type === 'VARCHAR');
