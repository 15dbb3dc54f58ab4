import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let regulator: string;
let analyst: string;
let otherAnalyst: string;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
  regulator = await t.tokenFor('regulator-data-dept');
  analyst = await t.tokenFor('analyst-lingang-analytics');
  otherAnalyst = await t.tokenFor('analyst-harbour-credit');
});
afterAll(() => t?.close());

const licenceOf = async (token: string) => (await t.call('GET', '/v1/licences', { token })).json.licences[0];

const validLicence = () => ({
  title: 'Test licence',
  scope: [{ dataset: 'enterprises' }, { dataset: 'power_readings', columns: ['town', 'month', 'kwh'] }],
  purposes: ['public_interest'],
  maxGrade: 'L3',
  validFrom: new Date(t.clock.now.getTime() - 86_400_000).toISOString(),
  validUntil: new Date(t.clock.now.getTime() + 365 * 86_400_000).toISOString(),
  feeMode: 'free',
});

describe('operators and licences', () => {
  it('a regulator creates an operator, grants it a licence, and a new analyst of it is let in', async () => {
    const operator = await t.call('POST', '/v1/operators', { token: regulator, json: { id: 'seaside-research', name: 'Seaside Research' } });
    expect(operator.status).toBe(201);
    const licence = await t.call('POST', '/v1/operators/seaside-research/licences', { token: regulator, json: validLicence() });
    expect(licence.status).toBe(201);
    expect(licence.json).toMatchObject({ operatorId: 'seaside-research', status: 'active', maxGrade: 'L3' });
    const admin = await t.tokenFor('admin-data-centre');
    const user = await t.call('POST', '/v1/principals', { token: admin, json: { id: 'seaside-analyst', role: 'operator', displayName: 'A', operatorId: 'seaside-research' } });
    expect(user.status).toBe(201);
    const catalogue = await t.call('GET', '/v1/datasets', { token: await t.tokenFor('seaside-analyst') });
    expect(catalogue.status).toBe(200);
  });

  it('a licence above its maximum grade is refused', async () => {
    const response = await t.call('POST', '/v1/operators/seaside-research/licences', {
      token: regulator,
      json: { ...validLicence(), scope: [{ dataset: 'transit_trips' }] },
    });
    expect(response.status).toBe(400);
    expect(response.json.error.details).toContainEqual({ path: 'scope.0.dataset', problem: "grade L4 is above the licence's maximum grade" });
  });

  it('a licence naming an unknown column is refused', async () => {
    const response = await t.call('POST', '/v1/operators/seaside-research/licences', {
      token: regulator,
      json: { ...validLicence(), scope: [{ dataset: 'enterprises', columns: ['no_such_column'] }] },
    });
    expect(response.status).toBe(400);
  });

  it('a licence that ends before it starts is refused', async () => {
    const response = await t.call('POST', '/v1/operators/seaside-research/licences', {
      token: regulator,
      json: { ...validLicence(), validUntil: new Date(t.clock.now.getTime() - 2 * 86_400_000).toISOString() },
    });
    expect(response.status).toBe(400);
    expect(response.json.error.details).toContainEqual({ path: 'validUntil', problem: 'must be after validFrom' });
  });

  it('an operator cannot create operators', async () => {
    const response = await t.call('POST', '/v1/operators', { token: analyst, json: { id: 'rogue-operator', name: 'Rogue' } });
    expect(response.status).toBe(403);
  });

  it("an operator sees only its own licences, and another operator's licence answers 404", async () => {
    const own = await t.call('GET', '/v1/licences', { token: analyst });
    expect(own.json.licences.every((licence: { operatorId: string }) => licence.operatorId === 'lingang-analytics')).toBe(true);
    const othersLicence = await licenceOf(otherAnalyst);
    const response = await t.call('GET', `/v1/licences/${othersLicence.id}`, { token: analyst });
    expect(response.status).toBe(404);
    expect(response.json.error.code).toBe('NOT_FOUND');
  });

  it("another operator's record answers 404, not 403", async () => {
    const response = await t.call('GET', '/v1/operators/harbour-credit', { token: analyst });
    expect(response.status).toBe(404);
  });
});

describe('suspension and revocation', () => {
  it('a suspended licence stops its operator at once, with the token it already holds', async () => {
    const licence = await licenceOf(otherAnalyst);
    expect((await t.call('GET', '/v1/datasets', { token: otherAnalyst })).status).toBe(200);
    const suspended = await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'suspended', reason: 'audit finding' } });
    expect(suspended.json.status).toBe('suspended');
    const refused = await t.call('GET', '/v1/datasets', { token: otherAnalyst });
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe('LICENCE_INACTIVE');
    // The other operator is not affected.
    expect((await t.call('GET', '/v1/datasets', { token: analyst })).status).toBe(200);
    await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'active', reason: 'finding resolved' } });
    expect((await t.call('GET', '/v1/datasets', { token: otherAnalyst })).status).toBe(200);
  });

  it('an expired licence counts as not in force', async () => {
    const saved = t.clock.now;
    t.clock.now = new Date(Date.UTC(saved.getUTCFullYear() + 10, 0, 1));
    try {
      const token = await t.tokenFor('analyst-lingang-analytics');
      const response = await t.call('GET', '/v1/datasets', { token });
      expect(response.json.error.code).toBe('LICENCE_INACTIVE');
    } finally {
      t.clock.now = saved;
    }
  });

  it('revocation is final', async () => {
    const created = await t.call('POST', '/v1/operators/seaside-research/licences', { token: regulator, json: validLicence() });
    const id = created.json.id;
    expect((await t.call('POST', `/v1/licences/${id}/status`, { token: regulator, json: { status: 'revoked', reason: 'misuse' } })).status).toBe(200);
    const reinstated = await t.call('POST', `/v1/licences/${id}/status`, { token: regulator, json: { status: 'active', reason: 'appeal' } });
    expect(reinstated.status).toBe(409);
    expect(reinstated.json.error.code).toBe('INVALID_TRANSITION');
  });

  it('an operator cannot lift its own suspension', async () => {
    const licence = await licenceOf(analyst);
    const response = await t.call('POST', `/v1/licences/${licence.id}/status`, { token: analyst, json: { status: 'active', reason: 'please' } });
    expect(response.status).toBe(403);
    expect(response.json.error.code).toBe('FORBIDDEN');
  });

  it("another operator's licence cannot be changed and is not revealed", async () => {
    const licence = await licenceOf(otherAnalyst);
    const response = await t.call('POST', `/v1/licences/${licence.id}/status`, { token: analyst, json: { status: 'revoked', reason: 'x' } });
    expect(response.status).toBe(404);
  });
});
