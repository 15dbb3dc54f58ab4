import { and, asc, desc, eq, gte, inArray, lt, sql } from 'drizzle-orm';
import type { Database } from '../db/connect.js';
import { auditLeaves, incidents, institutions, jobs, operators, productCalls, products } from '../db/schema.js';
import { productDatasets } from '../products/product-spec.js';

/**
 * One dataset's use trail (measures art. 12: the data centre makes "data use traceable", 数据使用可追溯): every job
 * over it, every product built on it with its calls counted, every pull through a sharing channel, every export for a
 * request from outside Lingang and every high-quality dataset derived from it, in a period — each with the audit
 * leaves that record it, so that a reader can prove each line against a signed checkpoint.
 *
 * Who used the data, when, for what stated purpose and with what outcome; never the SQL (an operator's method is
 * its own; regulators read it on the job), never a consumer, a subject or an answer (product calls are counted per
 * product), never a row.
 */
export type DatasetUses = {
  dataset: string;
  institution: string;
  from: string;
  to: string;
  jobs: JobUse[];
  /** More jobs fell in the period than are listed (the newest are). */
  jobsTruncated: boolean;
  products: ProductUse[];
  channelPulls: TransferUse[];
  externalDeliveries: TransferUse[];
  derivedDatasets: DerivedUse[];
  /** Attempted misuse of the data the platform caught: the source should know its data was reached for. */
  incidents: IncidentUse[];
  totals: { jobs: number; jobsReleased: number; productCalls: number; channelPulls: number; rowsPulled: number; externalDeliveries: number; rowsDelivered: number; derivedDatasets: number; incidents: number };
};

export type JobUse = {
  job: string;
  operator: string;
  operatorName: string;
  operatorNameZh: string | null;
  kind: string | null;
  purpose: string;
  status: string;
  /** Why it stands so: a refusal's code (OVER_SCOPE: it named data outside its licence) or a run's; never its reason text. */
  code: string | null;
  submittedAt: string;
  /** Every leaf of the job, oldest first: queued, reviewed, budget reserved, released or withheld … */
  auditIndexes: number[];
};

export type ProductUse = {
  product: string;
  title: string;
  titleZh: string;
  kind: string;
  operator: string;
  status: string;
  calls: number;
  publicInterestCalls: number;
  industryCalls: number;
  firstCall: string | null;
  lastCall: string | null;
  /** The first and last calls' leaves in the period; each call has its own (`GET /v1/audit/entries?dataset=`). */
  firstAuditIndex: number | null;
  lastAuditIndex: number | null;
};

/** A copy of data leaving the sandbox for a public body: a channel pull (art. 17) or an export for the city (art. 19). */
export type TransferUse = {
  at: string;
  /** The public body that received it (a channel's requester), or the requester outside Lingang. */
  recipient: string;
  recipientName: string | null;
  recipientNameZh: string | null;
  channel?: number;
  request?: number;
  version: number;
  rows: number;
  columns: string[];
  auditIndex: number;
};

export type DerivedUse = { at: string; dataset: string; job: string; auditIndex: number };

/**
 * An incident over the dataset: its kind, and the operator and job where an operator's job caused it, and the
 * outcome a regulator recorded once it looked into it (null while open). Not who else caused one (a consumer
 * probing a product, a public body pulling beyond its channel), its detail, or the regulator's reason: regulators
 * read those on the incidents page.
 */
export type IncidentUse = { at: string; kind: string; operator: string | null; job: string | null; outcome: string | null; auditIndex: number };

/** Incidents that are about using the data; deadline alerts (a late answer, a late evaluation) are about its source. */
export const misuseIncidentKinds = ['over_scope', 'probing', 'enumeration', 'channel_over_scope', 'channel_volume', 'differencing'];

/** At most this many jobs are listed, newest first; the totals count them all. */
export const jobsListed = 500;

