import crypto from 'node:crypto';
import { and, desc, eq } from 'drizzle-orm';
import { appendAuditEvents } from '../audit/audit-log.js';
import { reserveBudget, settleBudget } from '../privacy/budget-ledger.js';
import { dpSummary, type DpPlan } from '../privacy/dp-plan.js';
import { jobs } from '../db/schema.js';
import { AppError, type PolicyCode } from '../errors/app-error.js';
import { canonicalSha256 } from '../audit/canonical-json.js';
import type { PrincipalRow } from '../identity/principals.js';
import type { Platform } from '../platform.js';
import { planJob, prepareJob, sqlHash, type JobSubmission } from './prepare-job.js';
import { requestedModel, type ModelSpec } from '../models/model-job.js';

export type JobRow = typeof jobs.$inferSelect;

/**
 * Records a job and queues it, or records its refusal. Every submission leaves a row, refused ones included,
 * so the regulator sees what was attempted.
 */
export async function submitJob(
  platform: Platform,
  principal: PrincipalRow,
  submission: JobSubmission,
  idempotencyKey?: string,
): Promise<{ job: JobRow; refusal?: AppError; replayed?: boolean }> {
  if (!platform.jobQueue) throw new Error('the job queue is not running');
  const requestHash = idempotencyKey === undefined ? undefined : canonicalSha256(submission);
  if (idempotencyKey !== undefined) {
    const earlier = await replayOf(platform, principal, idempotencyKey, requestHash!);
    if (earlier) return earlier;
  }
  const id = `job_${crypto.randomUUID()}`;
  const base = {
    id,
    operatorId: principal.operatorId!,
    submittedBy: principal.id,
    datasets: submission.datasets,
    sql: submission.sql,
    sqlHash: sqlHash(submission.sql),
    purpose: submission.purpose,
    policyHash: platform.disclosurePolicy.hash,
    idempotencyKey: idempotencyKey ?? null,
    requestHash: requestHash ?? null,
    createdAt: platform.clock(),
  };
  const dpCharges: string[] = [];
  try {
    const prepared = await prepareJob(platform, principal, submission);
    const plan = await planJob(platform, prepared);
    if (plan.kind === 'dp_aggregate') {
      // Reserved before the job exists to run: one conditional UPDATE per protected dataset, which can never
      // overspend. If a later one is refused, the earlier ones are given back.
      plan.chargeIds = dpCharges;
      try {
        for (const datasetId of plan.budgetDatasets ?? [plan.dataset]) {
          const { chargeId } = await reserveBudget(platform.db, { licenceId: prepared.licenceId, datasetId, jobId: id, epsilon: plan.epsilonMicro / 1_000_000, delta: plan.deltaPico / 1e12 }, platform.clock());
          plan.chargeIds.push(chargeId);
        }
      } catch (error) {
        for (const chargeId of plan.chargeIds) await settleBudget(platform.db, chargeId, 'refunded', platform.clock());
        throw error;
      }
    }
    const job = await platform.db.transaction(async (tx) => {
      const [row] = await tx
        .insert(jobs)
        .values({
          ...base,
          licenceId: prepared.licenceId,
          datasetVersions: prepared.datasetVersions,
          catalogueEntries: prepared.catalogueEntries,
          kind: prepared.kind,
          grade: prepared.grade,
          sqlShape: prepared.shape,
          status: 'queued',
          stage: 'waiting for a sandbox',
          plan,
        })
        .returning();
      await appendAuditEvents(
        tx as never,
        [
          {
            type: 'job.queued',
            actor: principal.id,
            operator: principal.operatorId,
            job: id,
            datasets: prepared.analysis.datasets,
            details: { sqlHash: base.sqlHash, policyHash: base.policyHash, grade: prepared.grade, licence: prepared.licenceId, datasetVersions: prepared.datasetVersions, purpose: submission.purpose },
          },
        ],
        base.createdAt,
      );
      return row!;
    });
    await platform.jobQueue.enqueue(id);
    return { job };
  } catch (error) {
    // The same key sent twice at once: the other request recorded the job first. Give back what this one
    // reserved and answer with that job.
    if (idempotencyKey !== undefined && isUniqueViolation(error)) {
      for (const chargeId of dpCharges) await settleBudget(platform.db, chargeId, 'refunded', platform.clock());
      const earlier = await replayOf(platform, principal, idempotencyKey, requestHash!);
      if (earlier) return earlier;
    }
    if (!(error instanceof AppError) || error.status >= 500) throw error;
    let replayed: Awaited<ReturnType<typeof replayOf>>;
    const job = await platform.db.transaction(async (tx) => {
      const [row] = await tx
        .insert(jobs)
        .values({ ...base, datasetVersions: {}, status: 'rejected', statusCode: error.code, statusReason: error.message, finishedAt: platform.clock() })
        .returning();
      await appendAuditEvents(
        tx as never,
        [
          {
            type: 'job.rejected',
            actor: principal.id,
            operator: principal.operatorId,
            job: id,
            datasets: submission.datasets,
            details: { code: error.code, reason: error.message, sqlHash: base.sqlHash, policyHash: base.policyHash, purpose: submission.purpose },
          },
        ],
        base.createdAt,
      );
      return row!;
    }).catch(async (insertError: unknown) => {
      replayed = idempotencyKey !== undefined && isUniqueViolation(insertError) ? await replayOf(platform, principal, idempotencyKey, requestHash!) : undefined;
      if (!replayed) throw insertError;
      return replayed.job;
    });
    return replayed ?? { job, refusal: error };
  }
}

