import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { licences } from '../../src/db/schema.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let analyst: string;
let regulators: string[];
const tripsByRoute = 'SELECT route_id, count(*) AS trips, avg(fare) AS mean_fare FROM transit_trips GROUP BY route_id';

beforeAll(async () => {
  t = await createTestPlatform({ demo: true, workers: 1, environment: { PDS_DEMO_SCALE: '0.01' } });
  analyst = await t.tokenFor('analyst-harbour-credit');
  regulators = await t.twoRegulators();
  const [licence] = await t.platform.db.select().from(licences).where(eq(licences.operatorId, 'harbour-credit'));
  const cap = await t.call('POST', '/v1/budgets', { token: regulators[0], json: { licenceId: licence!.id, datasetId: 'transit_trips', epsilonCap: 1, reason: 'test' } });
  expect(cap.status).toBe(200);
});
afterAll(() => t?.close());

const submitDp = (sql: string, epsilon = 0.25) =>
  t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['transit_trips'], sql, purpose: 'route planning', privacy: { differentialPrivacy: true, epsilon } } });

async function runAndRelease(sql: string, epsilon = 0.25) {
  const submitted = await submitDp(sql, epsilon);
  expect(submitted.status).toBe(201);
  const job = await t.waitForJob(submitted.json.id);
  expect(job).toMatchObject({ status: 'in_review', reviewersRequired: 2, statusCode: 'CHECKED_WITH_NOISE' });
  for (const token of regulators) await t.call('POST', `/v1/reviews/${job.id}`, { token, json: { decision: 'approve', reason: 'DP output' } });
  return submitted.json.id as string;
}

describe('differentially private jobs on L4 data', () => {
  it('a group key without a public domain is refused', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', {
      token: analyst,
      json: { datasets: ['transit_trips'], sql: 'SELECT board_stop_id, count(*) FROM transit_trips GROUP BY board_stop_id', purpose: 'x', privacy: { differentialPrivacy: true, epsilon: 0.1 } },
    });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('DP_QUERY_SHAPE');
  });

  it('release every route of the public domain with integer noisy counts, the mechanism and a confidence interval', async () => {
    const id = await runAndRelease(tripsByRoute);
    const result = await t.call('GET', `/v1/jobs/${id}/result`, { token: analyst });
    expect(result.status).toBe(200);
    expect(result.json.rows.map((row: unknown[]) => row[0])).toEqual(Array.from({ length: 30 }, (_, index) => `LG${String(index + 1).padStart(2, '0')}`));
    for (const row of result.json.rows) expect(Number.isInteger(row[1])).toBe(true);
    const dp = result.json.manifest.differentialPrivacy;
    expect(dp).toMatchObject({ epsilon: 0.25, delta: 0, maxRowsPerUnit: 10 });
    // ε split over the count and the fare sum: 0.125 each; count sensitivity 10 → scale 80.
    expect(dp.statistics[0]).toMatchObject({ name: 'count', mechanism: 'discrete_laplace', epsilon: 0.125, sensitivity: 10, scale: 80 });
    expect(dp.statistics[0].ci95HalfWidth).toBeGreaterThan(100);
  });

  it('the dry run and the job itself name a differentially private job\'s ε, δ and mechanism; an ordinary job has none', async () => {
    const dryRun = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['transit_trips'], sql: tripsByRoute, purpose: 'x', privacy: { differentialPrivacy: true, epsilon: 0.1, mechanism: 'laplace' } } });
    expect(dryRun.json.differentialPrivacy).toEqual({ epsilon: 0.1, delta: 0, mechanism: 'laplace' });
    const jobs = (await t.call('GET', '/v1/jobs?status=released', { token: analyst })).json.jobs;
    expect(jobs[0].differentialPrivacy).toEqual({ epsilon: 0.25, delta: 0, mechanism: 'laplace' });
    const ordinary = await t.call('POST', '/v1/jobs/dry-run', { token: await t.tokenFor('analyst-lingang-analytics'), json: { datasets: ['enterprises'], sql: 'SELECT town, count(*) AS firms FROM enterprises GROUP BY town', purpose: 'x' } });
    expect(ordinary.json.differentialPrivacy).toBeNull();
  });

  it('a repeated download returns identical bytes (no fresh noise)', async () => {
    const jobs = (await t.call('GET', '/v1/jobs?status=released', { token: analyst })).json.jobs;
    const first = await t.call('GET', `/v1/jobs/${jobs[0].id}/result`, { token: analyst });
    const second = await t.call('GET', `/v1/jobs/${jobs[0].id}/result`, { token: analyst });
    expect(second.text).toBe(first.text);
  });

  it('an estimate gives the cost and the remaining budget without spending it', async () => {
    const estimate = await t.call('POST', '/v1/jobs/estimate', {
      token: analyst,
      json: { datasets: ['transit_trips'], sql: tripsByRoute, purpose: 'x', privacy: { differentialPrivacy: true, epsilon: 0.25 } },
    });
    expect(estimate.json).toMatchObject({ allowed: true, epsilon: 0.25, grade: 'L4', budget: { dataset: 'transit_trips', epsilonCap: 1, epsilonSpent: 0.25, epsilonRemaining: 0.75 } });
    const again = await t.call('POST', '/v1/jobs/estimate', {
      token: analyst,
      json: { datasets: ['transit_trips'], sql: tripsByRoute, purpose: 'x', privacy: { differentialPrivacy: true, epsilon: 0.25 } },
    });
    expect(again.json.budget.epsilonSpent).toBe(0.25);
    const tooMuch = await t.call('POST', '/v1/jobs/estimate', {
      token: analyst,
      json: { datasets: ['transit_trips'], sql: tripsByRoute, purpose: 'x', privacy: { differentialPrivacy: true, epsilon: 0.9 } },
    });
    expect(tooMuch.json).toMatchObject({ allowed: false, code: 'BUDGET_EXHAUSTED' });
  });

  it('repeating the query to average the noise stops when the budget is spent', async () => {
    // 0.25 of 1.0 is spent already; three more fit, the fourth does not.
    for (let i = 0; i < 3; i++) expect((await submitDp(tripsByRoute)).status).toBe(201);
    const refused = await submitDp(tripsByRoute);
    expect(refused.status).toBe(422);
    expect(refused.json.error.code).toBe('BUDGET_EXHAUSTED');
    const budget = (await t.call('GET', '/v1/budgets', { token: analyst })).json.budgets.find((entry: { datasetId: string }) => entry.datasetId === 'transit_trips');
    expect(budget.epsilonRemaining).toBe(0);
  });

  it('an ε that is not a finite positive number in range is refused', async () => {
    for (const epsilon of [0, -1, 1e-9, 1000]) {
      const response = await submitDp(tripsByRoute, epsilon);
      expect(response.status).toBe(400);
    }
  });
});
