import { and, asc, gte, lt } from 'drizzle-orm';
import type { Database } from '../db/connect.js';
import { datasets, datasetVersions, incidents, institutions, sharingRequests } from '../db/schema.js';
import { chinaDay } from '../time/china-time.js';

/**
 * The supervision report (measures arts. 27–28): per institution and period, what regulators check — catalogue
 * completeness and data freshness, sharing requests answered on time or late, refusals without a legal basis,
 * incidents touching its data. Counts only. Parts whose workflows are not built yet (quality scores, disputes)
 * are reported as null, never as zero.
 */
const freshnessDays: Record<string, number | null> = { daily: 1, weekly: 7, monthly: 31, quarterly: 92, yearly: 366, static: null };

export type SupervisionRow = {
  institution: string;
  name: string;
  nameZh: string;
  datasetsRegistered: number;
  datasetsWithData: number;
  catalogueCompleteness: number | null;
  datasetsStale: number;
  sharingReceived: number;
  sharingAnsweredOnTime: number;
  sharingAnsweredLate: number;
  sharingOverdue: number;
  sharingRefused: number;
  refusalsWithoutLegalBasis: number;
  sharingRequested: number;
  incidentsOnItsData: number;
  qualityScore: null;
  disputesHandledOnTime: null;
};

export async function supervisionReport(db: Database, period: { from: Date; to: Date }, now: Date): Promise<{ from: string; to: string; institutions: SupervisionRow[] }> {
  const [allInstitutions, allDatasets, versions, requests, periodIncidents] = await Promise.all([
    db.select().from(institutions).orderBy(asc(institutions.id)),
    db.select({ id: datasets.id, institutionId: datasets.institutionId, updateFrequency: datasets.updateFrequency }).from(datasets),
    db.select({ datasetId: datasetVersions.datasetId, createdAt: datasetVersions.createdAt }).from(datasetVersions),
    db.select().from(sharingRequests).where(and(gte(sharingRequests.createdAt, period.from), lt(sharingRequests.createdAt, period.to))),
    db.select().from(incidents).where(and(gte(incidents.createdAt, period.from), lt(incidents.createdAt, period.to))),
  ]);
  const latest = new Map<string, Date>();
  for (const version of versions) if (!latest.has(version.datasetId) || latest.get(version.datasetId)! < version.createdAt) latest.set(version.datasetId, version.createdAt);
  const sourceOf = new Map(allDatasets.map((dataset) => [dataset.id, dataset.institutionId]));
  const today = chinaDay(now);

  const rows = allInstitutions.map((institution): SupervisionRow => {
    const own = allDatasets.filter((dataset) => dataset.institutionId === institution.id);
    const withData = own.filter((dataset) => latest.has(dataset.id));
    const stale = own.filter((dataset) => {
      const days = freshnessDays[dataset.updateFrequency];
      const loaded = latest.get(dataset.id);
      return days !== null && days !== undefined && (!loaded || now.getTime() - loaded.getTime() > days * 86_400_000);
    });
    const received = requests.filter((request) => sourceOf.get(request.datasetId) === institution.id);
    const answered = received.filter((request) => request.answeredOn);
    const ownIds = new Set(own.map((dataset) => dataset.id));
    return {
      institution: institution.id,
      name: institution.name,
      nameZh: institution.nameZh,
      datasetsRegistered: own.length,
      datasetsWithData: withData.length,
      catalogueCompleteness: own.length > 0 ? withData.length / own.length : null,
      datasetsStale: stale.length,
      sharingReceived: received.length,
      sharingAnsweredOnTime: answered.filter((request) => request.answeredOn! <= request.dueOn).length,
      sharingAnsweredLate: answered.filter((request) => request.answeredOn! > request.dueOn).length,
      sharingOverdue: received.filter((request) => request.status === 'pending' && today > request.dueOn).length,
      sharingRefused: received.filter((request) => request.status === 'refused').length,
      refusalsWithoutLegalBasis: received.filter((request) => request.status === 'refused' && !request.refusalLegalBasis).length,
      sharingRequested: requests.filter((request) => request.requesterInstitutionId === institution.id).length,
      incidentsOnItsData: periodIncidents.filter((incident) => {
        const touched = (incident.detail as { datasets?: unknown }).datasets;
        return Array.isArray(touched) && touched.some((dataset) => typeof dataset === 'string' && ownIds.has(dataset));
      }).length,
      qualityScore: null,
      disputesHandledOnTime: null,
    };
  });
  return { from: period.from.toISOString(), to: period.to.toISOString(), institutions: rows };
}

export const supervisionColumns: Array<keyof SupervisionRow> = [
  'institution',
  'nameZh',
  'datasetsRegistered',
  'datasetsWithData',
  'catalogueCompleteness',
  'datasetsStale',
  'sharingReceived',
  'sharingAnsweredOnTime',
  'sharingAnsweredLate',
  'sharingOverdue',
  'sharingRefused',
  'refusalsWithoutLegalBasis',
  'sharingRequested',
  'incidentsOnItsData',
  'qualityScore',
  'disputesHandledOnTime',
];

