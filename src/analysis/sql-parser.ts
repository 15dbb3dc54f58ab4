import { DuckDBInstance, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { hardenDuckDb } from '../duckdb/harden.js';

/**
 * DuckDB's own parser, exposed as functions: SQL text → AST (json_serialize_sql) and AST → SQL text
 * (json_deserialize_sql). The instance holds no data and is locked down; it only parses.
 * Calls are serialised through one connection: each takes well under a millisecond.
 */
export type ParseOutcome =
  | { ok: true; statements: Array<{ node: AstNode }> }
  | { ok: false; kind: 'syntax' | 'not_select'; message: string };

// The AST is DuckDB's JSON serialisation; its shape is documented by DuckDB, not by us, so it stays loose.
export type AstNode = Record<string, any>;

/**
 * DuckDB marks "no position" with the largest 64-bit integer, which JSON.parse rounds up past the 64-bit
 * range; written back unchanged it would not deserialize. Positions do not affect the SQL, so those become 0.
 */
function withoutUnknownPositions(key: string, value: unknown): unknown {
  return key === 'query_location' && typeof value === 'number' && !Number.isSafeInteger(value) ? 0 : value;
}

export async function createSqlParser() {
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const connection = await instance.connect();
  await hardenDuckDb(connection);
  const serialize: DuckDBPreparedStatement = await connection.prepare('SELECT json_serialize_sql($1::VARCHAR)');
  const deserialize: DuckDBPreparedStatement = await connection.prepare('SELECT json_deserialize_sql($1::JSON)');
  let queue: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work, work);
    queue = next.catch(() => undefined);
    return next;
  };

  return {
    parse(sql: string): Promise<ParseOutcome> {
      return exclusive(async () => {
        serialize.bindVarchar(1, sql);
        const reader = await serialize.runAndReadAll();
        const document = JSON.parse(String(reader.getRows()[0]![0])) as {
          error?: boolean;
          error_type?: string;
          error_message?: string;
          statements?: Array<{ node: AstNode }>;
        };
        if (document.error) {
          const message = document.error_message ?? 'the SQL could not be parsed';
          return /only select statements/i.test(message)
            ? { ok: false, kind: 'not_select', message: 'only SELECT statements are allowed' }
            : { ok: false, kind: 'syntax', message: message.replace(/^Parser Error:\s*/i, '') };
        }
        return { ok: true, statements: document.statements ?? [] };
      });
    },
    /** Turns an (edited) AST back into one SELECT statement. */
    toSql(node: AstNode): Promise<string> {
      return exclusive(async () => {
        deserialize.bindVarchar(1, JSON.stringify({ error: false, statements: [{ node, named_param_map: [] }] }, withoutUnknownPositions));
        const reader = await deserialize.runAndReadAll();
        return String(reader.getRows()[0]![0]);
      });
    },
    close(): void {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

export type SqlParser = Awaited<ReturnType<typeof createSqlParser>>;
