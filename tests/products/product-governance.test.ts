import fs from 'node:fs';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { residentIdCheckCharacter } from '../../src/catalog/identity-numbers.js';
import { callReplays, consumerQuotas, datasets, incidents, principals, productCalls, products } from '../../src/db/schema.js';
import { chinaDay, chinaMonth } from '../../src/time/china-time.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let consumer: string;
let regulator: string;
let lingang: string;
let harbour: string;

async function newConsumer(id: string): Promise<string> {
  await t.platform.db.insert(principals).values({ id, role: 'consumer', displayName: `test consumer ${id}` });
  return t.tokenFor(id);
}

beforeAll(async () => {
  t = await createTestPlatform({ demo: true, now: new Date('2026-11-27T02:00:00Z') });
  consumer = await t.tokenFor('consumer-east-sea-bank');
  regulator = await t.tokenFor('regulator-data-dept');
  lingang = await t.tokenFor('analyst-lingang-analytics');
  harbour = await t.tokenFor('analyst-harbour-credit');
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const call = (product: string, input: Record<string, string>, token = consumer, use = 'industry') =>
  t.call('POST', `/v1/products/${product}/verify`, { token, json: { input, purpose: 'test', use } });
const grant = (consumerId: string, body: Record<string, string>, token = regulator) => t.call('PUT', `/v1/consumers/${consumerId}/public-interest`, { token, json: body });
/** A well-formed resident ID number (its check character right) that no demo resident has. */
const unknownId = (serial: number) => {
  const body = `4401061950${String(serial).padStart(7, '0')}`;
  return body + residentIdCheckCharacter(body);
};

const definition = (id: string, spec: Record<string, unknown>) => ({
  id,
  title: `Test product ${id}`,
  titleZh: '测试产品',
  terms: 'test terms',
  spec: { kind: 'verification', ...spec },
});
const enterpriseSpec = {
  dataset: 'enterprises',
  inputs: [
    { name: 'credit_code', description: 'USCC', example: '91310115MA1H7XXXX1' },
    { name: 'industry', description: 'Industry class', example: 'C3612' },
  ],
  subject: [{ input: 'credit_code', column: 'uscc' }],
  claims: [{ input: 'industry', column: 'industry_code' }],
};

describe('product lifecycle', () => {
  it('keeps a draft from consumers until a regulator approves and its owner publishes it', async () => {
    const defined = await t.call('POST', '/v1/products', { token: lingang, json: definition('industry-check', enterpriseSpec) });
    expect(defined.status).toBe(201);
    expect(defined.json.status).toBe('draft');
    expect((await t.call('GET', '/v1/products/industry-check', { token: consumer })).status).toBe(404);
    expect((await call('industry-check', { credit_code: '91310115MA1H7XXXX1', industry: 'C3612' })).status).toBe(404);
    expect((await t.call('POST', '/v1/products/industry-check/publication', { token: lingang, json: { action: 'publish' } })).status).toBe(409);
    const approved = await t.call('POST', '/v1/products/industry-check/decision', { token: regulator, json: { decision: 'approve', reason: 'scope and terms reviewed' } });
    expect(approved.json.status).toBe('approved');
    const published = await t.call('POST', '/v1/products/industry-check/publication', { token: lingang, json: { action: 'publish' } });
    expect(published.json.status).toBe('published');
    expect((await call('industry-check', { credit_code: '91310115MA1H7XXXX1', industry: 'C3612' })).status).toBe(200);
  });

  it('stops answering once a regulator suspends the product', async () => {
    await t.call('POST', '/v1/products/industry-check/decision', { token: regulator, json: { decision: 'suspend', reason: 'complaint under review' } });
    expect((await call('industry-check', { credit_code: '91310115MA1H7XXXX1', industry: 'C3612' })).status).toBe(404);
    expect((await t.call('POST', '/v1/products/industry-check/publication', { token: lingang, json: { action: 'publish' } })).status).toBe(409);
  });

  it('hides one operator’s product from another operator', async () => {
    expect((await t.call('GET', '/v1/products/industry-check', { token: harbour })).status).toBe(404);
    expect((await t.call('POST', '/v1/products/industry-check/publication', { token: harbour, json: { action: 'withdraw' } })).status).toBe(404);
  });

  it('does not let an operator approve its own product', async () => {
    await t.call('POST', '/v1/products', { token: lingang, json: definition('industry-check-2', enterpriseSpec) });
    const response = await t.call('POST', '/v1/products/industry-check-2/decision', { token: lingang, json: { decision: 'approve', reason: 'self' } });
    expect(response.status).toBe(403);
  });

  it('records every step in the audit log', async () => {
    const entries = await t.call('GET', '/v1/audit/entries?start=0&end=5000', { token: regulator });
    const steps = entries.json.entries.filter((entry: any) => entry.event.details?.product === 'industry-check').map((entry: any) => entry.event.type);
    expect(steps).toEqual(expect.arrayContaining(['product.defined', 'product.approve', 'product.publish', 'product.called', 'product.suspend']));
  });
});

describe('product definitions refused', () => {
  it('refuses claims whose subject is not the dataset’s unique key', async () => {
    const response = await t.call('POST', '/v1/products', {
      token: lingang,
      json: definition('bad-subject', { dataset: 'power_readings', inputs: [{ name: 'account', description: 'a', example: 'A1' }, { name: 'town', description: 't', example: 'x' }], subject: [{ input: 'account', column: 'account_id' }], claims: [{ input: 'town', column: 'town' }] }),
    });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('PRODUCT_SPEC_INVALID');
  });

  it('refuses an example that fails the check character its input declares', async () => {
    const response = await t.call('POST', '/v1/products', {
      token: lingang,
      json: definition('bad-example', { ...enterpriseSpec, inputs: [{ ...enterpriseSpec.inputs[0], checksum: 'gb32100' }, enterpriseSpec.inputs[1]] }),
    });
    expect(response.status).toBe(422);
    expect(response.json.error).toMatchObject({ code: 'PRODUCT_SPEC_INVALID', details: expect.arrayContaining([expect.objectContaining({ problem: 'the example of credit_code fails its GB 32100 check character' })]) });
  });

  it('refuses a condition the job analyser refuses', async () => {
    const response = await t.call('POST', '/v1/products', {
      token: lingang,
      json: definition('bad-condition', { ...enterpriseSpec, claims: [], inputs: [enterpriseSpec.inputs[0]], condition: { require: "legal_rep_id LIKE '3101%'" } }),
    });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('DIRECT_IDENTIFIER_USE');
  });

  it('refuses a condition DuckDB cannot bind, naming the types, instead of publishing a product that fails on every call', async () => {
    const response = await t.call('POST', '/v1/products', {
      token: lingang,
      json: definition('unbindable-condition', { ...enterpriseSpec, claims: [], inputs: [enterpriseSpec.inputs[0]], condition: { require: 'status' } }),
    });
    expect(response.status).toBe(422);
    expect(response.json.error).toMatchObject({ code: 'BIND_ERROR', message: expect.stringMatching(/^the condition does not fit the datasets' columns and types: .*bool_and\(VARCHAR\)/) });
  });

  it('creates one of several definitions of one id sent at the same moment and answers the others 409 CONFLICT', async () => {
    const sent = await Promise.all(Array.from({ length: 6 }, () => t.call('POST', '/v1/products', { token: lingang, json: definition('defined-at-once', enterpriseSpec) })));
    expect(sent.map((response) => response.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    expect(sent.filter((response) => response.status === 409).every((response) => response.json.error.code === 'CONFLICT')).toBe(true);
  });

  it('refuses counting recent months back from a column that is not a date', async () => {
    const response = await t.call('POST', '/v1/products', {
      token: lingang,
      json: definition('months-of-text', { ...enterpriseSpec, claims: [], inputs: [enterpriseSpec.inputs[0]], condition: { require: "status = 'active'", recentMonths: { column: 'industry_code', months: 12 } } }),
    });
    expect(response.status).toBe(422);
    expect(response.json.error).toMatchObject({ code: 'PRODUCT_SPEC_INVALID', details: [{ problem: 'condition.recentMonths.column must be a DATE or TIMESTAMP column; industry_code is VARCHAR' }] });
  });

  it('refuses to publish a product whose condition cannot be evaluated over its data, naming no value of it', async () => {
    const spec = { ...enterpriseSpec, claims: [], inputs: [enterpriseSpec.inputs[0]], condition: { require: "status::DATE > DATE '2020-01-01'" } };
    expect((await t.call('POST', '/v1/products', { token: lingang, json: definition('unconvertible-condition', spec) })).status).toBe(201);
    await t.call('POST', '/v1/products/unconvertible-condition/decision', { token: regulator, json: { decision: 'approve', reason: 'reviewed' } });
    const published = await t.call('POST', '/v1/products/unconvertible-condition/publication', { token: lingang, json: { action: 'publish' } });
    expect(published.status).toBe(409);
    expect(published.json.error.code).toBe('PRODUCT_NOT_CALLABLE');
    expect(published.text).not.toMatch(/active|deregistered/);
    expect((await t.call('GET', '/v1/products/unconvertible-condition', { token: lingang })).json.status).toBe('approved');
  });

  it('answers a call to a published product whose condition fails over its data with 409 PRODUCT_NOT_CALLABLE, not a 500', async () => {
    const spec = { ...enterpriseSpec, claims: [], inputs: [enterpriseSpec.inputs[0]], condition: { require: "status::DATE > DATE '2020-01-01'" } };
    await t.call('POST', '/v1/products', { token: lingang, json: definition('published-before-its-data-changed', spec) });
    // As a product published before a new version of its data arrived, which its condition cannot read.
    await t.platform.db.update(products).set({ status: 'published' }).where(eq(products.id, 'published-before-its-data-changed'));
    const logged = vi.spyOn(console, 'error');
    try {
      for (const round of [1, 2, 3]) {
        const response = await call('published-before-its-data-changed', { credit_code: '91310115MA1H7XXXX1' });
        expect([round, response.status, response.json.error.code]).toEqual([round, 409, 'PRODUCT_NOT_CALLABLE']);
      }
      // The index was built once: the refusal is kept with the data's version, not rebuilt for every call.
      expect(logged.mock.calls.filter(([line]) => String(line).includes('published-before-its-data-changed cannot be evaluated'))).toHaveLength(1);
    } finally {
      logged.mockRestore();
    }
  });

  it('refuses a condition whose text would reshape the statement around it', async () => {
    const response = await t.call('POST', '/v1/products', {
      token: lingang,
      json: definition('bad-injection', { ...enterpriseSpec, claims: [], inputs: [enterpriseSpec.inputs[0]], condition: { require: "true) AS e, (status = 'active'" } }),
    });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('PRODUCT_SPEC_INVALID');
  });

  it('refuses a dataset outside the operator’s licence and records an incident', async () => {
    const response = await t.call('POST', '/v1/products', {
      token: lingang,
      json: definition('bad-scope', { dataset: 'residents', inputs: [{ name: 'id', description: 'id', example: '1' }, { name: 'name', description: 'n', example: 'x' }], subject: [{ input: 'id', column: 'resident_id' }], claims: [{ input: 'name', column: 'name' }] }),
    });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('OVER_SCOPE');
    const recorded = await t.platform.db.select().from(incidents).where(eq(incidents.kind, 'over_scope'));
    expect(recorded.some((incident) => JSON.stringify(incident.detail).includes('residents'))).toBe(true);
  });

  it('refuses an input pattern prone to catastrophic backtracking', async () => {
    const response = await t.call('POST', '/v1/products', {
      token: lingang,
      json: definition('bad-pattern', { ...enterpriseSpec, inputs: [{ ...enterpriseSpec.inputs[0], pattern: '([0-9A-Z]+)+' }, enterpriseSpec.inputs[1]] }),
    });
    expect(response.status).toBe(422);
  });
});

describe('quotas', () => {
  it('lets one subject be checked five times a day across consumers, then answers 429 with Retry-After', async () => {
    const other = await newConsumer('consumer-subject-quota');
    const input = { id_number: unknownId(1), name: '张三' };
    for (const token of [consumer, consumer, other, other, consumer]) expect((await call('resident-identity', input, token)).status).toBe(200);
    const refused = await call('resident-identity', input, other);
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe('SUBJECT_QUOTA_EXCEEDED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('resets the subject limit on the next China day', async () => {
    const saved = t.clock.now;
    t.clock.now = new Date(saved.getTime() + 24 * 3_600_000);
    try {
      expect((await call('resident-identity', { id_number: unknownId(1), name: '张三' }, await t.tokenFor('consumer-east-sea-bank'))).status).toBe(200);
    } finally {
      t.clock.now = saved;
    }
  });
});

describe('probing and enumeration', () => {
  it('turns many distinct subjects with almost no matches into an incident and throttles the consumer', async () => {
    const prober = await newConsumer('consumer-prober');
    // Scattered identifiers (no two near each other), none registered: a guessing pattern, not enumeration.
    for (let index = 0; index < 100; index++) {
      const response = await call('resident-identity', { id_number: unknownId(100_000 + index * 37_001), name: '李四' }, prober);
      expect(response.status).toBe(200);
    }
    const throttled = await call('resident-identity', { id_number: unknownId(5), name: '李四' }, prober);
    expect(throttled.status).toBe(429);
    expect(throttled.json.error.code).toBe('CONSUMER_THROTTLED');
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(3000);
    const recorded = await t.platform.db.select().from(incidents).where(eq(incidents.principalId, 'consumer-prober'));
    expect(recorded.map((incident) => incident.kind)).toEqual(['probing']);
  });

  it('turns a run of consecutive identifiers into an enumeration incident', async () => {
    const enumerator = await newConsumer('consumer-enumerator');
    for (let index = 0; index < 21; index++) await call('resident-identity', { id_number: unknownId(2000 + index), name: '王五' }, enumerator);
    expect((await call('resident-identity', { id_number: unknownId(9_000_000), name: '王五' }, enumerator)).json.error.code).toBe('CONSUMER_THROTTLED');
    const recorded = await t.platform.db.select().from(incidents).where(eq(incidents.principalId, 'consumer-enumerator'));
    expect(recorded.map((incident) => incident.kind)).toEqual(['enumeration']);
  });

  it('leaves ordinary traffic alone', async () => {
    const recorded = await t.platform.db.select().from(incidents).where(eq(incidents.principalId, 'consumer-east-sea-bank'));
    expect(recorded).toEqual([]);
  });
});

describe('metering, usage and the annual report', () => {
  it('shows a consumer its own calls and fees, priced from pricing.yaml', async () => {
    const payer = await newConsumer('consumer-payer');
    expect((await grant('consumer-payer', { basis: '市政府政务服务平台 (test)', validUntil: '2027-12-31T16:00:00Z' })).status).toBe(200);
    await call('resident-identity', { id_number: unknownId(77), name: 'x' }, payer, 'industry');
    await call('resident-identity', { id_number: unknownId(78), name: 'x' }, payer, 'public_interest');
    const usage = await t.call('GET', '/v1/usage', { token: payer });
    expect(usage.status).toBe(200);
    expect(usage.json.usage).toEqual([
      expect.objectContaining({ product: 'resident-identity', mode: 'plain', use: 'industry', calls: 1, feesFen: 30 }),
      expect.objectContaining({ product: 'resident-identity', mode: 'plain', use: 'public_interest', calls: 1, feesFen: 0 }),
    ]);
    expect(usage.json.totals).toEqual({ calls: 2, feesFen: 30 });
  });

  it('shows an operator the calls of its own products only', async () => {
    const own = await t.call('GET', '/v1/usage', { token: harbour });
    expect(own.json.usage.every((row: { product: string }) => ['resident-identity', 'enterprise-identity', 'enterprise-power-payment'].includes(row.product))).toBe(true);
    expect(own.json.totals.calls).toBeGreaterThan(100);
    const other = await t.call('GET', '/v1/usage', { token: lingang });
    expect(other.json.usage.map((row: { product: string }) => row.product)).toEqual(['industry-check']);
  });

  it('gives regulators the annual report as JSON and CSV, and nobody else', async () => {
    const report = await t.call('GET', '/v1/reports/products?year=2026', { token: regulator });
    expect(report.status).toBe(200);
    const resident = report.json.products.find((row: { product: string }) => row.product === 'resident-identity');
    expect(resident.calls).toBeGreaterThan(100);
    expect(resident.publicInterestCalls).toBe(1);
    expect(report.json.totals.calls).toBe(report.json.products.reduce((sum: number, row: { calls: number }) => sum + row.calls, 0));
    const csv = await t.call('GET', '/v1/reports/products?year=2026&format=csv', { token: regulator });
    expect(csv.headers.get('content-type')).toContain('text/csv');
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toBe('product,title,titleZh,operator,status,calls,publicInterestCalls,industryCalls,encryptedCalls,distinctConsumers,feesFen');
    expect(lines).toHaveLength(report.json.products.length + 1);
    expect((await t.call('GET', '/v1/reports/products?year=2026', { token: consumer })).status).toBe(403);
  });
});

describe('public-interest standing', () => {
  it('refuses a public-interest call from a consumer without a grant, before any quota or fee', async () => {
    const caller = await newConsumer('consumer-unregistered');
    const refused = await call('resident-identity', { id_number: unknownId(81), name: 'x' }, caller, 'public_interest');
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe('PUBLIC_INTEREST_NOT_GRANTED');
    expect((await t.call('GET', '/v1/usage', { token: caller })).json.totals).toEqual({ calls: 0, feesFen: 0 });
    // The same call for industry use goes through and is charged.
    expect((await call('resident-identity', { id_number: unknownId(81), name: 'x' }, caller, 'industry')).json.feeFen).toBe(30);
  });

  it('lets a granted consumer call free, until the grant is revoked', async () => {
    const caller = await newConsumer('consumer-city-app');
    expect((await grant('consumer-city-app', { basis: '“随申办”政务服务 (test)', validUntil: '2027-06-30T16:00:00Z' })).json).toMatchObject({ consumerId: 'consumer-city-app', inForce: true });
    const free = await call('resident-identity', { id_number: unknownId(82), name: 'x' }, caller, 'public_interest');
    expect(free.status).toBe(200);
    expect(free.json.feeFen).toBe(0);
    const revoked = await t.call('POST', '/v1/consumers/consumer-city-app/public-interest/revoke', { token: regulator, json: { reason: 'service moved to another provider (test)' } });
    expect(revoked.json).toMatchObject({ inForce: false });
    const again = await t.call('POST', '/v1/consumers/consumer-city-app/public-interest/revoke', { token: regulator, json: { reason: 'twice (test)' } });
    expect(again.status).toBe(409);
    expect((await call('resident-identity', { id_number: unknownId(83), name: 'x' }, caller, 'public_interest')).json.error.code).toBe('PUBLIC_INTEREST_NOT_GRANTED');
    const leaves = await t.call('GET', '/v1/audit/entries?type=consumer.public-interest-granted', { token: regulator });
    expect(JSON.stringify(leaves.json)).toContain('consumer-city-app');
  });

  it('refuses a call once the grant has ended', async () => {
    await newConsumer('consumer-expiring');
    await grant('consumer-expiring', { basis: 'pilot (test)', validUntil: '2026-11-27T03:00:00Z' });
    const started = t.clock.now;
    try {
      t.clock.now = new Date('2026-11-27T03:00:01Z');
      const late = await call('resident-identity', { id_number: unknownId(84), name: 'x' }, await t.tokenFor('consumer-expiring'), 'public_interest');
      expect(late.json.error.code).toBe('PUBLIC_INTEREST_NOT_GRANTED');
    } finally {
      t.clock.now = started;
    }
  });

  it('is granted by regulators only, and read by the consumer itself or regulators', async () => {
    const caller = await newConsumer('consumer-self-granting');
    expect((await grant('consumer-self-granting', { basis: 'we say so', validUntil: '2027-01-01T00:00:00Z' }, caller)).status).toBe(403);
    expect((await grant('consumer-self-granting', { basis: 'x', validUntil: '2027-01-01T00:00:00Z' }, lingang)).status).toBe(403);
    await grant('consumer-self-granting', { basis: 'reviewed (test)', validUntil: '2027-01-01T00:00:00Z' });
    expect((await t.call('GET', '/v1/consumers/consumer-self-granting/public-interest', { token: caller })).json.inForce).toBe(true);
    expect((await t.call('GET', '/v1/consumers/consumer-self-granting/public-interest', { token: consumer })).status).toBe(404);
  });

  it('comes with the demo for its consumer, whose public-interest calls are therefore free', async () => {
    expect((await t.call('GET', '/v1/consumers/consumer-east-sea-bank/public-interest', { token: consumer })).json.inForce).toBe(true);
    const free = await call('resident-identity', { id_number: unknownId(85), name: 'x' }, consumer, 'public_interest');
    expect(free.status).toBe(200);
    expect(free.json.feeFen).toBe(0);
  });

  it('refuses a grant to a principal that is not a consumer, or one that has already ended', async () => {
    expect((await grant('analyst-lingang-analytics', { basis: 'x', validUntil: '2027-01-01T00:00:00Z' })).status).toBe(404);
    const past = await grant('consumer-east-sea-bank', { basis: 'x', validUntil: '2026-01-01T00:00:00Z' });
    expect(past.status).toBe(400);
    expect(past.json.error.code).toBe('VALIDATION_FAILED');
  });
});

describe('quotas across API processes', () => {
  let second: Awaited<ReturnType<TestPlatform['anotherApiProcess']>>;
  beforeAll(async () => {
    second = await t.anotherApiProcess();
  }, 60_000);
  afterAll(async () => {
    await second?.close();
  });
  const callSecond = (product: string, input: Record<string, string>, token: string) =>
    second.call('POST', `/v1/products/${product}/verify`, { token, json: { input, purpose: 'test', use: 'industry' } });
  /** A consumer's shared counts as another process would have left them: none yet, on the day of `at`. */
  const countedElsewhere = (consumerId: string, at = t.clock.now) => ({ consumerId, day: chinaDay(at), callsToday: 0, productCallsToday: {}, month: chinaMonth(at), feesThisMonthFen: 0, throttledUntil: null });
  const counted = (consumerId: string) => t.platform.db.select().from(productCalls).where(eq(productCalls.consumerId, consumerId));

  it("holds a subject's daily limit when its checks are spread over two API processes", async () => {
    const input = { id_number: unknownId(31), name: '王五' };
    for (const via of [call, callSecond, call, callSecond, call] as const) expect((await via('resident-identity', input, consumer)).status).toBe(200);
    for (const via of [callSecond, call] as const) {
      const refused = await via('resident-identity', input, consumer);
      expect(refused.status).toBe(429);
      expect(refused.json.error.code).toBe('SUBJECT_QUOTA_EXCEEDED');
    }
  });

  it("spends a subject's last check once when two API processes are asked for it at the same moment", async () => {
    const input = { id_number: unknownId(35), name: '孙七' };
    for (const via of [call, callSecond, call, callSecond] as const) expect((await via('resident-identity', input, consumer)).status).toBe(200);
    // Each process has seen two checks, so each would admit one more on its own count.
    const answers = await Promise.all([call('resident-identity', input, consumer), callSecond('resident-identity', input, consumer), call('resident-identity', input, consumer), callSecond('resident-identity', input, consumer)]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 429, 429, 429]);
    expect(answers.filter((answer) => answer.status === 429).map((answer) => answer.json.error.code)).toEqual(['SUBJECT_QUOTA_EXCEEDED', 'SUBJECT_QUOTA_EXCEEDED', 'SUBJECT_QUOTA_EXCEEDED']);
  });

  it('throttles in every API process a consumer whose probing one of them found', async () => {
    const prober = await newConsumer('consumer-prober-elsewhere');
    for (let index = 0; index < 100; index++) await call('resident-identity', { id_number: unknownId(300_000 + index * 37_003), name: '赵六' }, prober);
    const elsewhere = await callSecond('resident-identity', { id_number: unknownId(7), name: '赵六' }, prober);
    expect(elsewhere.status).toBe(429);
    expect(elsewhere.json.error.code).toBe('CONSUMER_THROTTLED');
  });

  it("refuses a consumer whose day other processes have used up, recording nothing for the call", async () => {
    const busy = await newConsumer('consumer-busy-elsewhere');
    await t.platform.db.insert(consumerQuotas).values({ ...countedElsewhere('consumer-busy-elsewhere'), callsToday: t.platform.products.pricing.quotas.dailyCalls });
    const refused = await call('resident-identity', { id_number: unknownId(32), name: 'x' }, busy);
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe('DAILY_QUOTA_EXCEEDED');
    expect(await counted('consumer-busy-elsewhere')).toEqual([]);
  });

  it('charges only what is left under the monthly cap when other processes have charged the rest', async () => {
    const capped = await newConsumer('consumer-capped-elsewhere');
    const cap = t.platform.products.pricing.fees.monthlyCapFen;
    await t.platform.db.insert(consumerQuotas).values({ ...countedElsewhere('consumer-capped-elsewhere'), feesThisMonthFen: cap - 10 });
    const fees = [];
    for (const serial of [33, 34]) fees.push((await callSecond('resident-identity', { id_number: unknownId(serial), name: 'x' }, capped)).json.feeFen);
    expect(fees).toEqual([10, 0]);
    expect((await counted('consumer-capped-elsewhere')).map((row) => row.feeFen).sort()).toEqual([0, 10]);
  });

  it("counts today's earlier calls into the shared counters when the database is upgraded", async () => {
    // The migration's last statement, run again over calls made today by the real clock (the migration's now()).
    const migration = fs.readFileSync(path.join(import.meta.dirname, '../../drizzle/0019_consumer_quotas.sql'), 'utf8');
    const backfill = migration.split('--> statement-breakpoint').at(-1)!;
    await newConsumer('consumer-before-upgrade');
    const calledAt = new Date();
    const row = (id: string) => ({ id, productId: 'resident-identity', consumerId: 'consumer-before-upgrade', mode: 'plain' as const, use: 'industry' as const, purpose: 'test', subjectHash: 'subject-before-upgrade', match: false, feeFen: 30, requestHash: id, auditIndex: 0, calledAt });
    await t.platform.db.insert(productCalls).values([row('call_upgrade_1'), row('call_upgrade_2')]);
    const found = await t.platform.db
      .transaction(async (tx) => {
        await tx.delete(consumerQuotas);
        await tx.execute(sql.raw(backfill));
        const rows = await tx.select().from(consumerQuotas).where(eq(consumerQuotas.consumerId, 'consumer-before-upgrade'));
        throw Object.assign(new Error('roll back'), { rows });
      })
      .catch((error: { rows?: Array<typeof consumerQuotas.$inferSelect> }) => error.rows!);
    await t.platform.db.delete(productCalls).where(eq(productCalls.consumerId, 'consumer-before-upgrade'));
    expect(found).toEqual([{ ...countedElsewhere('consumer-before-upgrade', calledAt), callsToday: 2, feesThisMonthFen: 60 }]);
  });

  describe('retried under an Idempotency-Key', () => {
    const keyed = (via: typeof t.call, key: string, input: Record<string, string>, token = consumer) =>
      via('POST', '/v1/products/resident-identity/verify', { token, headers: { 'idempotency-key': key }, json: { input, purpose: 'retry test', use: 'industry' } });
    const recorded = async (consumerId: string) => {
      await Promise.all([t.platform.products.ledger.drain(), second.platform.products.ledger.drain()]);
      const [quota] = await t.platform.db.select().from(consumerQuotas).where(eq(consumerQuotas.consumerId, consumerId));
      return { calls: (await counted(consumerId)).length, callsToday: quota?.callsToday ?? 0, feesFen: quota?.feesThisMonthFen ?? 0 };
    };

    it('answers a retry that reaches another API process with the first signed answer, charged and counted once', async () => {
      const bank = await newConsumer('consumer-retry-elsewhere');
      const input = { id_number: unknownId(51), name: '周八' };
      const first = await keyed(t.call, 'retry-elsewhere-1', input, bank);
      const retry = await keyed(second.call, 'retry-elsewhere-1', input, bank);
      expect([first.status, retry.status]).toEqual([200, 200]);
      expect(retry.json).toEqual(first.json);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(await recorded('consumer-retry-elsewhere')).toEqual({ calls: 1, callsToday: 1, feesFen: first.json.feeFen });
    });

    it('answers one call when the same key reaches two API processes at the same moment, both with its answer', async () => {
      const bank = await newConsumer('consumer-retry-simultaneous');
      const input = { id_number: unknownId(60), name: '褚一' };
      const [one, two] = await Promise.all([keyed(t.call, 'retry-simultaneous', input, bank), keyed(second.call, 'retry-simultaneous', input, bank)]);
      expect([one.status, two.status]).toEqual([200, 200]);
      expect(two.json).toEqual(one.json);
      expect([one.headers.get('idempotent-replayed'), two.headers.get('idempotent-replayed')].sort()).toEqual(['true', null].sort());
      expect(await recorded('consumer-retry-simultaneous')).toMatchObject({ calls: 1, callsToday: 1 });
    });

    it("answers the retry of a subject's last check in another API process, whose own counters already refuse the subject", async () => {
      const input = { id_number: unknownId(52), name: '吴九' };
      for (const via of [t.call, second.call, t.call, second.call]) expect((await keyed(via, `retry-last-${Math.random()}`, input)).status).toBe(200);
      const last = await keyed(t.call, 'retry-last-check', input);
      expect(last.status).toBe(200);
      // The second process learns the subject's five checks from a call the shared counts refuse.
      expect((await callSecond('resident-identity', input, consumer)).json.error.code).toBe('SUBJECT_QUOTA_EXCEEDED');
      const retry = await keyed(second.call, 'retry-last-check', input);
      expect(retry.status).toBe(200);
      expect(retry.json).toEqual(last.json);
    });

    it('does not count a retry answered from the kept answer against the subject or the consumer', async () => {
      const bank = await newConsumer('consumer-retry-uncounted');
      const input = { id_number: unknownId(53), name: '郑十' };
      await keyed(t.call, 'retry-uncounted', input, bank);
      // Each retry is looked up and evaluated in the second process before its ledger finds the key answered.
      for (let attempt = 0; attempt < 3; attempt++) expect((await keyed(second.call, 'retry-uncounted', input, bank)).status).toBe(200);
      expect(await recorded('consumer-retry-uncounted')).toMatchObject({ calls: 1, callsToday: 1 });
      // Four more checks of the subject are still allowed in the second process: the retries took none of them.
      for (let check = 0; check < 4; check++) expect((await callSecond('resident-identity', input, bank)).status).toBe(200);
      expect((await callSecond('resident-identity', input, bank)).json.error.code).toBe('SUBJECT_QUOTA_EXCEEDED');
    });

    it('refuses the same key with another request in another API process, recording nothing for it', async () => {
      const bank = await newConsumer('consumer-retry-reused');
      await keyed(t.call, 'retry-reused', { id_number: unknownId(54), name: '钱一' }, bank);
      const other = await keyed(second.call, 'retry-reused', { id_number: unknownId(54), name: '钱二' }, bank);
      expect(other.status).toBe(422);
      expect(other.json.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
      expect(await recorded('consumer-retry-reused')).toMatchObject({ calls: 1, callsToday: 1 });
    });

    it("does not let a reused key the shared ledger refuses use up one of the subject's checks in the refusing process", async () => {
      const bank = await newConsumer('consumer-retry-reused-count');
      const subject = unknownId(59);
      await keyed(t.call, 'retry-reused-count', { id_number: subject, name: '陈一' }, bank);
      for (let check = 0; check < 3; check++) expect((await callSecond('resident-identity', { id_number: subject, name: '陈二' }, bank)).status).toBe(200);
      // Admitted by the second process's own counters, refused by the ledger: the key named another request.
      expect((await keyed(second.call, 'retry-reused-count', { id_number: subject, name: '陈三' }, bank)).json.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
      expect((await callSecond('resident-identity', { id_number: subject, name: '陈四' }, bank)).status).toBe(200);
      expect((await callSecond('resident-identity', { id_number: subject, name: '陈五' }, bank)).json.error.code).toBe('SUBJECT_QUOTA_EXCEEDED');
    });

    it("keeps another consumer's call under the same key apart", async () => {
      const [one, two] = [await newConsumer('consumer-retry-one'), await newConsumer('consumer-retry-two')];
      const first = await keyed(t.call, 'retry-shared-key', { id_number: unknownId(55), name: '孙一' }, one);
      const other = await keyed(second.call, 'retry-shared-key', { id_number: unknownId(56), name: '孙二' }, two);
      expect(other.status).toBe(200);
      expect(other.headers.get('idempotent-replayed')).toBeNull();
      expect(other.json.jws).not.toBe(first.json.jws);
    });

    it('keeps the answer sealed: neither the identifier, the name nor the salt is stored in clear', async () => {
      const bank = await newConsumer('consumer-retry-sealed');
      const input = { id_number: unknownId(57), name: '李十一' };
      const answer = await keyed(t.call, 'key-7f3a91', input, bank);
      const salt = JSON.parse(Buffer.from(answer.json.jws.split('.')[1], 'base64url').toString()).request_salt as string;
      const rows = await t.platform.db.select().from(callReplays).where(eq(callReplays.consumerId, 'consumer-retry-sealed'));
      expect(rows).toHaveLength(1);
      const stored = JSON.stringify(rows);
      for (const secret of [input.id_number, input.name, salt, 'key-7f3a91']) expect(stored).not.toContain(secret);
    });

    it('records once two calls under one key that reach the ledger in the same batch, the second answered as the first', async () => {
      await newConsumer('consumer-retry-batch');
      const ledger = t.platform.products.ledger;
      const retry = t.platform.products.callReplays.retryKey('consumer-retry-batch', 'one-batch', { same: 'request' });
      const entry = (id: string) => ({
        call: { id, productId: 'resident-identity', consumerId: 'consumer-retry-batch', mode: 'plain' as const, use: 'industry' as const, purpose: 'test', subjectHash: 'subject-retry-batch', match: false, requestHash: id, calledAt: t.clock.now },
        claim: { consumerId: 'consumer-retry-batch', productId: 'resident-identity', use: 'industry' as const, at: t.clock.now, subject: { hash: 'subject-retry-batch', dailyLimit: 5 } },
        event: (feeFen: number) => ({ type: 'product.called', actor: 'consumer-retry-batch', details: { fee_fen: feeFen } }),
        retry: { key: retry, sealed: Buffer.from(`sealed-${id}`) },
      });
      // Recorded in one turn of the event loop, so both go in the ledger's next batch.
      const [first, second] = await Promise.all([ledger.record(entry('call_batch_1')), ledger.record(entry('call_batch_2'))]);
      expect(first.replayOf).toBeUndefined();
      expect(second).toEqual({ ...first, replayOf: { sealed: Buffer.from('sealed-call_batch_1') } });
      expect((await counted('consumer-retry-batch')).map((row) => row.id)).toEqual(['call_batch_1']);
    });

    it('forgets kept answers after a day: a retry then is a new call', async () => {
      const bank = await newConsumer('consumer-retry-forgotten');
      const input = { id_number: unknownId(58), name: '冯十二' };
      const first = await keyed(t.call, 'retry-forgotten', input, bank);
      const hours = (count: number) => new Date(t.clock.now.getTime() + count * 3_600_000);
      const replays = t.platform.products.callReplays;
      await replays.purge(t.platform.db, hours(23));
      expect((await keyed(second.call, 'retry-forgotten', input, bank)).json.jws).toBe(first.json.jws);
      expect(await replays.purge(t.platform.db, hours(25))).toBeGreaterThan(0);
      // A process started since (both others hold the answer in memory) finds nothing kept.
      const restarted = await t.anotherApiProcess();
      try {
        const later = await keyed(restarted.call, 'retry-forgotten', input, bank);
        expect(later.status).toBe(200);
        expect(later.headers.get('idempotent-replayed')).toBeNull();
        await restarted.platform.products.ledger.drain();
      } finally {
        await restarted.close();
      }
      expect(await recorded('consumer-retry-forgotten')).toMatchObject({ calls: 2 });
    });
  });
});

describe('quota standing', () => {
  it("shows a consumer its calls today and fees this month against its limits", async () => {
    const standing = await newConsumer('consumer-standing');
    for (const serial of [41, 42]) expect((await call('resident-identity', { id_number: unknownId(serial), name: 'x' }, standing)).status).toBe(200);
    const read = await t.call('GET', '/v1/consumers/consumer-standing/quota', { token: standing });
    expect(read.status).toBe(200);
    const pricing = t.platform.products.pricing;
    expect(read.json).toEqual({
      day: chinaDay(t.clock.now),
      callsToday: 2,
      dailyCalls: pricing.quotas.dailyCalls,
      ratePerSecond: pricing.quotas.ratePerSecond,
      productCallsToday: {},
      month: chinaMonth(t.clock.now),
      feesThisMonthFen: 60,
      monthlyCapFen: pricing.fees.monthlyCapFen,
      throttledUntil: null,
    });
  });

  it('shows regulators which consumers are throttled, and until when', async () => {
    const read = await t.call('GET', '/v1/consumers/consumer-prober/quota', { token: regulator });
    expect(Date.parse(read.json.throttledUntil) - t.clock.now.getTime()).toBe(t.platform.products.pricing.probing.throttleMinutes * 60_000);
    const listed = await t.call('GET', '/v1/consumers', { token: regulator });
    expect(listed.json.consumers.find((entry: { id: string }) => entry.id === 'consumer-prober').quota.throttledUntil).toBe(read.json.throttledUntil);
  });

  it("hides a consumer's standing from other consumers and operators, and has none for a principal that is not a consumer", async () => {
    expect((await t.call('GET', '/v1/consumers/consumer-standing/quota', { token: consumer })).status).toBe(404);
    expect((await t.call('GET', '/v1/consumers/consumer-standing/quota', { token: lingang })).status).toBe(404);
    expect((await t.call('GET', '/v1/consumers/analyst-lingang-analytics/quota', { token: regulator })).status).toBe(404);
  });
});

describe("products serve only under their operator's licence (art. 21)", () => {
  const harbourLicences = async () => (await t.call('GET', '/v1/licences', { token: regulator })).json.licences.filter((licence: { operatorId: string; status: string }) => licence.operatorId === 'harbour-credit' && licence.status === 'active');
  const setStatus = (id: string, status: string, reason: string) => t.call('POST', `/v1/licences/${id}/status`, { token: regulator, json: { status, reason } });
  const offered = async () => (await t.call('GET', '/v1/products', { token: consumer })).json.products.map((product: { id: string }) => product.id);
  const example = async () => (await t.call('GET', '/v1/products/enterprise-identity', { token: consumer })).json.example;

  it("a suspended licence stops its operator's products at the next call and takes them off the list; reinstated, they answer again", async () => {
    const input = await example();
    expect((await call('enterprise-identity', input)).status).toBe(200);
    const suspended = await harbourLicences();
    for (const licence of suspended) await setStatus(licence.id, 'suspended', 'inspection');
    try {
      const refused = await call('enterprise-identity', input);
      expect(refused.status).toBe(409);
      expect(refused.json.error.code).toBe('PRODUCT_NOT_CALLABLE');
      expect(await offered()).not.toContain('enterprise-identity');
    } finally {
      for (const licence of suspended) await setStatus(licence.id, 'active', 'inspection closed');
    }
    expect((await call('enterprise-identity', input)).status).toBe(200);
    expect(await offered()).toContain('enterprise-identity');
  });

  it("a suspended operator's products stop at the next call, though its licences stay active; reinstated, they answer again", async () => {
    const input = await example();
    const setOperator = (status: string, reason: string) => t.call('POST', '/v1/operators/harbour-credit/status', { token: regulator, json: { status, reason } });
    expect((await setOperator('suspended', 'inspection')).status).toBe(200);
    try {
      expect((await harbourLicences()).length).toBeGreaterThan(0);
      expect((await call('enterprise-identity', input)).json.error.code).toBe('PRODUCT_NOT_CALLABLE');
      expect(await offered()).not.toContain('enterprise-identity');
    } finally {
      await setOperator('active', 'inspection closed');
    }
    expect((await call('enterprise-identity', input)).status).toBe(200);
  });

  it("a lapsed licence stops its operator's products", async () => {
    const input = await example();
    const saved = t.clock.now;
    t.clock.now = new Date(Date.UTC(saved.getUTCFullYear() + 10, 0, 1));
    try {
      const refused = await call('enterprise-identity', input, await t.tokenFor('consumer-east-sea-bank'));
      expect(refused.json.error.code).toBe('PRODUCT_NOT_CALLABLE');
    } finally {
      t.clock.now = saved;
    }
  });

  it("a dataset graded above its operator's licence stops the products over it", async () => {
    const input = await example();
    // What a published catalogue revision that raises the grade leaves behind (docs/governance.md), set directly.
    await t.platform.db.update(datasets).set({ grade: 'important' }).where(eq(datasets.id, 'enterprises'));
    await t.platform.analysisCatalogue();
    try {
      expect((await call('enterprise-identity', input)).json.error.code).toBe('PRODUCT_NOT_CALLABLE');
    } finally {
      await t.platform.db.update(datasets).set({ grade: 'L2' }).where(eq(datasets.id, 'enterprises'));
      await t.platform.analysisCatalogue();
    }
    expect((await call('enterprise-identity', input)).status).toBe(200);
  });

  it("a product stops answering once its data's catalogue entry changes, until a regulator re-checks it by suspending and reinstating it", async () => {
    const input = await example();
    const regrade = async (grade: string) => {
      // What a published catalogue revision leaves behind, set directly (a grade within the operator's licence).
      await t.platform.db.update(datasets).set({ grade: grade as 'L2' }).where(eq(datasets.id, 'enterprises'));
      await t.platform.analysisCatalogue();
    };
    /** Suspend and reinstate (the regulator's re-check under the entry as it is now), then publish again. */
    const recheck = async () => {
      for (const decision of ['suspend', 'reinstate']) {
        expect((await t.call('POST', '/v1/products/enterprise-identity/decision', { token: regulator, json: { decision, reason: '目录分级变更后复核' } })).status).toBe(200);
      }
      expect((await t.call('POST', '/v1/products/enterprise-identity/publication', { token: harbour, json: { action: 'publish' } })).json.status).toBe('published');
    };
    await regrade('L3');
    try {
      const refused = await call('enterprise-identity', input);
      expect(refused.json.error).toMatchObject({ code: 'PRODUCT_NOT_CALLABLE', message: expect.stringContaining('catalogue entry of enterprises changed') });
      expect(await offered()).not.toContain('enterprise-identity');
      await recheck();
      expect((await call('enterprise-identity', input)).status).toBe(200);
    } finally {
      await regrade('L2');
      await recheck();
    }
    expect((await call('enterprise-identity', input)).status).toBe(200);
  });

  it('a published product whose definition the analyser now refuses answers PRODUCT_NOT_CALLABLE without naming the check; a reinstatement names it', async () => {
    const input = (await t.call('GET', '/v1/products/enterprise-power-payment', { token: consumer })).json.example;
    // As a process started with a policy file that no longer allows bool_and over attributes would see it.
    const allowed = t.platform.disclosurePolicy.aggregatesByClass.attribute;
    const saved = [...allowed];
    allowed.splice(allowed.indexOf('bool_and'), 1);
    // Each change of the product a second after the last, as on a running clock (a process knows a product changed by its updatedAt).
    const later = () => (t.clock.now = new Date(t.clock.now.getTime() + 1000));
    const decide = (decision: string) => (later(), t.call('POST', '/v1/products/enterprise-power-payment/decision', { token: regulator, json: { decision, reason: '策略变更后复核' } }));
    const suspend = () => decide('suspend');
    const reinstate = () => decide('reinstate');
    try {
      // The product's row changes (a suspension undone by hand), so this process works out its data use again.
      expect((await suspend()).status).toBe(200);
      await t.platform.db.update(products).set({ status: 'published' }).where(eq(products.id, 'enterprise-power-payment'));
      const refused = await call('enterprise-power-payment', input);
      expect(refused.status).toBe(409);
      expect(refused.json.error).toMatchObject({ code: 'PRODUCT_NOT_CALLABLE', message: expect.not.stringContaining('bool_and') });
      expect((await suspend()).status).toBe(200);
      const named = await reinstate();
      expect(named.json.error.code).toBe('AGGREGATE_NOT_ALLOWED');
    } finally {
      allowed.splice(0, allowed.length, ...saved);
    }
    expect((await reinstate()).json.status).toBe('approved');
    later();
    expect((await t.call('POST', '/v1/products/enterprise-power-payment/publication', { token: harbour, json: { action: 'publish' } })).json.status).toBe('published');
    expect((await call('enterprise-power-payment', input)).status).toBe(200);
  });

  it('a licence in force that leaves out a column the product reads does not keep it serving', async () => {
    const input = await example();
    const original = await harbourLicences();
    const narrow = await t.call('POST', '/v1/operators/harbour-credit/licences', {
      token: regulator,
      json: {
        title: 'Credit codes only',
        scope: [{ dataset: 'enterprises', columns: ['uscc', 'town'] }],
        purposes: ['public_interest'],
        maxGrade: 'L2',
        validFrom: new Date(t.clock.now.getTime() - 86_400_000).toISOString(),
        validUntil: new Date(t.clock.now.getTime() + 30 * 86_400_000).toISOString(),
        feeMode: 'free',
      },
    });
    expect(narrow.status).toBe(201);
    for (const licence of original) await setStatus(licence.id, 'suspended', 'inspection');
    try {
      expect((await call('enterprise-identity', input)).json.error.code).toBe('PRODUCT_NOT_CALLABLE');
    } finally {
      for (const licence of original) await setStatus(licence.id, 'active', 'inspection closed');
      await setStatus(narrow.json.id, 'revoked', 'test over');
    }
    expect((await call('enterprise-identity', input)).status).toBe(200);
  });
});
