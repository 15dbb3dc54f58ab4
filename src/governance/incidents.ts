import crypto from 'node:crypto';
import { appendAuditEvents } from '../audit/audit-log.js';
import type { Database } from '../db/connect.js';
import { incidents } from '../db/schema.js';

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
