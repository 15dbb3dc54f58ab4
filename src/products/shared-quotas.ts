import { inArray, sql, type SQL } from 'drizzle-orm';
import type { Database } from '../db/connect.js';
import { rowsOf, type SqlRunner } from '../db/raw-rows.js';
import { consumerQuotas, productCalls } from '../db/schema.js';
import type { AppError } from '../errors/app-error.js';
import { chinaDay, chinaDayStart, chinaMonth } from '../time/china-time.js';
import { chargeFen, type Pricing, type ProductUse } from './pricing.js';
import { quotaRefusals } from './quotas.js';

/**
 * The limits that must hold however many API processes answer product calls: a consumer's calls a day, a
 * subject's checks a day across all consumers, a consumer's calls of a scoring product a day, the monthly fee
 * cap, and a throttle after probing. Each process checks its own counters first (quotas.ts), so a refused call
 * costs no lookup and no SEAL evaluation; the control plane's counts, read here, decide.
 *
 * They are settled by the call ledger in the transaction that records the batch's calls, after it has taken the
 * audit log's lock: every process's product-call transactions take turns there, so reading the counts and
 * writing them back cannot race. A call refused here has been looked up but gets no answer, no record and no
 * fee; the counts move only for calls that are recorded. The rate limit (calls per second) stays per process.
 *
 * A consumer's counts are one row of `consumer_quotas`, read and rewritten once per batch (counting a busy
 * consumer's day from the metering table would read up to 100,000 rows per batch; a row per counter cost twice
 * the writes, measured with bench/products). A subject's checks are counted from `product_calls` through its
 * (subject, time) index: a few rows each, already written with the call, where a row per subject would cost a
 * write per call.
 */
export type QuotaClaim = {
  consumerId: string;
  at: Date;
  productId: string;
  /** Sets the list price; what is charged is what fits under the monthly cap. */
  use: ProductUse;
  /** A verification call: the keyed subject hash and the product's daily limit per subject. */
  subject?: { hash: string; dailyLimit: number };
  /** A scoring call: the product's daily limit per consumer. */
  productDailyLimit?: number;
};

export type Settlement = { admitted: true; feeFen: number } | { admitted: false; refusal: AppError };

/** A consumer's counts: those of `day` and of `month` (China time); another day's are no longer in force. */
export type ConsumerQuota = {
  consumerId: string;
  day: string;
  callsToday: number;
  productCallsToday: Record<string, number>;
  month: string;
  feesThisMonthFen: number;
  /** Milliseconds since the epoch, or 0. */
  throttledUntil: number;
};
export type SubjectChecks = { subject: string; day: string; checks: number };
/** What the control plane has counted, for a process to catch up with. */
export type SharedCounts = { consumers: ConsumerQuota[]; subjects: SubjectChecks[] };

const dayMilliseconds = 86_400_000;

/** A consumer's counts as they stand for a call at `day` and `month`: a new day or month starts from zero. */
function rolledOver(quota: ConsumerQuota | undefined, consumerId: string, day: string, month: string): ConsumerQuota {
  const base = quota ?? { consumerId, day, callsToday: 0, productCallsToday: {}, month, feesThisMonthFen: 0, throttledUntil: 0 };
  return {
    ...base,
    // Counts never go back a day: a call stamped just before midnight, settled after one stamped just after (or
    // stamped by a process whose clock lags), counts against the new day.
    ...(base.day < day ? { day, callsToday: 0, productCallsToday: {} } : {}),
    ...(base.month < month ? { month, feesThisMonthFen: 0 } : {}),
  };
}

/**
 * Decides a batch in order, against the counts as they stand: throttle, the consumer's day, the subject's day,
 * the product's day, then the fee under the cap. Returns each call's settlement, the consumers whose counts
 * changed, and every count the batch read as it stands after the batch.
 */
