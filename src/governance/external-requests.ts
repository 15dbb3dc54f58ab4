import crypto from 'node:crypto';
import fs from 'node:fs';
import { desc, eq } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import { findDataset, latestVersion } from '../catalog/catalogue.js';
import { externalRequests } from '../db/schema.js';
import { exportColumnsToCsv } from '../domain-store/export-columns.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import type { Platform } from '../platform.js';

/**
 * Requests for Lingang data from government units outside the special area (measures art. 19, second paragraph):
 * "统一向临港新片区管委会进行申请，说明数据使用场景、数据需求清单、数据安全保障措施等内容，由相关业务处室确认数据需求并
 * 审核确认，审核通过后由大数据中心将需求数据共享至市大数据资源平台". The outside unit holds no account here, so a
 * committee regulator files its application as received — scenario, data list (datasets and columns) and safeguards;
 * another regulator confirms the need and approves or refuses it (two people, as for catalogue changes); the data
 * centre then exports each dataset's columns in the list for the city platform, and each export is recorded with
 * the version and hash of what went. Data that is not shared (不予共享) or core data is refused when filed.
 */
export const externalRequestSchema = z.strictObject({
  requester: z.string().min(1).max(200).describe('The government unit outside the special area that applies'),
  scenario: z.string().min(1).max(2000).describe('The use scenario (数据使用场景)'),
  items: z
    .array(z.strictObject({ dataset: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/), columns: z.array(z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/)).min(1).max(200) }))
    .min(1)
    .max(20)
    .refine((items) => new Set(items.map((item) => item.dataset)).size === items.length, 'name each dataset once')
    .describe('The data list (数据需求清单): datasets and the columns asked for'),
  safeguards: z.string().min(1).max(4000).describe('The security safeguards the requester commits to (数据安全保障措施)'),
});

export const externalDecisionSchema = z
  .strictObject({ decision: z.enum(['approve', 'refuse']), reason: z.string().min(1).max(2000).optional() })
  .refine((input) => input.decision === 'approve' || input.reason, { message: 'a refusal gives its reason', path: ['reason'] });

export type ExternalRequestRow = typeof externalRequests.$inferSelect;

export const toExternalRequestView = (row: ExternalRequestRow) => ({
  id: row.id,
  requester: row.requester,
  scenario: row.scenario,
  items: row.items,
  safeguards: row.safeguards,
  status: row.status,
  recordedBy: row.recordedBy,
  decidedBy: row.decidedBy,
  decisionReason: row.decisionReason,
  decidedAt: row.decidedAt?.toISOString() ?? null,
  deliveries: row.deliveries,
  createdAt: row.createdAt.toISOString(),
});

export async function fileExternalRequest(platform: Platform, principal: PrincipalRow, input: z.infer<typeof externalRequestSchema>): Promise<ExternalRequestRow> {
  const problems: Array<{ path: string; problem: string }> = [];
  for (const [index, item] of input.items.entries()) {
    const dataset = await findDataset(platform.db, item.dataset);
    if (!dataset) {
      problems.push({ path: `items.${index}.dataset`, problem: `${item.dataset} is not in the catalogue` });
      continue;
    }
    if (dataset.sharingType === 'none') throw new AppError('NOT_SHAREABLE', `${dataset.id} is not shared (不予共享): ${dataset.sharingBasis ?? 'see its catalogue entry'}`);
    if (dataset.grade === 'core') throw new AppError('CORE_DATA', 'core data is never shared');
    const known = new Set(dataset.columns.map((column) => column.name));
    for (const column of item.columns) if (!known.has(column)) problems.push({ path: `items.${index}.columns`, problem: `${dataset.id} has no column ${column}` });
  }
  if (problems.length > 0) throw new AppError('VALIDATION_FAILED', 'the data list names what the catalogue does not hold', problems);
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(externalRequests)
      .values({ id: `ext_${crypto.randomUUID()}`, requester: input.requester, scenario: input.scenario, items: input.items, safeguards: input.safeguards, status: 'pending', recordedBy: principal.id, createdAt: now })
      .returning();
    await appendAuditEvents(tx, [{ type: 'external.filed', actor: principal.id, datasets: input.items.map((item) => item.dataset), details: { request: row!.id, requester: input.requester, items: input.items } }], now);
    return row!;
  });
}

