import { eq, inArray } from 'drizzle-orm';
import type { CatalogueDataset } from '../analysis/analyse-query.js';
import { canonicalSha256 } from '../audit/canonical-json.js';
import type { Database } from '../db/connect.js';
import { catalogueGeneration, datasets, datasetVersions } from '../db/schema.js';

export type AnalysisCatalogue = { datasets: Map<string, CatalogueDataset>; latestVersions: Map<string, string> };

/**
 * What the analyser needs of the catalogue (grades, classes, privacy units, latest snapshot per dataset), kept in
 * memory and re-read only when the catalogue changed: one primary-key read of a trigger-kept counter checks that
 * (it replaced counting both tables, which took a quarter of a job's analysis time on PGlite). Several API
 * processes can share a database, so the check is against the database, not an in-process flag. Callers that
 * arrive while a check is running share it (product calls ask on every request).
 */
export function createAnalysisCatalogue(db: Database) {
  let cached: { stamp: string; value: AnalysisCatalogue; checkedAt: number } | undefined;
  let inFlight: Promise<AnalysisCatalogue> | undefined;
  /**
   * `maxAgeMilliseconds` lets a hot path accept a view checked that recently (product calls: a new dataset
   * version reaches them within a second); jobs and loads always check.
   */
  return function current(options: { maxAgeMilliseconds?: number } = {}): Promise<AnalysisCatalogue> {
    if (cached && options.maxAgeMilliseconds && performance.now() - cached.checkedAt < options.maxAgeMilliseconds) return Promise.resolve(cached.value);
    inFlight ??= check().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  async function check(): Promise<AnalysisCatalogue> {
    // Triggers bump the generation on any change to either table (migration 0010), in the changing transaction.
    const [row] = await db.select({ generation: catalogueGeneration.generation }).from(catalogueGeneration).where(eq(catalogueGeneration.id, 1));
    const stamp = String(row?.generation ?? '');
    const checkedAt = performance.now();
    if (cached?.stamp === stamp) {
      cached.checkedAt = checkedAt;
      return cached.value;
    }
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
      datasets: new Map(entries.map((entry) => [entry.id, analysedEntryOf(entry)])),
      latestVersions,
    };
    cached = { stamp, value, checkedAt };
    return value;
  }
}

/** What of a catalogue entry decides how a query over it is analysed and checked: grade, openness, privacy unit, classes. */
export const analysedEntryOf = (entry: typeof datasets.$inferSelect): CatalogueDataset => ({
  id: entry.id,
  grade: entry.grade,
  openData: entry.openData,
  privacyUnit: entry.privacyUnit,
  uniqueKey: entry.uniqueKey,
  columns: entry.columns.map((column) => ({ name: column.name, class: column.class, type: column.type })),
});

/**
 * A job or product records this per dataset when checked: another value later means it was checked under another
 * entry. Kept per entry object: the catalogue's objects live until it changes, and product calls ask on every call.
 */
export function analysedEntryHash(entry: CatalogueDataset): string {
  let hash = entryHashes.get(entry);
  if (hash === undefined) entryHashes.set(entry, (hash = canonicalSha256(entry)));
  return hash;
}
const entryHashes = new WeakMap<CatalogueDataset, string>();

/** The datasets of `recorded` whose entry in this catalogue (already read) is no longer the one recorded. */
export const changedEntriesIn = (catalogue: AnalysisCatalogue['datasets'], recorded: Record<string, string> | null): string[] =>
  Object.entries(recorded ?? {})
    .filter(([id, hash]) => !catalogue.has(id) || analysedEntryHash(catalogue.get(id)!) !== hash)
    .map(([id]) => id);

/**
 * The datasets whose entry, as analysis reads it, is no longer the one a job was accepted under (a published
 * catalogue revision regraded it, closed its open data or reclassified a column). With `lock`, the rows stay
 * share-locked until the transaction ends, so a revision being published comes wholly before or after. Read from
 * the rows, not the cached catalogue: a release must not go on a view up to a second old.
 */
export async function changedAnalysedEntries(db: Pick<Database, 'select'>, accepted: Record<string, string>, options: { lock?: boolean } = {}): Promise<string[]> {
  const ids = Object.keys(accepted);
  if (ids.length === 0) return [];
  const query = db.select().from(datasets).where(inArray(datasets.id, ids));
  const current = new Map((await (options.lock ? query.for('share') : query)).map((entry) => [entry.id, analysedEntryHash(analysedEntryOf(entry))]));
  return ids.filter((id) => current.get(id) !== accepted[id]);
}
