/** Messages between a sandbox worker pool and its child processes (over the IPC channel). */

export type SandboxRequest = {
  type: 'run';
  jobId: string;
  /** Read-only snapshot files, each exposed to the query as a view named by its dataset id. */
  snapshots: Array<{ datasetId: string; path: string }>;
  queries: SandboxQuery[];
  limits: { memoryMb: number; threads: number; wallSeconds: number };
  /** Secrets the platform's own SQL reads with getvariable() (operators' SQL may not call it). Never stored with a job. */
  variables?: Record<string, string>;
};

/**
 * One query of a job, run in order. With `cellsOf`, the query reads the cells an earlier query returned (its
 * `__pds_cell` column) as the list parameter `$pds_cells` (contributor-sketch.ts, CELLS_PARAMETER).
 */
export type SandboxQuery = { name: string; sql: string; rowLimit: number; cellsOf?: string };

/** Rows are positional arrays: column names can repeat (two tables' `town`), positions cannot. */
export type QueryResult = { name: string; columns: string[]; rows: unknown[][]; truncated: boolean };

export type SandboxFailureKind =
  /** The operator's query failed (bad cast, division error, out of memory): charged to the operator. */
  | 'query_error'
  /** The wall-time limit was reached and the query interrupted. */
  | 'time_limit'
  /** The platform failed (snapshot missing, crash): not the operator's fault. */
  | 'system_error';

export type SandboxReply =
  | { type: 'ready' }
  /** Sent when the process takes a job, so a process that died before can be told from one that died during it. */
  | { type: 'started'; jobId: string }
  | { type: 'result'; jobId: string; ok: true; results: QueryResult[]; milliseconds: number }
  | {
      type: 'result';
      jobId: string;
      ok: false;
      kind: SandboxFailureKind;
      /** DuckDB's own text: can contain data values, so it is kept for regulators only, never shown to operators. */
      internalDetail: string;
    };