export function decideClaims(pricing: Pricing, claims: QuotaClaim[], current: SharedCounts) {
  const consumers = new Map(current.consumers.map((quota) => [quota.consumerId, quota]));
  const subjects = new Map(current.subjects.map((entry) => [`${entry.day} ${entry.subject}`, entry]));
  const changed = new Set<string>();
  const settlements = claims.map((claim): Settlement => {
    const day = chinaDay(claim.at);
    const quota = rolledOver(consumers.get(claim.consumerId), claim.consumerId, day, chinaMonth(claim.at));
    const subject = claim.subject && (subjects.get(`${day} ${claim.subject.hash}`) ?? { subject: claim.subject.hash, day, checks: 0 });
    const callsOfProduct = quota.productCallsToday[claim.productId] ?? 0;
    if (quota.throttledUntil > claim.at.getTime()) return { admitted: false, refusal: quotaRefusals.throttled(quota.throttledUntil, claim.at) };
    if (quota.callsToday >= pricing.quotas.dailyCalls) return { admitted: false, refusal: quotaRefusals.consumerDay(pricing.quotas.dailyCalls, claim.at) };
    if (claim.subject && subject!.checks >= claim.subject.dailyLimit) return { admitted: false, refusal: quotaRefusals.subjectDay(claim.subject.dailyLimit, claim.at) };
    if (claim.productDailyLimit !== undefined && callsOfProduct >= claim.productDailyLimit) return { admitted: false, refusal: quotaRefusals.productDay(claim.productDailyLimit, claim.at) };
    const feeFen = chargeFen(pricing, claim.productId, claim.use, quota.feesThisMonthFen);
    consumers.set(claim.consumerId, {
      ...quota,
      callsToday: quota.callsToday + 1,
      productCallsToday: claim.productDailyLimit !== undefined ? { ...quota.productCallsToday, [claim.productId]: callsOfProduct + 1 } : quota.productCallsToday,
      feesThisMonthFen: quota.feesThisMonthFen + feeFen,
    });
    changed.add(claim.consumerId);
    if (subject) subjects.set(`${day} ${subject.subject}`, { ...subject, checks: subject.checks + 1 });
    return { admitted: true, feeFen };
  });
  return {
    settlements,
    changed: [...changed].map((consumerId) => consumers.get(consumerId)!),
    after: { consumers: [...consumers.values()], subjects: [...subjects.values()] } satisfies SharedCounts,
  };
}

const textArray = (values: string[]) => sql`ARRAY(SELECT jsonb_array_elements_text(${JSON.stringify(values)}::jsonb))`;

/** Checks of the given subjects (or of every subject) on a China day, as (subject, day, checks) rows. */
function subjectChecksQuery(day: string, hashes: string[] | 'every subject'): SQL {
  const start = chinaDayStart(day);
  const end = new Date(start.getTime() + dayMilliseconds);
  const which = hashes === 'every subject' ? sql`` : sql`${productCalls.subjectHash} = ANY(${textArray(hashes)}) AND`;
  return sql`SELECT ${productCalls.subjectHash} AS subject, ${day}::text AS day, count(*)::int AS checks FROM ${productCalls}
    WHERE ${which} ${productCalls.calledAt} >= ${start.toISOString()} AND ${productCalls.calledAt} < ${end.toISOString()} AND ${productCalls.mode} IN ('plain', 'encrypted')
    GROUP BY ${productCalls.subjectHash}`;
}

type ConsumerQuotaJson = { consumer_id: string; day: string; calls_today: number; product_calls_today: Record<string, number>; month: string; fees_this_month_fen: number | string; throttled_until: string | null };
const fromJson = (row: ConsumerQuotaJson): ConsumerQuota => ({
  consumerId: row.consumer_id,
  day: row.day,
  callsToday: Number(row.calls_today),
  productCallsToday: row.product_calls_today,
  month: row.month,
  feesThisMonthFen: Number(row.fees_this_month_fen),
  throttledUntil: row.throttled_until ? Date.parse(row.throttled_until) : 0,
});

/**
 * The counts of consumers and subjects as one row of two JSON arrays, `consumers` and `subjects`, so that the
 * ledger can read them in a statement it runs anyway.
 */
function countsQuery(consumerIds: string[] | 'every consumer', subjects: SQL[]): SQL {
  const which = consumerIds === 'every consumer' ? sql`` : sql`WHERE ${consumerQuotas.consumerId} = ANY(${textArray(consumerIds)})`;
  const subjectRows = subjects.length === 0 ? sql`SELECT NULL::text AS subject WHERE false` : sql.join(subjects, sql` UNION ALL `);
  return sql`(SELECT coalesce(jsonb_agg(${consumerQuotas}), '[]'::jsonb) FROM ${consumerQuotas} ${which}) AS consumers,
    (SELECT coalesce(jsonb_agg(checked), '[]'::jsonb) FROM (${subjectRows}) checked) AS subjects`;
}

type CountsJson = { consumers: ConsumerQuotaJson[]; subjects: SubjectChecks[] };
const countsFromJson = (row: CountsJson): SharedCounts => ({ consumers: row.consumers.map(fromJson), subjects: row.subjects });

