import { asc, desc, eq } from 'drizzle-orm';
import type { Database } from '../db/connect.js';
import { datasets, datasetVersions, institutions, qualityChecks } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { DatasetRegistration } from './registration.js';
import { recordFirstRevision } from './catalogue-revisions.js';
import { updatePeriodDays } from './registration.js';

export type DatasetRow = typeof datasets.$inferSelect;
export type DatasetVersionRow = typeof datasetVersions.$inferSelect;

/** The catalogue's public face: metadata, columns with classes, versions with hashes. Never rows. */
export type CatalogueEntry = ReturnType<typeof toCatalogueEntry>;

/** A version's quality check in brief: the score (null when no rule ran) and whether every rule passed. */
export type VersionQuality = { score: number | null; passed: boolean };

export function toCatalogueEntry(dataset: DatasetRow, institution: { name: string; nameZh: string }, versions: DatasetVersionRow[], quality: Map<string, VersionQuality> = new Map(), now = new Date()) {
  // Art. 9: data is kept up to date at its declared frequency; an entry whose next delivery is late shows as overdue.
  const days = updatePeriodDays[dataset.updateFrequency];
  const lastLoad = versions.at(-1)?.createdAt;
  const nextUpdateDue = days && lastLoad ? new Date(lastLoad.getTime() + days * 86_400_000) : null;
  return {
    id: dataset.id,
    title: dataset.title,
    titleZh: dataset.titleZh,
    description: dataset.description,
    descriptionZh: dataset.descriptionZh ?? null,
    institution: { id: dataset.institutionId, name: institution.name, nameZh: institution.nameZh },
    category: dataset.category,
    grade: dataset.grade,
    openData: dataset.openData,
    sharingType: dataset.sharingType,
    sharingBasis: dataset.sharingBasis,
    legalBasis: dataset.legalBasis,
    updateFrequency: dataset.updateFrequency,
    privacyUnit: dataset.privacyUnit,
    uniqueKey: dataset.uniqueKey ?? null,
    catalogueVersion: dataset.catalogueVersion,
    columns: dataset.columns,
    qualityRules: dataset.qualityRules,
    versions: versions.map((version) => ({
      id: version.id,
      versionNumber: version.versionNumber,
      contentHash: version.contentHash,
      sourceHash: version.sourceHash,
      sourceFormat: version.sourceFormat,
      rowCount: version.rowCount,
      byteSize: version.byteSize,
      catalogueVersion: version.catalogueVersion,
      createdAt: version.createdAt.toISOString(),
      // Arts. 10, 12: the quality state is part of the catalogue, visible to every user (a score, never a row).
      quality: quality.get(version.id) ?? null,
    })),
    latestVersion: versions.at(-1)?.contentHash ?? null,
    nextUpdateDue: nextUpdateDue?.toISOString() ?? null,
    updateOverdue: Boolean(days) && (!nextUpdateDue || nextUpdateDue < now),
    createdAt: dataset.createdAt.toISOString(),
    updatedAt: dataset.updatedAt.toISOString(),
  };
}

export async function listCatalogue(db: Database, now = new Date()): Promise<CatalogueEntry[]> {
  const rows = await db
    .select({ dataset: datasets, institution: { name: institutions.name, nameZh: institutions.nameZh } })
    .from(datasets)
    .innerJoin(institutions, eq(institutions.id, datasets.institutionId))
    .orderBy(asc(datasets.id));
  const versions = await db.select().from(datasetVersions).orderBy(asc(datasetVersions.versionNumber));
  const quality = await versionQuality(db);
  const byDataset = new Map<string, DatasetVersionRow[]>();
  for (const version of versions) byDataset.set(version.datasetId, [...(byDataset.get(version.datasetId) ?? []), version]);
  return rows.map((row) => toCatalogueEntry(row.dataset, row.institution, byDataset.get(row.dataset.id) ?? [], quality, now));
}

export async function findDataset(db: Database, id: string): Promise<DatasetRow | undefined> {
  const [row] = await db.select().from(datasets).where(eq(datasets.id, id));
  return row;
}

export async function getCatalogueEntry(db: Database, id: string, now = new Date()): Promise<CatalogueEntry> {
  const [row] = await db
    .select({ dataset: datasets, institution: { name: institutions.name, nameZh: institutions.nameZh } })
    .from(datasets)
    .innerJoin(institutions, eq(institutions.id, datasets.institutionId))
    .where(eq(datasets.id, id));
  if (!row) throw notFound('dataset');
  const versions = await db
    .select()
    .from(datasetVersions)
    .where(eq(datasetVersions.datasetId, id))
    .orderBy(asc(datasetVersions.versionNumber));
  return toCatalogueEntry(row.dataset, row.institution, versions, await versionQuality(db, id), now);
}

async function versionQuality(db: Database, datasetId?: string): Promise<Map<string, VersionQuality>> {
  const rows = await db
    .select({ versionId: qualityChecks.versionId, score: qualityChecks.score, passed: qualityChecks.passed })
    .from(qualityChecks)
    .where(datasetId ? eq(qualityChecks.datasetId, datasetId) : undefined);
  return new Map(rows.map((row) => [row.versionId, { score: row.score, passed: row.passed }]));
}

export async function latestVersion(db: Database, datasetId: string): Promise<DatasetVersionRow | undefined> {
  const [row] = await db
    .select()
    .from(datasetVersions)
    .where(eq(datasetVersions.datasetId, datasetId))
    .orderBy(desc(datasetVersions.versionNumber))
    .limit(1);
  return row;
}

/** Registers an entry as revision 1 of its catalogue history, with an audit leaf, in one transaction. */
export async function registerDataset(db: Database, registration: DatasetRegistration, institutionId: string, registeredBy: string, now: Date): Promise<DatasetRow> {
  return db.transaction((tx) => insertDataset(tx as never, registration, institutionId, registeredBy, now));
}

/**
 * The same in the caller's transaction; `registrationId` names the filed registration (art. 8) the entry came
 * with, none for a direct registration.
 */
export async function insertDataset(
  tx: Parameters<typeof recordFirstRevision>[0],
  registration: DatasetRegistration,
  institutionId: string,
  registeredBy: string,
  now: Date,
  registrationId?: string,
): Promise<DatasetRow> {
  const inserted = await tx
    .insert(datasets)
    .values({ ...registration, institutionId, registeredBy, descriptionZh: registration.descriptionZh ?? null, sharingBasis: registration.sharingBasis ?? null, uniqueKey: registration.uniqueKey ?? null, createdAt: now, updatedAt: now })
    .onConflictDoNothing()
    .returning();
  if (inserted.length === 0) throw new AppError('DATASET_EXISTS', `a dataset with id ${registration.id} is already registered`);
  await recordFirstRevision(tx, inserted[0]!, registeredBy, now, registrationId);
  return inserted[0]!;
}
