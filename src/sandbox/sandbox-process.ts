/**
 * A sandbox worker process. It holds no secrets (its environment is scrubbed by the pool) and runs one job at a
 * time: a fresh in-memory DuckDB, the job's snapshots attached read-only and exposed as views, then hardened
 * and locked before the first line of the operator's SQL runs. Nothing but per-query results leaves it.
 */
import { DuckDBInstance, LIST, listValue, StatementType, UBIGINT } from '@duckdb/node-api';
import { CELL_COLUMN, CELLS_PARAMETER } from '../privacy/contributor-sketch.js';
import { hardenDuckDb } from '../duckdb/harden.js';
import type { QueryResult, SandboxReply, SandboxRequest } from './sandbox-protocol.js';
import { sqlString } from '../duckdb/sql-literals.js';
import { numericType, toPlainValues } from '../duckdb/plain-values.js';

const send = (message: SandboxReply) => process.send?.(message);

/**
 * Each job gets a DuckDB instance of its own, never reused. It is opened while the process waits for the job
 * (creating one costs ~12 ms, a tenth of a small job's path) and gets the job's limits before it is locked.
 */
const freshInstance = () => {
  const created = DuckDBInstance.create(':memory:', { max_temp_directory_size: '0B' });
  // A failure surfaces when the next job takes the instance; until then it must not count as unhandled.
  created.catch(() => undefined);
  return created;
};
let nextInstance = freshInstance();

async function run(request: SandboxRequest): Promise<SandboxReply> {
  send({ type: 'started', jobId: request.jobId });
  const started = performance.now();
  let instance: DuckDBInstance | undefined;
  let stage: 'setup' | 'query' = 'setup';
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  try {
    instance = await nextInstance;
    const connection = await instance.connect();
    await connection.run(`SET threads = ${Number(request.limits.threads)}`);
    await connection.run(`SET memory_limit = '${Number(request.limits.memoryMb)}MB'`);
    for (const [index, snapshot] of request.snapshots.entries()) {
      await connection.run(`ATTACH ${sqlString(snapshot.path)} AS snapshot_${index} (READ_ONLY)`);
      await connection.run(`CREATE VIEW "${snapshot.datasetId.replaceAll('"', '')}" AS SELECT * FROM snapshot_${index}.data`);
    }
    for (const [name, value] of Object.entries(request.variables ?? {})) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error('bad variable name');
      await connection.run(`SET VARIABLE ${name} = ${sqlString(value)}`);
    }
    await hardenDuckDb(connection);
    stage = 'query';
    timer = setTimeout(() => {
      timedOut = true;
      connection.interrupt();
    }, request.limits.wallSeconds * 1000);
    const results: QueryResult[] = [];
    for (const query of request.queries) {
      const prepared = await connection.prepare(query.sql);
      // Defence in depth: the analyser already allows only SELECT; prepare() refuses several statements.
      if (prepared.statementType !== StatementType.SELECT) throw new Error('only SELECT statements run in the sandbox');
      if (query.cellsOf) prepared.bind({ [CELLS_PARAMETER]: listValue(cellsOf(results, query.cellsOf)) }, { [CELLS_PARAMETER]: LIST(UBIGINT) });
      const reader = await prepared.streamAndReadUntil(query.rowLimit);
      const columns = reader.columnNames();
      const types = reader.columnTypes().map(String);
      const numeric = types.map((type) => numericType.test(type));
      const rows = reader.getRowsJson().slice(0, query.rowLimit).map((row) => toPlainValues(row, numeric));
      results.push({ name: query.name, columns, rows, truncated: reader.currentRowCount >= query.rowLimit && !reader.done });
    }
    clearTimeout(timer);
    return { type: 'result', jobId: request.jobId, ok: true, results, milliseconds: performance.now() - started };
  } catch (error) {
    if (timer) clearTimeout(timer);
    const detail = error instanceof Error ? error.message : String(error);
    const kind = timedOut ? 'time_limit' : stage === 'query' && !(error instanceof PlatformFault) ? 'query_error' : 'system_error';
    return { type: 'result', jobId: request.jobId, ok: false, kind, internalDetail: detail };
  } finally {
    instance?.closeSync();
    nextInstance = freshInstance();
  }
}

/** A fault of the platform's own request while queries run: a system failure, not the operator's. */
class PlatformFault extends Error {}

/** The cell hashes an earlier query returned, for a follow-up query's `$pds_cells` (unsigned 64-bit integers). */
function cellsOf(results: QueryResult[], name: string): bigint[] {
  const source = results.find((result) => result.name === name);
  const at = source ? source.columns.indexOf(CELL_COLUMN) : -1;
  if (!source || at < 0) throw new PlatformFault(`no cells from ${name} for a follow-up query`);
  return source.rows.map((row) => BigInt(String(row[at])));
}

process.on('message', (message: SandboxRequest) => {
  if (message?.type !== 'run') return;
  void run(message).then(send);
});
send({ type: 'ready' });
