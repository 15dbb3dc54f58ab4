import { DuckDBInstance } from '@duckdb/node-api';
import type { SnapshotStore } from '../domain-store/snapshot-store.js';
import { numericType, toPlainValues } from '../duckdb/plain-values.js';
import { sqlIdentifier, sqlString } from '../duckdb/sql-literals.js';

/** The most values a group key's public domain may list (as a catalogue's `publicDomain`). */
export const MAX_DOMAIN_VALUES = 10_000;

export type OpenDomainReader = (dataset: string, column: string) => Promise<Array<string | number | null> | null>;

/**
 * The values of a column of open data, read from the snapshot a job is pinned to: open data is public, so the
 * values it holds are a public domain for a DP job's group key (`GROUP BY b.stop_name` of the bus routes joined to
 * trips), known before any protected row is read. Null when the column has more than MAX_DOMAIN_VALUES values.
 * Values come in the form the sandbox gives a job's keys (DuckDB's JSON rows, numbers as numbers), so a released
 * cell and its domain value are the same JSON. Kept per snapshot and column: a snapshot never changes.
 */
const cache = new Map<string, Array<string | number | null> | null>();

export function openDomainReader(store: SnapshotStore, versions: ReadonlyMap<string, string>): OpenDomainReader {
  return async (dataset, column) => {
    const contentHash = versions.get(dataset);
    if (!contentHash) return null;
    const key = JSON.stringify([dataset, contentHash, column]);
    if (cache.has(key)) return cache.get(key)!;
    const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
    const connection = await instance.connect();
    try {
      await connection.run(`ATTACH ${sqlString(store.snapshotPath(dataset, contentHash))} AS open_data (READ_ONLY)`);
      const reader = await connection.runAndReadAll(`SELECT DISTINCT ${sqlIdentifier(column)} FROM open_data.data ORDER BY 1 NULLS LAST LIMIT ${MAX_DOMAIN_VALUES + 1}`);
      const numeric = [numericType.test(String(reader.columnTypes()[0]))];
      const values = reader.getRowsJson().map((row) => toPlainValues(row, numeric)[0] as string | number | null);
      const domain = values.length > MAX_DOMAIN_VALUES ? null : values;
      if (cache.size >= 256) cache.delete(cache.keys().next().value!);
      cache.set(key, domain);
      return domain;
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  };
}
