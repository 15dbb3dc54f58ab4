import crypto from 'node:crypto';
import fs from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { and, desc, eq, inArray, lt } from 'drizzle-orm';
import { appendAuditEvents } from '../audit/audit-log.js';
import { findDataset, latestVersion, type DatasetRow, type DatasetVersionRow } from '../catalog/catalogue.js';
import type { Database } from '../db/connect.js';
import { datasetVersions, qualityChecks } from '../db/schema.js';
import type { SnapshotStore } from './snapshot-store.js';
import { hardenDuckDb } from '../duckdb/harden.js';
import { sqlIdentifier, sqlString } from '../duckdb/sql-literals.js';
import { ruleLabel, type QualityRule, type QualityRuleResult } from '../catalog/quality-rules.js';
import { updatePeriodDays } from '../catalog/registration.js';

export type QualityCheckRow = typeof qualityChecks.$inferSelect;

const residentIdWeights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const creditCodeWeights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const creditCodeAlphabet = '0123456789ABCDEFGHJKLMNPQRTUWXY';

/** GB 11643 in SQL: 17 digits, then the ISO 7064 MOD 11-2 check character. TRY_CAST keeps a bad row from failing the query. */
function residentIdValid(value: string): string {
  const sum = residentIdWeights.map((weight, index) => `TRY_CAST(substr(${value}, ${index + 1}, 1) AS INTEGER) * ${weight}`).join(' + ');
  return `(regexp_full_match(${value}, '[0-9]{17}[0-9X]') AND substr('10X98765432', ((${sum}) % 11)::INTEGER + 1, 1) = substr(${value}, 18, 1))`;
}

/** GB 32100 in SQL: 18 characters of the code alphabet, the last a MOD 31 check character. */
function creditCodeValid(value: string): string {
  const sum = creditCodeWeights.map((weight, index) => `(strpos('${creditCodeAlphabet}', substr(${value}, ${index + 1}, 1)) - 1) * ${weight}`).join(' + ');
  return `(regexp_full_match(${value}, '[0-9A-HJ-NPQRTUWXY]{18}') AND substr('${creditCodeAlphabet}', ((31 - (${sum}) % 31) % 31)::INTEGER + 1, 1) = substr(${value}, 18, 1))`;
}

/**
 * One query per rule returning (checked, violations). Reference rules read the other snapshot, attached as `ref<i>`;
 * completeness rules the dataset's previous version, attached as `previous`.
 */
function ruleQuery(rule: QualityRule, index: number, loadedAt: Date, updateFrequency: string): string | { note: string } {
  const table = 'version.data';
  if (rule.rule === 'unique') {
    const key = rule.columns.map(sqlIdentifier).join(', ');
    const present = rule.columns.map((name) => `${sqlIdentifier(name)} IS NOT NULL`).join(' AND ');
    // Rows beyond the first of each repeated key: the number a source would have to remove.
    return `SELECT (SELECT count(*) FROM ${table}), coalesce((SELECT sum(n - 1) FROM (SELECT count(*) AS n FROM ${table} WHERE ${present} GROUP BY ${key} HAVING count(*) > 1)), 0)`;
  }
  if (rule.rule === 'completeness') {
    // Keys compared NULL to NULL, so a row whose key column is empty is not counted as lost for being empty.
    const sameKey = rule.columns.map((name) => `v.${sqlIdentifier(name)} IS NOT DISTINCT FROM p.${sqlIdentifier(name)}`).join(' AND ');
    return `SELECT (SELECT count(*) FROM previous.data), (SELECT count(*) FROM previous.data p WHERE NOT EXISTS (SELECT 1 FROM ${table} v WHERE ${sameKey}))`;
  }
  const value = sqlIdentifier(rule.column);
  switch (rule.rule) {
    case 'not_null':
      return `SELECT count(*), count(*) FILTER (WHERE ${value} IS NULL) FROM ${table}`;
    case 'range': {
      const outside = [rule.min !== undefined ? `${value} < ${rule.min}` : null, rule.max !== undefined ? `${value} > ${rule.max}` : null].filter(Boolean).join(' OR ');
      return `SELECT count(${value}), count(*) FILTER (WHERE ${outside}) FROM ${table}`;
    }
    case 'pattern':
      return `SELECT count(${value}), count(*) FILTER (WHERE ${value} IS NOT NULL AND NOT regexp_full_match(${value}, ${sqlString(rule.pattern)})) FROM ${table}`;
    case 'resident_id':
      return `SELECT count(${value}), count(*) FILTER (WHERE ${value} IS NOT NULL AND NOT coalesce(${residentIdValid(value)}, false)) FROM ${table}`;
    case 'credit_code':
      return `SELECT count(${value}), count(*) FILTER (WHERE ${value} IS NOT NULL AND NOT coalesce(${creditCodeValid(value)}, false)) FROM ${table}`;
    case 'reference':
      return `SELECT count(d.${value}), count(*) FILTER (WHERE d.${value} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ref${index}.data r WHERE r.${sqlIdentifier(rule.references)} = d.${value})) FROM ${table} d`;
    case 'freshness': {
      const days = updatePeriodDays[updateFrequency];
      if (!days) return { note: 'a static dataset has no freshness' };
      const cutoff = new Date(loadedAt.getTime() - rule.periods * days * 86_400_000).toISOString().slice(0, 10);
      return `SELECT 1, CASE WHEN max(${value}) IS NULL OR max(${value}) < DATE '${cutoff}' THEN 1 ELSE 0 END FROM ${table}`;
    }
  }
}

