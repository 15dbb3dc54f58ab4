import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { policiesDir } from '../../src/bootstrap.js';
import { AppError } from '../../src/errors/app-error.js';
import { chargeFen, loadPricing, type Pricing } from '../../src/products/pricing.js';
import { chinaDay } from '../../src/time/china-time.js';
import { createQuotaLedger, identifierPosition } from '../../src/products/quotas.js';
import { decideClaims, type ConsumerQuota, type QuotaClaim, type Settlement } from '../../src/products/shared-quotas.js';

const base = loadPricing(path.join(policiesDir, 'pricing.yaml'));
const pricing: Pricing = { ...base, quotas: { ratePerSecond: 1, burst: 3, dailyCalls: 5 } };
/** A consumer's shared counts on 27 November 2026 (China time), nothing counted unless said. */
const quota = (consumerId: string, counts: Partial<ConsumerQuota> = {}): ConsumerQuota => ({ consumerId, day: '2026-11-27', callsToday: 0, productCallsToday: {}, month: '2026-11', feesThisMonthFen: 0, throttledUntil: 0, ...counts });
const codeOf = (work: () => unknown) => {
  try {
    work();
    return 'admitted';
  } catch (error) {
    return error instanceof AppError ? `${error.code} ${Math.ceil(error.retryAfterSeconds ?? 0)}` : 'other';
  }
};

describe('the consumer quota ledger', () => {
  it('admits a burst, then refuses with the seconds until a token returns', () => {
    const ledger = createQuotaLedger(pricing);
    const now = new Date('2026-11-27T02:00:00Z');
    for (let index = 0; index < 3; index++) expect(codeOf(() => ledger.admitConsumer('c', now))).toBe('admitted');
    expect(codeOf(() => ledger.admitConsumer('c', now))).toBe('RATE_LIMITED 1');
    expect(codeOf(() => ledger.admitConsumer('c', new Date(now.getTime() + 1000)))).toBe('admitted');
  });

  it('refuses beyond the daily ceiling until the next China day', () => {
    const ledger = createQuotaLedger(pricing);
    const start = new Date('2026-11-27T10:00:00Z'); // 18:00 in Shanghai: six hours to midnight
    for (let index = 0; index < 5; index++) ledger.admitConsumer('c', new Date(start.getTime() + index * 2000));
    expect(codeOf(() => ledger.admitConsumer('c', new Date(start.getTime() + 20_000)))).toBe(`DAILY_QUOTA_EXCEEDED ${6 * 3600 - 20}`);
    expect(codeOf(() => ledger.admitConsumer('c', new Date('2026-11-27T16:00:01Z')))).toBe('admitted');
  });

  it("gives back a call's daily, subject and product counts when the call was not recorded after all", () => {
    const ledger = createQuotaLedger(pricing);
    const now = new Date('2026-11-27T02:00:00Z');
    const later = (seconds: number) => new Date(now.getTime() + seconds * 1000);
    for (let index = 0; index < 5; index++) {
      ledger.admitConsumer('c', later(index));
      ledger.admitSubject('s', 5, later(index));
      ledger.admitProductDaily('c', 'model', 5, later(index));
    }
    ledger.giveBack({ consumerId: 'c', productId: 'model', use: 'industry', at: later(5), subject: { hash: 's', dailyLimit: 5 }, productDailyLimit: 5 });
    expect(codeOf(() => ledger.admitConsumer('c', later(6)))).toBe('admitted');
    expect(codeOf(() => ledger.admitSubject('s', 5, later(6)))).toBe('admitted');
    expect(codeOf(() => ledger.admitProductDaily('c', 'model', 5, later(6)))).toBe('admitted');
    expect(codeOf(() => ledger.admitSubject('s', 5, later(7)))).toMatch(/^SUBJECT_QUOTA_EXCEEDED/);
  });

  it('takes up the shared counts of the day, so calls answered elsewhere count here', () => {
    const ledger = createQuotaLedger(pricing);
    const now = new Date('2026-11-27T02:00:00Z');
    ledger.learn({ consumers: [quota('c', { callsToday: 5, productCallsToday: { p: 3 } })], subjects: [{ subject: 's', day: '2026-11-27', checks: 2 }] }, now);
    expect(codeOf(() => ledger.admitConsumer('c', now))).toMatch(/^DAILY_QUOTA_EXCEEDED/);
    expect(codeOf(() => ledger.admitSubject('s', 2, now))).toMatch(/^SUBJECT_QUOTA_EXCEEDED/);
    expect(codeOf(() => ledger.admitProductDaily('c', 'p', 3, now))).toMatch(/^DAILY_QUOTA_EXCEEDED/);
  });

  it('ignores shared counts of another day and never lowers its own', () => {
    const ledger = createQuotaLedger(pricing);
    const now = new Date('2026-11-27T02:00:00Z');
    ledger.admitSubject('s', 2, now);
    ledger.learn({ consumers: [quota('c', { day: '2026-11-26', callsToday: 5 })], subjects: [{ subject: 's', day: '2026-11-26', checks: 9 }] }, now);
    expect(codeOf(() => ledger.admitSubject('s', 2, now))).toBe('admitted');
    expect(codeOf(() => ledger.admitConsumer('c', now))).toBe('admitted');
    ledger.learn({ consumers: [], subjects: [{ subject: 's', day: '2026-11-27', checks: 0 }] }, now);
    expect(codeOf(() => ledger.admitSubject('s', 2, now))).toMatch(/^SUBJECT_QUOTA_EXCEEDED/);
  });

  it('takes up a throttle set by another process', () => {
    const ledger = createQuotaLedger(pricing);
    const now = new Date('2026-11-27T02:00:00Z');
    ledger.learn({ consumers: [quota('c', { throttledUntil: now.getTime() + 60_000 })], subjects: [] }, now);
    expect(codeOf(() => ledger.admitConsumer('c', now))).toBe('CONSUMER_THROTTLED 60');
  });
});

