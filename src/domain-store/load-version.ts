import crypto from 'node:crypto';
import fs from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { and, eq, max } from 'drizzle-orm';
import type { ColumnSpec } from '../catalog/columns.js';
import type { DatasetRow, DatasetVersionRow, VersionQuality } from '../catalog/catalogue.js';
import type { Database } from '../db/connect.js';
import { datasetVersions } from '../db/schema.js';
import { AppError, type ErrorDetail } from '../errors/app-error.js';
import { appendAuditEvents } from '../audit/audit-log.js';
import { checkVersionQuality } from './quality-check.js';
import { classificationRefusal, personalIdentifierProblems } from './personal-identifiers.js';
import { describeForLog } from '../errors/describe-for-log.js';
import { assertUtf8, EncodingError, sha256File, transcodeToUtf8, type CsvEncoding, type SnapshotStore } from './snapshot-store.js';
import { sqlIdentifier, sqlString } from '../duckdb/sql-literals.js';

export type SourceFormat = 'csv' | 'parquet';

export type LoadProgress = (stage: 'hashing' | 'checking' | 'writing' | 'publishing' | 'checking quality', detail?: string) => void;

export type LoadedVersion = DatasetVersionRow & { quality: VersionQuality | null };


/**
 * Loads a delivered file as a new immutable version of a registered dataset (measures art. 9, 11).
 *
 * The file is checked against the registered schema before anything is kept: UTF-8 (CSV), exact column names,
 * every value castable to its registered type, no nulls where none are allowed. Problems are reported by column
 * and row number, never by value, since the messages reach people who may not see the data. Nothing partial is
 * ever visible: the snapshot is built in staging, renamed into place, then recorded; any failure undoes it.
 */
export async function loadDatasetVersion(
  deps: { db: Database; store: SnapshotStore; clock?: () => Date },
  input: { dataset: DatasetRow; file: string; format: SourceFormat; loadedBy: string; onProgress?: LoadProgress; encoding?: CsvEncoding },
): Promise<LoadedVersion> {
  const { db, store } = deps;
  const clock = deps.clock ?? (() => new Date());
  const { dataset, file, format } = input;
  const progress = input.onProgress ?? (() => {});

  progress('hashing');
  const sourceHash = await sha256File(file);
  const [duplicate] = await db
    .select({ id: datasetVersions.id, versionNumber: datasetVersions.versionNumber })
    .from(datasetVersions)
    .where(and(eq(datasetVersions.datasetId, dataset.id), eq(datasetVersions.sourceHash, sourceHash)));
  if (duplicate) {
    throw new AppError('VERSION_EXISTS', `this file was already loaded as version ${duplicate.versionNumber}`);
  }

  progress('checking');
  // The source hash is of the bytes as delivered; DuckDB reads a UTF-8 copy of a GB 18030 file. A file that starts
  // with the UTF-8 byte order mark is UTF-8 whatever was declared: Excel's "CSV UTF-8" writes one, and read as
  // GB 18030 its header would turn into other characters (no CSV header begins with the character those bytes are).
  const encoding = format === 'csv' && input.encoding === 'gb18030' && !startsWithUtf8Bom(file) ? 'gb18030' : 'utf-8';
  const transcoded = format === 'csv' && encoding === 'gb18030' ? store.stagingPath('.csv') : undefined;
  try {
    if (transcoded) await transcodeToUtf8(file, 'gb18030', transcoded);
    else if (format === 'csv') await assertUtf8(file);
  } catch (error) {
    if (transcoded) fs.rmSync(transcoded, { force: true });
    if (error instanceof EncodingError) throw encodingRefusal(error.encoding);
    throw error;
  }

  const stagingFile = store.stagingPath('.duckdb');
  let published: { path: string; contentHash: string } | undefined;
  try {
    const rowCount = await buildSnapshot(transcoded ?? file, format, dataset, stagingFile, progress);
    progress('publishing');
    const contentHash = await sha256File(stagingFile);
    const byteSize = fs.statSync(stagingFile).size;
    const placed = store.publish(stagingFile, dataset.id, contentHash);
    if (placed.created) published = { path: placed.path, contentHash };
    const version = await recordVersion(db, clock(), {
      dataset,
      contentHash,
      sourceHash,
      sourceFormat: format,
      rowCount,
      byteSize,
      loadedBy: input.loadedBy,
    });
    published = undefined;
    // Arts. 9, 12: quality is checked on every new version. A failing version stays (the source is responsible
    // for it and is flagged); it is the check's result, not the load, that records the defects.
    progress('checking quality');
    let quality: Awaited<ReturnType<typeof checkVersionQuality>>;
    try {
      quality = await checkVersionQuality({ db, store, clock }, dataset, version);
    } catch (error) {
      // The version is loaded and recorded; a check that could not run is reported, never a reason to lose it.
      console.error(`[pds] the quality check of ${dataset.id} version ${version.versionNumber} did not run: ${describeForLog(error)}`);
    }
    return { ...version, quality: quality ? { score: quality.score, passed: quality.passed } : null };
  } catch (error) {
    fs.rmSync(stagingFile, { force: true });
    fs.rmSync(`${stagingFile}.wal`, { force: true });
    // A snapshot this load put in place goes with it, unless a version recorded meanwhile names the same content
    // (the same data delivered at the same moment by another request, which won the race to record it).
    if (published && !(await contentRecorded(db, dataset.id, published.contentHash))) {
      fs.rmSync(published.path, { force: true });
    }
    throw error;
  } finally {
    if (transcoded) fs.rmSync(transcoded, { force: true });
  }
}

