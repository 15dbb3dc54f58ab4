import crypto from 'node:crypto';
import { and, asc, desc, eq, gt, max, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import { canonicalJson } from '../audit/canonical-json.js';
import type { Database } from '../db/connect.js';
import { catalogueRevisions, datasets, datasetVersions } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import type { Platform } from '../platform.js';
import { latestVersion, type DatasetRow } from './catalogue.js';
import { classificationRefusal, snapshotIdentifierProblems } from '../domain-store/personal-identifiers.js';
import { datasetRegistrationSchema, type DatasetRegistration } from './registration.js';
import { issueDetails } from '../errors/validation-error.js';

/**
 * The catalogue's version history (measures art. 10): every change to an entry — source, scope, type, sharing
 * type, security level, columns, quality rules — is a revision with a readable diff. The source institution
 * proposes; the data centre or the committee reviews; only a published revision changes the entry. Revision 1 is
 * the registration itself.
 */
export type RevisionRow = typeof catalogueRevisions.$inferSelect;
type Executor = Pick<Database, 'insert' | 'select' | 'update' | 'execute'>;

/** Fields an institution may change; the id and the source institution never change (a new dataset instead). */
const editableFields = ['title', 'titleZh', 'description', 'descriptionZh', 'category', 'grade', 'openData', 'sharingType', 'sharingBasis', 'legalBasis', 'updateFrequency', 'privacyUnit', 'uniqueKey', 'columns', 'qualityRules'] as const;
type EditableField = (typeof editableFields)[number];

export const catalogueChangeSchema = z
  .strictObject({
    note: z.string().min(1).max(2000),
    changes: z.partialRecord(z.enum(editableFields), z.unknown()).refine((changes) => Object.keys(changes).length > 0, 'name at least one field to change'),
  });

export const catalogueReviewSchema = z
  .strictObject({ decision: z.enum(['publish', 'reject']), reason: z.string().min(1).max(2000).optional() })
  .refine((input) => input.decision === 'publish' || input.reason, { message: 'a rejection gives its reason', path: ['reason'] });

export type DiffEntry = { field: string; from: unknown; to: unknown };

export function entryOf(dataset: Pick<DatasetRow, EditableField>): Record<EditableField, unknown> {
  return Object.fromEntries(editableFields.map((field) => [field, dataset[field] ?? null])) as Record<EditableField, unknown>;
}

/**
 * A readable diff: one line per changed field, and for columns one line per added, removed or changed column
 * (naming the attributes that changed), so a reviewer sees "columns.kwh.class: sensitive → attribute".
 */
export function diffEntries(before: Record<string, unknown> | null, after: Record<string, unknown>): DiffEntry[] {
  const diff: DiffEntry[] = [];
  for (const field of editableFields) {
    const from = before?.[field] ?? null;
    const to = after[field] ?? null;
    if (field === 'columns' && Array.isArray(from) && Array.isArray(to)) {
      const byName = (list: Array<Record<string, unknown>>) => new Map(list.map((column) => [String(column.name), column]));
      const old = byName(from as Array<Record<string, unknown>>);
      const next = byName(to as Array<Record<string, unknown>>);
      for (const [name, column] of next) {
        const previous = old.get(name);
        if (!previous) diff.push({ field: `columns.${name}`, from: null, to: column });
        else for (const key of new Set([...Object.keys(previous), ...Object.keys(column)])) {
          if (canonicalJson(previous[key] ?? null) !== canonicalJson(column[key] ?? null)) diff.push({ field: `columns.${name}.${key}`, from: previous[key] ?? null, to: column[key] ?? null });
        }
      }
      for (const [name, column] of old) if (!next.has(name)) diff.push({ field: `columns.${name}`, from: column, to: null });
      continue;
    }
    // Canonical JSON: the database may hand back object keys in another order.
    if (canonicalJson(from) !== canonicalJson(to)) diff.push({ field, from, to });
  }
  return diff;
}

/** Records revision 1, published, inside the transaction that registers the dataset. */
export async function recordFirstRevision(tx: Executor, dataset: DatasetRow, proposedBy: string, now: Date, registrationId?: string): Promise<void> {
  const entry = entryOf(dataset);
  await tx.insert(catalogueRevisions).values({ id: `rev_${crypto.randomUUID()}`, datasetId: dataset.id, revision: 1, status: 'published', entry, diff: diffEntries(null, entry), note: 'registration', proposedBy, createdAt: now, decidedAt: now });
  await appendAuditEvents(tx, [{ type: 'catalogue.registered', actor: proposedBy, datasets: [dataset.id], details: { institution: dataset.institutionId, revision: 1, grade: dataset.grade, sharingType: dataset.sharingType, updateFrequency: dataset.updateFrequency, registration: registrationId ?? null } }], now);
}

export async function proposeCatalogueChange(platform: Platform, principal: PrincipalRow, dataset: DatasetRow, input: z.infer<typeof catalogueChangeSchema>): Promise<RevisionRow> {
  const current = entryOf(dataset);
  const merged = { ...current, ...input.changes };
  const parsed = datasetRegistrationSchema.safeParse({ id: dataset.id, ...Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== null)) });
  if (!parsed.success) {
    throw new AppError('VALIDATION_FAILED', 'the changed entry is not a valid catalogue entry', issueDetails(parsed.error));
  }
  const proposed = entryOf(normalise(parsed.data));
  const diff = diffEntries(current, proposed);
  if (diff.length === 0) throw new AppError('NO_CHANGE', 'the proposal changes nothing');
  // Loaded snapshots hold the registered columns and key; changing those would make them disagree with the entry.
  const [loaded] = await platform.db.select({ id: datasetVersions.id }).from(datasetVersions).where(eq(datasetVersions.datasetId, dataset.id)).limit(1);
  const structural = diff.filter((entry) => /^columns\.[^.]+(\.(name|type))?$/.test(entry.field) || entry.field === 'privacyUnit' || entry.field === 'uniqueKey');
  if (loaded && structural.length > 0) {
    throw new AppError('CHANGE_NEEDS_NEW_DATASET', 'data is loaded under the current columns, key and privacy unit; register a new dataset for a new structure', structural.map((entry) => ({ path: entry.field, problem: 'cannot change once data is loaded' })));
  }
  // A class changed, or the data opened, over loaded data: what a load would refuse, a revision may not bring about.
  if (loaded && diff.some((entry) => /^columns\.[^.]+\.class$/.test(entry.field) || entry.field === 'openData')) {
    const version = await latestVersion(platform.db, dataset.id);
    const proposedColumns = proposed.columns as DatasetRegistration['columns'];
    const problems = version ? await snapshotIdentifierProblems(platform.store.snapshotPath(dataset.id, version.contentHash), proposedColumns, proposed.openData === true) : [];
    if (problems.length > 0) throw classificationRefusal(problems);
  }
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    // Proposals for one entry take turns: the pending check and the next number are decided under this lock.
    await tx.select({ id: datasets.id }).from(datasets).where(eq(datasets.id, dataset.id)).for('update');
    const [pending] = await tx.select({ revision: catalogueRevisions.revision }).from(catalogueRevisions).where(and(eq(catalogueRevisions.datasetId, dataset.id), eq(catalogueRevisions.status, 'proposed')));
    if (pending) throw new AppError('CONFLICT', `revision ${pending.revision} is still under review`);
    const [highest] = await tx.select({ value: max(catalogueRevisions.revision) }).from(catalogueRevisions).where(eq(catalogueRevisions.datasetId, dataset.id));
    const [row] = await tx
      .insert(catalogueRevisions)
      .values({ id: `rev_${crypto.randomUUID()}`, datasetId: dataset.id, revision: (highest?.value ?? 0) + 1, status: 'proposed', entry: proposed, diff, note: input.note, proposedBy: principal.id, createdAt: now })
      .returning();
    await appendAuditEvents(tx, [{ type: 'catalogue.change-proposed', actor: principal.id, datasets: [dataset.id], details: { institution: dataset.institutionId, revision: row!.revision, fields: diff.map((entry) => entry.field) } }], now);
    return row!;
  });
}

