import crypto from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { appendAuditEvents } from '../audit/audit-log.js';
import type { Database } from '../db/connect.js';
import { jobs } from '../db/schema.js';
import { AppError } from '../errors/app-error.js';
import { licencesInForceAmong } from '../authz/entities.js';
import { changedAnalysedEntries, changedEntriesIn, type AnalysisCatalogue } from '../catalog/analysis-catalogue.js';
import type { KeyRing } from '../identity/keys.js';
import { signReceipt } from './receipts.js';

export type JobRow = typeof jobs.$inferSelect;

/**
 * Releases a checked output: the audit leaf, the signed receipt and the status change commit in one
 * transaction. If the audit write fails, nothing is released (fail closed). A release of a job that is already
 * released returns it unchanged — same bytes, no second leaf. Nothing is released unless what the job was checked
 * under still holds (requireReleasable).
 */
export async function releaseJob(deps: ReleaseDependencies, jobId: string, actor: string): Promise<JobRow> {
  return deps.db.transaction((tx) => releaseWithin(tx as never, deps, jobId, actor));
}

type ReleaseDependencies = { db: Database; keys: KeyRing; clock: () => Date; disclosurePolicy: { hash: string } };

/** releaseJob inside a transaction the caller holds (a reviewer's last approval commits with the release it makes). */
export async function releaseWithin(tx: Database, deps: Omit<ReleaseDependencies, 'db'>, jobId: string, actor: string): Promise<JobRow> {
  // The row lock makes concurrent releases of one job take turns; the second sees it released.
  await tx.execute(sql`SELECT id FROM ${jobs} WHERE ${jobs.id} = ${jobId} FOR UPDATE`);
  const [job] = await tx.select().from(jobs).where(eq(jobs.id, jobId));
  if (!job) throw new AppError('NOT_FOUND', 'job not found');
  if (job.status === 'released') return job;
  if (job.status !== 'checked' && job.status !== 'in_review') {
    throw new AppError('INVALID_TRANSITION', `a ${job.status} job cannot be released`);
  }
  await requireReleasable(tx, job, { now: deps.clock(), policyHash: deps.disclosurePolicy.hash });
  const manifest = job.manifest as { contentHash: string };
  const now = deps.clock();
  const [leafIndex] = await appendAuditEvents(
    tx,
    [
      {
        type: 'job.released',
        actor,
        operator: job.operatorId,
        job: job.id,
        datasets: job.datasets,
        details: { datasetVersions: job.datasetVersions, policyHash: job.policyHash, sqlHash: job.sqlHash, outputHash: manifest.contentHash },
      },
    ],
    now,
  );
  const receipt = signReceipt(deps.keys, {
    job: job.id,
    operator: job.operatorId,
    datasets: job.datasetVersions,
    policy_hash: job.policyHash,
    sql_hash: job.sqlHash,
    output_hash: manifest.contentHash,
    audit_leaf_index: leafIndex!,
    released_at: now.toISOString(),
  });
  const [released] = await tx
    .update(jobs)
    .set({ status: 'released', stage: null, statusCode: job.statusCode, receipt, releaseLeafIndex: leafIndex!, releasedAt: now })
    .where(eq(jobs.id, job.id))
    .returning();
  return released!;
}

/**
 * What must still hold when an output is released, checked under share locks taken before the audit log's lock (the
 * order a licence's status change and a catalogue revision take theirs, or they could deadlock on PostgreSQL):
 *  - the licence the job ran under is in force (measures art. 21): approved after the operator's licence was
 *    suspended, revoked or ran out, an output stays held;
 *  - each dataset's catalogue entry is the one the job was checked under: an output checked at grade L3 is not
 *    released after its data was regraded L4, nor rows of data that was open when the job ran and is no longer;
 *  - the disclosure policy in force is the one it was checked under (a process started with another policy
 *    file): its receipt names the policy that checked it, and that policy no longer decides.
 */
