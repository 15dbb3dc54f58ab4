import type { SourceColumn } from '../analysis/analyse-query.js';
import { activeLicencesOf, noLicenceInForce } from '../authz/entities.js';
import type { CatalogueDataset } from '../analysis/analyse-query.js';
import { gradeRank } from '../catalog/grades.js';
import type { Database } from '../db/connect.js';
import type { licences } from '../db/schema.js';
import { recordIncident } from '../governance/incidents.js';
import { AppError } from '../errors/app-error.js';

type LicenceRow = typeof licences.$inferSelect;

/** What a use of data needs a licence for: its datasets (at their grades) and the columns it reads. */
export type DataUse = { datasets: string[]; columnsUsed: SourceColumn[]; catalogue: Map<string, CatalogueDataset> };

/** What of a licence decides whether it covers a use of data. */
export type LicenceCover = Pick<LicenceRow, 'scope' | 'maxGrade'>;

/** Why a licence does not cover a use of data: each dataset, grade and column beyond it (none: it covers it). */
export function coverageGaps(licence: LicenceCover, use: DataUse): string[] {
  const problems: string[] = [];
  for (const datasetId of use.datasets) {
    const entry = licence.scope.find((scope) => scope.dataset === datasetId);
    const dataset = use.catalogue.get(datasetId);
    if (!entry || !dataset) {
      problems.push(`${datasetId} is not in the licence`);
      continue;
    }
    if (gradeRank(dataset.grade) > gradeRank(licence.maxGrade)) problems.push(`${datasetId} (${dataset.grade}) is above the licence's maximum grade`);
    if (entry.columns) {
      for (const column of use.columnsUsed.filter((used) => used.dataset === datasetId)) {
        if (!entry.columns.includes(column.column)) problems.push(`${datasetId}.${column.column} is not in the licence`);
      }
    }
  }
  return problems;
}

/**
 * Finds one licence in force that covers every dataset and column a job uses, at or above each dataset's grade.
 * A job reaching beyond every licence is refused (OVER_SCOPE) and recorded as an incident for regulators
 * (measures art. 17, 28: use beyond what was granted).
 */
export async function licenceCovering(
  db: Database,
  job: { operatorId: string; principalId: string } & DataUse,
  now: Date,
): Promise<LicenceRow> {
  const active = await activeLicencesOf(db, job.operatorId, now);
  // None in force at all (suspended between the request's authorization and this read, say) is no reach beyond a
  // licence: it is refused as the authorizer refuses it, and no over-scope incident is recorded against the operator.
  if (active.length === 0) throw noLicenceInForce();
  let closest: string[] | undefined;
  for (const licence of active) {
    const problems = coverageGaps(licence, job);
    if (problems.length === 0) return licence;
    if (!closest || problems.length < closest.length) closest = problems;
  }
  const problems = closest!;
  await db.transaction((tx) => recordIncident(tx as never, { kind: 'over_scope', operatorId: job.operatorId, principalId: job.principalId, detail: { datasets: job.datasets, problems } }, now));
  throw new AppError(
    'OVER_SCOPE',
    'the job uses data outside the operator\'s licence; this has been recorded for the regulator',
    problems.slice(0, 20).map((problem) => ({ problem })),
  );
}
