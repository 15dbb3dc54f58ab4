import crypto from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import { findDataset } from '../catalog/catalogue.js';
import { proposeCatalogueChange } from '../catalog/catalogue-revisions.js';
import { catalogueRevisions, datasets, sharingEvaluationAlerts, sharingEvaluations } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import type { Platform } from '../platform.js';
import { chinaDay } from '../time/china-time.js';
import { recordIncident } from './incidents.js';

/**
 * Art. 16: the data centre evaluates conditionally shared data periodically, and data that meets the conditions
 * for unconditional sharing is converted promptly. An evaluation keeps a dataset conditional (with the reason) or
 * converts it, which proposes the catalogue revision `sharingType: unconditional` — reviewed by someone other
 * than the evaluator, like every catalogue change (art. 10). Each conditional dataset is due `intervalMonths`
 * (policies/governance.yaml) after its last evaluation, or after the reviewed catalogue change that made it
 * conditional; past that, the governance sweep alerts regulators once per due date.
 */
export const sharingEvaluationSchema = z.strictObject({
  outcome: z.enum(['keep_conditional', 'convert_unconditional']).describe('Keep the dataset conditional, or convert it to unconditional sharing (proposes a catalogue revision)'),
  reason: z.string().min(1).max(2000).describe('Why: the legal basis that still applies, or why the conditions no longer do'),
});

export type SharingEvaluationRow = typeof sharingEvaluations.$inferSelect;

export const toEvaluationView = (row: SharingEvaluationRow) => ({
  id: row.id,
  dataset: row.datasetId,
  outcome: row.outcome,
  reason: row.reason,
  revision: row.revision,
  evaluatedBy: row.evaluatedBy,
  evaluatedAt: row.evaluatedAt.toISOString(),
});

/** The China date `months` calendar months after `day`, the day of month clamped to the month's last day. */
export function addMonths(day: string, months: number): string {
  const [year, month, date] = day.split('-').map(Number) as [number, number, number];
  const index = year * 12 + (month - 1) + months;
  const lastDay = new Date(Date.UTC(Math.floor(index / 12), (index % 12) + 1, 0)).getUTCDate();
  return `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, '0')}-${String(Math.min(date, lastDay)).padStart(2, '0')}`;
}

export type EvaluationDue = {
  dataset: string;
  title: string;
  titleZh: string;
  institution: string;
  sharingBasis: string | null;
  /** When the sharing type was last decided: the last evaluation, or the reviewed change that made it conditional. */
  since: string;
  dueOn: string;
  overdue: boolean;
  lastEvaluation: ReturnType<typeof toEvaluationView> | null;
};

/** Every conditionally shared dataset with the day its next evaluation is due, soonest first. */
export async function evaluationsDue(platform: Pick<Platform, 'db' | 'clock' | 'governance'>): Promise<EvaluationDue[]> {
  const conditional = await platform.db.select().from(datasets).where(eq(datasets.sharingType, 'conditional'));
  if (conditional.length === 0) return [];
  const ids = conditional.map((dataset) => dataset.id);
  const evaluations = await platform.db.select().from(sharingEvaluations).where(inArray(sharingEvaluations.datasetId, ids));
  const revisions = await platform.db
    .select({ datasetId: catalogueRevisions.datasetId, diff: catalogueRevisions.diff, createdAt: catalogueRevisions.createdAt, decidedAt: catalogueRevisions.decidedAt })
    .from(catalogueRevisions)
    .where(and(inArray(catalogueRevisions.datasetId, ids), eq(catalogueRevisions.status, 'published')));
  const today = chinaDay(platform.clock());
  const entries = conditional.map((dataset) => {
    const last = evaluations.filter((row) => row.datasetId === dataset.id).sort((a, b) => b.evaluatedAt.getTime() - a.evaluatedAt.getTime())[0];
    const decided = revisions
      .filter((row) => row.datasetId === dataset.id && row.diff.some((entry) => entry.field === 'sharingType'))
      .map((row) => (row.decidedAt ?? row.createdAt).getTime());
    const since = new Date(Math.max(dataset.createdAt.getTime(), last?.evaluatedAt.getTime() ?? 0, ...decided));
    const dueOn = addMonths(chinaDay(since), platform.governance.sharingEvaluation.intervalMonths);
    return { dataset: dataset.id, title: dataset.title, titleZh: dataset.titleZh, institution: dataset.institutionId, sharingBasis: dataset.sharingBasis, since: since.toISOString(), dueOn, overdue: dueOn < today, lastEvaluation: last ? toEvaluationView(last) : null };
  });
  return entries.sort((a, b) => a.dueOn.localeCompare(b.dueOn) || a.dataset.localeCompare(b.dataset));
}

export async function evaluateSharing(platform: Platform, principal: PrincipalRow, datasetId: string, input: z.infer<typeof sharingEvaluationSchema>): Promise<SharingEvaluationRow> {
  const dataset = await findDataset(platform.db, datasetId);
  if (!dataset) throw notFound('dataset');
  if (dataset.sharingType !== 'conditional') throw new AppError('INVALID_TRANSITION', `only conditionally shared data is evaluated (art. 16); ${dataset.id} is shared ${dataset.sharingType === 'none' ? 'not at all' : 'unconditionally'}`);
  // A conversion is a catalogue change: proposed here, published by a reviewer who is not the evaluator.
  const revision =
    input.outcome === 'convert_unconditional'
      ? (await proposeCatalogueChange(platform, principal, dataset, { note: `Art. 16 evaluation: ${input.reason}`, changes: { sharingType: 'unconditional', sharingBasis: null } })).revision
      : null;
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(sharingEvaluations)
      .values({ id: `sev_${crypto.randomUUID()}`, datasetId: dataset.id, outcome: input.outcome, reason: input.reason, revision, evaluatedBy: principal.id, evaluatedAt: now })
      .returning();
    await appendAuditEvents(tx, [{ type: 'sharing.evaluated', actor: principal.id, datasets: [dataset.id], details: { institution: dataset.institutionId, outcome: input.outcome, reason: input.reason, ...(revision ? { revision } : {}) } }], now);
    return row!;
  });
}

/**
 * Alerts regulators once per dataset and due date to evaluations left past due: the governance sweep calls it,
 * and the list of what is due passes the list it has just read.
 */
export async function raiseEvaluationAlerts(platform: Pick<Platform, 'db' | 'clock' | 'governance'>, dueNow?: EvaluationDue[]): Promise<void> {
  const now = platform.clock();
  for (const due of (dueNow ?? (await evaluationsDue(platform))).filter((entry) => entry.overdue)) {
    await platform.db.transaction(async (tx) => {
      const claimed = await tx.insert(sharingEvaluationAlerts).values({ datasetId: due.dataset, dueOn: due.dueOn, alertedAt: now }).onConflictDoNothing().returning({ dataset: sharingEvaluationAlerts.datasetId });
      if (claimed.length > 0) await recordIncident(tx, { kind: 'sharing_evaluation_overdue', detail: { datasets: [due.dataset], institution: due.institution, dueOn: due.dueOn } }, now);
    });
  }
}
