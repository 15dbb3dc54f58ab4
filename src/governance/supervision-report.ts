import { and, asc, inArray, lt } from 'drizzle-orm';
import type { Database } from '../db/connect.js';
import { auditLeaves, institutions } from '../db/schema.js';
import { chinaDay } from '../time/china-time.js';
import { updatePeriodDays } from '../catalog/registration.js';

/**
 * The supervision report (measures arts. 27–28): per institution and period, what regulators check — catalogue
 * entries without a filed registration (art. 8), catalogue completeness and data freshness, quality scores, sharing requests and disputes answered on time or late,
 * refusals without a legal basis, incidents touching its data, and its data exported to the city platform for
 * requests from outside the special area (art. 19) — data that left the domain, which its source should know of —
 * and demands that its data be opened (art. 20: opening is demand-driven).
 *
 * It is computed from the audit log alone, by folding over its leaves, so that every number can be traced: with
 * `evidence`, each indicator lists the leaf indexes it counts, and a regulator can fetch those leaves with their
 * inclusion proofs and recount. Events in the period count for flows (requests, disputes, incidents); states
 * (catalogue, data, quality) are taken as of the end of the period.
 */
export const supervisionIndicators = [
  'datasetsRegistered',
  'datasetsWithoutFiling',
  'datasetsWithData',
  'catalogueCompleteness',
  'datasetsStale',
  'qualityScore',
  'qualityFailing',
  'sharingReceived',
  'sharingAnsweredOnTime',
  'sharingAnsweredLate',
  'sharingOverdue',
  'sharingRefused',
  'refusalsWithoutLegalBasis',
  'sharingRequested',
  'disputesReceived',
  'disputesHandledOnTime',
  'disputesHandledLate',
  'disputesOverdue',
  'incidentsOnItsData',
  'externalDeliveriesOfItsData',
  'openDataDemandsOnItsData',
] as const;
export type Indicator = (typeof supervisionIndicators)[number];

export type SupervisionRow = { institution: string; name: string; nameZh: string } & Record<Indicator, number | null> & { evidence?: Record<Indicator, number[]> };

/** The event types the report reads: each indicator is made of leaves of these types only. */
export const supervisionEventTypes = [
  'catalogue.registered',
  'catalogue.change-published',
  'dataset.version-loaded',
  'quality.checked',
  'quality.flagged',
  'sharing.requested',
  'sharing.source-approve',
  'sharing.source-refuse',
  'sharing.committee-approve',
  'sharing.committee-refuse',
  'dispute.raised',
  'dispute.corrected',
  'dispute.rejected',
  'incident.recorded',
  'external.delivered',
  'open-data.demanded',
];

type Leaf = { index: number; at: Date; type: string; details: Record<string, any>; datasets: string[] };
type DatasetState = { institution: string; updateFrequency: string; registered: number; filed: boolean; lastLoad?: Leaf; quality?: Leaf };
type Flow = { source: string; requester: string; dueOn: string; opened: number; inPeriod: boolean; answer?: Leaf };

