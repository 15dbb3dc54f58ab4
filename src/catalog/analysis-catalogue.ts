import { sql } from 'drizzle-orm';
import type { CatalogueDataset } from '../analysis/analyse-query.js';
import type { Database } from '../db/connect.js';
import { datasets, datasetVersions } from '../db/schema.js';

export type AnalysisCatalogue = { datasets: Map<string, CatalogueDataset>; latestVersions: Map<string, string> };

/**
 * What the analyser needs of the catalogue (grades, classes, privacy units, latest snapshot per dataset), kept in
 * memory and re-read only when the catalogue changed: one small query checks that. Several API processes can
 * share a database, so the check is against the database, not an in-process flag.
 */
export function createAnalysisCatalogue(db: Database) {
  let cached: { stamp: string; value: AnalysisCatalogue } | undefined;
  return async function current(): Promise<AnalysisCatalogue> {
    const [row] = await db.execute<{ stamp: string }>(
      sql`SELECT concat((SELECT count(*) FROM ${datasets}), '/', (SELECT max(${datasets.updatedAt}) FROM ${datasets}), '/', (SELECT count(*) FROM ${datasetVersions})) AS stamp`,
    ).then((result) => (Array.isArray(result) ? result : (result as { rows: Array<{ stamp: string }> }).rows));
    const stamp = String(row?.stamp ?? '');
    if (cached?.stamp === stamp) return cached.value;
    const entries = await db.select().from(datasets);
    const versions = await db
      .select({ datasetId: datasetVersions.datasetId, versionNumber: datasetVersions.versionNumber, contentHash: datasetVersions.contentHash })
      .from(datasetVersions);
    const latestVersions = new Map<string, string>();
    const highest = new Map<string, number>();
    for (const version of versions) {
      if (version.versionNumber > (highest.get(version.datasetId) ?? 0)) {
        highest.set(version.datasetId, version.versionNumber);
        latestVersions.set(version.datasetId, version.contentHash);
      }
    }
    const value: AnalysisCatalogue = {
      datasets: new Map(
        entries.map((entry) => [
          entry.id,
          { id: entry.id, grade: entry.grade, openData: entry.openData, privacyUnit: entry.privacyUnit, uniqueKey: entry.uniqueKey, columns: entry.columns.map((column) => ({ name: column.name, class: column.class })) },
        ]),
      ),
      latestVersions,
    };
    cached = { stamp, value };
    return value;
  };
}
