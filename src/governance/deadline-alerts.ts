import { and, eq, isNull, lt } from 'drizzle-orm';
import { datasets, disputes, sharingRequests } from '../db/schema.js';
import type { Platform } from '../platform.js';
import { chinaDay } from '../time/china-time.js';
import { recordIncident } from './incidents.js';
import { applyIdleRules } from './sharing-channels.js';
import { raiseEvaluationAlerts } from './sharing-evaluations.js';

/**
 * Alerts regulators, once each, to sharing requests (art. 18) and disputes (art. 13) left unanswered past their
 * deadline: an incident with its audit leaf, so the alert itself is evidence. Refusing or delaying sharing is a
 * violation under art. 28; the alert names the source institution that owes the answer.
 */
async function raiseOverdueAlerts(platform: Pick<Platform, 'db' | 'clock'>): Promise<void> {
  const now = platform.clock();
  const today = chinaDay(now);
  const lateRequests = await platform.db
    .select({ id: sharingRequests.id, datasetId: sharingRequests.datasetId, requester: sharingRequests.requesterInstitutionId, dueOn: sharingRequests.dueOn, source: datasets.institutionId })
    .from(sharingRequests)
    .innerJoin(datasets, eq(datasets.id, sharingRequests.datasetId))
    .where(and(eq(sharingRequests.status, 'pending'), lt(sharingRequests.dueOn, today), isNull(sharingRequests.overdueAlertedAt)));
  for (const request of lateRequests) {
    await platform.db.transaction(async (tx) => {
      // The conditional update decides which of several sweeping servers raises the alert.
      const claimed = await tx.update(sharingRequests).set({ overdueAlertedAt: now }).where(and(eq(sharingRequests.id, request.id), isNull(sharingRequests.overdueAlertedAt), eq(sharingRequests.status, 'pending'))).returning({ id: sharingRequests.id });
      if (claimed.length > 0) await recordIncident(tx, { kind: 'sharing_overdue', detail: { datasets: [request.datasetId], request: request.id, institution: request.source, requester: request.requester, dueOn: request.dueOn } }, now);
    });
  }
  const lateDisputes = await platform.db
    .select({ id: disputes.id, datasetId: disputes.datasetId, raiser: disputes.raiserInstitutionId, dueOn: disputes.dueOn, source: datasets.institutionId })
    .from(disputes)
    .innerJoin(datasets, eq(datasets.id, disputes.datasetId))
    .where(and(eq(disputes.status, 'open'), lt(disputes.dueOn, today), isNull(disputes.overdueAlertedAt)));
  for (const dispute of lateDisputes) {
    await platform.db.transaction(async (tx) => {
      const claimed = await tx.update(disputes).set({ overdueAlertedAt: now }).where(and(eq(disputes.id, dispute.id), isNull(disputes.overdueAlertedAt), eq(disputes.status, 'open'))).returning({ id: disputes.id });
      if (claimed.length > 0) await recordIncident(tx, { kind: 'dispute_overdue', detail: { datasets: [dispute.datasetId], dispute: dispute.id, institution: dispute.source, raiser: dispute.raiser, dueOn: dispute.dueOn } }, now);
    });
  }
}

/** Everything time alone changes in the governance workflows: idle channels, deadlines and evaluations that passed. */
export async function sweepGovernance(platform: Pick<Platform, 'db' | 'clock' | 'governance'>): Promise<void> {
  await applyIdleRules(platform);
  await raiseOverdueAlerts(platform);
  await raiseEvaluationAlerts(platform);
}