export async function supervisionReport(
  db: Database,
  period: { from: Date; to: Date },
  now: Date,
  options: { evidence?: boolean } = {},
): Promise<{ from: string; to: string; asOf: string; institutions: SupervisionRow[] }> {
  const [allInstitutions, rows] = await Promise.all([
    db.select().from(institutions).orderBy(asc(institutions.id)),
    db
      .select({ index: auditLeaves.leafIndex, leaf: auditLeaves.leaf, at: auditLeaves.createdAt })
      .from(auditLeaves)
      .where(and(inArray(auditLeaves.eventType, supervisionEventTypes), lt(auditLeaves.createdAt, period.to)))
      .orderBy(asc(auditLeaves.leafIndex)),
  ]);
  const asOf = now < period.to ? now : period.to;
  const inPeriod = (at: Date) => at >= period.from && at < period.to;

  const datasets = new Map<string, DatasetState>();
  const requests = new Map<string, Flow>();
  const disputes = new Map<string, Flow>();
  const incidents: Leaf[] = [];
  const externalDeliveries: Leaf[] = [];
  const demands: Leaf[] = [];
  for (const row of rows) {
    const event = JSON.parse(row.leaf) as { type: string; details?: Record<string, any>; datasets?: string[] };
    const leaf: Leaf = { index: row.index, at: row.at, type: event.type, details: event.details ?? {}, datasets: event.datasets ?? [] };
    const dataset = leaf.datasets[0] ? datasets.get(leaf.datasets[0]) : undefined;
    switch (leaf.type) {
      case 'catalogue.registered':
        datasets.set(leaf.datasets[0]!, { institution: leaf.details.institution, updateFrequency: leaf.details.updateFrequency ?? 'static', registered: leaf.index, filed: Boolean(leaf.details.registration) });
        break;
      case 'catalogue.change-published':
        if (dataset && leaf.details.updateFrequency) dataset.updateFrequency = leaf.details.updateFrequency;
        break;
      case 'dataset.version-loaded':
        if (dataset) dataset.lastLoad = leaf;
        break;
      case 'quality.checked':
      case 'quality.flagged':
        if (dataset) dataset.quality = leaf;
        break;
      case 'sharing.requested':
        requests.set(leaf.details.request, { source: leaf.details.institution, requester: leaf.details.requester, dueOn: leaf.details.dueOn, opened: leaf.index, inPeriod: inPeriod(leaf.at) });
        break;
      case 'dispute.raised':
        disputes.set(leaf.details.dispute, { source: leaf.details.institution, requester: leaf.details.raiser, dueOn: leaf.details.dueOn, opened: leaf.index, inPeriod: inPeriod(leaf.at) });
        break;
      case 'dispute.corrected':
      case 'dispute.rejected': {
        const dispute = disputes.get(leaf.details.dispute);
        if (dispute) dispute.answer = leaf;
        break;
      }
      case 'external.delivered':
        if (inPeriod(leaf.at)) externalDeliveries.push(leaf);
        break;
      case 'open-data.demanded':
        if (inPeriod(leaf.at) && leaf.datasets.length > 0) demands.push(leaf);
        break;
      case 'incident.recorded':
        // Overdue alerts are counted as overdue requests and disputes; incidents here are misuse of the data.
        if (inPeriod(leaf.at) && !String(leaf.details.kind).endsWith('_overdue')) incidents.push(leaf);
        break;
      default: {
        // A sharing decision: the request is answered once its status is no longer pending.
        const request = requests.get(leaf.details.request);
        if (request && leaf.details.status !== 'pending') request.answer = leaf;
      }
    }
  }

  const today = chinaDay(asOf);
  const result = allInstitutions.map((institution) => {
    const evidence = Object.fromEntries(supervisionIndicators.map((indicator) => [indicator, [] as number[]])) as Record<Indicator, number[]>;
    const own = [...datasets.entries()].filter(([, state]) => state.institution === institution.id);
    const ownIds = new Set(own.map(([id]) => id));
    for (const [, state] of own) {
      evidence.datasetsRegistered.push(state.registered);
      // Art. 8: an entry that did not come with a filed registration was never reviewed by the data centre.
      if (!state.filed) evidence.datasetsWithoutFiling.push(state.registered);
      if (state.lastLoad) evidence.datasetsWithData.push(state.lastLoad.index);
      const days = updatePeriodDays[state.updateFrequency];
      if (days && (!state.lastLoad || asOf.getTime() - state.lastLoad.at.getTime() > days * 86_400_000)) evidence.datasetsStale.push(state.lastLoad?.index ?? state.registered);
      if (state.quality && state.quality.details.score !== null) evidence.qualityScore.push(state.quality.index);
      if (state.quality && !state.quality.details.passed) evidence.qualityFailing.push(state.quality.index);
    }
    evidence.catalogueCompleteness = [...evidence.datasetsRegistered, ...evidence.datasetsWithData];
    const scores = own.flatMap(([, state]) => (state.quality && state.quality.details.score !== null ? [Number(state.quality.details.score)] : []));

    for (const request of requests.values()) {
      if (!request.inPeriod) continue;
      if (request.requester === institution.id) evidence.sharingRequested.push(request.opened);
      if (request.source !== institution.id) continue;
      evidence.sharingReceived.push(request.opened);
      const answer = request.answer;
      if (!answer) {
        if (today > request.dueOn) evidence.sharingOverdue.push(request.opened);
        continue;
      }
      (answer.details.onTime ? evidence.sharingAnsweredOnTime : evidence.sharingAnsweredLate).push(answer.index);
      if (answer.details.status === 'refused') {
        evidence.sharingRefused.push(answer.index);
        if (!answer.details.legalBasis) evidence.refusalsWithoutLegalBasis.push(answer.index);
      }
    }
    for (const dispute of disputes.values()) {
      if (!dispute.inPeriod || dispute.source !== institution.id) continue;
      evidence.disputesReceived.push(dispute.opened);
      if (dispute.answer) (dispute.answer.details.onTime ? evidence.disputesHandledOnTime : evidence.disputesHandledLate).push(dispute.answer.index);
      else if (today > dispute.dueOn) evidence.disputesOverdue.push(dispute.opened);
    }
    for (const incident of incidents) if (incident.datasets.some((id) => ownIds.has(id))) evidence.incidentsOnItsData.push(incident.index);
    for (const delivery of externalDeliveries) if (delivery.details.institution === institution.id) evidence.externalDeliveriesOfItsData.push(delivery.index);
    for (const demand of demands) if (demand.datasets.some((id) => ownIds.has(id))) evidence.openDataDemandsOnItsData.push(demand.index);

    const counts = Object.fromEntries(supervisionIndicators.map((indicator) => [indicator, evidence[indicator].length])) as Record<Indicator, number | null>;
    counts.catalogueCompleteness = own.length > 0 ? evidence.datasetsWithData.length / own.length : null;
    counts.qualityScore = scores.length > 0 ? Math.round((10 * scores.reduce((sum, score) => sum + score, 0)) / scores.length) / 10 : null;
    return { institution: institution.id, name: institution.name, nameZh: institution.nameZh, ...counts, ...(options.evidence ? { evidence } : {}) } as SupervisionRow;
  });
  return { from: period.from.toISOString(), to: period.to.toISOString(), asOf: asOf.toISOString(), institutions: result };
}

export const supervisionColumns: Array<'institution' | 'nameZh' | Indicator> = ['institution', 'nameZh', ...supervisionIndicators];