export async function reviewCatalogueChange(platform: Platform, principal: PrincipalRow, datasetId: string, revision: number, input: z.infer<typeof catalogueReviewSchema>): Promise<RevisionRow> {
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    const [row] = await tx.select().from(catalogueRevisions).where(and(eq(catalogueRevisions.datasetId, datasetId), eq(catalogueRevisions.revision, revision))).for('update');
    if (!row) throw notFound('revision');
    if (row.status !== 'proposed') throw new AppError('INVALID_TRANSITION', `revision ${revision} is already ${row.status}`);
    if (row.proposedBy === principal.id) throw new AppError('SELF_REVIEW', 'a change is reviewed by someone other than its proposer');
    const status = input.decision === 'publish' ? 'published' : 'rejected';
    const [decided] = await tx
      .update(catalogueRevisions)
      .set({ status, reviewedBy: principal.id, reviewReason: input.reason ?? null, decidedAt: now })
      .where(eq(catalogueRevisions.id, row.id))
      .returning();
    if (status === 'published') {
      await tx
        .update(datasets)
        .set({ ...(row.entry as Partial<DatasetRow>), catalogueVersion: revision, updatedAt: now })
        .where(eq(datasets.id, datasetId));
    }
    const [source] = await tx.select({ institutionId: datasets.institutionId }).from(datasets).where(eq(datasets.id, datasetId));
    await appendAuditEvents(
      tx,
      [{ type: `catalogue.change-${status}`, actor: principal.id, datasets: [datasetId], details: { institution: source!.institutionId, revision, fields: row.diff.map((entry) => entry.field), updateFrequency: (status === 'published' ? row.entry.updateFrequency : undefined) ?? null, ...(input.reason ? { reason: input.reason } : {}) } }],
      now,
    );
    return decided!;
  });
}

