import crypto from 'node:crypto';
import { DuckDBInstance } from '@duckdb/node-api';
import { hardenDuckDb } from '../duckdb/harden.js';
import { sqlIdentifier, sqlString } from '../duckdb/sql-literals.js';
import { claimDomain, normalizeClaim, unitSeparator } from './client/claim-encoding.js';
import type { VerificationSpec } from './product-spec.js';

/**
 * What a verification product answers from: for each subject, a keyed hash of its identifier, the SHA-256
 * digests of its claim columns and whether it meets the product's condition — computed inside DuckDB from the
 * snapshot, so raw values never enter JavaScript. Built once per product and dataset version, kept in memory.
 */
export type SubjectRecord = { digests: Buffer[]; meetsCondition: boolean };
export type VerificationIndex = { productId: string; datasetVersion: string; subjects: Map<string, SubjectRecord>; builtInMs: number };

const normalized = (column: string) => `trim(nfc_normalize(CAST(${sqlIdentifier(column)} AS VARCHAR)))`;

/** The keyed subject hash, as DuckDB computes it below; also what quotas and metering store. */
export function subjectKey(secret: string, values: string[]): string {
  return crypto.hash('sha256', secret + values.map(normalizeClaim).join(unitSeparator), 'hex').slice(0, 32);
}

/**
 * Whether DuckDB refused to evaluate the product's SQL over this data: a value it could not convert or compute
 * (`town::DATE`, `sqrt` of a negative), or an expression it could not bind. These are the definition's fault and
 * hold for every call until the definition or the data changes; anything else (memory, a missing file) is not.
 */
export function isEvaluationFailure(error: unknown): boolean {
  return error instanceof Error && /^(Conversion|Invalid Input|Out of Range|Binder|Not implemented) Error\b/.test(error.message);
}

export async function buildVerificationIndex(options: {
  productId: string;
  spec: VerificationSpec;
  snapshotPath: string;
  datasetVersion: string;
  subjectSecret: string;
}): Promise<VerificationIndex> {
  const started = performance.now();
  const { spec } = options;
  const instance = await DuckDBInstance.create(':memory:', { threads: '2', memory_limit: '2GB', max_temp_directory_size: '0B' });
  try {
    const connection = await instance.connect();
    await connection.run(`ATTACH ${sqlString(options.snapshotPath)} AS snapshot (READ_ONLY)`);
    await connection.run(`CREATE VIEW ${sqlIdentifier(spec.dataset)} AS SELECT * FROM snapshot.data`);
    await hardenDuckDb(connection);

    const subject = `left(sha256(${sqlString(options.subjectSecret)} || ${spec.subject.map((bound) => normalized(bound.column)).join(` || chr(31) || `)}), 32)`;
    const digests = spec.claims.map(
      (claim, index) =>
        `sha256(${sqlString([claimDomain, options.productId, claim.input, ''].join(unitSeparator))} || ${normalized(claim.column)}) AS claim_${index}`,
    );
    const table = sqlIdentifier(spec.dataset);
    let sql: string;
    if (spec.condition) {
      const filters = [spec.condition.rows ? `(${spec.condition.rows})` : 'true'];
      if (spec.condition.recentMonths) {
        const column = sqlIdentifier(spec.condition.recentMonths.column);
        filters.push(`${column} > (SELECT max(${column}) FROM ${table}) - INTERVAL ${spec.condition.recentMonths.months} MONTH`);
      }
      const condition = `SELECT ${subject} AS subject, coalesce(bool_and(${spec.condition.require}), false) AND count(*) >= ${spec.condition.minRows} AS meets
        FROM ${table} WHERE ${filters.join(' AND ')} GROUP BY ALL`;
      sql =
        spec.claims.length > 0
          ? `WITH claims AS (SELECT ${subject} AS subject, ${digests.join(', ')} FROM ${table}), met AS (${condition})
             SELECT claims.*, coalesce(met.meets, false) FROM claims LEFT JOIN met USING (subject)`
          : condition;
    } else {
      sql = `SELECT ${subject} AS subject, ${digests.join(', ')}, true FROM ${table}`;
    }
    const reader = await connection.runAndReadAll(sql);
    const subjects = new Map<string, SubjectRecord>();
    for (const row of reader.getRows()) {
      const key = row[0] as string | null;
      if (key === null) continue;
      const claimDigests = spec.claims.map((_, index) => {
        const hex = row[1 + index] as string | null;
        // A missing claim value can never match: an all-zero digest is not the digest of any string.
        return hex === null ? Buffer.alloc(32) : Buffer.from(hex, 'hex');
      });
      subjects.set(key, { digests: claimDigests, meetsCondition: row[1 + spec.claims.length] === true });
    }
    return { productId: options.productId, datasetVersion: options.datasetVersion, subjects, builtInMs: performance.now() - started };
  } finally {
    instance.closeSync();
  }
}
