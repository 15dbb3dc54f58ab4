import { and, asc, count, desc, eq, gte } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents, lockAuditLog } from '../audit/audit-log.js';
import type { Database } from '../db/connect.js';
import { auditLeaves, principals, productCalls, products } from '../db/schema.js';
import { chinaDay, chinaDayStart, secondsToNextChinaDay } from '../time/china-time.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import type { Platform } from '../platform.js';

/**
 * A person's right to know who checked them (PIPL arts. 44–45; measures art. 26: personal information protected).
 * Verification products answer questions about residents and enterprises; a person who asks the data centre — in
 * person, identity checked off the platform — is told every check of them: which product, which consumer, when, for
 * what stated purpose and use. Calls are found by the keyed subject hash they were metered under, so the identifier
 * is never stored, and one request covers every product that keys subjects the same way (a resident ID number
 * checked through any product). Answers (match or not) are not listed: the person knows their own data, and a
 * list of answers is what a misused request would be after.
 *
 * Every request is an audit leaf naming who answered it and the request's reference, never the identifier or its
 * hash, so regulators can see each use of this power and ask for the paperwork behind it.
 */
export const subjectAccessSchema = z.strictObject({
  /** A verification product whose subject inputs name the person (any status: a retired product's calls count). */
  product: z.string().regex(/^[a-z][a-z0-9-]{2,62}$/, 'is a product id'),
  /** The product's subject inputs (e.g. `{ "id_number": "…" }`), checked as a call's would be. */
  input: z.record(z.string(), z.string().max(200)),
  /** The reference of the person's written request, kept on file by the data centre. */
  reference: z.string().trim().min(1).max(100),
});

/** Checks listed at most (newest first); a person checked more often than this is told how many more there are. */
export const subjectAccessLimit = 1_000;

export type SubjectCheck = { product: string; productTitle: string; productTitleZh: string; consumer: string; consumerName: string; calledAt: string; use: string; purpose: string; mode: string; auditIndex: number };

export async function answerSubjectAccess(platform: Platform, principal: PrincipalRow, request: z.infer<typeof subjectAccessSchema>): Promise<{ reference: string; checks: SubjectCheck[]; total: number; auditIndex: number }> {
  // An account past its day's limit is refused before anything about the person is looked up; the count under the
  // lock below still decides for requests sent together at the limit.
  await requireDailyAllowance(platform.db, platform, principal);
  const [product] = await platform.db.select().from(products).where(eq(products.id, request.product));
  if (!product) throw notFound('product');
  if (product.kind !== 'verification') throw new AppError('VALIDATION_FAILED', 'subjects are named through a verification product', [{ path: 'product', problem: 'is a scoring product: its inputs are features, not a subject' }]);
  const subject = platform.products.subjectOf(product, request.input);
  const rows = await platform.db
    .select({ call: productCalls, productTitle: products.title, productTitleZh: products.titleZh, consumerName: principals.displayName })
    .from(productCalls)
    .innerJoin(products, eq(products.id, productCalls.productId))
    .innerJoin(principals, eq(principals.id, productCalls.consumerId))
    .where(eq(productCalls.subjectHash, subject))
    .orderBy(desc(productCalls.calledAt), asc(productCalls.id))
    .limit(subjectAccessLimit + 1);
  const total = rows.length > subjectAccessLimit ? await countChecks(platform, subject) : rows.length;
  const now = platform.clock();
  // Counted under the audit log's lock, in the transaction that records this answer: requests sent together at the
  // limit take turns, and only as many as the limit allows are answered (the lookup above is never returned then).
  const leaf = await platform.db.transaction(async (tx) => {
    await lockAuditLog(tx);
    await requireDailyAllowance(tx, platform, principal);
    const [index] = await appendAuditEvents(tx, [{ type: 'subject.access-answered', actor: principal.id, details: { reference: request.reference, product: product.id, checks: total } }], now);
    return index;
  });
  return {
    reference: request.reference,
    total,
    auditIndex: leaf!,
    checks: rows.slice(0, subjectAccessLimit).map(({ call, productTitle, productTitleZh, consumerName }) => ({
      product: call.productId,
      productTitle,
      productTitleZh,
      consumer: call.consumerId,
      consumerName,
      calledAt: call.calledAt.toISOString(),
      use: call.use,
      purpose: call.purpose,
      mode: call.mode,
      auditIndex: call.auditIndex,
    })),
  };
}

async function countChecks(platform: Platform, subject: string): Promise<number> {
  const [row] = await platform.db.select({ n: count() }).from(productCalls).where(eq(productCalls.subjectHash, subject));
  return row?.n ?? 0;
}

/**
 * One admin's requests today (China time), counted from the audit log, which keeps every answered request: the
 * count is the same in every API process and survives a restart. Refused past policies/governance.yaml's
 * `subjectAccess.requestsPerAdminPerDay` until the next China day.
 */
async function requireDailyAllowance(db: Pick<Database, 'select'>, platform: Platform, principal: PrincipalRow): Promise<void> {
  const now = platform.clock();
  const today = await db
    .select({ leaf: auditLeaves.leaf })
    .from(auditLeaves)
    .where(and(eq(auditLeaves.eventType, 'subject.access-answered'), gte(auditLeaves.createdAt, chinaDayStart(chinaDay(now)))));
  const answered = today.filter(({ leaf }) => (JSON.parse(leaf) as { actor?: string }).actor === principal.id).length;
  const limit = platform.governance.subjectAccess.requestsPerAdminPerDay;
  if (answered >= limit) {
    throw new AppError('RATE_LIMITED', `${limit} subject access requests a day is the most one account answers; more can be answered tomorrow (China time)`, [], secondsToNextChinaDay(now));
  }
}
