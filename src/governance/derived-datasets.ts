import crypto from 'node:crypto';
import fs from 'node:fs';
import { and, desc, eq } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import { findDataset, insertDataset } from '../catalog/catalogue.js';
import { datasetRegistrationSchema, type DatasetRegistration } from '../catalog/registration.js';
import { derivedDatasets, institutions, jobs } from '../db/schema.js';
import { loadDatasetVersion } from '../domain-store/load-version.js';
import { toCsv } from '../http/csv.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import type { Platform } from '../platform.js';

/**
 * High-quality datasets from released outputs (measures art. 14: public data integrated into datasets, tools and
 * products, which enter the catalogue). A released aggregate has passed disclosure control at the grade of its
 * sources, and possibly a regulator's review, for one operator. Publishing it to everyone as open data is a
 * further decision, so it takes two people: the data centre proposes, a regulator publishes or rejects. Published,
 * it is an L1 open catalogue entry of the data centre, loaded from the released cells exactly (suppressed cells
 * stay empty), with its lineage — job, source datasets, policy hash — in its legal basis and the audit log.
 */
export const derivedDatasetSchema = z.strictObject({
  job: z.string().min(1).max(100).describe('A released aggregate job'),
  id: z.string().regex(/^[a-z][a-z0-9_]{2,62}$/, 'must be lower snake_case, 3 to 63 characters').describe('The catalogue id of the dataset to be'),
  title: z.string().min(1).max(200),
  titleZh: z.string().min(1).max(200),
  description: z.string().min(1).max(4000),
  descriptionZh: z.string().min(1).max(4000).optional(),
  category: z.string().min(1).max(100),
});

export const derivedDecisionSchema = z
  .strictObject({ decision: z.enum(['publish', 'reject']), reason: z.string().min(1).max(2000).optional() })
  .refine((input) => input.decision === 'publish' || input.reason, { message: 'a rejection gives its reason', path: ['reason'] });

export type DerivedDatasetRow = typeof derivedDatasets.$inferSelect;
type JobRow = typeof jobs.$inferSelect;
type Output = { columns: Array<{ name: string; role: string }>; rows: unknown[][] };

export const toDerivedView = (row: DerivedDatasetRow) => ({
  id: row.id,
  job: row.jobId,
  dataset: row.datasetId,
  ...row.entry,
  status: row.status,
  proposedBy: row.proposedBy,
  decidedBy: row.decidedBy,
  decisionReason: row.decisionReason,
  createdAt: row.createdAt.toISOString(),
  decidedAt: row.decidedAt?.toISOString() ?? null,
});

/** What a released column is, in Chinese, by its role in the output. */
const roleZh: Record<string, string> = { group_key: '分组', count: '计数', measure: '统计量', other_aggregate: '统计量', row: '明细值' };

/**
 * The catalogue entry a released output becomes: a `cell` column numbering its rows (the key), then its columns,
 * typed from their values (whole numbers BIGINT, other numbers DOUBLE, booleans BOOLEAN, the rest VARCHAR).
 */
export function derivedRegistration(job: JobRow, entry: DerivedDatasetRow['entry'] & { id: string }): DatasetRegistration {
  const output = job.output as Output | null;
  if (!output || output.rows.length === 0) throw new AppError('CONFLICT', 'the job released no rows to publish');
  const problems: Array<{ path: string; problem: string }> = [];
  const columns = output.columns.map((column, index) => {
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(column.name) || column.name === 'cell') problems.push({ path: `output.${column.name}`, problem: 'is not a catalogue column name (lower snake_case, not "cell"): rerun the job with a plain alias' });
    const values = output.rows.map((row) => row[index]).filter((value) => value !== null && value !== undefined);
    const all = (test: (value: unknown) => boolean) => values.length > 0 && values.every(test);
    const type = all((value) => typeof value === 'boolean') ? 'BOOLEAN' : all((value) => Number.isInteger(value)) ? 'BIGINT' : all((value) => typeof value === 'number') ? 'DOUBLE' : 'VARCHAR';
    return { name: column.name, type, class: 'attribute' as const, nullable: values.length < output.rows.length, description: `${column.role.replace('_', ' ')} of released job ${job.id}`, descriptionZh: `已发布任务 ${job.id} 的${roleZh[column.role] ?? column.role}` };
  });
  if (problems.length > 0) throw new AppError('VALIDATION_FAILED', "the output's columns cannot be catalogue columns", problems);
  return datasetRegistrationSchema.parse({
    id: entry.id,
    title: entry.title,
    titleZh: entry.titleZh,
    description: entry.description,
    descriptionZh: entry.descriptionZh,
    category: entry.category,
    grade: 'L1',
    openData: true,
    sharingType: 'unconditional',
    legalBasis: `Measures art. 14: the released output of job ${job.id} over ${job.datasets.join(', ')}, checked by disclosure control under policy ${job.policyHash}, published by the committee`,
    updateFrequency: 'static',
    privacyUnit: 'cell',
    uniqueKey: ['cell'],
    columns: [{ name: 'cell', type: 'INTEGER', class: 'attribute', nullable: false, description: 'Row of the released output', descriptionZh: '发布结果的行号' }, ...columns],
  });
}

