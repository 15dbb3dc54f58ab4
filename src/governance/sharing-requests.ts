import crypto from 'node:crypto';
import { desc, eq, or } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import { findDataset } from '../catalog/catalogue.js';
import { datasets, sharingRequests } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import type { Platform } from '../platform.js';
import { chinaDay } from '../time/china-time.js';
import { openChannel } from './sharing-channels.js';

/**
 * Sharing between public bodies (measures arts. 15–19). An institution asks for a dataset for a stated duty and
 * scenario. Unconditional data is confirmed by the source within 5 working days; conditional data is reviewed by
 * the committee and the source within 10; data that may not be shared is refused at once. A refusal must give a
 * reason and its legal basis. Every step is an audit leaf; what is late is visible to regulators.
 */
export const responseWorkingDays = { unconditional: 5, conditional: 10 } as const;

export const sharingRequestSchema = z.strictObject({
  dataset: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/),
  columns: z.array(z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/)).min(1).max(200).optional(),
  duty: z.string().min(1).max(2000),
  scenario: z.string().min(1).max(2000),
});

export const sharingDecisionSchema = z
  .strictObject({
    decision: z.enum(['approve', 'refuse']),
    reason: z.string().min(1).max(2000).optional(),
    legalBasis: z.string().min(1).max(2000).optional(),
  })
  .refine((input) => input.decision === 'approve' || (input.reason && input.legalBasis), {
    message: 'a refusal names its reason and its legal basis (art. 16)',
    path: ['legalBasis'],
  });

export type SharingRequestRow = typeof sharingRequests.$inferSelect;

export async function requestSharing(platform: Platform, principal: PrincipalRow, input: z.infer<typeof sharingRequestSchema>): Promise<SharingRequestRow> {
  if (principal.role !== 'institution' || !principal.institutionId) throw new AppError('FORBIDDEN', 'only public bodies request shared data');
  const dataset = await findDataset(platform.db, input.dataset);
  if (!dataset) throw notFound('dataset');
  if (dataset.institutionId === principal.institutionId) throw new AppError('VALIDATION_FAILED', 'an institution already holds its own data', [{ path: 'dataset', problem: 'is your own' }]);
  if (dataset.sharingType === 'none') throw new AppError('NOT_SHAREABLE', `${dataset.id} is not shared (不予共享): ${dataset.sharingBasis ?? 'see its catalogue entry'}`);
  for (const column of input.columns ?? []) {
    if (!dataset.columns.some((candidate) => candidate.name === column)) throw new AppError('VALIDATION_FAILED', 'the dataset has no such column', [{ path: 'columns', problem: `unknown column ${column}` }]);
  }
  const now = platform.clock();
  const deadline = platform.calendar.addWorkingDays(chinaDay(now), responseWorkingDays[dataset.sharingType]);
  return platform.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(sharingRequests)
      .values({
        id: `share_${crypto.randomUUID()}`,
        requesterInstitutionId: principal.institutionId!,
        requestedBy: principal.id,
        datasetId: dataset.id,
        columns: input.columns ?? null,
        duty: input.duty,
        scenario: input.scenario,
        sharingType: dataset.sharingType as 'unconditional' | 'conditional',
        status: 'pending',
        dueOn: deadline.due,
        deadlineProvisional: deadline.provisional,
        createdAt: now,
      })
      .returning();
    await appendAuditEvents(tx, [{ type: 'sharing.requested', actor: principal.id, datasets: [dataset.id], details: { request: row!.id, requester: principal.institutionId, institution: dataset.institutionId, sharingType: dataset.sharingType, dueOn: deadline.due } }], now);
    return row!;
  });
}

/**
 * The source institution decides for its data; for conditional data the committee (regulators) decides too.
 * The request is approved when every required party approved, refused as soon as one refuses.
 */