export function createSharedQuotas(pricing: Pricing) {
  return {
    /**
     * A batch's settlement in two steps, so that the ledger can read the counts in a statement it runs anyway
     * (on PGlite each statement costs a fixed few hundred microseconds of the API thread). `columns` are two
     * JSON columns for the ledger's SELECT, which must run inside its transaction after it has taken the audit
     * log's lock. `settle` then decides each call from that row, and returns the statement that stores the
     * consumers' new counts (for the ledger to run with its inserts) and the counts as they stand after the
     * batch, for the process's own counters to catch up with what other processes have counted.
     */
    prepare(claims: QuotaClaim[]) {
      const subjectsByDay = new Map<string, string[]>();
      for (const claim of claims) {
        if (!claim.subject) continue;
        const day = chinaDay(claim.at);
        subjectsByDay.set(day, [...(subjectsByDay.get(day) ?? []), claim.subject.hash]);
      }
      const consumerIds = [...new Set(claims.map((claim) => claim.consumerId))];
      return {
        columns: countsQuery(consumerIds, [...subjectsByDay].map(([day, hashes]) => subjectChecksQuery(day, hashes))),
        /**
         * Settles the claims `decided` says are to be (a retry answered with an earlier call's answer is not); the
         * others get no settlement.
         */
        settle(row: CountsJson, decided: boolean[]): { settlements: Array<Settlement | undefined>; store: SQL[]; counts: SharedCounts } {
          const { settlements, changed, after } = decideClaims(pricing, claims.filter((_, index) => decided[index]), countsFromJson(row));
          let next = 0;
          return { settlements: claims.map((_, index) => (decided[index] ? settlements[next++] : undefined)), store: changed.length > 0 ? [storeCounts(changed)] : [], counts: after };
        },
      };
    },

    /**
     * Throttles a consumer in every process until `until` (a later throttle already set is kept). Only the
     * throttle is written, so a batch being recorded meanwhile keeps its counts, and this keeps the throttle.
     */
    async throttle(tx: SqlRunner, consumerId: string, until: Date): Promise<void> {
      await tx.execute(sql`INSERT INTO ${consumerQuotas} (consumer_id, day, calls_today, product_calls_today, month, fees_this_month_fen, throttled_until)
        VALUES (${consumerId}, ${chinaDay(until)}, 0, '{}'::jsonb, ${chinaMonth(until)}, 0, ${until.toISOString()})
        ON CONFLICT (consumer_id) DO UPDATE SET throttled_until = greatest(${consumerQuotas.throttledUntil}, excluded.throttled_until)`);
    },

    /** Every consumer's counts, and every subject checked today, for a process starting up. */
    async current(db: SqlRunner, now: Date): Promise<SharedCounts> {
      const [row] = await rowsOf<CountsJson>(db, sql`SELECT ${countsQuery('every consumer', [subjectChecksQuery(chinaDay(now), 'every subject')])}`);
      return countsFromJson(row!);
    },
  };
}

/** Where a consumer stands against its limits now, as recorded (calls still being answered are not counted yet). */
export type QuotaStanding = {
  day: string;
  callsToday: number;
  dailyCalls: number;
  ratePerSecond: number;
  /** Today's calls of each scoring product (each has its own daily limit, in its definition). */
  productCallsToday: Record<string, number>;
  month: string;
  feesThisMonthFen: number;
  monthlyCapFen: number;
  throttledUntil: string | null;
};

/** The standing of the given consumers; a consumer never called stands at zero. */
export async function quotaStandings(db: Database, pricing: Pricing, now: Date, consumerIds: string[]): Promise<Map<string, QuotaStanding>> {
  if (consumerIds.length === 0) return new Map();
  const rows = await db.select().from(consumerQuotas).where(inArray(consumerQuotas.consumerId, consumerIds));
  const recorded = new Map(rows.map((row) => [row.consumerId, row]));
  const day = chinaDay(now);
  const month = chinaMonth(now);
  const standingOf = (consumerId: string): QuotaStanding => {
    const row = recorded.get(consumerId);
    const quota = rolledOver(row && { ...row, throttledUntil: row.throttledUntil?.getTime() ?? 0 }, consumerId, day, month);
    return {
      day,
      callsToday: quota.callsToday,
      dailyCalls: pricing.quotas.dailyCalls,
      ratePerSecond: pricing.quotas.ratePerSecond,
      productCallsToday: quota.productCallsToday,
      month,
      feesThisMonthFen: quota.feesThisMonthFen,
      monthlyCapFen: pricing.fees.monthlyCapFen,
      throttledUntil: quota.throttledUntil > now.getTime() ? new Date(quota.throttledUntil).toISOString() : null,
    };
  };
  return new Map(consumerIds.map((consumerId) => [consumerId, standingOf(consumerId)]));
}

/** Writes consumers' counts, and nothing of their throttle (see throttle()). */
function storeCounts(quotas: ConsumerQuota[]): SQL {
  const records = quotas.map((quota) => ({
    consumer_id: quota.consumerId,
    day: quota.day,
    calls_today: quota.callsToday,
    product_calls_today: quota.productCallsToday,
    month: quota.month,
    fees_this_month_fen: quota.feesThisMonthFen,
  }));
  return sql`INSERT INTO ${consumerQuotas} (consumer_id, day, calls_today, product_calls_today, month, fees_this_month_fen)
    SELECT consumer_id, day, calls_today, product_calls_today, month, fees_this_month_fen FROM jsonb_to_recordset(${JSON.stringify(records)}::jsonb)
      AS incoming(consumer_id text, day text, calls_today integer, product_calls_today jsonb, month text, fees_this_month_fen bigint)
    ON CONFLICT (consumer_id) DO UPDATE SET day = excluded.day, calls_today = excluded.calls_today, product_calls_today = excluded.product_calls_today,
      month = excluded.month, fees_this_month_fen = excluded.fees_this_month_fen`;
}

export type SharedQuotas = ReturnType<typeof createSharedQuotas>;
