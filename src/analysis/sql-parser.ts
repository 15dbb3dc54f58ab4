import crypto from 'node:crypto';
import { DuckDBInstance, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { hardenDuckDb } from '../duckdb/harden.js';
import { oneAtATime } from '../duckdb/one-at-a-time.js';

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

/**
 * A DOUBLE constant with an integral value (`1e12`) comes out of JSON.parse as a plain integer, and
 * JSON.stringify writes it without a decimal point, which DuckDB then refuses as "expected double, got uint".
 * Such values are written through a marker (with a per-process nonce, so no string in a query can forge it)
 * and given their decimal point in the text.
 */
const doubleMarker = `pds-double-${crypto.randomUUID()}:`;
function astReplacer(this: unknown, key: string, value: unknown): unknown {
  const holder = this as { type?: { id?: string } } | undefined;
  // Large values print with an exponent (1e+308), which the JSON reader already takes as a real number.
  if (key === 'value' && typeof value === 'number' && Number.isInteger(value) && !String(value).includes('e') && (holder?.type?.id === 'DOUBLE' || holder?.type?.id === 'FLOAT')) {
    return `${doubleMarker}${value}`;
  }
  return withoutUnknownPositions(key, value);
}
const markedDouble = new RegExp(`"${doubleMarker}(-?[0-9]+)"`, 'g');

type SerializedSql = { error?: boolean; error_type?: string; error_message?: string; statements?: Array<{ node: AstNode }> };

/**
 * json_serialize_sql writes a constant that overflows DOUBLE (`1e400`) as a bare Infinity, which is not JSON;
 * nothing else it writes fails to parse. Such a query is the operator's mistake, refused as a syntax error, and
 * undefined says so here rather than a SyntaxError reaching the caller as a 500.
 */
function readSerialized(text: string): SerializedSql | undefined {
  try {
    return JSON.parse(text) as SerializedSql;
  } catch {
    return undefined;
  }
}

export async function createSqlParser() {
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const connection = await instance.connect();
  await hardenDuckDb(connection);
  const serialize: DuckDBPreparedStatement = await connection.prepare('SELECT json_serialize_sql($1::VARCHAR)');
  const deserialize: DuckDBPreparedStatement = await connection.prepare('SELECT json_deserialize_sql($1::JSON)');
  const exclusive = oneAtATime();

  return {
    parse(sql: string): Promise<ParseOutcome> {
      return exclusive(async () => {
        serialize.bindVarchar(1, sql);
        const reader = await serialize.runAndReadAll();
        const document = readSerialized(String(reader.getRows()[0]![0]));
        if (!document) return { ok: false, kind: 'syntax', message: 'a numeric constant is outside the range of DOUBLE' };
        if (document.error) {
          const message = document.error_message ?? 'the SQL could not be parsed';
          return /only select statements/i.test(message)
            ? { ok: false, kind: 'not_select', message: 'only SELECT statements are allowed' }
            : { ok: false, kind: 'syntax', message: message.replace(/^Parser Error:\s*/i, '') };
        }
        const statements = document.statements ?? [];
        for (const statement of statements) foldIdentifierCase(statement.node);
        return { ok: true, statements };
      });
    },
    /** Turns an (edited) AST back into one SELECT statement. */
    toSql(node: AstNode): Promise<string> {
      return exclusive(async () => {
        const text = JSON.stringify({ error: false, statements: [{ node, named_param_map: [] }] }, astReplacer).replace(markedDouble, '$1.0');
        deserialize.bindVarchar(1, text);
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

/**
 * Folds every identifier of a parsed statement to lower case, in place: column references, table names, CTE
 * names, aliases and column aliases. DuckDB matches identifiers without regard to case, quoted ones too, and of
 * two columns whose names differ only in case it binds the first; the analyser matched exactly. So
 * `SELECT A … FROM (SELECT kwh AS a, town AS A …) GROUP BY A` was analysed as grouping by town while DuckDB
 * grouped by kwh, and the keys of suppressed cells listed single readings; a CTE `Enterprises` shadowed the
 * table `enterprises` for DuckDB but not for the analyser. Folded, the analyser and the engine (which runs this
 * same AST) see the same names, and names that differed only in case become one name, refused as ambiguous.
 * Constants are data, not names, and are left as they are; so are function names (the analyser folds those).
 */
export function foldIdentifierCase(node: unknown): void {
  if (Array.isArray(node)) {
    for (const entry of node) foldIdentifierCase(entry);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const record = node as AstNode;
  const lower = (value: unknown) => (typeof value === 'string' ? value.toLowerCase() : value);
  if (typeof record.alias === 'string') record.alias = record.alias.toLowerCase();
  for (const field of ['table_name', 'schema_name', 'catalog_name', 'relation_name'] as const) {
    if (typeof record[field] === 'string') record[field] = record[field].toLowerCase();
  }
  for (const field of ['column_names', 'column_name_alias', 'using_columns'] as const) {
    if (Array.isArray(record[field])) record[field] = record[field].map(lower);
  }
  for (const entry of record.cte_map?.map ?? []) {
    entry.key = lower(entry.key);
    if (Array.isArray(entry.value?.aliases)) entry.value.aliases = entry.value.aliases.map(lower);
  }
  if (record.class === 'CONSTANT') return;
  for (const value of Object.values(record)) if (value !== null && typeof value === 'object') foldIdentifierCase(value);
}
