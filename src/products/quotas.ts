import { AppError } from '../errors/app-error.js';
import { chinaDay, secondsToNextChinaDay } from '../time/china-time.js';
import type { Pricing } from './pricing.js';
import type { QuotaClaim, SharedCounts } from './shared-quotas.js';

/**
 * Quotas and abuse detection for product calls, as one API process sees them: checked before any lookup, so a
 * call refused here costs no index read and no SEAL evaluation. The daily limits, the fee cap and throttles are
 * decided again by the shared counters (shared-quotas.ts) when the call is recorded; this ledger catches up with
 * them after every batch and at start-up, so calls answered by other processes count here too. The rate limit
 * and the probing detectors are this process's own.
 *
 * Order of checks on every call: throttle, rate, daily ceiling, subject limit.
 */
export type ProbingFinding = { kind: 'probing' | 'enumeration'; detail: Record<string, unknown> };

type ConsumerState = {
  tokens: number;
  refilledAt: number;
  day: string;
  callsToday: number;
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

/** The refusals of quotas, the same whether this process's counters or the shared ones refuse. */
export const quotaRefusals = {
  throttled: (untilMilliseconds: number, now: Date) =>
    new AppError(
      'CONSUMER_THROTTLED',
      'calls from this consumer are paused: its recent calls looked like probing or enumeration and were reported to the regulator',
      [],
      (untilMilliseconds - now.getTime()) / 1000,
    ),
  consumerDay: (limit: number, now: Date) => new AppError('DAILY_QUOTA_EXCEEDED', `at most ${limit} calls a day`, [], secondsToNextChinaDay(now)),
  subjectDay: (limit: number, now: Date) => new AppError('SUBJECT_QUOTA_EXCEEDED', `this subject has been checked ${limit} times today, the most allowed`, [], secondsToNextChinaDay(now)),
  productDay: (limit: number, now: Date) => new AppError('DAILY_QUOTA_EXCEEDED', `at most ${limit} calls of this product a day`, [], secondsToNextChinaDay(now)),
};

const quotaRefusalCodes = new Set(['CONSUMER_THROTTLED', 'DAILY_QUOTA_EXCEEDED', 'SUBJECT_QUOTA_EXCEEDED']);
/** Whether an error is one of `quotaRefusals` (the rate limit is not: it sheds load rather than counting calls). */
export const isQuotaRefusal = (error: unknown): error is AppError => error instanceof AppError && quotaRefusalCodes.has(error.code);

/** Raises a day's count to `count`, never lowering it: this process's own calls in flight are not counted elsewhere yet. */
function raise(counts: Map<string, { day: string; count: number }>, key: string, day: string, count: number): void {
  const entry = counts.get(key);
  counts.set(key, { day, count: Math.max(entry && entry.day === day ? entry.count : 0, count) });
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
    return state;
  };

  return {
    /**
     * Catches up with the shared counters (at start-up, and after each recorded batch): a count never goes down
     * here, since this process's own calls still in flight are not in the shared ones yet.
     */
    learn(counts: SharedCounts, now: Date): void {
      const day = chinaDay(now);
      for (const quota of counts.consumers) {
        const state = stateOf(quota.consumerId, now);
        state.throttledUntil = Math.max(state.throttledUntil, quota.throttledUntil);
        if (quota.day !== day) continue;
        state.callsToday = Math.max(state.callsToday, quota.callsToday);
        for (const [productId, calls] of Object.entries(quota.productCallsToday)) raise(perProduct, `${productId} ${quota.consumerId}`, day, calls);
      }
      for (const entry of counts.subjects) if (entry.day === day) raise(subjects, entry.subject, day, entry.checks);
    },

    /** Throws a 429 when the consumer may not call now; otherwise takes one token and one daily call. */
    admitConsumer(consumerId: string, now: Date): ConsumerState {
      const state = stateOf(consumerId, now);
      if (state.throttledUntil > now.getTime()) throw quotaRefusals.throttled(state.throttledUntil, now);
      const elapsed = Math.max(0, now.getTime() - state.refilledAt) / 1000;
      state.tokens = Math.min(pricing.quotas.burst, state.tokens + elapsed * pricing.quotas.ratePerSecond);
      state.refilledAt = now.getTime();
      if (state.tokens < 1) {
        throw new AppError('RATE_LIMITED', `at most ${pricing.quotas.ratePerSecond} calls per second`, [], (1 - state.tokens) / pricing.quotas.ratePerSecond);
      }
      if (state.callsToday >= pricing.quotas.dailyCalls) throw quotaRefusals.consumerDay(pricing.quotas.dailyCalls, now);
      state.tokens -= 1;
      state.callsToday += 1;
      return state;
    },

    /** Counts one check of a subject across all consumers; throws when the subject's daily limit is used up. */
    admitSubject(subject: string, limit: number, now: Date): void {
      const day = chinaDay(now);
      const entry = subjects.get(subject);
      const count = entry && entry.day === day ? entry.count : 0;
      if (count >= limit) throw quotaRefusals.subjectDay(limit, now);
      subjects.set(subject, { day, count: count + 1 });
    },

    /** Counts one call of a product by a consumer today; throws past the product's daily limit for a consumer. */
    admitProductDaily(consumerId: string, productId: string, limit: number, now: Date): void {
      const day = chinaDay(now);
      const key = `${productId} ${consumerId}`;
      const entry = perProduct.get(key);
      const count = entry && entry.day === day ? entry.count : 0;
      if (count >= limit) throw quotaRefusals.productDay(limit, now);
      perProduct.set(key, { day, count: count + 1 });
    },

    /**
     * Takes back what admitting a call counted when it was not recorded after all (a retry answered with an
     * earlier call's answer, or a call the shared counts refused): it must not use up one of the day's calls, the
     * subject's checks or the product's here, where the shared counts do not count it either.
     */
    giveBack(claim: QuotaClaim): void {
      const day = chinaDay(claim.at);
      const state = consumers.get(claim.consumerId);
      if (state && state.day === day && state.callsToday > 0) state.callsToday -= 1;
      const lower = (counts: Map<string, { day: string; count: number }>, key: string) => {
        const entry = counts.get(key);
        if (entry && entry.day === day && entry.count > 0) entry.count -= 1;
      };
      if (claim.subject) lower(subjects, claim.subject.hash);
      if (claim.productDailyLimit !== undefined) lower(perProduct, `${claim.productId} ${claim.consumerId}`);
    },

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