/** The released cells as CSV, exactly (no spreadsheet escaping: the loader reads them back as they were). */
const outputCsv = (output: Output): string =>
  toCsv(['cell', ...output.columns.map((column) => column.name)], output.rows.map((row, index) => [index + 1, ...row]), { forSpreadsheet: false });

async function releasedAggregate(platform: Platform, jobId: string): Promise<JobRow> {
  const [job] = await platform.db.select().from(jobs).where(eq(jobs.id, jobId));
  if (!job) throw notFound('job');
  if (job.status !== 'released' || job.kind !== 'aggregate') throw new AppError('CONFLICT', 'only the released output of an aggregate job becomes a dataset');
  return job;
}

export async function proposeDerivedDataset(platform: Platform, principal: PrincipalRow, input: z.infer<typeof derivedDatasetSchema>): Promise<DerivedDatasetRow> {
  const job = await releasedAggregate(platform, input.job);
  const entry = { title: input.title, titleZh: input.titleZh, description: input.description, descriptionZh: input.descriptionZh, category: input.category };
  derivedRegistration(job, { ...entry, id: input.id });
  if (await findDataset(platform.db, input.id)) throw new AppError('DATASET_EXISTS', `a dataset with id ${input.id} is already registered`);
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    // The one-open-proposal index decides (two proposals sent at once would both pass a read first).
    const [row] = await tx
      .insert(derivedDatasets)
      .values({ id: `der_${crypto.randomUUID()}`, jobId: job.id, datasetId: input.id, entry, status: 'proposed', proposedBy: principal.id, createdAt: now })
      .onConflictDoNothing()
      .returning();
    if (!row) throw new AppError('CONFLICT', `${input.id} is already proposed`);
    await appendAuditEvents(tx, [{ type: 'derived.proposed', actor: principal.id, job: job.id, datasets: job.datasets, details: { proposal: row!.id, dataset: input.id } }], now);
    return row!;
  });
}

export async function listDerivedDatasets(platform: Platform): Promise<DerivedDatasetRow[]> {
  return platform.db.select().from(derivedDatasets).orderBy(desc(derivedDatasets.createdAt));
}

export async function decideDerivedDataset(platform: Platform, principal: PrincipalRow, id: string, input: z.infer<typeof derivedDecisionSchema>): Promise<DerivedDatasetRow> {
  const [proposal] = await platform.db.select().from(derivedDatasets).where(eq(derivedDatasets.id, id));
  if (!proposal) throw notFound('proposal');
  if (proposal.status !== 'proposed') throw new AppError('INVALID_TRANSITION', `the proposal is already ${proposal.status}`);
  if (proposal.proposedBy === principal.id) throw new AppError('SELF_REVIEW', 'a proposal is decided by someone other than its proposer');
  const now = platform.clock();
  if (input.decision === 'reject') {
    return platform.db.transaction(async (tx) => {
      const [row] = await tx.update(derivedDatasets).set({ status: 'rejected', decidedBy: principal.id, decisionReason: input.reason!, decidedAt: now }).where(and(eq(derivedDatasets.id, id), eq(derivedDatasets.status, 'proposed'))).returning();
      if (!row) throw new AppError('INVALID_TRANSITION', 'the proposal was decided meanwhile');
      await appendAuditEvents(tx, [{ type: 'derived.rejected', actor: principal.id, job: proposal.jobId, details: { proposal: id, dataset: proposal.datasetId, reason: input.reason } }], now);
      return row;
    });
  }

  const job = await releasedAggregate(platform, proposal.jobId);
  const registration = derivedRegistration(job, { ...proposal.entry, id: proposal.datasetId });
  const [centre] = await platform.db.select({ id: institutions.id }).from(institutions).where(eq(institutions.kind, 'data_centre')).limit(1);
  if (!centre) throw new AppError('CONFLICT', 'no data-centre institution is registered to hold derived datasets');
  const file = platform.store.stagingPath('.csv');
  fs.writeFileSync(file, outputCsv(job.output as Output), { mode: 0o600 });
  try {
    const [published, dataset] = await platform.db.transaction(async (tx) => {
      const [row] = await tx.update(derivedDatasets).set({ status: 'published', decidedBy: principal.id, decisionReason: input.reason ?? null, decidedAt: now }).where(and(eq(derivedDatasets.id, id), eq(derivedDatasets.status, 'proposed'))).returning();
      if (!row) throw new AppError('INVALID_TRANSITION', 'the proposal was decided meanwhile');
      const registered = await insertDataset(tx as never, registration, centre.id, principal.id, now);
      await appendAuditEvents(tx, [{ type: 'derived.published', actor: principal.id, job: job.id, datasets: [...job.datasets, registered.id], details: { proposal: id, dataset: registered.id, sources: job.datasets, policyHash: job.policyHash } }], now);
      return [row, registered] as const;
    });
    // Typed from the released values themselves, the file fits the entry; loading it checks that again.
    await loadDatasetVersion({ db: platform.db, store: platform.store, clock: platform.clock }, { dataset, file, format: 'csv', loadedBy: principal.id });
    return published;
  } finally {
    fs.rmSync(file, { force: true });
  }
}
