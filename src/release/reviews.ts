import crypto from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import type { Database } from '../db/connect.js';
import { jobs, reviews } from '../db/schema.js';
import { AppError } from '../errors/app-error.js';
import type { KeyRing } from '../identity/keys.js';
import type { PrincipalRow } from '../identity/principals.js';
import { releaseWithin, requireReleasable, type JobRow } from './release-job.js';

export const reviewDecisionSchema = z.strictObject({
  decision: z.enum(['approve', 'withhold']),
  reason: z.string().min(1).max(4000),
});

/**
 * A reviewer's decision on a held output. Rules: nobody reviews a job of their own operator or one they
 * submitted; one decision per reviewer and job (two reviews come from two people); one "withhold" ends it;
 * enough approvals for the grade release it. The review, its audit leaf and the release it makes commit together.
 */
export async function decideReview(
  deps: { db: Database; keys: KeyRing; clock: () => Date; disclosurePolicy: { hash: string } },
  reviewer: PrincipalRow,
  jobId: string,
  decision: z.infer<typeof reviewDecisionSchema>,
): Promise<JobRow> {
  const now = deps.clock();
  return deps.db.transaction(async (tx) => {
    await tx.execute(sql`SELECT id FROM ${jobs} WHERE ${jobs.id} = ${jobId} FOR UPDATE`);
    const [job] = await tx.select().from(jobs).where(eq(jobs.id, jobId));
    if (!job) throw new AppError('NOT_FOUND', 'job not found');
    if (reviewer.operatorId === job.operatorId || reviewer.id === job.submittedBy) {
      throw new AppError('SELF_REVIEW', 'nobody reviews a job of their own operator');
    }
    if (job.status !== 'in_review') throw new AppError('INVALID_TRANSITION', `a ${job.status.replace('_', ' ')} job is not waiting for review`);
    const [earlier] = await tx.select().from(reviews).where(and(eq(reviews.jobId, jobId), eq(reviews.reviewerId, reviewer.id)));
    if (earlier) throw new AppError('DUPLICATE_REVIEW', 'you have already reviewed this job; a second review must come from someone else');
    await tx.insert(reviews).values({ id: `rev_${crypto.randomUUID()}`, jobId, reviewerId: reviewer.id, decision: decision.decision, reason: decision.reason, createdAt: now });
    const approvals = (await tx.select().from(reviews).where(and(eq(reviews.jobId, jobId), eq(reviews.decision, 'approve')))).length;
    const completes = decision.decision === 'approve' && approvals >= job.reviewersRequired;
    // Before the audit log's lock (taken by appendAuditEvents), in the order a status change or revision takes them.
    if (completes) await requireReleasable(tx as never, job, { now, policyHash: deps.disclosurePolicy.hash });
    const events = [
      { type: 'review.recorded', actor: reviewer.id, operator: job.operatorId, job: jobId, datasets: job.datasets, details: { decision: decision.decision, reason: decision.reason, approvals, required: job.reviewersRequired } },
    ];
    if (decision.decision === 'withhold') {
      await tx.update(jobs).set({ status: 'withheld', stage: null, statusCode: 'REVIEW_WITHHELD', statusReason: 'a reviewer withheld the output' }).where(eq(jobs.id, jobId));
      events.push({ type: 'job.withheld', actor: reviewer.id, operator: job.operatorId, job: jobId, datasets: job.datasets, details: { decision: 'withhold', reason: decision.reason, approvals, required: job.reviewersRequired } });
    } else {
      await tx.update(jobs).set({ stage: `${approvals} of ${job.reviewersRequired} approval(s)` }).where(eq(jobs.id, jobId));
    }
    await appendAuditEvents(tx as never, events, now);
    // The approval that completes the review commits with the release it makes: refused (a licence no longer in
    // force, a catalogue entry or the policy changed), neither is recorded and the reviewer can decide again; never an approval
    // with no release.
    if (completes) return releaseWithin(tx as never, deps, jobId, reviewer.id);
    const [after] = await tx.select().from(jobs).where(eq(jobs.id, jobId));
    return after!;
  });
}