export async function catalogueHistory(db: Database, datasetId: string): Promise<RevisionRow[]> {
  return db.select().from(catalogueRevisions).where(eq(catalogueRevisions.datasetId, datasetId)).orderBy(asc(catalogueRevisions.revision));
}

export const revisionStatuses = ['proposed', 'published', 'rejected'] as const;

/**
 * Changes across the catalogue, for the reviewers' queue and a source's own proposals: those under review
 * first (oldest first, the order they are due), then decided ones, newest first. Bounded: a queue, not an archive
 * (each entry's full history is `catalogueHistory`).
 */
export async function listRevisions(db: Database, filter: { status?: (typeof revisionStatuses)[number]; institutionId?: string; limit: number }): Promise<Array<RevisionRow & { datasetTitleZh: string; datasetTitle: string; institutionId: string }>> {
  // Revision 1 of every entry is its registration, listed with registrations; this is the list of changes.
  const conditions: SQL[] = [gt(catalogueRevisions.revision, 1)];
  if (filter.status) conditions.push(eq(catalogueRevisions.status, filter.status));
  if (filter.institutionId) conditions.push(eq(datasets.institutionId, filter.institutionId));
  const rows = await db
    .select({ revision: catalogueRevisions, datasetTitleZh: datasets.titleZh, datasetTitle: datasets.title, institutionId: datasets.institutionId })
    .from(catalogueRevisions)
    .innerJoin(datasets, eq(datasets.id, catalogueRevisions.datasetId))
    .where(and(...conditions))
    .orderBy(sql`${catalogueRevisions.status} <> 'proposed'`, sql`case when ${catalogueRevisions.status} = 'proposed' then ${catalogueRevisions.createdAt} end`, desc(catalogueRevisions.decidedAt), asc(catalogueRevisions.datasetId))
    .limit(filter.limit);
  return rows.map(({ revision, ...dataset }) => ({ ...revision, ...dataset }));
}

export function toRevisionView(row: RevisionRow) {
  return {
    dataset: row.datasetId,
    revision: row.revision,
    status: row.status,
    note: row.note,
    diff: row.diff,
    proposedBy: row.proposedBy,
    reviewedBy: row.reviewedBy,
    reviewReason: row.reviewReason,
    createdAt: row.createdAt.toISOString(),
    decidedAt: row.decidedAt?.toISOString() ?? null,
  };
}

/** Optional fields absent from a registration are stored as null, like the entry they will replace. */
function normalise(entry: DatasetRegistration): Pick<DatasetRow, EditableField> {
  return { ...entry, descriptionZh: entry.descriptionZh ?? null, sharingBasis: entry.sharingBasis ?? null, uniqueKey: entry.uniqueKey ?? null };
}
