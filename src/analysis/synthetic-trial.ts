import { DuckDBInstance, StatementType } from '@duckdb/node-api';
import type { ColumnSpec } from '../catalog/columns.js';
import type { QualityRule } from '../catalog/quality-rules.js';
import { hardenDuckDb } from '../duckdb/harden.js';
import { oneAtATime } from '../duckdb/one-at-a-time.js';
import { numericType, toPlainValues } from '../duckdb/plain-values.js';
import { sqlIdentifier, sqlString } from '../duckdb/sql-literals.js';
import { AppError } from '../errors/app-error.js';

/**
 * Trial runs of an accepted job's SQL over synthetic tables made from the catalogue alone, so that an operator
 * sees the shape of what the job will return (columns, types, a few rows) and catches a wrong join or a wrong
 * grouping before it spends a review, a day's probing allowance or privacy budget on the real data. OpenSAFELY
 * works the same way: analysts write code against dummy data generated from the study's declarations, and
 * only the platform runs it on real records.
 *
 * Nothing here reads the domain store. Every value is derived from the row number and the catalogue entry the
 * operator can already read: a column's declared public domain (towns, industry codes) when it has one, its
 * declared bounds for numbers, its type otherwise, with identifiers drawn from one space per column name so that
 * same-named keys join across datasets, and a column whose entry declares it a reference to another dataset's
 * column (`enterprises.legal_rep_id` → `residents.resident_id`, a quality rule) drawn from that column's space.
 * So the rows and any error DuckDB raises about them carry no value of the real data, and both can be shown as
 * they are.
 *
 * Each trial gets a fresh in-memory DuckDB, hardened like the sandbox's once its tables are filled, with one
 * thread, little memory and a short wall-time limit (DuckDB is interrupted); trials run one at a time per API
 * process, and a process with several already waiting refuses more (TRIAL_BUSY, 429) rather than queue without end.
 */
export type TrialDataset = {
  id: string;
  privacyUnit: string;
  uniqueKey?: string[] | null;
  columns: ColumnSpec[];
  /** The entry's quality rules: a `reference` rule says which column of another dataset a column's values come from. */
  qualityRules?: QualityRule[];
};
export type TrialResult = {
  columns: Array<{ name: string; type: string }>;
  rows: unknown[][];
  /** Rows the trial's output had; only the first `rowLimit` are returned. */
  rowCount: number;
  rowsPerDataset: number;
  milliseconds: number;
};

export type SyntheticTrialOptions = { rowsPerDataset?: number; rowLimit?: number; wallMilliseconds?: number; maxWaiting?: number };

export function createSyntheticTrial(options: SyntheticTrialOptions = {}) {
  const rowsPerDataset = options.rowsPerDataset ?? 500;
  const rowLimit = options.rowLimit ?? 100;
  const wallMilliseconds = options.wallMilliseconds ?? 3000;
  const maxWaiting = options.maxWaiting ?? 4;
  const exclusive = oneAtATime();
  let waiting = 0;

  return {
    run(datasets: TrialDataset[], sql: string): Promise<TrialResult> {
      if (waiting >= maxWaiting) {
        return Promise.reject(new AppError('TRIAL_BUSY', 'other trial runs are waiting on this server; try again in a few seconds', [], Math.ceil((wallMilliseconds * waiting) / 1000)));
      }
      waiting++;
      return exclusive(async () => {
        try {
          return await trialRun(datasets, sql, { rowsPerDataset, rowLimit, wallMilliseconds });
        } finally {
          waiting--;
        }
      });
    },
  };
}

export type SyntheticTrial = ReturnType<typeof createSyntheticTrial>;