export async function datasetUses(db: Database, dataset: { id: string; institutionId: string }, period: { from: Date; to: Date }): Promise<DatasetUses> {
  const overDataset = sql`${jobs.datasets} @> ${JSON.stringify([dataset.id])}::jsonb`;
  const inPeriod = and(gte(jobs.createdAt, period.from), lt(jobs.createdAt, period.to));
  const [jobRows, jobCounts, productRows, trailLeaves] = await Promise.all([
    db
      .select({ id: jobs.id, operator: jobs.operatorId, operatorName: operators.name, operatorNameZh: operators.nameZh, kind: jobs.kind, purpose: jobs.purpose, status: jobs.status, code: jobs.statusCode, createdAt: jobs.createdAt })
      .from(jobs)
      .innerJoin(operators, eq(operators.id, jobs.operatorId))
      .where(and(overDataset, inPeriod))
      .orderBy(desc(jobs.createdAt), desc(jobs.id))
      .limit(jobsListed + 1),
    db
      .select({ jobs: sql<number>`count(*)`.mapWith(Number), released: sql<number>`count(*) FILTER (WHERE ${jobs.status} = 'released')`.mapWith(Number) })
      .from(jobs)
      .where(and(overDataset, inPeriod)),
    db.select({ id: products.id, title: products.title, titleZh: products.titleZh, kind: products.kind, operator: products.operatorId, status: products.status, spec: products.spec }).from(products).orderBy(asc(products.id)),
    db
      .select({ index: auditLeaves.leafIndex, leaf: auditLeaves.leaf, type: auditLeaves.eventType })
      .from(auditLeaves)
      .where(
        and(
          inArray(auditLeaves.eventType, ['channel.pulled', 'external.delivered', 'derived.published', 'incident.recorded']),
          sql`${auditLeaves.datasets} @> ${JSON.stringify([dataset.id])}::jsonb`,
          gte(auditLeaves.createdAt, period.from),
          lt(auditLeaves.createdAt, period.to),
        ),
      )
      .orderBy(asc(auditLeaves.leafIndex)),
  ]);

  const listedJobs = jobRows.slice(0, jobsListed);
  const jobLeaves = listedJobs.length
    ? await db
        .select({ job: auditLeaves.jobId, index: auditLeaves.leafIndex })
        .from(auditLeaves)
        .where(inArray(auditLeaves.jobId, listedJobs.map((job) => job.id)))
        .orderBy(asc(auditLeaves.leafIndex))
    : [];
  const leavesOf = new Map<string, number[]>();
  for (const leaf of jobLeaves) leavesOf.set(leaf.job!, [...(leavesOf.get(leaf.job!) ?? []), leaf.index]);

  const builtOn = productRows.filter((product) => productDatasets(product.spec).includes(dataset.id));
  const calls = builtOn.length
    ? await db
        .select({
          product: productCalls.productId,
          calls: sql<number>`count(*)`.mapWith(Number),
          publicInterest: sql<number>`count(*) FILTER (WHERE ${productCalls.use} = 'public_interest')`.mapWith(Number),
          firstCall: sql<string | Date | null>`min(${productCalls.calledAt})`,
          lastCall: sql<string | Date | null>`max(${productCalls.calledAt})`,
          firstIndex: sql<number | null>`min(${productCalls.auditIndex})`.mapWith((value) => (value === null ? null : Number(value))),
          lastIndex: sql<number | null>`max(${productCalls.auditIndex})`.mapWith((value) => (value === null ? null : Number(value))),
        })
        .from(productCalls)
        .where(and(inArray(productCalls.productId, builtOn.map((product) => product.id)), gte(productCalls.calledAt, period.from), lt(productCalls.calledAt, period.to)))
        .groupBy(productCalls.productId)
    : [];
  const callsOf = new Map(calls.map((row) => [row.product, row]));

  const trail = trailLeaves.map((row) => ({ index: row.index, type: row.type, event: JSON.parse(row.leaf) as { at: string; operator?: string | null; job?: string | null; details: Record<string, unknown> } }));
  const recipients = new Set(trail.flatMap(({ type, event }) => (type === 'channel.pulled' ? [String(event.details.institution)] : [])));
  const names = recipients.size ? new Map((await db.select().from(institutions).where(inArray(institutions.id, [...recipients]))).map((row) => [row.id, row])) : new Map();
  const transfer = (index: number, event: { at: string; details: Record<string, any> }, recipient: string): TransferUse => ({
    at: event.at,
    recipient,
    recipientName: names.get(recipient)?.name ?? null,
    recipientNameZh: names.get(recipient)?.nameZh ?? null,
    version: Number(event.details.version),
    rows: Number(event.details.rows),
    columns: (event.details.columns as string[] | undefined) ?? [],
    auditIndex: index,
  });
  const channelPulls = trail.filter((row) => row.type === 'channel.pulled').map(({ index, event }) => ({ ...transfer(index, event, String(event.details.institution)), channel: Number(event.details.channel) }));
  const externalDeliveries = trail.filter((row) => row.type === 'external.delivered').map(({ index, event }) => ({ ...transfer(index, event, String(event.details.requester)), request: Number(event.details.request) }));
  const derivedDatasets = trail
    .filter((row) => row.type === 'derived.published')
    .map(({ index, event }) => ({ at: event.at, dataset: String(event.details.dataset), job: event.job ?? '', auditIndex: index }));

  const incidentLeaves = trail.filter((row) => row.type === 'incident.recorded' && misuseIncidentKinds.includes(String(row.event.details.kind)));
  const incidentIds = incidentLeaves.map(({ event }) => String(event.details.incident));
  const outcomes = new Map(
    incidentIds.length ? (await db.select({ id: incidents.id, outcome: incidents.outcome }).from(incidents).where(inArray(incidents.id, incidentIds))).map((row) => [row.id, row.outcome]) : [],
  );
  const incidentUses: IncidentUse[] = incidentLeaves.map(({ index, event }) => ({
    at: event.at,
    kind: String(event.details.kind),
    operator: event.operator ?? null,
    job: event.job ?? null,
    outcome: outcomes.get(String(event.details.incident)) ?? null,
    auditIndex: index,
  }));

  const productUses: ProductUse[] = builtOn.map((product) => {
    const counted = callsOf.get(product.id);
    return {
      product: product.id,
      title: product.title,
      titleZh: product.titleZh,
      kind: product.kind,
      operator: product.operator,
      status: product.status,
      calls: counted?.calls ?? 0,
      publicInterestCalls: counted?.publicInterest ?? 0,
      industryCalls: (counted?.calls ?? 0) - (counted?.publicInterest ?? 0),
      firstCall: counted?.firstCall ? new Date(counted.firstCall).toISOString() : null,
      lastCall: counted?.lastCall ? new Date(counted.lastCall).toISOString() : null,
      firstAuditIndex: counted?.firstIndex ?? null,
      lastAuditIndex: counted?.lastIndex ?? null,
    };
  });

  return {
    dataset: dataset.id,
    institution: dataset.institutionId,
    from: period.from.toISOString(),
    to: period.to.toISOString(),
    jobs: listedJobs.map((job) => ({
      job: job.id,
      operator: job.operator,
      operatorName: job.operatorName,
      operatorNameZh: job.operatorNameZh,
      kind: job.kind,
      purpose: job.purpose,
      status: job.status,
      code: job.code,
      submittedAt: job.createdAt.toISOString(),
      auditIndexes: leavesOf.get(job.id) ?? [],
    })),
    jobsTruncated: jobRows.length > jobsListed,
    products: productUses,
    channelPulls,
    externalDeliveries,
    derivedDatasets,
    incidents: incidentUses,
    totals: {
      jobs: jobCounts[0]?.jobs ?? 0,
      jobsReleased: jobCounts[0]?.released ?? 0,
      productCalls: productUses.reduce((sum, product) => sum + product.calls, 0),
      channelPulls: channelPulls.length,
      rowsPulled: channelPulls.reduce((sum, pull) => sum + pull.rows, 0),
      externalDeliveries: externalDeliveries.length,
      rowsDelivered: externalDeliveries.reduce((sum, delivery) => sum + delivery.rows, 0),
      derivedDatasets: derivedDatasets.length,
      incidents: incidentUses.length,
    },
  };
}

