import { DuckDBInstance } from '@duckdb/node-api';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestVersion } from '../../src/catalog/catalogue.js';
import { licences } from '../../src/db/schema.js';
import { towns } from '../../src/demo/demo-catalogue.js';
import { discreteLaplaceCi95, rhoFor } from '../../src/privacy/dp-release.js';
import { discreteLaplacePmf } from '../../src/privacy/exact-samplers.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let analyst: string;
let regulators: string[];
let licenceId: string;

beforeAll(async () => {
  t = await createTestPlatform({ demo: true, workers: 1, environment: { PDS_DEMO_SCALE: '0.01' } });
  analyst = await t.tokenFor('analyst-harbour-credit');
  regulators = await t.twoRegulators();
  const [licence] = await t.platform.db.select().from(licences).where(eq(licences.operatorId, 'harbour-credit'));
  licenceId = licence!.id;
  expect((await t.call('POST', '/v1/budgets', { token: regulators[0], json: { licenceId, datasetId: 'transit_trips', epsilonCap: 10, deltaCap: 1e-5 } })).status).toBe(200);
}, 120_000);
afterAll(() => t?.close());

const job = (sql: string, privacy: Record<string, unknown>, datasets = ['transit_trips', 'bus_routes']) => ({ datasets, sql, purpose: 'transit planning', privacy: { differentialPrivacy: true, epsilon: 0.5, ...privacy } });

async function released(sql: string, privacy: Record<string, unknown> = {}, datasets?: string[]) {
  const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: job(sql, privacy, datasets) });
  expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
  const settled = await t.waitForJob(submitted.json.id);
  expect(settled.statusCode).toBe('CHECKED_WITH_NOISE');
  for (const token of regulators) await t.call('POST', `/v1/reviews/${settled.id}`, { token, json: { decision: 'approve', reason: 'DP output' } });
  return (await t.call('GET', `/v1/jobs/${settled.id}/result`, { token: analyst })).json;
}

/** Exact figures straight from the snapshots, for comparison only (the service never shows these). */
async function exact(sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    for (const id of ['transit_trips', 'bus_routes']) {
      const version = await latestVersion(t.platform.db, id);
      await connection.run(`ATTACH '${t.platform.store.snapshotPath(id, version!.contentHash)}' AS ${id} (READ_ONLY)`);
    }
    return (await connection.runAndReadAll(sql)).getRows();
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

describe('differentially private joins', () => {
  it('join protected trips with open bus routes and release every town of the public domain', async () => {
    const result = await released('SELECT b.town, count(*) AS boardings FROM transit_trips t JOIN bus_routes b ON t.route_id = b.route_id AND t.board_stop_id = b.stop_id GROUP BY b.town');
    expect(result.rows.map((row: unknown[]) => row[0])).toEqual([...towns]);
    for (const row of result.rows) expect(Number.isInteger(row[1])).toBe(true);
    expect(result.manifest.differentialPrivacy).toMatchObject({ epsilon: 0.5, delta: 0, mechanism: 'discrete_laplace', maxRowsPerUnit: 10 });
  });

  it('bound each card\'s rows after the join, however many rows the join makes of one trip', async () => {
    // Joined on the route alone, every trip meets every stop of its route: unbounded, the count would be many times
    // the trips; bounded after the join, it is at most 10 rows per card.
    const [[cards, multiplied]] = (await exact('SELECT (SELECT count(DISTINCT card_id) FROM transit_trips.data), (SELECT count(*) FROM transit_trips.data t JOIN bus_routes.data b ON t.route_id = b.route_id)')) as [[bigint, bigint]];
    expect(Number(multiplied)).toBeGreaterThan(20 * Number(cards));
    const result = await released('SELECT b.town, count(*) AS rows_after_join FROM transit_trips t JOIN bus_routes b ON t.route_id = b.route_id GROUP BY b.town');
    const total = result.rows.reduce((sum: number, row: unknown[]) => sum + Number(row[1]), 0);
    const slack = result.rows.length * result.manifest.differentialPrivacy.statistics[0].ci95HalfWidth * 3;
    expect(total).toBeLessThanOrEqual(10 * Number(cards) + slack);
  });

  it('refuse a join of two protected datasets, whose units one cap cannot bound together', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', {
      token: analyst,
      json: job('SELECT r.town, count(*) FROM transit_trips t JOIN residents r ON t.resident_id = r.resident_id GROUP BY r.town', {}, ['transit_trips', 'residents']),
    });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('DP_QUERY_SHAPE');
  });
});