export async function requireReleasable(tx: Database, job: Pick<JobRow, 'licenceId' | 'catalogueEntries' | 'policyHash'>, current: { now: Date; policyHash: string }): Promise<void> {
  // One after the other, in the order other transactions take these rows.
  const inForce = job.licenceId ? await licencesInForceAmong(tx, [job.licenceId], current.now, { lock: true }) : new Set<string>();
  const changedEntries = job.catalogueEntries ? await changedAnalysedEntries(tx, job.catalogueEntries, { lock: true }) : [];
  const obstacle = releaseObstacle(job, { policyHash: current.policyHash, inForce, changedEntries });
  if (obstacle) throw new AppError(obstacle.code, `${obstacle.reason}, so its output cannot be released as checked: ${obstacle.remedy}`);
}

type ReleaseObstacle = { code: 'POLICY_CHANGED' | 'LICENCE_NOT_IN_FORCE' | 'CATALOGUE_CHANGED'; reason: string; remedy: string };

/** The one decision behind requireReleasable and the review queue's releaseBlocked, from what each has read. */
function releaseObstacle(
  job: Pick<JobRow, 'licenceId' | 'policyHash'>,
  found: { policyHash: string; inForce: Set<string>; changedEntries: string[] },
): ReleaseObstacle | undefined {
  const resubmit = 'withhold it; the operator can submit the job again';
  if (job.policyHash !== found.policyHash) return { code: 'POLICY_CHANGED', reason: 'the disclosure policy changed after this output was checked', remedy: resubmit };
  if (job.licenceId && !found.inForce.has(job.licenceId)) {
    return { code: 'LICENCE_NOT_IN_FORCE', reason: 'the licence this job ran under is not in force (suspended, revoked or expired)', remedy: 'withhold it, or approve it once the licence is in force again' };
  }
  if (found.changedEntries.length > 0) {
    return { code: 'CATALOGUE_CHANGED', reason: `the catalogue entry of ${found.changedEntries.join(', ')} changed after this job was checked (grade, open data, privacy unit or column classes)`, remedy: resubmit };
  }
  return undefined;
}

/**
 * For the review queue: why each held output could not be released now, if it could not (requireReleasable's
 * decision, read without locks for many jobs at once, the catalogue from the cached view), so that a reviewer
 * withholds it instead.
 */
export async function releaseObstacles(
  deps: { db: Database; analysisCatalogue: () => Promise<AnalysisCatalogue>; disclosurePolicy: { hash: string } },
  held: Array<Pick<JobRow, 'id' | 'licenceId' | 'catalogueEntries' | 'policyHash'>>,
  now: Date,
): Promise<Map<string, { code: string; reason: string }>> {
  const [inForce, { datasets: catalogue }] = await Promise.all([
    licencesInForceAmong(deps.db, [...new Set(held.flatMap((job) => (job.licenceId ? [job.licenceId] : [])))], now),
    deps.analysisCatalogue(),
  ]);
  const obstacles = new Map<string, { code: string; reason: string }>();
  for (const job of held) {
    const obstacle = releaseObstacle(job, { policyHash: deps.disclosurePolicy.hash, inForce, changedEntries: changedEntriesIn(catalogue, job.catalogueEntries) });
    if (obstacle) obstacles.set(job.id, { code: obstacle.code, reason: obstacle.reason });
  }
  return obstacles;
}

/** Changes a job's status and records the transition as an audit leaf, in one transaction. */
export async function transitionJob(
  db: Database,
  job: Pick<JobRow, 'id' | 'operatorId' | 'datasets'>,
  change: Partial<JobRow> & { status: JobRow['status'] },
  event: { actor: string; details?: Record<string, unknown>; at: Date; onlyFrom?: Array<JobRow['status']> },
): Promise<JobRow | undefined> {
  return db.transaction(async (tx) => {
    const condition = event.onlyFrom
      ? sql`${jobs.id} = ${job.id} AND ${jobs.status} IN (${sql.join(event.onlyFrom.map((status) => sql`${status}`), sql`, `)})`
      : eq(jobs.id, job.id);
    const [updated] = await tx.update(jobs).set(change).where(condition).returning();
    if (!updated) return undefined;
    await appendAuditEvents(
      tx as never,
      [{ type: `job.${change.status}`, actor: event.actor, operator: job.operatorId, job: job.id, datasets: job.datasets, details: event.details ?? {} }],
      event.at,
    );
    return updated;
  });
}

export const detailHash = (text: string) => crypto.createHash('sha256').update(text).digest('hex');