export async function listExternalRequests(platform: Platform): Promise<ExternalRequestRow[]> {
  return platform.db.select().from(externalRequests).orderBy(desc(externalRequests.createdAt));
}

export async function decideExternalRequest(platform: Platform, principal: PrincipalRow, id: string, input: z.infer<typeof externalDecisionSchema>): Promise<ExternalRequestRow> {
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    const [row] = await tx.select().from(externalRequests).where(eq(externalRequests.id, id)).for('update');
    if (!row) throw notFound('external request');
    if (row.status !== 'pending') throw new AppError('INVALID_TRANSITION', `the request is already ${row.status}`);
    if (row.recordedBy === principal.id) throw new AppError('SELF_REVIEW', 'the request is reviewed by someone other than who filed it');
    const [decided] = await tx
      .update(externalRequests)
      .set({ status: input.decision === 'approve' ? 'approved' : 'refused', decidedBy: principal.id, decisionReason: input.reason ?? null, decidedAt: now })
      .where(eq(externalRequests.id, id))
      .returning();
    await appendAuditEvents(tx, [{ type: `external.${input.decision === 'approve' ? 'approved' : 'refused'}`, actor: principal.id, datasets: row.items.map((item) => item.dataset), details: { request: id, requester: row.requester, ...(input.reason ? { reason: input.reason } : {}) } }], now);
    return decided!;
  });
}

/**
 * The data centre's export of one dataset of an approved request for the city platform: the columns in the list
 * from the latest version, recorded with its hash. The request is `delivered` once every dataset went at least once.
 */
export async function deliverExternalRequest(platform: Platform, principal: PrincipalRow, id: string, datasetId: string, options: { forSpreadsheet?: boolean } = {}) {
  const [row] = await platform.db.select().from(externalRequests).where(eq(externalRequests.id, id));
  if (!row) throw notFound('external request');
  if (row.status !== 'approved' && row.status !== 'delivered') throw new AppError('INVALID_TRANSITION', `a ${row.status} request is not delivered`);
  const item = row.items.find((entry) => entry.dataset === datasetId);
  if (!item) throw new AppError('VALIDATION_FAILED', 'the dataset is not in the request\'s data list', [{ path: 'dataset', problem: `${datasetId} was not asked for` }]);
  const version = await latestVersion(platform.db, datasetId);
  if (!version) throw new AppError('NO_DATA_VERSION', `${datasetId} has no data loaded yet`);
  const dataset = (await findDataset(platform.db, datasetId))!;
  // The catalogue entry as it is now: data made 不予共享, or graded core, since the approval does not go.
  if (dataset.sharingType === 'none') {
    throw new AppError('SHARING_WITHDRAWN', `${dataset.id} is no longer shared (不予共享): ${dataset.sharingBasis ?? 'see its catalogue entry'}; it is not delivered`);
  }
  if (dataset.grade === 'core') throw new AppError('CORE_DATA', `${dataset.id} has been graded core data since the approval; core data is never shared`);
  const source = dataset.institutionId;
  const exported = await exportColumnsToCsv(platform.store, dataset, version.contentHash, item.columns, options);
  const now = platform.clock();
  try {
    await platform.db.transaction(async (tx) => {
      const [locked] = await tx.select().from(externalRequests).where(eq(externalRequests.id, id)).for('update');
      const deliveries = [...locked!.deliveries, { dataset: datasetId, version: version.versionNumber, contentHash: version.contentHash, rows: exported.rowCount, by: principal.id, at: now.toISOString() }];
      const complete = locked!.items.every((entry) => deliveries.some((delivery) => delivery.dataset === entry.dataset));
      await tx.update(externalRequests).set({ deliveries, status: complete ? 'delivered' : locked!.status }).where(eq(externalRequests.id, id));
      await appendAuditEvents(tx, [{ type: 'external.delivered', actor: principal.id, datasets: [datasetId], details: { request: id, requester: row.requester, institution: source, version: version.versionNumber, contentHash: version.contentHash, rows: exported.rowCount, columns: item.columns } }], now);
    });
  } catch (error) {
    // Unrecorded, it does not go.
    fs.rmSync(exported.file, { force: true });
    throw error;
  }
  return { ...exported, versionNumber: version.versionNumber, contentHash: version.contentHash };
}
