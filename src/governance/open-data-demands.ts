import crypto from 'node:crypto';
import { and, count, desc, eq, isNotNull } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import { findDataset } from '../catalog/catalogue.js';
import { personalIdentifiersIn } from '../catalog/identity-numbers.js';
import { openDataDemands, principals } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import type { Platform } from '../platform.js';

/**
 * Demands for public data to be opened (measures art. 20: the committee opens public data "demand-driven",
 * 以需求为导向). Anyone signed in — an operator, a consumer, a public body — names the data it needs and what for;
 * the data centre answers each: planned, declined with a reason, or met by an open catalogue entry (often a
 * high-quality dataset published from a released aggregate, art. 14). Every demand is listed for everyone, so the
 * demand for the same data shows; who made one is shown only to its maker, the data centre and regulators.
 */
/**
 * Text every signed-in account reads. Personal data has no place in it (art. 20 asks for the data wanted, not who
 * it is about), so text with a resident ID number or a mobile number in it is refused, without repeating it.
 */
const publicText = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .superRefine((text, context) => {
      for (const kind of personalIdentifiersIn(text)) context.addIssue({ code: 'custom', message: `holds what looks like a ${kind}: demands and answers are shown to everyone, so leave personal data out` });
    });

export const openDataDemandSchema = z.strictObject({
  subject: publicText(200),
  scenario: publicText(2000),
  /** The catalogue entry the demand concerns, when the data is catalogued but not open. */
  dataset: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/).optional(),
});

export const openDataAnswerSchema = z.discriminatedUnion('outcome', [
  z.strictObject({ outcome: z.literal('planned'), answer: publicText(2000) }),
  z.strictObject({ outcome: z.literal('declined'), answer: publicText(2000) }),
  z.strictObject({ outcome: z.literal('met'), dataset: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/), answer: publicText(2000).optional() }),
]);

export type OpenDataDemandRow = typeof openDataDemands.$inferSelect;

/** Open (unanswered) demands one principal may have at a time: enough for real needs, not for flooding the list. */
export const openDemandsPerPrincipal = 20;

export async function demandOpenData(platform: Platform, principal: PrincipalRow, input: z.infer<typeof openDataDemandSchema>): Promise<OpenDataDemandRow> {
  if (input.dataset) {
    const dataset = await findDataset(platform.db, input.dataset);
    if (!dataset) throw notFound('dataset');
    if (dataset.openData) throw new AppError('ALREADY_OPEN', `${dataset.id} is open data already: query it row by row`, [{ path: 'dataset', problem: 'is open data' }]);
  }
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    // One account's demands are made one at a time, so two sent at once cannot both pass the limit.
    await tx.select({ id: principals.id }).from(principals).where(eq(principals.id, principal.id)).for('update');
    const [open] = await tx.select({ n: count() }).from(openDataDemands).where(and(eq(openDataDemands.requestedBy, principal.id), eq(openDataDemands.status, 'open')));
    if ((open?.n ?? 0) >= openDemandsPerPrincipal) throw new AppError('TOO_MANY_OPEN_DEMANDS', `you have ${openDemandsPerPrincipal} demands awaiting an answer; more can be made once the data centre has answered some`);
    const [row] = await tx
      .insert(openDataDemands)
      .values({ id: `odd_${crypto.randomUUID()}`, requestedBy: principal.id, datasetId: input.dataset ?? null, subject: input.subject, scenario: input.scenario, status: 'open', createdAt: now })
      .returning();
    await appendAuditEvents(tx as never, [{ type: 'open-data.demanded', actor: principal.id, ...(input.dataset ? { datasets: [input.dataset] } : {}), details: { demand: row!.id } }], now);
    return row!;
  });
}

/** The data centre answers an open demand once; a "met" answer names an open catalogue entry. */
export async function answerOpenDataDemand(platform: Platform, principal: PrincipalRow, id: string, input: z.infer<typeof openDataAnswerSchema>): Promise<OpenDataDemandRow> {
  if (input.outcome === 'met') {
    const dataset = await findDataset(platform.db, input.dataset);
    if (!dataset) throw new AppError('VALIDATION_FAILED', 'the dataset that meets a demand is a catalogue entry', [{ path: 'dataset', problem: 'is not in the catalogue' }]);
    if (!dataset.openData) throw new AppError('VALIDATION_FAILED', 'a demand is met by open data', [{ path: 'dataset', problem: 'is not open data' }]);
  }
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    const [known] = await tx.select().from(openDataDemands).where(eq(openDataDemands.id, id)).for('update');
    if (!known) throw notFound('demand');
    if (known.status !== 'open') throw new AppError('INVALID_TRANSITION', `the demand was answered already (${known.status})`);
    const [row] = await tx
      .update(openDataDemands)
      .set({ status: input.outcome, answer: input.answer ?? null, metByDatasetId: input.outcome === 'met' ? input.dataset : null, answeredBy: principal.id, answeredAt: now })
      .where(eq(openDataDemands.id, id))
      .returning();
    const datasets = [...new Set([known.datasetId, input.outcome === 'met' ? input.dataset : null].filter((value): value is string => value !== null))];
    await appendAuditEvents(tx as never, [{ type: `open-data.${input.outcome}`, actor: principal.id, ...(datasets.length ? { datasets } : {}), details: { demand: id, ...(input.answer ? { answer: input.answer } : {}) } }], now);
    return row!;
  });
}

/** The newest 1,000 demands; `demandsPerDataset` counts them all. */
export async function listOpenDataDemands(platform: Platform): Promise<OpenDataDemandRow[]> {
  return platform.db.select().from(openDataDemands).orderBy(desc(openDataDemands.createdAt), desc(openDataDemands.id)).limit(1000);
}

/** How many demands, answered or not, name each catalogue entry (or the one given): how much the data is wanted. */
export async function demandsPerDataset(platform: Platform, datasetId?: string): Promise<Map<string, number>> {
  const rows = await platform.db
    .select({ dataset: openDataDemands.datasetId, n: count() })
    .from(openDataDemands)
    .where(datasetId ? eq(openDataDemands.datasetId, datasetId) : isNotNull(openDataDemands.datasetId))
    .groupBy(openDataDemands.datasetId);
  return new Map(rows.map((row) => [row.dataset!, Number(row.n)]));
}

/**
 * A demand as a reader sees it. Who made it is shown to its maker, the data centre and regulators only: a bank's
 * or an operator's demand tells competitors what it is building.
 */
export function toOpenDataDemandView(demand: OpenDataDemandRow, reader: PrincipalRow, sameDataset: number) {
  const seesRequester = reader.role === 'admin' || reader.role === 'regulator' || reader.id === demand.requestedBy;
  return {
    id: demand.id,
    subject: demand.subject,
    scenario: demand.scenario,
    dataset: demand.datasetId,
    /** Demands (this one included) naming the same catalogue entry: how much the data is wanted. */
    demandsForDataset: demand.datasetId ? sameDataset : null,
    status: demand.status,
    answer: demand.answer,
    metBy: demand.metByDatasetId,
    mine: reader.id === demand.requestedBy,
    requestedBy: seesRequester ? demand.requestedBy : null,
    answeredAt: demand.answeredAt?.toISOString() ?? null,
    createdAt: demand.createdAt.toISOString(),
  };
}