async function trialRun(datasets: TrialDataset[], sql: string, limits: { rowsPerDataset: number; rowLimit: number; wallMilliseconds: number }): Promise<TrialResult> {
  const started = performance.now();
  const instance = await DuckDBInstance.create(':memory:', { threads: '1', memory_limit: '256MB', max_temp_directory_size: '0B' });
  try {
    const connection = await instance.connect();
    for (const dataset of datasets) await connection.run(syntheticTableSql(dataset, limits.rowsPerDataset));
    await hardenDuckDb(connection);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      connection.interrupt();
    }, limits.wallMilliseconds);
    try {
      const prepared = await connection.prepare(sql);
      // The analyser accepted one SELECT already; this is the same defence in depth as the sandbox's.
      if (prepared.statementType !== StatementType.SELECT) throw new AppError('NOT_SELECT', 'a job runs one SELECT statement');
      const reader = await prepared.streamAndReadUntil(limits.rowLimit + 1);
      const columns = reader.columnNames().map((name, index) => ({ name, type: String(reader.columnTypes()[index]) }));
      const numeric = columns.map((column) => numericType.test(column.type));
      const rows = reader.getRowsJson().slice(0, limits.rowLimit).map((row) => toPlainValues(row, numeric));
      // How many rows the output has in all: read to its end (bounded by the time and memory limits) and counted.
      let rowCount = reader.currentRowCount;
      while (!reader.done) {
        await reader.readUntil(reader.currentRowCount + 10_000);
        rowCount = reader.currentRowCount;
      }
      return { columns, rows, rowCount, rowsPerDataset: limits.rowsPerDataset, milliseconds: Math.round(performance.now() - started) };
    } catch (error) {
      if (error instanceof AppError) throw error;
      if (timedOut) throw new AppError('TRIAL_TIME_LIMIT', `the trial run took longer than ${limits.wallMilliseconds / 1000} s over ${limits.rowsPerDataset} synthetic rows a dataset; the job would be stopped at its own limit over the real data`);
      // Synthetic values only: DuckDB's own message is safe to show and tells the operator what to fix.
      throw new AppError('TRIAL_FAILED', `the SQL failed over synthetic data: ${firstLine(error)}`);
    } finally {
      clearTimeout(timer);
      connection.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

const firstLine = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 500);

/** CREATE TABLE … AS SELECT of `rows` synthetic rows with the dataset's columns and types. */
export function syntheticTableSql(dataset: TrialDataset, rows: number): string {
  const units = Math.max(1, Math.floor(rows / 4));
  const soleKey = dataset.uniqueKey?.length === 1 ? dataset.uniqueKey[0] : undefined;
  // The value space a column draws from: its own name's, or that of the column it is declared to reference.
  const spaceOf = new Map<string, string>();
  for (const rule of dataset.qualityRules ?? []) if (rule.rule === 'reference') spaceOf.set(rule.column, rule.references);
  const values = dataset.columns.map((column) => {
    const salt = sqlString(`${dataset.id}.${column.name}`);
    const draw = `hash(i, ${salt})`;
    let value: string;
    if (column.publicDomain?.length) {
      const domain = `[${column.publicDomain.map((entry) => sqlString(String(entry))).join(', ')}]`;
      value = `TRY_CAST(${domain}[1 + (${draw} % ${column.publicDomain.length})::INTEGER] AS ${column.type})`;
    } else if (column.type === 'VARCHAR') {
      // Identifiers: one value space per column name, so power_readings.uscc joins enterprises.uscc. A sole
      // unique key is unique; the privacy unit has about four rows each; other text has a handful of values.
      const prefix = sqlString(`${spaceOf.get(column.name) ?? column.name}-`);
      if (column.name === soleKey) value = `${prefix} || i`;
      else if (column.name === dataset.privacyUnit) value = `${prefix} || (i % ${units})`;
      else if (column.class === 'direct_identifier') value = `${prefix} || (${draw} % ${units})`;
      else value = `${prefix} || (${draw} % 8)`;
    } else if (column.type === 'BOOLEAN') {
      value = `${draw} % 2 = 0`;
    } else if (column.type === 'DATE') {
      value = `DATE '2024-01-01' + (${draw} % 731)::INTEGER`;
    } else if (column.type === 'TIMESTAMP') {
      value = `TIMESTAMP '2024-01-01' + to_seconds((${draw} % 63158400)::BIGINT)`;
    } else if (column.name === soleKey) {
      value = `i::${column.type}`;
    } else if (column.name === dataset.privacyUnit) {
      value = `(i % ${units})::${column.type}`;
    } else {
      const { min, max } = column.bounds ?? { min: 0, max: 1000 };
      value = `TRY_CAST(${min} + (${draw} % 1000001) / 1000000.0 * (${max - min}) AS ${column.type})`;
    }
    const nullable = column.nullable && column.name !== soleKey && column.name !== dataset.privacyUnit;
    const expression = nullable ? `CASE WHEN hash(i, ${sqlString(`${dataset.id}.${column.name}.null`)}) % 10 = 0 THEN NULL ELSE ${value} END` : value;
    return `CAST(${expression} AS ${column.type}) AS ${sqlIdentifier(column.name)}`;
  });
  return `CREATE TABLE ${sqlIdentifier(dataset.id)} AS SELECT ${values.join(', ')} FROM range(${rows}) AS synthetic(i)`;
}
