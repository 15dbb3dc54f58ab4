import fs from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { sqlIdentifier, sqlString } from '../duckdb/sql-literals.js';
import type { SnapshotStore } from './snapshot-store.js';

/**
 * Writes columns of one snapshot to a CSV file in staging, inside DuckDB (rows never pass through JavaScript),
 * readable by this user only. Shared data leaves this way alone: through a sharing channel (art. 17) or to the
 * city platform for an approved external request (art. 19). The caller streams and deletes the file.
 */
export async function exportColumnsToCsv(store: SnapshotStore, datasetId: string, contentHash: string, columns: string[]): Promise<{ file: string; rowCount: number }> {
  const file = store.stagingPath('.csv');
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const connection = await instance.connect();
  try {
    await connection.run(`ATTACH ${sqlString(store.snapshotPath(datasetId, contentHash))} AS shared (READ_ONLY)`);
    const result = await connection.runAndReadAll(`COPY (SELECT ${columns.map(sqlIdentifier).join(', ')} FROM shared.data) TO ${sqlString(file)} (HEADER, DELIMITER ',')`);
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
