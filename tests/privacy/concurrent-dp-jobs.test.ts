import { afterAll, beforeAll, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { licences } from '../../src/db/schema.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true, workers: 2, environment: { PDS_DEMO_SCALE: '0.01' } });
});
afterAll(() => t?.close());

it('50 concurrent DP jobs at ε = 0.1 against a remaining budget of 1.0 end with at most 10 charged and released', async () => {
  const regulator = await t.tokenFor('regulator-data-dept');
  const analyst = await t.tokenFor('analyst-harbour-credit');
  const [licence] = await t.platform.db.select().from(licences).where(eq(licences.operatorId, 'harbour-credit'));
  expect((await t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId: licence!.id, datasetId: 'residents', epsilonCap: 1, reason: 'test' } })).status).toBe(200);
  const responses = await Promise.all(
    Array.from({ length: 50 }, () =>
      t.call('POST', '/v1/jobs', {
        token: analyst,
        json: { datasets: ['residents'], sql: 'SELECT town, count(*) AS people FROM residents GROUP BY town', purpose: 'x', privacy: { differentialPrivacy: true, epsilon: 0.1 } },
      }),
    ),
  );
  const accepted = responses.filter((response) => response.status === 201);
  expect(accepted.length).toBeLessThanOrEqual(10);
  for (const response of responses.filter((candidate) => candidate.status !== 201)) expect(response.json.error.code).toBe('BUDGET_EXHAUSTED');
  let released = 0;
  for (const response of accepted) {
    const job = await t.waitForJob(response.json.id);
    if (job.status === 'in_review') {
      const review = await t.call('POST', `/v1/reviews/${job.id}`, { token: regulator, json: { decision: 'approve', reason: 'DP output' } });
      if (review.json.status === 'released') released += 1;
    }
  }
  expect(released).toBe(accepted.length);
  const budget = (await t.call('GET', '/v1/budgets', { token: analyst })).json.budgets.find((entry: { datasetId: string }) => entry.datasetId === 'residents');
  expect(budget.epsilonSpent).toBeCloseTo(accepted.length * 0.1, 10);
  expect(budget.epsilonSpent).toBeLessThanOrEqual(1);
});

it('10 concurrent retries of one DP submission under one Idempotency-Key create one job and spend its ε once', async () => {
  const regulator = await t.tokenFor('regulator-data-dept');
  const analyst = await t.tokenFor('analyst-harbour-credit');
  const [licence] = await t.platform.db.select().from(licences).where(eq(licences.operatorId, 'harbour-credit'));
  const spentOf = async () => (await t.call('GET', '/v1/budgets', { token: analyst })).json.budgets.find((entry: { datasetId: string }) => entry.datasetId === 'transit_trips')?.epsilonSpent ?? 0;
  expect((await t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId: licence!.id, datasetId: 'transit_trips', epsilonCap: 5, reason: 'test' } })).status).toBe(200);
  const before = await spentOf();
  const responses = await Promise.all(
    Array.from({ length: 10 }, () =>
      t.call('POST', '/v1/jobs', {
        token: analyst,
        headers: { 'idempotency-key': 'route-study-2026-11-27' },
        json: { datasets: ['transit_trips'], sql: 'SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY route_id', purpose: 'x', privacy: { differentialPrivacy: true, epsilon: 0.1 } },
      }),
    ),
  );
  expect(responses.map((response) => response.status)).toEqual(Array(10).fill(201));
  expect(new Set(responses.map((response) => response.json.id)).size).toBe(1);
  expect(responses.filter((response) => response.headers.get('idempotent-replayed') === 'true')).toHaveLength(9);
  expect(await spentOf()).toBeCloseTo(before + 0.1, 10);
});
