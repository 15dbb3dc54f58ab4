import crypto from 'node:crypto';
import { eq } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import type { Database } from '../db/connect.js';
import { incidents, type EarlierFinding } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';

type Executor = Pick<Database, 'insert' | 'select' | 'execute'>;
export type IncidentKind = (typeof incidents.$inferInsert)['kind'];

/**
 * Records something regulators must look at (over-scope use, probing, channel misuse: measures arts. 17, 28) with
 * its audit leaf, in the caller's transaction, so the supervision report's incident counts trace to the log.
 * Details name datasets, columns and principals, never a data value.
 */
export async function recordIncident(
  tx: Executor,
  incident: { kind: IncidentKind; operatorId?: string | null; principalId?: string | null; jobId?: string | null; detail: Record<string, unknown> },
  now: Date,
): Promise<string> {
  const id = `inc_${crypto.randomUUID()}`;
  await tx.insert(incidents).values({ id, kind: incident.kind, operatorId: incident.operatorId ?? null, principalId: incident.principalId ?? null, jobId: incident.jobId ?? null, detail: incident.detail, createdAt: now });
  const datasets = Array.isArray(incident.detail.datasets) ? (incident.detail.datasets as string[]) : undefined;
  await appendAuditEvents(
    tx,
    [{ type: 'incident.recorded', actor: incident.principalId ?? 'system', operator: incident.operatorId ?? null, job: incident.jobId ?? null, ...(datasets ? { datasets } : {}), details: { incident: id, kind: incident.kind, ...incident.detail } }],
    now,
  );
  return id;
}

export const incidentOutcomes = ['no_action', 'operator_warned', 'licence_action', 'referred'] as const;
export const incidentResolutionSchema = z.strictObject({
  /**
   * What the regulator did: nothing to act on (explained, benign), warned the operator, acted on its licence
   * (suspended, narrowed: done on the licence itself, which keeps its own reason), or referred it elsewhere.
   */
  outcome: z.enum(incidentOutcomes),
  /** Why, in the regulator's words: kept with the incident and in the audit log. */
  reason: z.string().trim().min(4).max(2000),
});

/**
 * A regulator's finding on an incident, once: an incident is resolved by one regulator and stays resolved; a
 * finding found wrong later is corrected (`correctIncidentFinding`), never recorded twice. Its audit leaf
 * `incident.resolved` names the incident, its kind and the outcome, so the log shows which incidents were looked
 * into and how.
 */
export async function resolveIncident(db: Database, principal: { id: string }, id: string, input: z.infer<typeof incidentResolutionSchema>, now: Date) {
  return db.transaction(async (tx) => {
    const [known] = await tx.select().from(incidents).where(eq(incidents.id, id)).for('update');
    if (!known) throw notFound('incident');
    if (known.resolvedAt) throw new AppError('INVALID_TRANSITION', `the incident was resolved already (${known.outcome?.replaceAll('_', ' ')})`);
    const [row] = await tx.update(incidents).set({ outcome: input.outcome, outcomeReason: input.reason, resolvedBy: principal.id, resolvedAt: now }).where(eq(incidents.id, id)).returning();
    const datasets = Array.isArray(known.detail.datasets) ? (known.detail.datasets as string[]) : undefined;
    await appendAuditEvents(
      tx as never,
      [{ type: 'incident.resolved', actor: principal.id, operator: known.operatorId, job: known.jobId, ...(datasets ? { datasets } : {}), details: { incident: id, kind: known.kind, outcome: input.outcome, reason: input.reason } }],
      now,
    );
    return row!;
  });
}

/**
 * A finding found wrong later (the operator's explanation turned out false, a warning was meant as a licence
 * action): a regulator records the finding that stands, with why the earlier one is replaced. Nothing is erased —
 * the earlier finding moves to `earlierFindings` with who corrected it, and the audit log keeps both leaves
 * (`incident.resolved`, then `incident.finding-corrected` naming the earlier and the new outcome). Only a resolved
 * incident has a finding to correct.
 */
export async function correctIncidentFinding(db: Database, principal: { id: string }, id: string, input: z.infer<typeof incidentResolutionSchema>, now: Date) {
  return db.transaction(async (tx) => {
    const [known] = await tx.select().from(incidents).where(eq(incidents.id, id)).for('update');
    if (!known) throw notFound('incident');
    if (!known.resolvedAt || !known.outcome) throw new AppError('INVALID_TRANSITION', 'the incident is open: record a finding first; only a finding can be corrected');
    const earlier: EarlierFinding = {
      outcome: known.outcome,
      reason: known.outcomeReason ?? '',
      resolvedBy: known.resolvedBy ?? '',
      resolvedAt: known.resolvedAt.toISOString(),
      correctedBy: principal.id,
      correctedAt: now.toISOString(),
    };
    const [row] = await tx
      .update(incidents)
      .set({ outcome: input.outcome, outcomeReason: input.reason, resolvedBy: principal.id, resolvedAt: now, earlierFindings: [...known.earlierFindings, earlier] })
      .where(eq(incidents.id, id))
      .returning();
    const datasets = Array.isArray(known.detail.datasets) ? (known.detail.datasets as string[]) : undefined;
    await appendAuditEvents(
      tx as never,
      [
        {
          type: 'incident.finding-corrected',
          actor: principal.id,
          operator: known.operatorId,
          job: known.jobId,
          ...(datasets ? { datasets } : {}),
          details: { incident: id, kind: known.kind, earlierOutcome: known.outcome, outcome: input.outcome, reason: input.reason },
        },
      ],
      now,
    );
    return row!;
  });
}