/**
 * The trail as one table, a line per use, for a source to file or a regulator to sort: what kind of use, when, by
 * or to whom, what (a job's purpose, a product, the columns copied, a derived dataset, an incident's job), its state
 * and code, its calls or rows, and its audit leaves (space-separated; a product's first and last call).
 */
export const datasetUsesColumns = ['use', 'at', 'by_or_to', 'what', 'state', 'code', 'calls', 'rows', 'audit_leaves'] as const;

export function datasetUsesTable(uses: DatasetUses): unknown[][] {
  const leaves = (indexes: Array<number | null>) => indexes.filter((index) => index !== null).join(' ');
  return [
    ...uses.jobs.map((job) => ['job', job.submittedAt, job.operator, job.purpose, job.status, job.code, null, null, leaves(job.auditIndexes)]),
    ...uses.products.map((product) => ['product_calls', product.lastCall, product.operator, product.product, product.status, null, product.calls, null, leaves([product.firstAuditIndex, product.lastAuditIndex])]),
    ...uses.channelPulls.map((pull) => ['channel_pull', pull.at, pull.recipient, pull.columns.join(' '), `v${pull.version}`, null, null, pull.rows, leaves([pull.auditIndex])]),
    ...uses.externalDeliveries.map((delivery) => ['external_delivery', delivery.at, delivery.recipient, delivery.columns.join(' '), `v${delivery.version}`, null, null, delivery.rows, leaves([delivery.auditIndex])]),
    ...uses.derivedDatasets.map((derived) => ['derived_dataset', derived.at, null, derived.dataset, null, null, null, null, leaves([derived.auditIndex])]),
    ...uses.incidents.map((incident) => ['incident', incident.at, incident.operator, incident.job, incident.outcome ?? 'open', incident.kind, null, null, leaves([incident.auditIndex])]),
  ];
}