describe('settling a batch against the shared counts', () => {
  const at = new Date('2026-11-27T02:00:00Z');
  const claim = (consumerId: string, extra: Partial<QuotaClaim> = {}): QuotaClaim => ({ consumerId, productId: 'resident-identity', use: 'industry', at, ...extra });
  const outcome = (settlement: Settlement) => (settlement.admitted ? `fee ${settlement.feeFen}` : settlement.refusal.code);
  const checked = { subject: { hash: 's', dailyLimit: 5 } };

  it('admits a subject up to its daily limit across the batch and the counts before it', () => {
    const { settlements, changed, after } = decideClaims(pricing, [claim('a', checked), claim('b', checked), claim('a', checked)], { consumers: [], subjects: [{ subject: 's', day: '2026-11-27', checks: 3 }] });
    expect(settlements.map(outcome)).toEqual(['fee 30', 'fee 30', 'SUBJECT_QUOTA_EXCEEDED']);
    expect(after.subjects).toEqual([{ subject: 's', day: '2026-11-27', checks: 5 }]);
    expect(changed.map((entry) => [entry.consumerId, entry.callsToday, entry.feesThisMonthFen])).toEqual([
      ['a', 1, 30],
      ['b', 1, 30],
    ]);
  });

  it('charges what fits under the monthly cap and nothing after it', () => {
    const { settlements } = decideClaims(pricing, [claim('a'), claim('a'), claim('a', { use: 'public_interest' })], { consumers: [quota('a', { feesThisMonthFen: base.fees.monthlyCapFen - 10 })], subjects: [] });
    expect(settlements.map(outcome)).toEqual(['fee 10', 'fee 0', 'fee 0']);
  });

  it('refuses a throttled consumer and one past its day, and counts nothing for them', () => {
    const consumers = [quota('a', { throttledUntil: at.getTime() + 1000 }), quota('b', { callsToday: pricing.quotas.dailyCalls })];
    const { settlements, changed } = decideClaims(pricing, [claim('a'), claim('b')], { consumers, subjects: [] });
    expect(settlements.map(outcome)).toEqual(['CONSUMER_THROTTLED', 'DAILY_QUOTA_EXCEEDED']);
    expect(changed).toEqual([]);
  });

  it('starts a new day and a new month from zero', () => {
    const consumers = [quota('a', { day: '2026-10-31', month: '2026-10', callsToday: pricing.quotas.dailyCalls, productCallsToday: { 'resident-identity': 9 }, feesThisMonthFen: base.fees.monthlyCapFen })];
    const { settlements, changed } = decideClaims(pricing, [claim('a', { productDailyLimit: 1 })], { consumers, subjects: [] });
    expect(settlements.map(outcome)).toEqual(['fee 30']);
    expect(changed).toEqual([quota('a', { callsToday: 1, productCallsToday: { 'resident-identity': 1 }, feesThisMonthFen: 30 })]);
  });

  it('limits a scoring product per consumer and day', () => {
    const { settlements } = decideClaims(pricing, [claim('a', { productDailyLimit: 1 }), claim('a', { productDailyLimit: 1 }), claim('b', { productDailyLimit: 1 })], { consumers: [], subjects: [] });
    expect(settlements.map(outcome)).toEqual(['fee 30', 'DAILY_QUOTA_EXCEEDED', 'fee 30']);
  });
});