/**
 * Runs a dataset's quality rules over one version inside DuckDB (measures arts. 9, 12) and records the result with
 * an audit leaf. Only counts leave DuckDB. The snapshot is opened read-only, like the sandbox opens it, and the
 * instance is locked before any rule runs; referenced datasets are attached at their latest version.
 */
export async function checkVersionQuality(
  deps: { db: Database; store: SnapshotStore; clock: () => Date },
  dataset: DatasetRow,
  version: DatasetVersionRow,
): Promise<QualityCheckRow | undefined> {
  const rules = dataset.qualityRules ?? [];
  if (rules.length === 0) return undefined;
  // Referenced datasets, at their latest version, with their columns (usually one or two: one lookup each).
  const references = new Map<string, { columns: Set<string>; contentHash: string | undefined }>();
  for (const rule of rules) {
    if (rule.rule !== 'reference' || references.has(rule.dataset)) continue;
    const [entry, latest] = await Promise.all([findDataset(deps.db, rule.dataset), latestVersion(deps.db, rule.dataset)]);
    references.set(rule.dataset, { columns: new Set(entry?.columns.map((column) => column.name)), contentHash: latest?.contentHash });
  }

  // The version before this one, for completeness rules: what a delivery should still hold.
  const previous = rules.some((rule) => rule.rule === 'completeness') ? await versionBefore(deps.db, dataset.id, version.versionNumber) : undefined;
  const previousSnapshot = previous ? deps.store.snapshotPath(dataset.id, previous.contentHash) : undefined;

  const results: QualityRuleResult[] = [];
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const connection = await instance.connect();
  try {
    await connection.run(`ATTACH ${sqlString(deps.store.snapshotPath(dataset.id, version.contentHash))} AS version (READ_ONLY)`);
    const runnable: Array<{ rule: QualityRule; query: string } | { rule: QualityRule; note: string }> = [];
    const previousAttached = previousSnapshot !== undefined && fs.existsSync(previousSnapshot);
    if (previousAttached) await connection.run(`ATTACH ${sqlString(previousSnapshot)} AS previous (READ_ONLY)`);
    for (const [index, rule] of rules.entries()) {
      if (rule.rule === 'completeness' && !previousAttached) {
        runnable.push({ rule, note: previous ? 'the previous version\'s snapshot is not in this domain store' : 'the first version has no earlier one to compare with' });
        continue;
      }
      if (rule.rule === 'reference') {
        const target = references.get(rule.dataset)!;
        const snapshot = target.contentHash ? deps.store.snapshotPath(rule.dataset, target.contentHash) : undefined;
        if (!snapshot) {
          runnable.push({ rule, note: `${rule.dataset} has no data yet` });
          continue;
        }
        if (!target.columns.has(rule.references) || !fs.existsSync(snapshot)) {
          runnable.push({ rule, note: !target.columns.has(rule.references) ? `${rule.dataset} has no column ${rule.references}` : `the snapshot of ${rule.dataset} is not in this domain store` });
          continue;
        }
        await connection.run(`ATTACH ${sqlString(snapshot)} AS ref${index} (READ_ONLY)`);
      }
      const query = ruleQuery(rule, index, version.createdAt, dataset.updateFrequency);
      runnable.push(typeof query === 'string' ? { rule, query } : { rule, note: query.note });
    }
    // Locked down like the sandbox before any rule runs (rule patterns come from the catalogue, not from us).
    await hardenDuckDb(connection);
    for (const item of runnable) {
      if ('note' in item) {
        results.push({ rule: item.rule.rule, label: ruleLabel(item.rule), status: 'not_checked', checked: 0, violations: 0, note: item.note });
        continue;
      }
      let row: unknown[];
      try {
        row = (await connection.runAndReadAll(item.query)).getRows()[0]!;
      } catch {
        // One rule that cannot run (a pattern RE2 refuses, say) does not stop the others. DuckDB's message is not
        // kept: it may quote a value from the data.
        results.push({ rule: item.rule.rule, label: ruleLabel(item.rule), status: 'not_checked', checked: 0, violations: 0, note: 'the rule could not run on this version' });
        continue;
      }
      const checked = Number(row[0] ?? 0);
      const violations = Number(row[1] ?? 0);
      const passed = violations <= item.rule.tolerance * checked;
      results.push({ rule: item.rule.rule, label: ruleLabel(item.rule), status: passed ? 'passed' : 'failed', checked, violations });
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
  }

  const { score, passed } = scoreResults(results);
  const now = deps.clock();
  return deps.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(qualityChecks)
      .values({ id: `qc_${crypto.randomUUID()}`, datasetId: dataset.id, versionId: version.id, versionNumber: version.versionNumber, score, passed, results, checkedAt: now })
      .onConflictDoUpdate({ target: qualityChecks.versionId, set: { score, passed, results, checkedAt: now } })
      .returning();
    await appendAuditEvents(
      tx,
      [
        {
          type: passed ? 'quality.checked' : 'quality.flagged',
          actor: 'system',
          datasets: [dataset.id],
          details: { institution: dataset.institutionId, version: version.versionNumber, score, passed, rules: results.map(({ label, status, checked, violations }) => ({ label, status, checked, violations })) },
        },
      ],
      now,
    );
    return row!;
  });
}