/**
 * An earlier submission under the same Idempotency-Key, answered as it was (a retry after a lost response must
 * not queue the job twice, spend its privacy budget twice or count twice towards the probing limit). The same
 * key with a different submission is refused: the key names one request (draft-ietf-httpapi-idempotency-key).
 */
async function replayOf(platform: Platform, principal: PrincipalRow, key: string, requestHash: string): Promise<{ job: JobRow; refusal?: AppError; replayed: true } | undefined> {
  const [earlier] = await platform.db.select().from(jobs).where(and(eq(jobs.submittedBy, principal.id), eq(jobs.idempotencyKey, key)));
  if (!earlier) return undefined;
  if (earlier.requestHash !== requestHash) throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was sent before with a different job; use a new key for a new job');
  return { job: earlier, refusal: earlier.status === 'rejected' ? refusalOf(earlier) : undefined, replayed: true };
}

/** A recorded refusal as the error it was answered with (its code and reason; details are not kept). */
const refusalOf = (job: JobRow) => new AppError(job.statusCode as PolicyCode, job.statusReason ?? 'the job was refused');

/** PostgreSQL's unique_violation (23505), on the error drizzle throws or on one of its causes. */
function isUniqueViolation(error: unknown): boolean {
  for (let cause = error, depth = 0; typeof cause === 'object' && cause !== null && depth < 5; cause = (cause as { cause?: unknown }).cause, depth++) {
    if ((cause as { code?: unknown }).code === '23505') return true;
  }
  return false;
}

export async function findJob(platform: Platform, id: string): Promise<JobRow | undefined> {
  const [row] = await platform.db.select().from(jobs).where(eq(jobs.id, id));
  return row;
}

export function listJobs(
  platform: Platform,
  operatorId: string | undefined,
  page: { status?: JobRow['status']; kind?: NonNullable<JobRow['kind']>; limit: number; offset: number } = { limit: 200, offset: 0 },
) {
  const conditions = [operatorId ? eq(jobs.operatorId, operatorId) : undefined, page.status ? eq(jobs.status, page.status) : undefined, page.kind ? eq(jobs.kind, page.kind) : undefined].filter(Boolean);
  return platform.db
    .select()
    .from(jobs)
    .where(and(...conditions))
    .orderBy(desc(jobs.createdAt), desc(jobs.id))
    .limit(page.limit)
    .offset(page.offset);
}

const isDpPlan = (plan: unknown): plan is DpPlan => typeof plan === 'object' && plan !== null && (plan as { kind?: unknown }).kind === 'dp_aggregate';

const modelOf = (plan: unknown): ModelSpec | null => {
  const model = typeof plan === 'object' && plan !== null ? (plan as { model?: Parameters<typeof requestedModel>[0] }).model : undefined;
  return model && typeof model.target === 'string' && Array.isArray(model.features) ? requestedModel(model) : null;
};

/** What an operator sees of a job: never the internal error text, never the plan's hidden queries. */
export function toJobView(job: JobRow) {
  return {
    id: job.id,
    status: job.status,
    stage: job.stage,
    code: job.statusCode,
    reason: job.statusReason,
    datasets: job.datasets,
    datasetVersions: job.datasetVersions,
    kind: job.kind,
    // A differentially private job is an aggregate with noise: its ε, δ and mechanism, as submitted.
    differentialPrivacy: isDpPlan(job.plan) ? dpSummary(job.plan) : null,
    // A model job's model as the operator asked for it (its categories by value), to read and to send again.
    model: modelOf(job.plan),
    grade: job.grade,
    purpose: job.purpose,
    sqlHash: job.sqlHash,
    policyHash: job.policyHash,
    reviewersRequired: job.reviewersRequired,
    releaseLeafIndex: job.releaseLeafIndex,
    createdAt: job.createdAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
    releasedAt: job.releasedAt?.toISOString() ?? null,
  };
}