describe('fees', () => {
  it('charges industry use the product’s price and public-interest use nothing', () => {
    expect(chargeFen(base, 'resident-identity', 'industry', 0)).toBe(30);
    expect(chargeFen(base, 'some-other-product', 'industry', 0)).toBe(base.fees.industryDefaultFen);
    expect(chargeFen(base, 'resident-identity', 'public_interest', 0)).toBe(0);
  });

  it('never lets a month’s fees pass the cap', () => {
    expect(chargeFen(base, 'resident-identity', 'industry', base.fees.monthlyCapFen - 10)).toBe(10);
    expect(chargeFen(base, 'resident-identity', 'industry', base.fees.monthlyCapFen)).toBe(0);
  });

  it('counts days on China Standard Time', () => {
    expect(chinaDay(new Date('2026-11-27T15:59:59Z'))).toBe('2026-11-27');
    expect(chinaDay(new Date('2026-11-27T16:00:00Z'))).toBe('2026-11-28');
  });
});

describe('identifier positions for the enumeration detector', () => {
  it('drops the check character so consecutive serials are neighbours', () => {
    const a = identifierPosition('310115199001010011')!;
    const b = identifierPosition('31011519900101002X')!;
    expect(b - a).toBe(1n);
  });

  it('has no position for text that is not an identifier', () => {
    expect(identifierPosition('王伟')).toBeUndefined();
  });
});

describe('the probing detector', () => {
  /** The rule as pricing.yaml states it, recounted from scratch over the last `window` calls. */
  function recountSaysProbing(calls: Array<{ subject: string; match: boolean | null }>): boolean {
    const rules = base.probing;
    const recent = calls.slice(-rules.window);
    const answered = recent.filter((call) => call.match !== null);
    const matches = answered.filter((call) => call.match).length;
    const distinct = new Set(recent.map((call) => call.subject)).size;
    return recent.length >= rules.window && answered.length >= rules.window / 2 && distinct >= rules.minDistinctSubjects && matches / answered.length <= rules.maxMatchRate;
  }

  it('flags a consumer at exactly the call where a recount of its window first meets the rule', () => {
    // A deterministic mix: repeated subjects and matches early (honest), then fresh subjects that never match.
    const calls = Array.from({ length: 400 }, (_, index) => {
      const honest = index < 150;
      return { subject: honest ? `s${index % 37}` : `probe-${index}`, match: index % 11 === 0 ? null : honest ? index % 3 !== 0 : index % 41 === 0 };
    });
    const expected = calls.findIndex((_, index) => recountSaysProbing(calls.slice(0, index + 1)));
    expect(expected).toBeGreaterThan(150);
    const ledger = createQuotaLedger(base);
    const now = new Date('2026-11-27T02:00:00Z');
    const flagged = calls.findIndex((call) => ledger.observe('c', { ...call, position: undefined }, now)?.kind === 'probing');
    expect(flagged).toBe(expected);
  });

  it('throttles the flagged consumer and starts its window afresh', () => {
    const ledger = createQuotaLedger(base);
    const now = new Date('2026-11-27T02:00:00Z');
    let finding;
    for (let index = 0; index < base.probing.window && !finding; index++) finding = ledger.observe('c', { subject: `p${index}`, match: false, position: undefined }, now);
    expect(finding?.kind).toBe('probing');
    expect(codeOf(() => ledger.admitConsumer('c', now))).toBe(`CONSUMER_THROTTLED ${base.probing.throttleMinutes * 60}`);
    // After the pause, one more failed call is not a window's worth of evidence.
    const later = new Date(now.getTime() + base.probing.throttleMinutes * 60_000 + 1);
    expect(ledger.observe('c', { subject: 'p-next', match: false, position: undefined }, later)).toBeUndefined();
  });
});