/**
 * The score is the mean, over rules that ran, of the share of checked rows that pass, from 0 to 100 with one
 * decimal; a version passes when every rule stays within its tolerance. No rule ran, no score (null is not 100).
 */
export function scoreResults(results: QualityRuleResult[]): { score: number | null; passed: boolean } {
  const ran = results.filter((result) => result.status !== 'not_checked');
  if (ran.length === 0) return { score: null, passed: true };
  const shares = ran.map((result) => (result.checked === 0 ? 1 : 1 - result.violations / result.checked));
  const score = Math.round((1000 * shares.reduce((sum, share) => sum + share, 0)) / shares.length) / 10;
  return { score, passed: ran.every((result) => result.status === 'passed') };
}

/** The version loaded just before the given one, if any. */
async function versionBefore(db: Database, datasetId: string, versionNumber: number): Promise<DatasetVersionRow | undefined> {
  const [row] = await db
    .select()
    .from(datasetVersions)
    .where(and(eq(datasetVersions.datasetId, datasetId), lt(datasetVersions.versionNumber, versionNumber)))
    .orderBy(desc(datasetVersions.versionNumber))
    .limit(1);
  return row;
}

/** The latest check of each dataset's latest version, for the catalogue, the source's flags and the supervision report. */
export async function latestQualityChecks(db: Database, datasetIds?: string[]): Promise<Map<string, QualityCheckRow>> {
  const rows = await db
    .select()
    .from(qualityChecks)
    .where(datasetIds ? inArray(qualityChecks.datasetId, datasetIds) : undefined)
    .orderBy(desc(qualityChecks.versionNumber));
  const latest = new Map<string, QualityCheckRow>();
  for (const row of rows) if (!latest.has(row.datasetId)) latest.set(row.datasetId, row);
  return latest;
}

export async function qualityHistory(db: Database, datasetId: string): Promise<QualityCheckRow[]> {
  return db.select().from(qualityChecks).where(eq(qualityChecks.datasetId, datasetId)).orderBy(desc(qualityChecks.versionNumber));
}
