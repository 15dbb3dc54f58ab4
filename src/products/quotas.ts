import { AppError } from '../errors/app-error.js';
import { chinaDay, chinaMonth, secondsToNextChinaDay } from '../time/china-time.js';
import type { Pricing } from './pricing.js';

/**
 * Quotas and abuse detection for product calls, kept in memory by the API process and seeded from the metering
 * table at start-up (so a restart does not reset a day). One `pds serve` process answers product calls; a
 * deployment with several would move these counters into PostgreSQL (docs/products.md says so).
 *
 * Order of checks on every call: throttle, rate, daily ceiling, subject limit — all before any lookup, so a
 * refused call learns nothing about the subject.
 */
export type ProbingFinding = { kind: 'probing' | 'enumeration'; detail: Record<string, unknown> };

type ConsumerState = {
  tokens: number;
  refilledAt: number;
  day: string;
  callsToday: number;
  month: string;
  paidThisMonthFen: number;
  throttledUntil: number;
  /** Recent plain calls: keyed subject hash and whether it matched (no identifiers). */
  recent: Array<{ subject: string; match: boolean | null }>;
  /** Running tallies over `recent`, kept as calls enter and leave it, so a call costs O(1) rather than O(window). */
  window: WindowTally;
  /** Position of the last identifier, for the enumeration detector; a number, not the identifier. */
  lastPosition: bigint | undefined;
  nearRun: number;
};

type WindowTally = { answered: number; matches: number; subjects: Map<string, number> };
const emptyTally = (): WindowTally => ({ answered: 0, matches: 0, subjects: new Map() });

function tally(window: WindowTally, entry: { subject: string; match: boolean | null }, change: 1 | -1): void {
  if (entry.match !== null) window.answered += change;
  if (entry.match) window.matches += change;
  const count = (window.subjects.get(entry.subject) ?? 0) + change;
  if (count === 0) window.subjects.delete(entry.subject);
  else window.subjects.set(entry.subject, count);
}

