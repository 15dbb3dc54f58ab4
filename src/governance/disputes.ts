import crypto from 'node:crypto';
import { and, desc, eq, or } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import { findDataset } from '../catalog/catalogue.js';
import { datasets, datasetVersions, disputes, sharingChannels } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import type { Platform } from '../platform.js';
import { chinaDay } from '../time/china-time.js';

/**
 * Disputes over shared data (measures art. 13). A public body that holds data through a sharing channel objects
 * to the dataset, a field or a record; the source institution must verify and answer by the deadline — corrected
 * (naming the new version that carries the correction) or rejected with a reason. The raiser sees the answer;
 * regulators see what is overdue.
 */
export const disputeSchema = z.strictObject({
  dataset: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/),
  column: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).optional(),
  // The raiser's own reference to the record, e.g. the key as it holds it. Stored as given, shown to the source.
  recordReference: z.string().min(1).max(200).optional(),
  description: z.string().min(1).max(4000),
});

export const disputeAnswerSchema = z.discriminatedUnion('outcome', [
  z.strictObject({ outcome: z.literal('corrected'), version: z.number().int().min(1), answer: z.string().min(1).max(4000) }),
  z.strictObject({ outcome: z.literal('rejected'), answer: z.string().min(1).max(4000) }),
]);

export type DisputeRow = typeof disputes.$inferSelect;

export async function raiseDispute(platform: Platform, principal: PrincipalRow, input: z.infer<typeof disputeSchema>): Promise<DisputeRow> {
  if (principal.role !== 'institution' || !principal.institutionId) throw new AppError('FORBIDDEN', 'only public bodies raise disputes over shared data');
  const dataset = await findDataset(platform.db, input.dataset);
  if (!dataset) throw notFound('dataset');
  if (dataset.institutionId === principal.institutionId) throw new AppError('VALIDATION_FAILED', 'the source corrects its own data by loading a new version', [{ path: 'dataset', problem: 'is your own' }]);
  // "Legitimately holds" (依法履职过程中): the institution received the data through a sharing channel.
  const held = await platform.db
    .select({ columns: sharingChannels.columns })
    .from(sharingChannels)
    .where(and(eq(sharingChannels.datasetId, dataset.id), eq(sharingChannels.institutionId, principal.institutionId)));
  if (held.length === 0) throw new AppError('NOT_HELD', 'your institution does not hold this dataset through a sharing channel');
  if (input.column && !held.some((channel) => channel.columns.includes(input.column!))) {
    throw new AppError('NOT_HELD', 'your institution does not hold this field', [{ path: 'column', problem: 'is outside what was shared with you' }]);
  }
  const now = platform.clock();
  const deadline = platform.calendar.addWorkingDays(chinaDay(now), platform.governance.disputes.answerWorkingDays);
  return platform.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(disputes)
      .values({
        id: `disp_${crypto.randomUUID()}`,
        raiserInstitutionId: principal.institutionId!,
        raisedBy: principal.id,
        datasetId: dataset.id,
        columnName: input.column ?? null,
        recordReference: input.recordReference ?? null,
        description: input.description,
        status: 'open',
        dueOn: deadline.due,
        deadlineProvisional: deadline.provisional,
        createdAt: now,
      })
      .returning();
    // The record reference stays out of the audit log: it may be a personal identifier, and leaves are kept forever.
    await appendAuditEvents(tx, [{ type: 'dispute.raised', actor: principal.id, datasets: [dataset.id], details: { dispute: row!.id, raiser: principal.institutionId, institution: dataset.institutionId, column: input.column ?? null, dueOn: deadline.due } }], now);
    return row!;
  });
}

export async function answerDispute(platform: Platform, principal: PrincipalRow, id: string, input: z.infer<typeof disputeAnswerSchema>): Promise<DisputeRow> {
  const [known] = await platform.db.select().from(disputes).where(eq(disputes.id, id));
  if (!known) throw notFound('dispute');
  const dataset = (await findDataset(platform.db, known.datasetId))!;
  if (principal.role !== 'institution' || principal.institutionId !== dataset.institutionId) {
    if (principal.institutionId !== known.raiserInstitutionId && principal.role !== 'regulator') throw notFound('dispute');
    throw new AppError('FORBIDDEN', 'the source institution answers a dispute over its data');
  }
  let correctedVersionId: string | null = null;
  if (input.outcome === 'corrected') {
    const [version] = await platform.db
      .select()
      .from(datasetVersions)
      .where(and(eq(datasetVersions.datasetId, dataset.id), eq(datasetVersions.versionNumber, input.version)));
    // A correction is a new version (art. 13 with art. 10): one loaded after the dispute was raised.
    if (!version || version.createdAt <= known.createdAt) {
      throw new AppError('VALIDATION_FAILED', 'a correction names the version, loaded after the dispute was raised, that carries it', [{ path: 'version', problem: version ? 'was loaded before the dispute' : 'does not exist' }]);
    }
    correctedVersionId = version.id;
  }
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    const [row] = await tx
      .update(disputes)
      .set({ status: input.outcome, answer: input.answer, correctedVersionId, answeredBy: principal.id, answeredOn: chinaDay(now) })
      .where(and(eq(disputes.id, id), eq(disputes.status, 'open')))
      .returning();
    if (!row) throw new AppError('INVALID_TRANSITION', 'the dispute has already been answered');
    await appendAuditEvents(
      tx,
      [{ type: `dispute.${input.outcome}`, actor: principal.id, datasets: [dataset.id], details: { dispute: id, raiser: known.raiserInstitutionId, institution: dataset.institutionId, onTime: chinaDay(now) <= known.dueOn, ...(input.outcome === 'corrected' ? { version: input.version } : {}) } }],
      now,
    );
    return row;
  });
}

/** Disputes a principal may see: regulators all; a public body those it raised and those over its data. */
export async function listDisputes(platform: Platform, principal: PrincipalRow): Promise<DisputeRow[]> {
  if (principal.role === 'regulator') return platform.db.select().from(disputes).orderBy(desc(disputes.createdAt));
  if (principal.role !== 'institution' || !principal.institutionId) return [];
  const rows = await platform.db
    .select({ dispute: disputes })
    .from(disputes)
    .innerJoin(datasets, eq(datasets.id, disputes.datasetId))
    .where(or(eq(disputes.raiserInstitutionId, principal.institutionId), eq(datasets.institutionId, principal.institutionId)))
    .orderBy(desc(disputes.createdAt));
  return rows.map((row) => row.dispute);
}

export function toDisputeView(dispute: DisputeRow, now: Date) {
  return {
    id: dispute.id,
    raiser: dispute.raiserInstitutionId,
    dataset: dispute.datasetId,
    column: dispute.columnName,
    recordReference: dispute.recordReference,
    description: dispute.description,
    status: dispute.status,
    dueOn: dispute.dueOn,
    deadlineProvisional: dispute.deadlineProvisional,
    overdue: dispute.status === 'open' && chinaDay(now) > dispute.dueOn,
    answer: dispute.answer,
    answeredOn: dispute.answeredOn,
    answeredOnTime: dispute.answeredOn ? dispute.answeredOn <= dispute.dueOn : null,
    createdAt: dispute.createdAt.toISOString(),
  };
}