describe('differentially private joins of protected datasets on their privacy unit', () => {
  it('bound each account once across both datasets and charge both budgets', async () => {
    const regulator = regulators[0]!;
    const [lingang] = await t.platform.db.select().from(licences).where(eq(licences.operatorId, 'lingang-analytics'));
    for (const datasetId of ['power_readings', 'water_readings']) {
      expect((await t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId: lingang!.id, datasetId, epsilonCap: 2 } })).status).toBe(200);
    }
    const energy = await t.tokenFor('analyst-lingang-analytics');
    const sql = 'SELECT p.town, count(*) AS account_months, sum(w.cubic_metres) AS water FROM power_readings p JOIN water_readings w ON p.account_id = w.account_id AND p.month = w.month GROUP BY p.town';
    const submitted = await t.call('POST', '/v1/jobs', { token: energy, json: { datasets: ['power_readings', 'water_readings'], sql, purpose: '能源与用水规划', privacy: { differentialPrivacy: true, epsilon: 0.5 } } });
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    const settled = await t.waitForJob(submitted.json.id);
    expect(['released', 'in_review']).toContain(settled.status);
    const budgets = (await t.call('GET', '/v1/budgets', { token: energy })).json.budgets.filter((entry: { licenceId: string }) => entry.licenceId === lingang!.id);
    expect(budgets.map((entry: { datasetId: string; epsilonSpent: number }) => [entry.datasetId, entry.epsilonSpent]).sort()).toEqual([
      ['power_readings', 0.5],
      ['water_readings', 0.5],
    ]);
  });

  it('refuse the same datasets joined on anything but the unit', async () => {
    const energy = await t.tokenFor('analyst-lingang-analytics');
    const response = await t.call('POST', '/v1/jobs/dry-run', {
      token: energy,
      json: { datasets: ['power_readings', 'water_readings'], sql: 'SELECT p.town, count(*) FROM power_readings p JOIN water_readings w ON p.town = w.town AND p.month = w.month GROUP BY p.town', purpose: 'x', privacy: { differentialPrivacy: true, epsilon: 0.5 } },
    });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('DP_QUERY_SHAPE');
    expect(response.json.error.message).toContain('privacy units');
  });
});

describe('DP partition selection', () => {
  it('releases keys many cards hold, at the threshold set by δ', async () => {
    // Fares have no public domain in the catalogue; the two fares are each paid with many cards.
    const result = await released('SELECT fare, count(*) AS trips FROM transit_trips GROUP BY fare', { epsilon: 4, delta: 1e-6 }, ['transit_trips']);
    const selection = result.manifest.differentialPrivacy.partitionSelection;
    // ε 4 split between the count and the selection: scale 10 / 2 = 5, k = ⌈5 · ln(10 / 1e-6)⌉.
    expect(selection).toMatchObject({ mechanism: 'laplace_threshold', epsilon: 2, delta: 1e-6, scale: 5, threshold: 1 + Math.ceil(5 * Math.log(10 / 1e-6)) });
    const cardsPerFare = await exact('SELECT fare::VARCHAR, count(DISTINCT card_id) FROM transit_trips.data GROUP BY fare ORDER BY fare');
    for (const [, cards] of cardsPerFare) expect(Number(cards)).toBeGreaterThan(3 * selection.threshold);
    expect(result.rows.map((row: unknown[]) => Number(row[0]))).toEqual(cardsPerFare.map((row) => Number(row[0])));
    expect(selection.cellsReleased).toBe(2);
  });

  it('never releases keys each held by one card', async () => {
    // Boarding times are nearly unique: each minute is one card's, far below the threshold.
    const [[keys]] = (await exact('SELECT count(*) FROM (SELECT boarded_at FROM transit_trips.data GROUP BY boarded_at HAVING count(DISTINCT card_id) = 1)')) as [[bigint]];
    expect(Number(keys)).toBeGreaterThan(100);
    const result = await released('SELECT boarded_at, count(*) AS boardings FROM transit_trips GROUP BY boarded_at', { delta: 1e-6 }, ['transit_trips']);
    expect(result.rows).toEqual([]);
  });

  it('needs a δ above zero', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job('SELECT board_stop_id, count(*) FROM transit_trips GROUP BY board_stop_id', {}, ['transit_trips']) });
    expect(response.json.error.code).toBe('DP_QUERY_SHAPE');
    expect(response.json.error.message).toContain('δ');
  });
});

