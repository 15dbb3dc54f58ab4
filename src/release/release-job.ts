import crypto from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { appendAuditEvents } from '../audit/audit-log.js';
import type { Database } from '../db/connect.js';
import { jobs } from '../db/schema.js';
import { AppError } from '../errors/app-error.js';
import { licencesInForceAmong, lockLicenceInForce } from '../authz/entities.js';
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
  if (job.policyHash !== current.policyHash) {
    throw new AppError('POLICY_CHANGED', 'the disclosure policy changed after this output was checked, so it cannot be released as checked: withhold it; the operator can submit the job again');
  }
  const now = current.now;
  if (job.licenceId && !(await lockLicenceInForce(tx, job.licenceId, now))) {
    throw new AppError(
      'LICENCE_NOT_IN_FORCE',
      'the licence this job ran under is not in force (suspended, revoked or expired), so its output cannot be released: withhold it, or approve it once the licence is in force again',
    );
  }
  const changed = job.catalogueEntries ? await changedAnalysedEntries(tx, job.catalogueEntries, { lock: true }) : [];
  if (changed.length > 0) {
    throw new AppError(
      'CATALOGUE_CHANGED',
      `the catalogue entry of ${changed.join(', ')} changed after this job was checked (grade, open data, privacy unit or column classes), so its output cannot be released as checked: withhold it; the operator can submit the job again`,
    );
  }
}

/**
 * For the review queue: why each held output could not be released now, if it could not (the reasons
 * requireReleasable gives, read without locks for many jobs at once), so that a reviewer withholds it instead.
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
    const changed = changedEntriesIn(catalogue, job.catalogueEntries);
    if (job.policyHash !== deps.disclosurePolicy.hash) obstacles.set(job.id, { code: 'POLICY_CHANGED', reason: 'checked under a disclosure policy no longer in force' });
    else if (job.licenceId && !inForce.has(job.licenceId)) obstacles.set(job.id, { code: 'LICENCE_NOT_IN_FORCE', reason: 'the licence it ran under is not in force (suspended, revoked or expired)' });
    else if (changed.length > 0) obstacles.set(job.id, { code: 'CATALOGUE_CHANGED', reason: `the catalogue entry of ${changed.join(', ')} changed after it was checked` });
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
