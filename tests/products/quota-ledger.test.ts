import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { policiesDir } from '../../src/bootstrap.js';
import { AppError } from '../../src/errors/app-error.js';
import { chargeFen, loadPricing, type Pricing } from '../../src/products/pricing.js';
import { chinaDay } from '../../src/time/china-time.js';
import { createQuotaLedger, identifierPosition } from '../../src/products/quotas.js';

const base = loadPricing(path.join(policiesDir, 'pricing.yaml'));
const pricing: Pricing = { ...base, quotas: { ratePerSecond: 1, burst: 3, dailyCalls: 5 } };
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

  it('keeps counting across a restart from the seeded metering totals', () => {
    const ledger = createQuotaLedger(pricing);
    const now = new Date('2026-11-27T02:00:00Z');
    ledger.seed({ consumers: [{ consumerId: 'c', callsToday: 5, paidThisMonthFen: 120 }], subjects: [{ subject: 's', count: 2 }] }, now);
    expect(codeOf(() => ledger.admitConsumer('c', now))).toMatch(/^DAILY_QUOTA_EXCEEDED/);
    expect(ledger.paidThisMonth('c', now)).toBe(120);
    expect(codeOf(() => ledger.admitSubject('s', 2, now))).toMatch(/^SUBJECT_QUOTA_EXCEEDED/);
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
