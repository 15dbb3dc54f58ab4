import { and, asc, eq, gte, lt, sql, type SQL } from 'drizzle-orm';
import type { Database } from '../db/connect.js';
import { productCalls, products } from '../db/schema.js';
import type { PrincipalRow } from '../identity/principals.js';
import { chinaDayStart } from '../time/china-time.js';

/**
 * Metering read back: usage for consumers (their own calls), operators (calls of their products) and regulators
 * (everything), and the annual disclosure report of products, calls and fees (measures ch. 4, art. 27).
 * Counts and sums only: no subject, request or answer leaves here.
 */
export type UsageRow = { product: string; mode: string; use: string; calls: number; feesFen: number; firstCall: string | null; lastCall: string | null };

export async function usageFor(db: Database, principal: PrincipalRow, period: { from: Date; to: Date }): Promise<UsageRow[]> {
  const filters: SQL[] = [gte(productCalls.calledAt, period.from), lt(productCalls.calledAt, period.to)];
  if (principal.role === 'consumer') filters.push(eq(productCalls.consumerId, principal.id));
  if (principal.role === 'operator') filters.push(eq(products.operatorId, principal.operatorId ?? '-'));
  const rows = await db
    .select({
      product: productCalls.productId,
      mode: productCalls.mode,
      use: productCalls.use,
      calls: sql<number>`count(*)`.mapWith(Number),
      feesFen: sql<number>`coalesce(sum(${productCalls.feeFen}), 0)`.mapWith(Number),
      firstCall: sql<string | null>`min(${productCalls.calledAt})`,
      lastCall: sql<string | null>`max(${productCalls.calledAt})`,
    })
    .from(productCalls)
    .innerJoin(products, eq(products.id, productCalls.productId))
    .where(and(...filters))
    .groupBy(productCalls.productId, productCalls.mode, productCalls.use)
    .orderBy(asc(productCalls.productId), asc(productCalls.mode), asc(productCalls.use));
  return rows.map((row) => ({ ...row, firstCall: isoOrNull(row.firstCall), lastCall: isoOrNull(row.lastCall) }));
}

const isoOrNull = (value: string | Date | null) => (value === null ? null : new Date(value).toISOString());

export type AnnualReportRow = {
  product: string;
  title: string;
  titleZh: string;
  operator: string;
  status: string;
  calls: number;
  publicInterestCalls: number;
  industryCalls: number;
  encryptedCalls: number;
  distinctConsumers: number;
  feesFen: number;
};

/** One calendar year (China Standard Time) per product, including products that were never called. */
export async function annualProductReport(db: Database, year: number): Promise<{ year: number; currency: 'CNY'; products: AnnualReportRow[]; totals: { calls: number; feesFen: number } }> {
  const from = chinaDayStart(`${year}-01-01`);
  const to = chinaDayStart(`${year + 1}-01-01`);
  const calls = await db
    .select({
      product: productCalls.productId,
      calls: sql<number>`count(*)`.mapWith(Number),
      publicInterestCalls: sql<number>`count(*) FILTER (WHERE ${productCalls.use} = 'public_interest')`.mapWith(Number),
      industryCalls: sql<number>`count(*) FILTER (WHERE ${productCalls.use} = 'industry')`.mapWith(Number),
      encryptedCalls: sql<number>`count(*) FILTER (WHERE ${productCalls.mode} = 'encrypted')`.mapWith(Number),
      distinctConsumers: sql<number>`count(DISTINCT ${productCalls.consumerId})`.mapWith(Number),
      feesFen: sql<number>`coalesce(sum(${productCalls.feeFen}), 0)`.mapWith(Number),
    })
    .from(productCalls)
    .where(and(gte(productCalls.calledAt, from), lt(productCalls.calledAt, to)))
    .groupBy(productCalls.productId);
  const byProduct = new Map(calls.map((row) => [row.product, row]));
  const rows = (await db.select().from(products).orderBy(asc(products.id))).map((product): AnnualReportRow => {
    const counted = byProduct.get(product.id);
    return {
      product: product.id,
      title: product.title,
      titleZh: product.titleZh,
      operator: product.operatorId,
      status: product.status,
      calls: counted?.calls ?? 0,
      publicInterestCalls: counted?.publicInterestCalls ?? 0,
      industryCalls: counted?.industryCalls ?? 0,
      encryptedCalls: counted?.encryptedCalls ?? 0,
      distinctConsumers: counted?.distinctConsumers ?? 0,
      feesFen: counted?.feesFen ?? 0,
    };
  });
  return {
    year,
    currency: 'CNY',
    products: rows,
    totals: { calls: rows.reduce((sum, row) => sum + row.calls, 0), feesFen: rows.reduce((sum, row) => sum + row.feesFen, 0) },
  };
}