async function contentRecorded(db: Database, datasetId: string, contentHash: string): Promise<boolean> {
  const [row] = await db.select({ id: datasetVersions.id }).from(datasetVersions).where(and(eq(datasetVersions.datasetId, datasetId), eq(datasetVersions.contentHash, contentHash))).limit(1);
  return Boolean(row);
}

function startsWithUtf8Bom(file: string): boolean {
  const head = Buffer.alloc(3);
  const descriptor = fs.openSync(file, 'r');
  try {
    return fs.readSync(descriptor, head, 0, 3, 0) === 3 && head.equals(Buffer.from([0xef, 0xbb, 0xbf]));
  } finally {
    fs.closeSync(descriptor);
  }
}

function encodingRefusal(encoding: CsvEncoding): AppError {
  return encoding === 'utf-8'
    ? new AppError('SCHEMA_MISMATCH', 'the file is not UTF-8 encoded; a GB 18030 (GBK, GB 2312) file is read when declared as charset gb18030')
    : new AppError('SCHEMA_MISMATCH', 'the file is not GB 18030 encoded (nor GBK or GB 2312, which GB 18030 contains)');
}

async function buildSnapshot(
  file: string,
  format: SourceFormat,
  dataset: Pick<DatasetRow, 'columns' | 'uniqueKey' | 'openData'>,
  stagingFile: string,
  progress: LoadProgress,
): Promise<number> {
  const { columns } = dataset;
  const uniqueKey = dataset.uniqueKey ?? null;
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const connection = await instance.connect();
  try {
    await stageRawRows(connection, file, format, columns.length);
    await checkColumnNames(connection, columns);
    await checkValues(connection, columns);
    const suspect = await personalIdentifierProblems(connection, 'raw', columns, dataset.openData);
    if (suspect.length > 0) throw classificationRefusal(suspect);

    progress('writing');
    await connection.run(`ATTACH ${sqlString(stagingFile)} AS snapshot`);
    const projection = columns
      .map((column) => `CAST(${sqlIdentifier(column.name)} AS ${column.type}) AS ${sqlIdentifier(column.name)}`)
      .join(', ');
    await connection.run(`CREATE TABLE snapshot.data AS SELECT ${projection} FROM raw ORDER BY source_row`);
    await checkUniqueKey(connection, uniqueKey);
    const counted = await connection.runAndReadAll('SELECT count(*) FROM snapshot.data');
    const rowCount = Number(counted.getRows()[0]![0]);
    await connection.run('DETACH snapshot');
    return rowCount;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

type Connection = Awaited<ReturnType<DuckDBInstance['connect']>>;

/** Reads the file into a temporary table `raw` (CSV as text, so that type problems can be counted per column). */
async function stageRawRows(connection: Connection, file: string, format: SourceFormat, expectedColumns: number) {
  if (format === 'parquet') {
    try {
      await connection.run(
        `CREATE TEMP TABLE raw AS SELECT *, file_row_number + 1 AS source_row FROM read_parquet(${sqlString(file)}, file_row_number = true)`,
      );
    } catch {
      throw new AppError('FILE_UNREADABLE', 'the file is not a readable Parquet file');
    }
    return;
  }
  const header = readCsvHeader(file);
  if (header.length === 0) throw new AppError('SCHEMA_MISMATCH', 'the file has no header line');
  const textColumns = `{${header.map((name) => `${sqlString(name)}: 'VARCHAR'`).join(', ')}}`;
  try {
    await connection.run(
      `CREATE TEMP TABLE raw AS SELECT *, row_number() OVER () AS source_row FROM read_csv(${sqlString(file)},
         header = true, auto_detect = false, delim = ',', quote = '"', escape = '"', strict_mode = true,
         store_rejects = true, columns = ${textColumns})`,
    );
  } catch {
    throw new AppError('FILE_UNREADABLE', 'the file is not a well-formed CSV file');
  }
  const rejects = await connection.runAndReadAll(
    'SELECT count(*) OVER (), line, error_type FROM reject_errors ORDER BY line LIMIT 5',
  );
  const rows = rejects.getRows();
  if (rows.length > 0) {
    const details: ErrorDetail[] = rows.map((row) => ({
      path: `line ${Number(row[1])}`,
      problem: String(row[2]).toLowerCase().replaceAll('_', ' '),
    }));
    throw new AppError(
      'SCHEMA_MISMATCH',
      `${Number(rows[0]![0])} line(s) do not have the ${expectedColumns} registered columns`,
      details,
    );
  }
}

/** Reads the first line of a CSV file without DuckDB, so a header problem is named exactly. */
function readCsvHeader(file: string): string[] {
  const handle = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const length = fs.readSync(handle, buffer, 0, buffer.length, 0);
    let text = buffer.subarray(0, length).toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const line = text.split(/\r?\n/, 1)[0] ?? '';
    if (line.trim() === '') return [];
    return line.split(',').map((name) => name.trim().replace(/^"(.*)"$/, '$1'));
  } finally {
    fs.closeSync(handle);
  }
}

async function checkColumnNames(connection: Connection, columns: ColumnSpec[]) {
  const described = await connection.runAndReadAll('DESCRIBE raw');
  const present = described
    .getRows()
    .map((row) => String(row[0]))
    .filter((name) => name !== 'source_row' && name !== 'file_row_number');
  const expected = columns.map((column) => column.name);
  const missing = expected.filter((name) => !present.includes(name));
  const unexpected = present.filter((name) => !expected.includes(name));
  if (missing.length > 0 || unexpected.length > 0) {
    throw new AppError('SCHEMA_MISMATCH', 'the file does not have the registered columns', [
      ...missing.map((name) => ({ path: name, problem: 'registered column missing from the file' })),
      // Unexpected names come from the file; they are header text chosen by the loader, not data values.
      ...unexpected.slice(0, 20).map((name) => ({ path: name.slice(0, 63), problem: 'column not in the registered schema' })),
    ]);
  }
}

/** One pass over the staged rows: per column, values that do not cast and nulls where none are allowed. */
async function checkValues(connection: Connection, columns: ColumnSpec[]) {
  const measures = columns.flatMap((column) => {
    const name = sqlIdentifier(column.name);
    const badCast = `${name} IS NOT NULL AND TRY_CAST(${name} AS ${column.type}) IS NULL`;
    return [
      `count(*) FILTER (WHERE ${badCast})`,
      `min(source_row) FILTER (WHERE ${badCast})`,
      column.nullable ? '0' : `count(*) FILTER (WHERE ${name} IS NULL)`,
      column.nullable ? 'NULL' : `min(source_row) FILTER (WHERE ${name} IS NULL)`,
    ];
  });
  const result = await connection.runAndReadAll(`SELECT count(*), ${measures.join(', ')} FROM raw`);
  const row = result.getRows()[0]!;
  if (Number(row[0]) === 0) throw new AppError('SCHEMA_MISMATCH', 'the file holds no data rows');
  const details: ErrorDetail[] = [];
  columns.forEach((column, index) => {
    const [badCount, firstBad, nullCount, firstNull] = row.slice(1 + index * 4, 5 + index * 4).map((value) => Number(value ?? 0));
    if (badCount! > 0) {
      details.push({ path: column.name, problem: `${badCount} value(s) are not ${column.type} (first at data row ${firstBad})` });
    }
    if (nullCount! > 0) {
      details.push({ path: column.name, problem: `${nullCount} empty value(s) in a column that may not be empty (first at data row ${firstNull})` });
    }
  });
  if (details.length > 0) throw new AppError('SCHEMA_MISMATCH', 'values do not match the registered column types', details);
}

/** The registered unique key must hold: the sandbox relies on it to prove one row per contributor per cell. */
async function checkUniqueKey(connection: Connection, uniqueKey: string[] | null) {
  if (!uniqueKey || uniqueKey.length === 0) return;
  const key = uniqueKey.map(sqlIdentifier).join(', ');
  const result = await connection.runAndReadAll(`SELECT count(*) FROM (SELECT ${key} FROM snapshot.data GROUP BY ${key} HAVING count(*) > 1)`);
  const duplicates = Number(result.getRows()[0]![0]);
  if (duplicates > 0) {
    throw new AppError('SCHEMA_MISMATCH', 'rows repeat the registered unique key', [
      { path: uniqueKey.join(', '), problem: `${duplicates} key value(s) appear on more than one row` },
    ]);
  }
}

async function recordVersion(
  db: Database,
  now: Date,
  version: Omit<DatasetVersionRow, 'id' | 'versionNumber' | 'catalogueVersion' | 'createdAt' | 'datasetId'> & {
    dataset: DatasetRow;
  },
): Promise<DatasetVersionRow> {
  // Two loads of one dataset may race for the next number; the unique index decides, and the loser retries.
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.transaction(async (tx) => {
        const [current] = await tx
          .select({ highest: max(datasetVersions.versionNumber) })
          .from(datasetVersions)
          .where(eq(datasetVersions.datasetId, version.dataset.id));
        const [row] = await tx
          .insert(datasetVersions)
          .values({
            id: `ver_${crypto.randomUUID()}`,
            datasetId: version.dataset.id,
            versionNumber: (current?.highest ?? 0) + 1,
            contentHash: version.contentHash,
            sourceHash: version.sourceHash,
            sourceFormat: version.sourceFormat,
            rowCount: version.rowCount,
            byteSize: version.byteSize,
            catalogueVersion: version.dataset.catalogueVersion,
            loadedBy: version.loadedBy,
            createdAt: now,
          })
          .returning();
        // The load is evidence for freshness and completeness in the supervision report (arts. 9, 27).
        await appendAuditEvents(tx, [{ type: 'dataset.version-loaded', actor: version.loadedBy ?? 'system', datasets: [version.dataset.id], details: { institution: version.dataset.institutionId, version: row!.versionNumber, contentHash: row!.contentHash, rowCount: row!.rowCount } }], now);
        return row!;
      });
    } catch (error) {
      if (attempt >= 3 || !isUniqueViolation(error)) throw error;
      const [sameSource] = await db
        .select({ versionNumber: datasetVersions.versionNumber })
        .from(datasetVersions)
        .where(and(eq(datasetVersions.datasetId, version.dataset.id), eq(datasetVersions.sourceHash, version.sourceHash)));
      if (sameSource) throw new AppError('VERSION_EXISTS', `this file was already loaded as version ${sameSource.versionNumber}`);
    }
  }
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: string; cause?: { code?: string } }).code ?? (error as { cause?: { code?: string } }).cause?.code;
  return code === '23505';
}