export async function decideSharing(platform: Platform, principal: PrincipalRow, id: string, input: z.infer<typeof sharingDecisionSchema>): Promise<SharingRequestRow> {
  const now = platform.clock();
  // The dataset's source is read before the transaction: on the embedded database a query outside an open
  // transaction would wait for it to end.
  const [known] = await platform.db.select({ datasetId: sharingRequests.datasetId }).from(sharingRequests).where(eq(sharingRequests.id, id));
  if (!known) throw notFound('sharing request');
  const dataset = (await findDataset(platform.db, known.datasetId))!;
  return platform.db.transaction(async (tx) => {
    const [request] = await tx.select().from(sharingRequests).where(eq(sharingRequests.id, id)).for('update');
    if (!request) throw notFound('sharing request');
    const asSource = principal.role === 'institution' && principal.institutionId === dataset.institutionId;
    const asCommittee = principal.role === 'regulator' && request.sharingType === 'conditional';
    if (!asSource && !asCommittee) {
      // Other institutions may not even learn that the request exists.
      if (principal.role === 'institution' && principal.institutionId !== request.requesterInstitutionId) throw notFound('sharing request');
      throw new AppError('FORBIDDEN', request.sharingType === 'unconditional' ? 'the source institution confirms unconditional requests' : 'the source institution and the committee decide');
    }
    if (request.status !== 'pending') throw new AppError('INVALID_TRANSITION', `the request is already ${request.status}`);
    if ((asSource && request.sourceDecision) || (!asSource && request.committeeDecision)) throw new AppError('DUPLICATE_REVIEW', 'this party has already decided');
    const sourceDecision = asSource ? input.decision : request.sourceDecision;
    const committeeDecision = asSource ? request.committeeDecision : input.decision;
    const refused = sourceDecision === 'refuse' || committeeDecision === 'refuse';
    const approved = sourceDecision === 'approve' && (request.sharingType === 'unconditional' || committeeDecision === 'approve');
    const status = refused ? 'refused' : approved ? 'approved' : 'pending';
    const [row] = await tx
      .update(sharingRequests)
      .set({
        ...(asSource ? { sourceDecision: input.decision, sourceDecidedBy: principal.id } : { committeeDecision: input.decision, committeeDecidedBy: principal.id }),
        status,
        ...(input.decision === 'refuse' ? { refusalReason: input.reason!, refusalLegalBasis: input.legalBasis! } : {}),
        ...(status !== 'pending' ? { answeredOn: chinaDay(now) } : {}),
      })
      .where(eq(sharingRequests.id, id))
      .returning();
    await appendAuditEvents(
      tx,
      [{ type: `sharing.${asSource ? 'source' : 'committee'}-${input.decision}`, actor: principal.id, datasets: [request.datasetId], details: { request: id, requester: request.requesterInstitutionId, institution: dataset.institutionId, status, onTime: chinaDay(now) <= request.dueOn, ...(input.decision === 'refuse' ? { reason: input.reason, legalBasis: input.legalBasis } : {}) } }],
      now,
    );
    // Art. 17: an approved request opens its channel, in the same transaction.
    if (status === 'approved') await openChannel(tx, row!, dataset.columns.map((column) => column.name), platform.governance, now);
    return row!;
  });
}

/** Requests a principal may see: regulators all; an institution those it made and those on its own data. */
export async function listSharing(platform: Platform, principal: PrincipalRow): Promise<SharingRequestRow[]> {
  if (principal.role === 'regulator') return platform.db.select().from(sharingRequests).orderBy(desc(sharingRequests.createdAt));
  if (principal.role !== 'institution' || !principal.institutionId) return [];
  const rows = await platform.db
    .select({ request: sharingRequests })
    .from(sharingRequests)
    .innerJoin(datasets, eq(datasets.id, sharingRequests.datasetId))
    .where(or(eq(sharingRequests.requesterInstitutionId, principal.institutionId), eq(datasets.institutionId, principal.institutionId)))
    .orderBy(desc(sharingRequests.createdAt));
  return rows.map((row) => row.request);
}

export function toSharingView(request: SharingRequestRow, now: Date) {
  const today = chinaDay(now);
  return {
    id: request.id,
    requester: request.requesterInstitutionId,
    dataset: request.datasetId,
    columns: request.columns,
    duty: request.duty,
    scenario: request.scenario,
    sharingType: request.sharingType,
    status: request.status,
    dueOn: request.dueOn,
    deadlineProvisional: request.deadlineProvisional,
    overdue: request.status === 'pending' && today > request.dueOn,
    answeredOn: request.answeredOn,
    answeredOnTime: request.answeredOn ? request.answeredOn <= request.dueOn : null,
    sourceDecision: request.sourceDecision,
    committeeDecision: request.committeeDecision,
    refusal: request.refusalReason ? { reason: request.refusalReason, legalBasis: request.refusalLegalBasis } : null,
    createdAt: request.createdAt.toISOString(),
  };
}