export function createQuotaLedger(pricing: Pricing) {
  const consumers = new Map<string, ConsumerState>();
  const subjects = new Map<string, { day: string; count: number }>();
  const perProduct = new Map<string, { day: string; count: number }>();

  const stateOf = (consumerId: string, now: Date): ConsumerState => {
    let state = consumers.get(consumerId);
    if (!state) {
      state = {
        tokens: pricing.quotas.burst,
        refilledAt: now.getTime(),
        day: chinaDay(now),
        callsToday: 0,
        month: chinaMonth(now),
        paidThisMonthFen: 0,
        throttledUntil: 0,
        recent: [],
        window: emptyTally(),
        lastPosition: undefined,
        nearRun: 0,
      };
      consumers.set(consumerId, state);
    }
    if (state.day !== chinaDay(now)) {
      state.day = chinaDay(now);
      state.callsToday = 0;
    }
    if (state.month !== chinaMonth(now)) {
      state.month = chinaMonth(now);
      state.paidThisMonthFen = 0;
    }
    return state;
  };

  return {
    /** Seeds today's and this month's counters from the metering table. */
    seed(rows: { consumers: Array<{ consumerId: string; callsToday: number; paidThisMonthFen: number }>; subjects: Array<{ subject: string; count: number }> }, now: Date) {
      for (const row of rows.consumers) {
        const state = stateOf(row.consumerId, now);
        state.callsToday = row.callsToday;
        state.paidThisMonthFen = row.paidThisMonthFen;
      }
      for (const row of rows.subjects) subjects.set(row.subject, { day: chinaDay(now), count: row.count });
    },

    /** Throws a 429 when the consumer may not call now; otherwise takes one token and one daily call. */
    admitConsumer(consumerId: string, now: Date): ConsumerState {
      const state = stateOf(consumerId, now);
      if (state.throttledUntil > now.getTime()) {
        throw new AppError(
          'CONSUMER_THROTTLED',
          'calls from this consumer are paused: its recent calls looked like probing or enumeration and were reported to the regulator',
          [],
          (state.throttledUntil - now.getTime()) / 1000,
        );
      }
      const elapsed = Math.max(0, now.getTime() - state.refilledAt) / 1000;
      state.tokens = Math.min(pricing.quotas.burst, state.tokens + elapsed * pricing.quotas.ratePerSecond);
      state.refilledAt = now.getTime();
      if (state.tokens < 1) {
        throw new AppError('RATE_LIMITED', `at most ${pricing.quotas.ratePerSecond} calls per second`, [], (1 - state.tokens) / pricing.quotas.ratePerSecond);
      }
      if (state.callsToday >= pricing.quotas.dailyCalls) {
        throw new AppError('DAILY_QUOTA_EXCEEDED', `at most ${pricing.quotas.dailyCalls} calls a day`, [], secondsToNextChinaDay(now));
      }
      state.tokens -= 1;
      state.callsToday += 1;
      return state;
    },

    /** Counts one check of a subject across all consumers; throws when the subject's daily limit is used up. */
    admitSubject(subject: string, limit: number, now: Date): void {
      const day = chinaDay(now);
      const entry = subjects.get(subject);
      const count = entry && entry.day === day ? entry.count : 0;
      if (count >= limit) {
        throw new AppError('SUBJECT_QUOTA_EXCEEDED', `this subject has been checked ${limit} times today, the most allowed`, [], secondsToNextChinaDay(now));
      }
      subjects.set(subject, { day, count: count + 1 });
    },

    /** Counts one call of a product by a consumer today; throws past the product's daily limit for a consumer. */
    admitProductDaily(consumerId: string, productId: string, limit: number, now: Date): void {
      const day = chinaDay(now);
      const key = `${consumerId}\u001f${productId}`;
      const entry = perProduct.get(key);
      const count = entry && entry.day === day ? entry.count : 0;
      if (count >= limit) throw new AppError('DAILY_QUOTA_EXCEEDED', `at most ${limit} calls of this product a day`, [], secondsToNextChinaDay(now));
      perProduct.set(key, { day, count: count + 1 });
    },

    /** Adds a fee to the consumer's month (the caller computed it against the cap). */
    recordFee(consumerId: string, fen: number, now: Date): void {
      stateOf(consumerId, now).paidThisMonthFen += fen;
    },

    paidThisMonth: (consumerId: string, now: Date) => stateOf(consumerId, now).paidThisMonthFen,

    /**
     * Feeds one answered call to the probing and enumeration detectors. `position` is the identifier read as a
     * number (check character dropped), used only to compare with the previous call. A finding throttles.
     */
    observe(consumerId: string, call: { subject: string; match: boolean | null; position: bigint | undefined }, now: Date): ProbingFinding | undefined {
      const state = stateOf(consumerId, now);
      const rules = pricing.probing;
      const entry = { subject: call.subject, match: call.match };
      state.recent.push(entry);
      tally(state.window, entry, +1);
      if (state.recent.length > rules.window) tally(state.window, state.recent.shift()!, -1);

      if (call.position !== undefined && state.lastPosition !== undefined) {
        const distance = call.position > state.lastPosition ? call.position - state.lastPosition : state.lastPosition - call.position;
        state.nearRun = distance > 0n && distance <= BigInt(rules.nearDistance) ? state.nearRun + 1 : 0;
      }
      state.lastPosition = call.position;

      let finding: ProbingFinding | undefined;
      if (state.nearRun >= rules.sequentialRun) {
        finding = { kind: 'enumeration', detail: { consecutiveNearIdentifiers: state.nearRun + 1, nearDistance: rules.nearDistance } };
      } else {
        const { answered, matches, subjects } = state.window;
        if (state.recent.length >= rules.window && answered >= rules.window / 2 && subjects.size >= rules.minDistinctSubjects && matches / answered <= rules.maxMatchRate) {
          finding = { kind: 'probing', detail: { window: state.recent.length, distinctSubjects: subjects.size, matchRate: Number((matches / answered).toFixed(4)) } };
        }
      }
      if (finding) {
        state.throttledUntil = now.getTime() + rules.throttleMinutes * 60_000;
        state.recent = [];
        state.window = emptyTally();
        state.nearRun = 0;
        state.lastPosition = undefined;
      }
      return finding;
    },
  };
}

export type QuotaLedger = ReturnType<typeof createQuotaLedger>;

/** An identifier as a position on a line: its characters but the last (the check character) in base 36. */
export function identifierPosition(value: string): bigint | undefined {
  const body = value.trim().toUpperCase().slice(0, -1);
  if (body.length === 0 || body.length > 40 || !/^[0-9A-Z]+$/.test(body)) return undefined;
  let position = 0n;
  for (const character of body) position = position * 36n + BigInt(Number.parseInt(character, 36));
  return position;
}