describe('the discrete Gaussian in jobs', () => {
  it('adds discrete Gaussian noise whose σ spends exactly the ε and δ asked for (zCDP)', async () => {
    const result = await released('SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY route_id', { mechanism: 'gaussian', delta: 1e-6 }, ['transit_trips']);
    const [count] = result.manifest.differentialPrivacy.statistics;
    const rho = rhoFor(0.5, 1e-6);
    expect(count.mechanism).toBe('discrete_gaussian');
    expect(count.scale).toBeCloseTo(Math.sqrt((10 * 10) / (2 * rho)), 6);
    expect(rho + 2 * Math.sqrt(rho * Math.log(1e6))).toBeCloseTo(0.5, 9);
    expect(result.manifest.differentialPrivacy).toMatchObject({ delta: 1e-6, mechanism: 'discrete_gaussian' });
  });

  it('is refused without a δ', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job('SELECT route_id, count(*) FROM transit_trips GROUP BY route_id', { mechanism: 'gaussian' }, ['transit_trips']) });
    expect(response.status).toBe(400);
    expect(response.json.error.details[0].path).toBe('privacy.delta');
  });

  it('spends δ from the budget, and is refused once δ runs out', async () => {
    const budget = (await t.call('GET', '/v1/budgets', { token: analyst })).json.budgets.find((entry: { datasetId: string }) => entry.datasetId === 'transit_trips');
    expect(budget.deltaSpent).toBeGreaterThan(0);
    const response = await t.call('POST', '/v1/jobs/estimate', { token: analyst, json: job('SELECT route_id, count(*) FROM transit_trips GROUP BY route_id', { mechanism: 'gaussian', delta: 1e-5 }, ['transit_trips']) });
    expect(response.json).toMatchObject({ allowed: false, code: 'BUDGET_EXHAUSTED' });
  });
});

describe('an operator\'s bounds', () => {
  it('narrow the clamp and the noise', async () => {
    const result = await released('SELECT route_id, avg(fare) AS mean_fare FROM transit_trips GROUP BY route_id', { bounds: { fare: { min: 0, max: 5 } } }, ['transit_trips']);
    const sum = result.manifest.differentialPrivacy.statistics.find((statistic: { name: string }) => statistic.name === 'sum(fare)');
    expect(sum.sensitivity).toBe(10 * 5);
  });

  it('may never widen the declared bounds', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job('SELECT route_id, avg(fare) FROM transit_trips GROUP BY route_id', { bounds: { fare: { min: 0, max: 50 } } }, ['transit_trips']) });
    expect(response.status).toBe(400);
    expect(response.json.error.details[0].path).toBe('privacy.bounds.fare');
  });
});

describe('confidence intervals', () => {
  it('give the smallest half-width covering 95 % of discrete Laplace noise', () => {
    for (const scale of [0.5, 1, 3.7, 20, 80]) {
      let covered = discreteLaplacePmf(0, scale);
      let k = 0;
      while (covered < 0.95) covered += 2 * discreteLaplacePmf(++k, scale);
      expect(discreteLaplaceCi95(scale)).toBe(k);
    }
  });
});
