import { z } from 'zod';
import { PolicyFileError, readPolicyFile } from '../policy/policy-file.js';

const fen = z.number().int().min(0).max(100_000_000);

const pricingSchema = z.strictObject({
  version: z.literal(1),
  currency: z.literal('CNY'),
  fees: z.strictObject({
    publicInterestFen: fen,
    industryDefaultFen: fen,
    monthlyCapFen: fen,
    products: z.record(z.string(), z.strictObject({ industryFen: fen })).default({}),
  }),
  quotas: z.strictObject({
    ratePerSecond: z.number().min(0.1).max(100_000),
    burst: z.number().int().min(1).max(1_000_000),
    dailyCalls: z.number().int().min(1).max(100_000_000),
  }),
  probing: z.strictObject({
    window: z.number().int().min(10).max(10_000),
    minDistinctSubjects: z.number().int().min(2),
    maxMatchRate: z.number().min(0).max(1),
    sequentialRun: z.number().int().min(3).max(10_000),
    nearDistance: z.number().int().min(1),
    throttleMinutes: z.number().min(1).max(7 * 24 * 60),
  }),
});

export type Pricing = z.infer<typeof pricingSchema> & { hash: string };
export type ProductUse = 'public_interest' | 'industry';

export function loadPricing(file: string): Pricing {
  const { data, hash } = readPolicyFile(file, pricingSchema);
  if (data.probing.minDistinctSubjects > data.probing.window) {
    throw new PolicyFileError(`${file}: probing.minDistinctSubjects cannot exceed probing.window`);
  }
  return { ...data, hash };
}

/** The listed price of one call, before the monthly cap. */
export function listPriceFen(pricing: Pricing, productId: string, use: ProductUse): number {
  if (use === 'public_interest') return pricing.fees.publicInterestFen;
  return pricing.fees.products[productId]?.industryFen ?? pricing.fees.industryDefaultFen;
}

/** What this call costs given what the consumer has paid this month: never more than the cap in total. */
export function chargeFen(pricing: Pricing, productId: string, use: ProductUse, paidThisMonthFen: number): number {
  return Math.max(0, Math.min(listPriceFen(pricing, productId, use), pricing.fees.monthlyCapFen - paidThisMonthFen));
}
