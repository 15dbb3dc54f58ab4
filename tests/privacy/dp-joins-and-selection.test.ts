import { DuckDBInstance } from '@duckdb/node-api';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestVersion } from '../../src/catalog/catalogue.js';
import { licences } from '../../src/db/schema.js';
import { towns } from '../../src/demo/demo-catalogue.js';
import { fitNoisyLinearModel } from '../../src/privacy/dp-model.js';
import { discreteLaplaceCi95, expectedNoise, noisyComoment, noisySpread, rhoFor } from '../../src/privacy/dp-release.js';
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
  expect((await t.call('POST', '/v1/budgets', { token: regulators[0], json: { licenceId, datasetId: 'transit_trips', epsilonCap: 60, deltaCap: 1e-5, reason: 'test' } })).status).toBe(200);
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

/** Defines, approves and publishes a scoring product serving a released model job of lingang-analytics; answers its coefficients. */
async function publishedScoring(id: string, jobId: string): Promise<number[]> {
  const analystToken = await t.tokenFor('analyst-lingang-analytics');
  const defined = await t.call('POST', '/v1/products', { token: analystToken, json: { id, title: `${id} (DP)`, titleZh: '差分隐私模型评分', terms: 'test', spec: { kind: 'scoring', job: jobId } } });
  expect(defined.status, JSON.stringify(defined.json)).toBe(201);
  await t.call('POST', `/v1/products/${id}/decision`, { token: regulators[0], json: { decision: 'approve', reason: 'released DP model' } });
  expect((await t.call('POST', `/v1/products/${id}/publication`, { token: analystToken, json: { action: 'publish' } })).json.status).toBe('published');
  return ((await t.call('GET', `/v1/jobs/${jobId}/result`, { token: analystToken })).json.rows as Array<[string, number]>).map(([, coefficient]) => coefficient);
}

describe('differentially private joins', () => {
  it('join protected trips with open bus routes and release every town of the public domain', async () => {
    const result = await released('SELECT b.town, count(*) AS boardings FROM transit_trips t JOIN bus_routes b ON t.route_id = b.route_id AND t.board_stop_id = b.stop_id GROUP BY b.town');
    expect(result.rows.map((row: unknown[]) => row[0])).toEqual([...towns]);
    for (const row of result.rows) expect(Number.isInteger(row[1])).toBe(true);
    expect(result.manifest.differentialPrivacy).toMatchObject({ epsilon: 0.5, delta: 0, mechanism: 'discrete_laplace', maxRowsPerUnit: 10 });
  });

  it('list every stop of the open bus routes by name, with no δ: open data\'s values are a public domain', async () => {
    const sql = 'SELECT b.stop_name, count(*) AS boardings FROM transit_trips t JOIN bus_routes b ON t.route_id = b.route_id AND t.board_stop_id = b.stop_id GROUP BY b.stop_name';
    const result = await released(sql, { delta: 0 });
    const stops = (await exact('SELECT DISTINCT stop_name FROM bus_routes.data ORDER BY 1')).map(([name]) => name);
    expect(result.rows.map((row: unknown[]) => row[0])).toEqual(stops);
    expect(result.manifest.differentialPrivacy.partitionSelection).toBeNull();
    // Stops nobody boarded at in the trips are listed too, as noise around nothing.
    const boarded = new Set((await exact('SELECT DISTINCT b.stop_name FROM transit_trips.data t JOIN bus_routes.data b ON t.route_id = b.route_id AND t.board_stop_id = b.stop_id')).map(([name]) => name));
    expect(stops.length).toBeGreaterThan(boarded.size);
  });

  it('leave open data\'s values to partition selection where listing them all would exceed 100,000 cells', async () => {
    // Some 590 stops by some 590 latitudes: over 300,000 combinations, most of them empty.
    const sql = 'SELECT b.stop_id, b.latitude, count(*) AS boardings FROM transit_trips t JOIN bus_routes b ON t.route_id = b.route_id AND t.board_stop_id = b.stop_id GROUP BY b.stop_id, b.latitude';
    const withDelta = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(sql, { delta: 1e-6 }) });
    expect(withDelta.json.expectedNoise?.partitionSelection, JSON.stringify(withDelta.json)).not.toBeNull();
    const withoutDelta = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(sql, { delta: 0 }) });
    expect(withoutDelta.json.error.message).toContain('has no public domain: partition selection needs a δ > 0');
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
      expect((await t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId: lingang!.id, datasetId, epsilonCap: 2, reason: 'test' } })).status).toBe(200);
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

describe('DP jobs over CTEs and subqueries', () => {
  const perCard = 'WITH per_card AS (SELECT card_id, route_id, count(*) AS trips FROM transit_trips GROUP BY card_id, route_id) ';

  it('aggregate per card first, then release every route of the public domain traced through the CTE', async () => {
    const result = await released(`${perCard}SELECT route_id, count(*) AS riders, avg(trips) AS trips_per_rider FROM per_card GROUP BY route_id`, { epsilon: 2, bounds: { trips: { min: 0, max: 20 } } }, ['transit_trips']);
    // route_id passes through the CTE unchanged, so its public domain still lists the cells: no δ was needed.
    expect(result.rows.map((row: unknown[]) => row[0])).toEqual(Array.from({ length: 30 }, (_, index) => `LG${String(index + 1).padStart(2, '0')}`));
    const statistics = result.manifest.differentialPrivacy.statistics;
    expect(statistics.map((statistic: { name: string }) => statistic.name)).toEqual(['count', 'sum(trips)']);
    expect(statistics[1].sensitivity).toBe(10 * 20);
    // per_card has a row per card and route; at most 10 of a card's rows are kept (at random), so the routes'
    // counts add up to Σ min(routes of the card, 10), give or take the noise, and none exceeds its riders.
    const [[bounded]] = (await exact('SELECT sum(least(routes, 10)) FROM (SELECT count(DISTINCT route_id) AS routes FROM transit_trips.data GROUP BY card_id)')) as [[bigint]];
    const total = (result.rows as Array<[string, number]>).reduce((sum, [, noisy]) => sum + noisy, 0);
    expect(Math.abs(total - Number(bounded))).toBeLessThanOrEqual(6 * Math.sqrt(30 * 2 * statistics[0].scale ** 2));
    const riders = new Map((await exact('SELECT route_id, count(DISTINCT card_id) FROM transit_trips.data GROUP BY route_id')).map(([route, cards]) => [route, Number(cards)]));
    for (const [route, noisy] of result.rows as Array<[string, number]>) expect(noisy).toBeLessThanOrEqual(riders.get(route)! + 3 * statistics[0].ci95HalfWidth);
  });

  it('read a subquery in FROM the same way', async () => {
    const result = await released('SELECT p.route_id, count(*) AS riders FROM (SELECT card_id, route_id FROM transit_trips WHERE fare > 0 GROUP BY card_id, route_id) AS p GROUP BY p.route_id', { epsilon: 2 }, ['transit_trips']);
    expect(result.rows).toHaveLength(30);
    expect(result.columns.map((column: { name: string }) => column.name)).toEqual(['route_id', 'riders']);
  });

  it('average a value only over the rows where it is present', async () => {
    const dear = 'WITH fares AS (SELECT card_id, CASE WHEN fare > 2 THEN fare END AS dear_fare FROM transit_trips) ';
    const result = await released(`${dear}SELECT avg(dear_fare) AS mean_dear_fare FROM fares`, { epsilon: 2, bounds: { dear_fare: { min: 0, max: 4 } } }, ['transit_trips']);
    expect(result.manifest.differentialPrivacy.statistics.map((statistic: { name: string }) => statistic.name)).toEqual(['sum(dear_fare)', 'count(dear_fare)']);
    // Each card keeps at most 10 of its trips, at random: a trip of a card with n trips is kept with chance
    // min(1, 10 / n), so the figures to expect weigh the trips so.
    const [[dearSum, dearCount, share]] = (await exact(
      'SELECT sum(w * fare) FILTER (WHERE fare > 2), sum(w) FILTER (WHERE fare > 2), sum(w) FILTER (WHERE fare > 2) / sum(w) FROM (SELECT fare, least(1.0, 10.0 / count(*) OVER (PARTITION BY card_id)) AS w FROM transit_trips.data)',
    )) as [[number, number, number]];
    const mean = Number(dearSum) / Number(dearCount);
    // Divided by all kept trips, the mean would be at most 3/4 of the right one.
    expect(Number(share)).toBeLessThan(0.75);
    // Six standard deviations of each noise (discrete Laplace: √2 × scale), as a share of what it is added to.
    const [sumNoise, countNoise] = result.manifest.differentialPrivacy.statistics.map((statistic: { scale: number }) => 6 * Math.SQRT2 * statistic.scale);
    const tolerance = sumNoise / Number(dearSum) + countNoise / Number(dearCount) + 0.01;
    expect(tolerance).toBeLessThan(0.2);
    expect(Math.abs(Number(result.rows[0][0]) - mean) / mean).toBeLessThan(tolerance);
  });

  it('need the operator\'s bounds for a column the query computes', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(`${perCard}SELECT route_id, sum(trips) FROM per_card GROUP BY route_id`, {}, ['transit_trips']) });
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe('VALIDATION_FAILED');
    expect(response.json.error.details[0].path).toBe('privacy.bounds.trips');
  });

  it('take bounds for a column named in mixed case by its lower-case name', async () => {
    const sql = 'WITH per_card AS (SELECT card_id, route_id, count(*) AS Trips FROM transit_trips GROUP BY card_id, route_id) SELECT route_id, avg(Trips) FROM per_card GROUP BY route_id';
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(sql, { bounds: { trips: { min: 0, max: 20 } } }, ['transit_trips']) });
    expect(response.status, JSON.stringify(response.json)).toBe(200);
  });

  it('refuse an inner aggregation that mixes cards', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', {
      token: analyst,
      json: job('WITH per_route AS (SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY route_id) SELECT route_id, sum(trips) FROM per_route GROUP BY route_id', { bounds: { trips: { min: 0, max: 1000 } } }, ['transit_trips']),
    });
    expect(response.status).toBe(422);
    expect(response.json.error.message).toContain('privacy unit');
  });

  it('refuse a CTE over protected data joined with another protected dataset', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', {
      token: analyst,
      json: job(`${perCard}SELECT r.town, count(*) FROM per_card p JOIN residents r ON p.card_id = r.resident_id GROUP BY r.town`, {}, ['transit_trips', 'residents']),
    });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('DP_QUERY_SHAPE');
  });
});

describe('computed group keys and counts of values', () => {
  it('release the months many cards travelled in, chosen by partition selection', async () => {
    const result = await released("SELECT date_trunc('month', boarded_at) AS month, count(*) AS trips FROM transit_trips GROUP BY 1", { epsilon: 4, delta: 1e-6 }, ['transit_trips']);
    expect(result.columns.map((column: { name: string }) => column.name)).toEqual(['month', 'trips']);
    const selection = result.manifest.differentialPrivacy.partitionSelection;
    const cardsPerMonth = await exact("SELECT date_trunc('month', boarded_at)::VARCHAR, count(DISTINCT card_id) FROM transit_trips.data GROUP BY 1 ORDER BY 1");
    const busy = cardsPerMonth.filter(([, cards]) => Number(cards) > 3 * selection.threshold).map(([month]) => String(month));
    expect(busy.length).toBeGreaterThan(0);
    const listed = result.rows.map((row: unknown[]) => String(row[0]).slice(0, 10));
    expect(listed).toEqual(expect.arrayContaining(busy.map((month) => month.slice(0, 10))));
    // A month only a card or two travelled in is not listed (with probability δ at most).
    const rare = cardsPerMonth.filter(([, cards]) => Number(cards) <= 2).map(([month]) => String(month).slice(0, 10));
    expect(rare.length).toBeGreaterThan(0);
    for (const month of rare) expect(listed).not.toContain(month);
  });

  it('need a δ for a computed key, and say which', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job("SELECT date_trunc('month', boarded_at) AS month, count(*) FROM transit_trips GROUP BY month", {}, ['transit_trips']) });
    expect(response.json.error.code).toBe('DP_QUERY_SHAPE');
    expect(response.json.error.message).toContain('month has no public domain');
  });

  it('list every hour of the day for an hour of boarding, with no δ: the calendar fixes its values', async () => {
    const result = await released('SELECT hour(boarded_at) AS hour, count(*) AS trips FROM transit_trips GROUP BY hour', { delta: 0 }, ['transit_trips']);
    expect(result.rows.map((row: unknown[]) => row[0])).toEqual(Array.from({ length: 24 }, (_, hour) => hour));
    expect(result.manifest.differentialPrivacy.partitionSelection).toBeNull();
    // No demo trip boards after seven in the evening: those hours are listed as noise around nothing.
    const exactByHour = new Map((await exact('SELECT hour(boarded_at), count(*) FROM transit_trips.data GROUP BY 1')).map(([hour, trips]) => [Number(hour), Number(trips)]));
    const halfWidth = result.manifest.differentialPrivacy.statistics[0].ci95HalfWidth;
    for (const [hour, trips] of result.rows as Array<[number, number]>) if (!exactByHour.has(hour)) expect(Math.abs(trips)).toBeLessThanOrEqual(3 * halfWidth);
  });

  it('take a value reshaped by a function of its size, which a threshold could not protect but the noise does', async () => {
    // abs(kwh − 300) is a cap in disguise to disclosure control (refused there); here each row's value is clamped
    // to its bounds and the figure noised like any other.
    const sql = 'WITH t AS (SELECT town, account_id, abs(kwh - 300) AS off_base FROM power_readings) SELECT town, avg(off_base) AS mean_off_base FROM t GROUP BY town';
    const lingang = await t.tokenFor('analyst-lingang-analytics');
    // The same cap the join test above sets (a dry run needs a budget to exist, and spends none of it).
    const [licence] = await t.platform.db.select().from(licences).where(eq(licences.operatorId, 'lingang-analytics'));
    expect((await t.call('POST', '/v1/budgets', { token: regulators[0], json: { licenceId: licence!.id, datasetId: 'power_readings', epsilonCap: 2, reason: 'test' } })).status).toBe(200);
    const dryRun = await t.call('POST', '/v1/jobs/dry-run', { token: lingang, json: job(sql, { bounds: { off_base: { min: 0, max: 5000 } } }, ['power_readings']) });
    expect(dryRun.json.error?.code).toBeUndefined();
    expect(dryRun.json.decision).toBe('accept');
    const checked = await t.call('POST', '/v1/jobs/dry-run', { token: lingang, json: { datasets: ['power_readings'], sql, purpose: 'test' } });
    expect(checked.json.error.code).toBe('SENSITIVE_CONDITION_IN_AGGREGATE');
  });

  it('take the days of the week and the months by name as public domains, with no δ', async () => {
    const sql = 'SELECT dayname(boarded_at) AS weekday, monthname(boarded_at) AS month, count(*) AS trips FROM transit_trips GROUP BY weekday, month';
    const dryRun = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(sql, { delta: 0 }, ['transit_trips']) });
    expect(dryRun.json.error?.code).toBeUndefined();
    expect(dryRun.json.expectedNoise.partitionSelection).toBeNull();
  });

  it('list every label of a CASE of constants in the order written, with no δ, including one no trip has', async () => {
    const sql = "SELECT CASE WHEN fare <= 2 THEN 'base' WHEN fare <= 3 THEN 'longer' ELSE 'longest' END AS band, count(*) AS trips FROM transit_trips GROUP BY band";
    const dryRun = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(sql, { delta: 0 }, ['transit_trips']) });
    expect(dryRun.json.expectedNoise.partitionSelection).toBeNull();
    const result = await released(sql, { delta: 0 }, ['transit_trips']);
    expect(result.rows.map((row: unknown[]) => row[0])).toEqual(['base', 'longer', 'longest']);
    // Fares are 2.00 and 3.00: nobody paid more, and the noisy count says about that.
    expect(Math.abs(result.rows[2][1])).toBeLessThanOrEqual(3 * result.manifest.differentialPrivacy.statistics[0].ci95HalfWidth);
    expect(result.rows[0][1]).toBeGreaterThan(result.rows[1][1]);
  });

  it('still choose the cells of a CASE whose results are computed, or mixed text and numbers, by partition selection', async () => {
    for (const key of ["CASE WHEN fare <= 2 THEN route_id ELSE 'other' END", "CASE WHEN fare <= 2 THEN 'base' ELSE 3 END"]) {
      const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(`SELECT ${key} AS band, count(*) AS trips FROM transit_trips GROUP BY band`, { delta: 0 }, ['transit_trips']) });
      expect(response.json.error?.code, key).toBe('DP_QUERY_SHAPE');
      expect(response.json.error.message).toContain('band has no public domain');
    }
  });

  /** Trips each card keeps under the cap of 10, in expectation (a trip of a card with n is kept with chance min(1, 10 / n)), where a condition holds. */
  const keptTrips = async (condition: string) =>
    Number(((await exact(`SELECT sum(w) FILTER (WHERE ${condition}) FROM (SELECT fare, least(1.0, 10.0 / count(*) OVER (PARTITION BY card_id)) AS w FROM transit_trips.data)`)) as [[number]])[0][0]);
  /** Whether the routes' noisy figures add up to what was expected, within six standard deviations of their noise and 3 % for the cap's sampling. */
  const addsUpTo = (rows: unknown[][], column: number, expected: number, scale: number) => {
    const total = rows.reduce((sum, row) => sum + Number(row[column]), 0);
    return Math.abs(total - expected) <= 6 * Math.sqrt(rows.length * 2 * scale ** 2) + 0.03 * expected;
  };

  it('count only the rows where a value is present, with noise of its own', async () => {
    const result = await released('SELECT route_id, count(*) AS trips, count(CASE WHEN fare > 2 THEN 1 END) AS dearer_trips FROM transit_trips GROUP BY route_id', { epsilon: 2 }, ['transit_trips']);
    const statistics = result.manifest.differentialPrivacy.statistics;
    expect(statistics.map((statistic: { name: string }) => statistic.name)).toEqual(['count', 'count(dearer_trips)']);
    // The fare condition leaves most trips out, so a count of all rows would be far from the answer.
    const [dear, all] = [await keptTrips('fare > 2'), await keptTrips('true')];
    expect(addsUpTo(result.rows, 2, dear, statistics[1].scale)).toBe(true);
    expect(addsUpTo(result.rows, 2, all, statistics[1].scale)).toBe(false);
  });

  it('count and sum only the rows a FILTER keeps', async () => {
    const result = await released('SELECT route_id, count(*) FILTER (WHERE fare > 2) AS dear_trips, sum(fare) FILTER (WHERE fare > 2) AS dear_fares FROM transit_trips GROUP BY route_id', { epsilon: 2 }, ['transit_trips']);
    const statistics = result.manifest.differentialPrivacy.statistics;
    expect(statistics.map((statistic: { name: string }) => statistic.name)).toEqual(['count for dear_trips', 'sum(fare) for dear_fares']);
    const dear = await keptTrips('fare > 2');
    expect(addsUpTo(result.rows, 1, dear, statistics[0].scale)).toBe(true);
    expect(addsUpTo(result.rows, 1, await keptTrips('true'), statistics[0].scale)).toBe(false);
    // Every dear fare is 3.00.
    expect(addsUpTo(result.rows, 2, 3 * dear, statistics[1].scale)).toBe(true);
  });
});

describe('counting people: count(DISTINCT unit)', () => {
  it('release the cards that rode each route, with sensitivity L', async () => {
    const result = await released('SELECT route_id, count(DISTINCT card_id) AS riders FROM transit_trips GROUP BY route_id', { epsilon: 2 }, ['transit_trips']);
    const [statistic] = result.manifest.differentialPrivacy.statistics;
    expect(statistic).toMatchObject({ name: 'count(DISTINCT card_id)', sensitivity: 10, scale: 5 });
    // The manifest says the figures are of bounded contributions, not the raw data's.
    expect(result.manifest.differentialPrivacy.note).toContain('each contributor bounded to 10 rows within at most 10 cells');
    expect(result.rows).toHaveLength(30);
    // A card is counted on up to 10 of its routes however many trips it made (not only on the routes 10 of its
    // trips fell on): the routes' counts add up to Σ min(routes of the card, 10), give or take the noise.
    const [[bounded, unbounded]] = (await exact('SELECT sum(least(routes, 10)), sum(routes) FROM (SELECT count(DISTINCT route_id) AS routes FROM transit_trips.data GROUP BY card_id)')) as [[bigint, bigint]];
    expect(Number(unbounded)).toBeGreaterThan(Number(bounded));
    const total = (result.rows as Array<[string, number]>).reduce((sum, [, noisy]) => sum + noisy, 0);
    const noiseSd = Math.sqrt(30 * 2 * statistic.scale ** 2);
    expect(Math.abs(total - Number(bounded))).toBeLessThanOrEqual(6 * noiseSd);
    const riders = new Map((await exact('SELECT route_id, count(DISTINCT card_id) FROM transit_trips.data GROUP BY route_id')).map(([route, cards]) => [route, Number(cards)]));
    for (const [route, noisy] of result.rows as Array<[string, number]>) expect(noisy).toBeLessThanOrEqual(riders.get(route)! + 3 * statistic.ci95HalfWidth);
  });

  it('use the L2 sensitivity √L with the Gaussian', async () => {
    const result = await released('SELECT route_id, count(DISTINCT card_id) AS riders FROM transit_trips GROUP BY route_id', { mechanism: 'gaussian', delta: 1e-6 }, ['transit_trips']);
    const [statistic] = result.manifest.differentialPrivacy.statistics;
    expect(statistic.sensitivity).toBeCloseTo(Math.sqrt(10), 12);
    expect(statistic.scale).toBeCloseTo(Math.sqrt(10 / (2 * rhoFor(0.5, 1e-6))), 6);
  });

  it('count the unit through a CTE that passes it on', async () => {
    const result = await released('WITH trips AS (SELECT card_id, route_id FROM transit_trips WHERE fare > 0) SELECT route_id, count(DISTINCT card_id) AS riders FROM trips GROUP BY route_id', {}, ['transit_trips']);
    expect(result.manifest.differentialPrivacy.statistics[0].name).toBe('count(DISTINCT card_id)');
  });

  it('refuse DISTINCT of anything but the privacy unit', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job('SELECT count(DISTINCT route_id) AS routes FROM transit_trips', {}, ['transit_trips']) });
    expect(response.json.error.code).toBe('DP_QUERY_SHAPE');
    expect(response.json.error.message).toContain('count(DISTINCT card_id)');
  });
});

describe('sorting and cutting a DP output', () => {
  it('sort by a noisy figure and keep the first rows, after the noise', async () => {
    const result = await released('SELECT route_id, count(DISTINCT card_id) AS riders FROM transit_trips GROUP BY route_id ORDER BY riders DESC, 1 LIMIT 5', { epsilon: 1 }, ['transit_trips']);
    const riders = (result.rows as Array<[string, number]>).map(([, count]) => count);
    expect(riders).toHaveLength(5);
    expect(riders).toEqual([...riders].sort((a, b) => b - a));
    expect(result.manifest.rowCount).toBe(5);
  });

  it('keep the rows a HAVING on noisy figures and keys selects, after the noise', async () => {
    const result = await released(
      "SELECT route_id, count(DISTINCT card_id) AS riders FROM transit_trips GROUP BY route_id HAVING riders > 60 AND NOT route_id IN ('LG01') OR route_id = 'LG02' ORDER BY 1",
      { epsilon: 1 },
      ['transit_trips'],
    );
    const rows = result.rows as Array<[string, number]>;
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThan(30);
    for (const [route, riders] of rows) expect((riders > 60 && route !== 'LG01') || route === 'LG02').toBe(true);
    expect(rows.map(([route]) => route)).toContain('LG02');
  });

  it('refuse a HAVING on a figure the output does not release', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job('SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY route_id HAVING sum(fare) > 100', {}, ['transit_trips']) });
    expect(response.json.error.code).toBe('DP_QUERY_SHAPE');
    expect(response.json.error.message).toContain('HAVING compares output columns');
  });

  it("sort or filter a threshold-protected output by its figures after its check too, a HAVING's own figure checked as an output one", async () => {
    const dryRun = async (tail: string) =>
      t.call('POST', '/v1/jobs/dry-run', {
        token: await t.tokenFor('analyst-lingang-analytics'),
        json: { datasets: ['power_readings'], sql: `SELECT town, count(DISTINCT account_id) AS accounts FROM power_readings GROUP BY town ${tail}`, purpose: 'planning' },
      });
    for (const tail of ['ORDER BY accounts DESC', 'HAVING accounts > 20', 'HAVING sum(kwh) > 20']) expect((await dryRun(tail)).json.decision).toBe('accept');
    expect((await dryRun('HAVING max(kwh) > 20')).json.error.code).toBe('AGGREGATE_NOT_ALLOWED');
  });
});

describe('totals under differential privacy (ROLLUP, CUBE, GROUPING SETS)', () => {
  it('release each grouping set as a table of its own at 1/k of ε, the total named in the manifest', async () => {
    const plain = await released('SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY route_id', { epsilon: 1, delta: 0 }, ['transit_trips']);
    const rolled = await released('SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY ROLLUP (route_id)', { epsilon: 1, delta: 0 }, ['transit_trips']);
    // Two sets, each at ε/2: the noise scale doubles, and the job spent its ε once.
    const [single] = plain.manifest.differentialPrivacy.statistics;
    const [shared] = rolled.manifest.differentialPrivacy.statistics;
    expect(shared.scale).toBeCloseTo(2 * single.scale, 9);
    expect(rolled.rows).toHaveLength(plain.rows.length + 1);
    const totalRow = rolled.rows.length - 1;
    expect(rolled.rows[totalRow][0]).toBeNull();
    expect(rolled.manifest.totals).toEqual([{ row: totalRow, over: ['route_id'] }]);
    expect(rolled.manifest.differentialPrivacy.note).toContain('the tables were then made to add up');
    const csv = (await t.call('GET', `/v1/jobs/${rolled.jobId}/result?format=csv`, { token: analyst })).text.trim().split(/\r?\n/);
    expect(csv[0]).toBe('route_id,trips,trips_ci95,total_over');
    expect(csv.at(-1)).toMatch(/^,-?\d+(\.\d+)?,\d+,route_id$/);
    // Made to add up after the noise: the total is the sum of the routes' counts.
    const cells = (rolled.rows as unknown[][]).slice(0, totalRow).reduce((sum, row) => sum + Number(row[1]), 0);
    expect(Number(rolled.rows[totalRow][1])).toBeCloseTo(cells, 6);
    // The total is the bounded count of every trip (each card at most 10 rows), give or take its own noise.
    const [[bounded]] = (await exact('SELECT sum(least(trips, 10)) FROM (SELECT count(*) AS trips FROM transit_trips.data GROUP BY card_id)')) as [[bigint]];
    expect(Math.abs(Number(rolled.rows[totalRow][1]) - Number(bounded))).toBeLessThanOrEqual(6 * Math.SQRT2 * shared.scale);
  });

  it('give a CUBE of two keys every margin once, each total named by the keys it adds up over', async () => {
    const result = await released('SELECT route_id, hour(boarded_at) AS hour, count(*) AS trips FROM transit_trips GROUP BY CUBE (route_id, hour)', { epsilon: 2, delta: 0 }, ['transit_trips']);
    const routes = 30;
    expect(result.rows).toHaveLength(routes * 24 + routes + 24 + 1);
    const over = (result.manifest.totals as Array<{ row: number; over: string[] }>).map((total) => total.over.join('+'));
    expect(over.filter((keys) => keys === 'hour')).toHaveLength(routes);
    expect(over.filter((keys) => keys === 'route_id')).toHaveLength(24);
    expect(over.filter((keys) => keys === 'route_id+hour')).toHaveLength(1);
    // Each total's rolled-up keys are null, and the others are not.
    for (const total of result.manifest.totals as Array<{ row: number; over: string[] }>) {
      const row = result.rows[total.row] as unknown[];
      expect([row[0] === null, row[1] === null]).toEqual([total.over.includes('route_id'), total.over.includes('hour')]);
    }
    const grand = (result.manifest.totals as Array<{ row: number; over: string[] }>).find((total) => total.over.length === 2)!;
    const [[bounded]] = (await exact('SELECT sum(least(trips, 10)) FROM (SELECT count(*) AS trips FROM transit_trips.data GROUP BY card_id)')) as [[bigint]];
    const [statistic] = result.manifest.differentialPrivacy.statistics;
    expect(Math.abs(Number(result.rows[grand.row][2]) - Number(bounded))).toBeLessThanOrEqual(6 * Math.SQRT2 * statistic.scale);
    // Every margin adds up: a route's total is the sum over its hours, an hour's the sum over routes, the grand
    // total the sum of either margin.
    const rows = result.rows as Array<[string | null, number | null, number]>;
    const sumWhere = (keep: (row: [string | null, number | null, number]) => boolean) => rows.filter(keep).reduce((sum, row) => sum + Number(row[2]), 0);
    for (const [route, hour, trips] of rows) {
      if (route !== null && hour === null) expect(trips).toBeCloseTo(sumWhere(([r, h]) => r === route && h !== null), 6);
      if (route === null && hour !== null) expect(trips).toBeCloseTo(sumWhere(([r, h]) => r !== null && h === hour), 6);
    }
    expect(Number(rows[grand.row]![2])).toBeCloseTo(sumWhere(([r, h]) => r !== null && h === null), 6);
    expect(Number(rows[grand.row]![2])).toBeCloseTo(sumWhere(([r, h]) => r === null && h !== null), 6);
  });

  it('make sums and means add up with the counts, but not distinct units, which are not additive', async () => {
    const result = await released(
      'SELECT route_id, count(*) AS trips, sum(fare) AS fares, avg(fare) AS mean_fare, count(DISTINCT card_id) AS riders FROM transit_trips GROUP BY ROLLUP (route_id)',
      { epsilon: 1, delta: 0 },
      ['transit_trips'],
    );
    const rows = result.rows as Array<[string | null, number, number, number | null, number]>;
    const total = rows.find(([route]) => route === null)!;
    const routes = rows.filter(([route]) => route !== null);
    expect(total[1]).toBeCloseTo(routes.reduce((sum, row) => sum + row[1], 0), 6);
    expect(total[2]).toBeCloseTo(routes.reduce((sum, row) => sum + row[2], 0), 6);
    // The mean is the consistent sum over the consistent count, kept within the bounds.
    if (total[1] > 0) expect(total[3]).toBeCloseTo(Math.min(20, Math.max(0, total[2] / total[1])), 9);
    expect(result.manifest.differentialPrivacy.note).toContain('while distinct units are not');
  });

  it('choose the cells of a set whose key has no public domain by partition selection, with its share of δ, and always give the total', async () => {
    const result = await released("SELECT date_trunc('month', boarded_at) AS month, count(*) AS trips FROM transit_trips GROUP BY ROLLUP (month)", { epsilon: 2, delta: 1e-6 }, ['transit_trips']);
    const selection = result.manifest.differentialPrivacy.partitionSelection;
    expect(selection.delta).toBeCloseTo(1e-6 / 2, 15);
    expect(result.manifest.totals).toEqual([{ row: expect.any(Number), over: ['month'] }]);
    expect(result.rows[result.manifest.totals[0].row][0]).toBeNull();
    expect(selection.cellsReleased).toBe(result.rows.length - 1);
    // The months listed depend on the noise, so the total is not made to add up to them.
    expect(result.manifest.differentialPrivacy.note).toContain('a total is not the sum of its noisy cells');
  });

  it('say before the job runs whether its totals will be made to add up', async () => {
    const dryRun = async (sql: string, privacy: Record<string, unknown>) => (await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(sql, privacy, ['transit_trips']) })).json.expectedNoise;
    expect((await dryRun('SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY ROLLUP (route_id)', { delta: 0 })).consistentTotals).toBe(true);
    expect((await dryRun("SELECT date_trunc('month', boarded_at) AS month, count(*) AS trips FROM transit_trips GROUP BY ROLLUP (month)", { delta: 1e-6 })).consistentTotals).toBe(false);
    expect((await dryRun('SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY route_id', { delta: 0 })).consistentTotals).toBeUndefined();
  });

  it('split the zCDP ρ between the sets under the Gaussian: σ grows by √k, not k', () => {
    const plan = {
      kind: 'dp_aggregate' as const,
      dataset: 'transit_trips',
      groupColumns: [{ name: 'route_id', outputIndex: 0, domain: ['a', 'b'] }],
      aggregates: [{ outputIndex: 1, kind: 'count' as const }],
      sums: [],
      outputColumns: [{ name: 'route_id', role: 'group_key' as const }, { name: 'trips', role: 'dp_count' as const }],
      maxRowsPerUnit: 10,
      partitionSelection: false,
      mechanism: 'gaussian' as const,
      sql: '',
      epsilonMicro: 1_000_000,
      deltaPico: 1_000_000,
    };
    const [alone] = expectedNoise(plan).statistics;
    const [shared] = expectedNoise({ ...plan, groupSets: [[0], []] }).statistics;
    expect(shared!.scale / alone!.scale).toBeCloseTo(Math.SQRT2, 2);
  });

  it('label totals with grouping() as a threshold job does, set after the noise', async () => {
    const result = await released('SELECT hour(boarded_at) AS hour, grouping(hour) AS total, count(*) AS trips FROM transit_trips GROUP BY ROLLUP (hour) ORDER BY total, hour', { epsilon: 0.5, delta: 0 }, ['transit_trips']);
    expect(result.rows.map((row: unknown[]) => [row[0], row[1]])).toEqual([...Array.from({ length: 24 }, (_, hour) => [hour, 0]), [null, 1]]);
    expect(result.manifest.totals).toEqual([{ row: 24, over: ['hour'] }]);
    const foreign = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job('SELECT route_id, grouping(route_id, route_id) AS total, count(*) AS trips FROM transit_trips GROUP BY ROLLUP (route_id)', { delta: 0 }, ['transit_trips']) });
    expect(foreign.status).toBe(200);
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
    // Fares are decimals, counted in 256ths (5 is 1,280 of them): their rounded sum can move by one 256th more than
    // the fares do, in each of a card's cells. In whole units that would have been 10 · (5 + 1).
    expect(sum.sensitivity).toBe(10 * (5 + 1 / 256));
  });

  it('keep a noisy mean within them, however large the noise', async () => {
    // At ε 0.1 the sum's noise is far larger than the sums: unclamped, about half the routes' means would fall outside.
    const result = await released('SELECT route_id, avg(fare) AS mean_fare FROM transit_trips GROUP BY route_id', { epsilon: 0.1 }, ['transit_trips']);
    const means = (result.rows as Array<[string, number | null]>).map(([, mean]) => mean).filter((mean) => mean !== null);
    expect(means.length).toBeGreaterThan(0);
    for (const mean of means) {
      expect(mean).toBeGreaterThanOrEqual(0);
      expect(mean).toBeLessThanOrEqual(20);
    }
  });

  it('may never widen the declared bounds', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job('SELECT route_id, avg(fare) FROM transit_trips GROUP BY route_id', { bounds: { fare: { min: 0, max: 50 } } }, ['transit_trips']) });
    expect(response.status).toBe(400);
    expect(response.json.error.details[0].path).toBe('privacy.bounds.fare');
  });
});

describe('standard deviations and variances', () => {
  it('release them from a noisy sum, sum of squares and count, near the exact ones, the population forms from the same figures', async () => {
    const sql = 'SELECT count(*) AS trips, avg(fare) AS mean_fare, stddev_samp(fare) AS sd_fare, var_samp(fare) AS var_fare, var_pop(fare) AS pop_var, stddev_pop(fare) AS pop_sd FROM transit_trips';
    const result = await released(sql, { epsilon: 6, bounds: { fare: { min: 0, max: 3.5 } } }, ['transit_trips']);
    const [trips, mean, sd, variance, population, populationSd] = (result.rows as Array<[number, number, number, number, number, number]>)[0]!;
    const [[exactVariance]] = (await exact('SELECT var_samp(fare) FROM transit_trips.data')) as [[number]];
    const statistics = result.manifest.differentialPrivacy.statistics as Array<{ name: string; sensitivity: number; scale: number }>;
    // Fares are 2.00 and 3.00. The variance's error is about (e₂ − 2·mean·e₁)/n for the Laplace noise e₁ of Σx and
    // e₂ of Σx² (standard deviation √2 × scale each); allowed: six of its standard deviations, and 0.02 for the
    // rows the bound of 10 trips per card leaves out.
    const [sums, squares] = [statistics[1]!.scale, statistics[2]!.scale];
    const spread = (Math.SQRT2 * Math.sqrt(squares ** 2 + (2 * mean * sums) ** 2)) / trips;
    expect(Math.abs(variance - Number(exactVariance))).toBeLessThan(6 * spread + 0.02);
    expect(sd).toBeCloseTo(Math.sqrt(variance), 9);
    // var_pop and stddev_pop divide the same noisy figures by n rather than n − 1, spending nothing more.
    expect(population).toBeCloseTo((variance * (trips - 1)) / trips, 6);
    expect(populationSd).toBeCloseTo(Math.sqrt(population), 9);
    expect(mean).toBeGreaterThan(1.9);
    // avg, stddev and var share the one noisy Σfare; Σfare² moves by at most 10 trips × 3.5².
    expect(statistics.map((statistic) => statistic.name)).toEqual(['count', 'sum(fare)', 'sum(fare²)']);
    expect(statistics[2]!.sensitivity).toBeCloseTo(122.5, 0);
    expect(result.manifest.differentialPrivacy.note).toContain('Variances and standard deviations are');
  });

  it('keep a noisy variance between 0 and the largest the bounds allow, and give none below two rows', () => {
    const spread = { outputIndex: 0, kind: 'variance' as const, bounds: { min: 0, max: 5 } };
    // Noise can make Σx² − (Σx)²/n negative, or larger than values in 0..5 can spread: (5 − 0)²/4 · 10/9.
    expect(noisySpread(spread, 10, 20, 30)).toBe(0);
    expect(noisySpread(spread, 10, 0, 1e6)).toBeCloseTo((25 / 4) * (10 / 9), 12);
    expect(noisySpread({ ...spread, root: true }, 10, 20, 1e6)).toBeCloseTo(Math.sqrt((25 / 4) * (10 / 9)), 12);
    expect(noisySpread(spread, 4, 8, 18)).toBeCloseTo((18 - 16) / 3, 12);
    expect(noisySpread(spread, 1.4, 2, 4)).toBeNull();
  });

  it('give a population variance (var_pop, stddev_pop) divided by n, kept within (max − min)²/4, and none below one row', () => {
    const population = { outputIndex: 0, kind: 'variance' as const, bounds: { min: 0, max: 5 }, population: true };
    expect(noisySpread(population, 4, 8, 18)).toBeCloseTo((18 - 16) / 4, 12);
    expect(noisySpread({ ...population, root: true }, 4, 8, 18)).toBeCloseTo(Math.sqrt(0.5), 12);
    expect(noisySpread(population, 10, 0, 1e6)).toBeCloseTo(25 / 4, 12);
    expect(noisySpread(population, 1, 3, 9)).toBe(0);
    expect(noisySpread(population, 0.6, 2, 4)).toBeNull();
  });
});

describe('correlations, covariances and regression lines', () => {
  it('release them from noisy figures over the rows where both values are present, a correlation within ±1', async () => {
    // double_fare is twice the fare: the exact correlation is 1, the slope 2 and the covariance twice the fare's variance.
    const sql = 'WITH t AS (SELECT card_id, fare, fare * 2 AS double_fare FROM transit_trips) SELECT corr(fare, double_fare) AS r, regr_slope(double_fare, fare) AS slope, covar_samp(fare, double_fare) AS c FROM t';
    const result = await released(sql, { epsilon: 6, bounds: { fare: { min: 0, max: 3.5 }, double_fare: { min: 0, max: 7 } } }, ['transit_trips']);
    const [r, slope, covariance] = (result.rows as Array<[number, number, number]>)[0]!;
    // The noise of six figures at ε 1 each is a fifth or so of Σab's spread here: the signs hold with a wide margin
    // (the formulas are checked exactly below).
    expect(r).toBeGreaterThan(0);
    expect(r).toBeLessThanOrEqual(1);
    expect(slope).toBeGreaterThan(0);
    expect(covariance).toBeGreaterThan(0);
    const statistics = (result.manifest.differentialPrivacy.statistics as Array<{ name: string }>).map((statistic) => statistic.name);
    // The three outputs share the pair's six figures, whichever way round each names it.
    expect(statistics).toEqual([
      'count(double_fare, fare)',
      'sum(double_fare) (double_fare, fare)',
      'sum(fare) (double_fare, fare)',
      'sum(double_fare·fare) (double_fare, fare)',
      'sum(double_fare²) (double_fare, fare)',
      'sum(fare²) (double_fare, fare)',
    ]);
    expect(result.manifest.differentialPrivacy.note).toContain('a correlation kept within ±1');
  });

  it('compute each as DuckDB defines it from exact figures, and keep a noisy correlation within ±1', () => {
    // a = 1, 2, 3, 4; b = 2, 4, 5, 9: n 4, Σa 10, Σb 20, Σab 61, Σa² 30, Σb² 126.
    const figures = [4, 10, 20, 61, 30, 126];
    const pair = (pairedFunction: string) => ({ outputIndex: 0, kind: 'paired' as const, pairedFunction, paired: { count: 0, x: 1, y: 2, xy: 3, xx: 4, yy: 5, xBounds: { min: 0, max: 10 }, yBounds: { min: 0, max: 10 } } });
    // Cab = 61 − 50 = 11, Caa = 30 − 25 = 5, Cbb = 126 − 100 = 26.
    expect(noisyComoment(pair('covar_pop'), figures)).toBeCloseTo(11 / 4, 12);
    expect(noisyComoment(pair('covar_samp'), figures)).toBeCloseTo(11 / 3, 12);
    expect(noisyComoment(pair('corr'), figures)).toBeCloseTo(11 / Math.sqrt(5 * 26), 12);
    expect(noisyComoment(pair('regr_slope'), figures)).toBeCloseTo(11 / 26, 12);
    expect(noisyComoment(pair('regr_intercept'), figures)).toBeCloseTo(2.5 - (11 / 26) * 5, 12);
    expect(noisyComoment(pair('regr_r2'), figures)).toBeCloseTo((11 * 11) / (5 * 26), 12);
    // Noise that makes Σab too large would give a correlation above 1.
    expect(noisyComoment(pair('corr'), [4, 10, 20, 90, 30, 126])).toBe(1);
    expect(noisyComoment(pair('corr'), [1.5, 10, 20, 61, 30, 126])).toBeNull();
  });
});

describe('models with categories', () => {
  it("bound a category's 0/1 features by 0 and 1 without being asked", async () => {
    const model = { type: 'linear', target: 'fare', features: ['route_id'], categories: { route_id: ['LG01', 'LG02', 'LG03'] } };
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { ...job('SELECT fare, route_id FROM transit_trips', { bounds: { fare: { min: 0, max: 5 } } }, ['transit_trips']), model } });
    expect(response.status, JSON.stringify(response.json)).toBe(200);
    expect(response.json.model).toMatchObject({ features: ['route_id_1', 'route_id_2'], categoryColumns: { route_id: { baseline: 'LG01', columns: { route_id_1: 'LG02', route_id_2: 'LG03' } } } });
    // The bounds shown are the operator's, not those the platform set for the 0/1 features.
    expect(response.json.differentialPrivacy.bounds).toEqual({ fare: { min: 0, max: 5 } });
  });
});

describe('medians and quantiles', () => {
  it('place each route\'s median and 90th percentile fare from a noisy histogram, near the exact ones', async () => {
    // Four trips in five cost 2.00 and the rest 3.00: the median is 2 and the 90th percentile 3. With 32 bins over
    // 0..5 (0.156 wide), 2.00 falls in the bin [1.875, 2.031) and 3.00 in [2.969, 3.125).
    const result = await released('SELECT route_id, median(fare) AS median_fare, quantile_cont(fare, 0.9) AS p90_fare FROM transit_trips GROUP BY route_id', { epsilon: 4, bounds: { fare: { min: 0, max: 5 } } }, ['transit_trips']);
    const rows = result.rows as Array<[string, number | null, number | null]>;
    expect(rows.length).toBeGreaterThan(0);
    for (const [, median] of rows) {
      expect(median).toBeGreaterThanOrEqual(1.8);
      expect(median).toBeLessThanOrEqual(2.1);
    }
    // The 90th percentile sits where the 2.00s end and the 3.00s begin: noise moves a few routes' below 2.97.
    const p90s = rows.map(([, , p90]) => p90!).sort((a, b) => a - b);
    expect(p90s[Math.floor(p90s.length / 2)]).toBeGreaterThan(2.5);
    const statistics = result.manifest.differentialPrivacy.statistics as Array<{ name: string; sensitivity: number; epsilon: number }>;
    expect(statistics.map((statistic) => statistic.name)).toEqual(['histogram for median of fare (32 bins)', 'histogram for quantile 0.9 of fare (32 bins)']);
    // A card's 10 rows are each in one bin: the histogram moves by at most 10, whatever the bounds.
    expect(statistics.map((statistic) => statistic.sensitivity)).toEqual([10, 10]);
    expect(result.manifest.differentialPrivacy.note).toContain('noisy histogram of 32 equal bins');
  });

  it('read a quantile written WITHIN GROUP (ORDER BY …) as the same quantile, counted from the top when ordered DESC', async () => {
    const sql = 'SELECT route_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY fare) AS median_fare, percentile_cont(0.9) WITHIN GROUP (ORDER BY fare DESC) AS p10_fare FROM transit_trips GROUP BY route_id';
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(sql, { bounds: { fare: { min: 0, max: 5 } } }, ['transit_trips']) });
    expect(response.status, JSON.stringify(response.json)).toBe(200);
    expect(response.json.expectedNoise.statistics.map((statistic: { name: string }) => statistic.name)).toEqual(['histogram for quantile 0.5 of fare (32 bins)', 'histogram for quantile 0.1 of fare (32 bins)']);
  });

  it('check the column a WITHIN GROUP quantile orders by as its argument: a quasi-identifier cannot be averaged, nor its quantile taken', async () => {
    const sql = 'SELECT route_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY boarded_at) AS middle FROM transit_trips GROUP BY route_id';
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(sql, {}, ['transit_trips']) });
    expect(response.json.error).toMatchObject({ code: 'AGGREGATE_NOT_ALLOWED', message: expect.stringContaining('transit_trips.boarded_at (quasi identifier)') });
  });

  it('refuse a quantile level that is not strictly between 0 and 1 (a minimum or maximum)', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job('SELECT route_id, quantile_cont(fare, 0) AS q FROM transit_trips GROUP BY route_id', {}, ['transit_trips']) });
    expect(response.status).toBe(422);
    expect(response.json.error.message).toContain('one constant level between 0 and 1');
  });

  it.each(['median(kwh)', 'percentile_cont(0.5) WITHIN GROUP (ORDER BY kwh)'])('stay refused without differential privacy, where %s would be one row\'s value, saying that DP releases it', async (median) => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: await t.tokenFor('analyst-lingang-analytics'), json: { datasets: ['power_readings'], sql: `SELECT town, ${median} AS m FROM power_readings GROUP BY town`, purpose: 'test' } });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('AGGREGATE_NOT_ALLOWED');
    expect(response.json.error.message).toContain('released only by differentially private jobs');
  });
});

describe('sums of expressions written inline', () => {
  it('release a sum of an expression under its output name, clamped to the bounds given for that name', async () => {
    const sql = 'SELECT route_id, sum(fare * 10) AS fare_jiao FROM transit_trips GROUP BY route_id';
    const result = await released(sql, { epsilon: 1, bounds: { fare_jiao: { min: 0, max: 30 } } }, ['transit_trips']);
    const statistic = result.manifest.differentialPrivacy.statistics.find((entry: { name: string }) => entry.name === 'sum(fare_jiao)');
    // Ten rows a card, each at most 30 jiao, and one 64th more for the rounding of a decimal sum counted in 64ths.
    expect(statistic.sensitivity).toBe(10 * (30 + 1 / 64));
    // The cap can only lower a route's sum: each noisy one stays below the uncapped sum plus three 95 % intervals.
    const exactRows = (await exact('SELECT route_id, sum(fare * 10) FROM transit_trips.data GROUP BY route_id')) as Array<[string, unknown]>;
    const uncapped = new Map(exactRows.map(([route, total]) => [route, Number(total)]));
    for (const [route, noisy] of result.rows as Array<[string, number]>) expect(noisy).toBeLessThanOrEqual((uncapped.get(route) ?? 0) + 3 * statistic.ci95HalfWidth);
  });

  it('count, for a mean of an expression that can be null, the rows where it is present', async () => {
    const result = await released('SELECT route_id, avg(CASE WHEN fare > 2 THEN fare END) AS dear_fare FROM transit_trips GROUP BY route_id', { epsilon: 2, bounds: { dear_fare: { min: 0, max: 5 } } }, ['transit_trips']);
    expect(result.manifest.differentialPrivacy.statistics.map((entry: { name: string }) => entry.name)).toEqual(['sum(dear_fare)', 'count(dear_fare)']);
    // Dear fares are 3: a mean over the rows where one is present stays near 3; one over every row would be near 0.6.
    const means = (result.rows as Array<[string, number | null]>).map(([, mean]) => mean).filter((mean): mean is number => mean !== null);
    expect(means.filter((mean) => mean > 2).length).toBeGreaterThan(means.length / 2);
  });

  it('refuse an unnamed one, saying how to name it', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job('SELECT route_id, sum(fare * 10) FROM transit_trips GROUP BY route_id', {}, ['transit_trips']) });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('DP_QUERY_SHAPE');
    expect(response.json.error.message).toContain('output 2 sums an expression: name it (sum(…) AS name) and give its bounds in privacy.bounds.<name>');
  });

  it('need the operator\'s bounds for a named one', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job('SELECT route_id, sum(fare * 10) AS fare_jiao FROM transit_trips GROUP BY route_id', {}, ['transit_trips']) });
    expect(response.status).toBe(400);
    expect(response.json.error.details[0].path).toBe('privacy.bounds.fare_jiao');
  });
});

describe('confidence intervals', () => {
  it('are told by the dry run before anything runs, as the release then draws them', async () => {
    const sql = "SELECT date_trunc('month', boarded_at) AS month, count(*) AS trips, avg(fare) AS mean_fare FROM transit_trips GROUP BY 1";
    const privacy = { epsilon: 1, delta: 1e-6, bounds: { fare: { min: 0, max: 5 } } };
    const dryRun = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(sql, privacy, ['transit_trips']) });
    expect(dryRun.status, JSON.stringify(dryRun.json)).toBe(200);
    const result = await released(sql, privacy, ['transit_trips']);
    const { cellsReleased, ...selection } = result.manifest.differentialPrivacy.partitionSelection;
    expect(cellsReleased).toBeGreaterThanOrEqual(0);
    expect(dryRun.json.expectedNoise).toEqual({ statistics: result.manifest.differentialPrivacy.statistics, partitionSelection: selection });
    expect(dryRun.json.expectedNoise.statistics.map((statistic: { name: string }) => statistic.name)).toEqual(['count', 'sum(fare)']);
  });

  it('go with each count and sum column of the result, and into its CSV beside the figure; a mean has none', async () => {
    const sql = "SELECT route_id, count(*) AS trips, count(DISTINCT card_id) AS riders, count(*) FILTER (WHERE fare > 2) AS dear, sum(fare) AS revenue, avg(fare) AS mean_fare FROM transit_trips GROUP BY route_id";
    const result = await released(sql, { epsilon: 1, bounds: { fare: { min: 0, max: 5 } } }, ['transit_trips']);
    const halfWidth = Object.fromEntries((result.manifest.differentialPrivacy.statistics as Array<{ name: string; ci95HalfWidth: number }>).map((statistic) => [statistic.name, statistic.ci95HalfWidth]));
    expect(result.columns.map((column: { name: string; ci95HalfWidth?: number }) => [column.name, column.ci95HalfWidth])).toEqual([
      ['route_id', undefined],
      ['trips', halfWidth.count],
      ['riders', halfWidth['count(DISTINCT card_id)']],
      ['dear', halfWidth['count for dear']],
      ['revenue', halfWidth['sum(fare)']],
      ['mean_fare', undefined],
    ]);
    const csv = await t.call('GET', `/v1/jobs/${result.jobId}/result?format=csv`, { token: analyst });
    const [header, first] = csv.text.split('\r\n');
    expect(header).toBe('route_id,trips,trips_ci95,riders,riders_ci95,dear,dear_ci95,revenue,revenue_ci95,mean_fare');
    const values = first!.split(',');
    expect(values[0]).toBe(result.rows[0][0]);
    expect(values.slice(2, 9).filter((_, index) => index % 2 === 0).map(Number)).toEqual([halfWidth.count, halfWidth['count(DISTINCT card_id)'], halfWidth['count for dear'], halfWidth['sum(fare)']]);
  });

  it('are told for one Newton step of a logistic model, with the number of steps that each draw them', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', {
      token: analyst,
      json: { ...job("SELECT fare > 2 AS dear, CASE WHEN route_id = 'LG01' THEN 1 ELSE 0 END AS lg01 FROM transit_trips", { bounds: { lg01: { min: 0, max: 1 } } }, ['transit_trips']), model: { type: 'logistic', target: 'dear', features: ['lg01'] } },
    });
    expect(response.status, JSON.stringify(response.json)).toBe(200);
    expect(response.json.expectedNoise.statistics).toHaveLength(5);
    expect(response.json.expectedNoise.statistics[4].name).toBe('sum(p(1−p)·lg01²)');
    expect(response.json.expectedNoise.newtonSteps).toBe(4);
  });

  it('are not told for a job protected by thresholds, which draws no noise', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: await t.tokenFor('analyst-lingang-analytics'), json: { datasets: ['power_readings'], sql: 'SELECT town, sum(kwh) FROM power_readings GROUP BY town', purpose: 'test' } });
    expect(response.status, JSON.stringify(response.json)).toBe(200);
    expect(response.json.expectedNoise).toBeNull();
  });

  it('give the smallest half-width covering 95 % of discrete Laplace noise', () => {
    for (const scale of [0.5, 1, 3.7, 20, 80]) {
      let covered = discreteLaplacePmf(0, scale);
      let k = 0;
      while (covered < 0.95) covered += 2 * discreteLaplacePmf(++k, scale);
      expect(discreteLaplaceCi95(scale)).toBe(k);
    }
  });
});

describe('differentially private linear regression', () => {
  let dpModelJob: string;
  const households = "SELECT amount_due, kwh FROM power_readings WHERE customer_type = 'household'";
  const model = { type: 'linear', target: 'amount_due', features: ['kwh'] };
  const energyJob = async (privacy: Record<string, unknown>, sql = households, datasets = ['power_readings']) => ({
    token: await t.tokenFor('analyst-lingang-analytics'),
    json: { datasets, sql, purpose: '电价核算', model, privacy: { differentialPrivacy: true, ...privacy } },
  });

  it('fits a bill to its use from noisy sufficient statistics, near the tariff', async () => {
    const [lingang] = await t.platform.db.select().from(licences).where(eq(licences.operatorId, 'lingang-analytics'));
    expect((await t.call('POST', '/v1/budgets', { token: regulators[0], json: { licenceId: lingang!.id, datasetId: 'power_readings', epsilonCap: 12, reason: 'test' } })).status).toBe(200);
    // Bounds in the tariff's ratio (0.617 CNY a kWh): a clipped household stays on the line.
    const submitted = await t.call('POST', '/v1/jobs', await energyJob({ epsilon: 10, bounds: { kwh: { min: 0, max: 600 }, amount_due: { min: 0, max: 370.2 } } }));
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    expect(submitted.json).toMatchObject({ kind: 'model', differentialPrivacy: { epsilon: 10, delta: 0, mechanism: 'laplace' } });
    const settled = await t.waitForJob(submitted.json.id);
    expect(settled.statusCode).toBe('CHECKED_WITH_NOISE');
    await t.call('POST', `/v1/reviews/${settled.id}`, { token: regulators[0], json: { decision: 'approve', reason: 'DP model' } });
    const result = (await t.call('GET', `/v1/jobs/${settled.id}/result`, { token: await t.tokenFor('analyst-lingang-analytics') })).json;
    const coefficients = Object.fromEntries(result.rows as Array<[string, number]>);
    expect(Object.keys(coefficients)).toEqual(['(intercept)', 'kwh']);
    // At ε 10 over six sums the slope's noise has a standard deviation of about 0.04 here (0.004–0.07 off in
    // trials); 0.2 is five of them, and still far from what a mix-up of the sums gives (1.62 for x on y).
    expect(Math.abs(coefficients.kwh! - 0.617)).toBeLessThan(0.2);
    expect(Math.abs(coefficients['(intercept)']!)).toBeLessThan(60);
    const statistics = result.manifest.differentialPrivacy.statistics.map((statistic: { name: string }) => statistic.name);
    expect(statistics).toEqual(['count', 'sum(kwh)', 'sum(kwh²)', 'sum(kwh·amount_due)', 'sum(amount_due)', 'sum(amount_due²)']);
    // Σkwh² adds at most L · 600² per account, and its rounding one more per row kept.
    expect(result.manifest.differentialPrivacy.statistics[2].sensitivity).toBe(10 * (600 * 600 + 1));
    expect(result.manifest.model).toMatchObject({ type: 'linear', target: 'amount_due', features: ['kwh'] });
    dpModelJob = settled.id;
  });

  it('serves the released noisy coefficients as a scoring product', async () => {
    const [b0, b1] = await publishedScoring('dp-bill-estimate', dpModelJob);
    const scored = await t.call('POST', '/v1/products/dp-bill-estimate/score', { token: await t.tokenFor('consumer-east-sea-bank'), json: { input: { kwh: 350 }, purpose: 'bill estimate' } });
    expect(scored.status, JSON.stringify(scored.json)).toBe(200);
    expect(scored.json.score).toBeCloseTo(b0! + b1! * 350, 9);
  });

  it('needs the operator\'s bounds for a feature the training rows compute', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', await energyJob({ epsilon: 1 }, "SELECT amount_due, kwh / 100 AS kwh FROM power_readings WHERE customer_type = 'household'"));
    expect(response.status).toBe(400);
    expect(response.json.error.details[0].path).toBe('privacy.bounds.kwh');
  });

  it('refuses a differentially private logistic model whose target is not a boolean or a whole number', async () => {
    const request = await energyJob({ epsilon: 1 });
    const response = await t.call('POST', '/v1/jobs/dry-run', { ...request, json: { ...request.json, model: { ...model, type: 'logistic' } } });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('DP_QUERY_SHAPE');
    expect(response.json.error.message).toContain('amount_due is DECIMAL');
  });

  it('refuses bounds for a logistic target, which is clamped to 0..1', async () => {
    const request = await energyJob({ epsilon: 1, bounds: { late: { min: 0, max: 5 } } }, 'SELECT CAST(NOT paid_on_time AS INTEGER) AS late, kwh FROM power_readings');
    const response = await t.call('POST', '/v1/jobs/dry-run', { ...request, json: { ...request.json, model: { type: 'logistic', target: 'late', features: ['kwh'] } } });
    expect(response.status).toBe(400);
    expect(response.json.error.details[0].path).toBe('privacy.bounds.late');
  });

  it('trains a model on L4 data only with differential privacy', async () => {
    const trips = { datasets: ['transit_trips'], sql: "SELECT fare, CASE WHEN route_id IN ('LG01', 'LG02') THEN 1 ELSE 0 END AS central FROM transit_trips", purpose: '票价分析', model: { type: 'linear', target: 'fare', features: ['central'] } };
    const plain = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: trips });
    expect(plain.json.error.code).toBe('DP_REQUIRED');
    const noisy = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { ...trips, privacy: { differentialPrivacy: true, epsilon: 1, bounds: { central: { min: 0, max: 1 } } } } });
    expect(noisy.status, JSON.stringify(noisy.json)).toBe(200);
    expect(noisy.json.differentialPrivacy).toEqual({ epsilon: 1, delta: 0, mechanism: 'laplace', bounds: { central: { min: 0, max: 1 } } });
  });

  it('refuses a feature whose bounds are one value: constant, and collinear with the intercept', async () => {
    const trips = { datasets: ['transit_trips'], sql: "SELECT fare, CASE WHEN route_id IN ('LG01', 'LG02') THEN 1 ELSE 0 END AS central FROM transit_trips", purpose: '票价分析', model: { type: 'linear', target: 'fare', features: ['central'] } };
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { ...trips, privacy: { differentialPrivacy: true, epsilon: 1, bounds: { central: { min: 1, max: 1 } } } } });
    expect(response.json.error.code).toBe('VALIDATION_FAILED');
    expect(response.json.error.details).toEqual([{ path: 'privacy.bounds.central', problem: 'min equals max' }]);
  });
});

describe('differentially private logistic regression', () => {
  // Households use more power at the peaks of the seasonal cycle the demo data follows (January and February, July
  // and August), so "a bill above 200 kWh" is likelier then: a moderate effect that Newton's method reaches in a few steps.
  const season = 'CASE WHEN month(month) IN (1, 2, 7, 8) THEN 1 ELSE 0 END';
  const sql = `SELECT CASE WHEN kwh > 200 THEN 1 ELSE 0 END AS high_use, ${season} AS season FROM power_readings WHERE customer_type = 'household'`;
  const logistic = { type: 'logistic', target: 'high_use', features: ['season'] };
  let logisticJob: string;

  beforeAll(async () => {
    // Room for these ε of 10 and 5 after the linear model's 10.
    const [lingang] = await t.platform.db.select().from(licences).where(eq(licences.operatorId, 'lingang-analytics'));
    expect((await t.call('POST', '/v1/budgets', { token: regulators[0], json: { licenceId: lingang!.id, datasetId: 'power_readings', epsilonCap: 27, deltaCap: 1e-6, reason: 'test' } })).status).toBe(200);
  });

  /** The maximum-likelihood fit on every household row, by Newton's method to convergence (the test's oracle). */
  async function exactFit(): Promise<number[]> {
    const version = await latestVersion(t.platform.db, 'power_readings');
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      await connection.run(`ATTACH '${t.platform.store.snapshotPath('power_readings', version!.contentHash)}' AS s (READ_ONLY)`);
      await connection.run('CREATE VIEW power_readings AS SELECT * FROM s.data');
      const rows = (await connection.runAndReadAll(sql)).getRows().map((row) => row.map(Number));
      let beta = [0, 0];
      for (let iteration = 0; iteration < 50; iteration++) {
        const [g, h] = [[0, 0], [0, 0, 0]];
        for (const [y, x] of rows) {
          const p = 1 / (1 + Math.exp(-(beta[0]! + beta[1]! * x!)));
          g[0]! += y! - p;
          g[1]! += x! * (y! - p);
          h[0]! += p * (1 - p);
          h[1]! += p * (1 - p) * x!;
          h[2]! += p * (1 - p) * x! * x!;
        }
        const determinant = h[0]! * h[2]! - h[1]! * h[1]!;
        beta = [beta[0]! + (h[2]! * g[0]! - h[1]! * g[1]!) / determinant, beta[1]! + (h[0]! * g[1]! - h[1]! * g[0]!) / determinant];
      }
      return beta;
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  }

  it('fits coefficients near the exact maximum-likelihood fit by noisy Newton steps', async () => {
    const analystToken = await t.tokenFor('analyst-lingang-analytics');
    const submitted = await t.call('POST', '/v1/jobs', {
      token: analystToken,
      json: { datasets: ['power_readings'], sql, purpose: '用电高峰分析', model: logistic, privacy: { differentialPrivacy: true, epsilon: 10, bounds: { season: { min: 0, max: 1 } } } },
    });
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    const settled = await t.waitForJob(submitted.json.id, 120_000);
    expect(settled.statusCode, JSON.stringify(settled)).toBe('CHECKED_WITH_NOISE');
    await t.call('POST', `/v1/reviews/${settled.id}`, { token: regulators[0], json: { decision: 'approve', reason: 'DP logistic model' } });
    const result = (await t.call('GET', `/v1/jobs/${settled.id}/result`, { token: analystToken })).json;
    const [intercept, slope] = (result.rows as Array<[string, number]>).map(([, coefficient]) => coefficient);
    const [exactIntercept, exactSlope] = await exactFit();
    // The exact fit is about −0.46 + 2.25·season. Each account's rows are a random 10 of its months and every step
    // adds noise (about 0.06 on the slope at this ε); six runs came within 0.09. 0.4 is several times that, and far
    // from what a step solved with a mixed-up Hessian or gradient gives.
    expect(exactSlope).toBeGreaterThan(1);
    expect(Math.abs(slope! - exactSlope!)).toBeLessThan(0.4);
    expect(Math.abs(intercept! - exactIntercept!)).toBeLessThan(0.4);
    expect(result.manifest.model).toMatchObject({ type: 'logistic', target: 'high_use', features: ['season'], iterations: 4 });
    logisticJob = settled.id;
  });

  it('spends the budget evenly over the steps and their figures, each figure counted finely enough that rounding costs almost nothing', async () => {
    const result = (await t.call('GET', `/v1/jobs/${logisticJob}/result`, { token: await t.tokenFor('analyst-lingang-analytics') })).json;
    const statistics = result.manifest.differentialPrivacy.statistics as Array<{ name: string; epsilon: number; sensitivity: number }>;
    // Four steps of five figures: the gradient's two and the Hessian's three.
    expect(statistics.map((statistic) => statistic.name).slice(0, 5)).toEqual(['step 1: sum(high_use − p)', 'step 1: sum(season·(high_use − p))', 'step 1: sum(p(1−p))', 'step 1: sum(p(1−p)·season)', 'step 1: sum(p(1−p)·season²)']);
    expect(statistics).toHaveLength(20);
    for (const statistic of statistics) expect(statistic.epsilon).toBeCloseTo(10 / 20, 12);
    // A row moves Σp(1−p)·season² by at most ¼: ten rows a household, and less than a thousandth more for rounding.
    expect(statistics[4]!.sensitivity).toBeGreaterThanOrEqual(2.5);
    expect(statistics[4]!.sensitivity).toBeLessThan(2.5 * 1.001);
    expect(statistics[1]!.sensitivity).toBeLessThan(10 * 1.001);
    expect(result.manifest.differentialPrivacy.note).toContain('4 Newton steps');
  });

  it('with the Gaussian mechanism, gives every figure of every step one share of a single zCDP ρ, and reads a boolean target as 0 and 1', async () => {
    const analystToken = await t.tokenFor('analyst-lingang-analytics');
    const booleanTarget = sql.replace('CASE WHEN kwh > 200 THEN 1 ELSE 0 END AS high_use', 'kwh > 200 AS high_use');
    const submitted = await t.call('POST', '/v1/jobs', {
      token: analystToken,
      json: { datasets: ['power_readings'], sql: booleanTarget, purpose: '用电高峰分析', model: logistic, privacy: { differentialPrivacy: true, epsilon: 5, delta: 1e-6, mechanism: 'gaussian', bounds: { season: { min: 0, max: 1 } } } },
    });
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    const settled = await t.waitForJob(submitted.json.id, 120_000);
    expect(settled.statusCode, JSON.stringify(settled)).toBe('CHECKED_WITH_NOISE');
    await t.call('POST', `/v1/reviews/${settled.id}`, { token: regulators[0], json: { decision: 'approve', reason: 'DP logistic model' } });
    const result = (await t.call('GET', `/v1/jobs/${settled.id}/result`, { token: analystToken })).json;
    const statistics = result.manifest.differentialPrivacy.statistics as Array<{ mechanism: string; sensitivity: number; scale: number }>;
    expect(statistics).toHaveLength(20);
    // σ = Δ₂ / √(2ρ) with ρ the twentieth of what (ε 5, δ 10⁻⁶) buys; Δ₂ here in the figure's own units.
    const rho = rhoFor(5, 1e-6) / 20;
    for (const statistic of statistics) {
      expect(statistic.mechanism).toBe('discrete_gaussian');
      expect(statistic.scale).toBeCloseTo(statistic.sensitivity / Math.sqrt(2 * rho), 6);
    }
    // About 0.1 of noise on the slope at this ε; 1 is ten of it, and the sign and size still show.
    const [exactIntercept, exactSlope] = await exactFit();
    const [intercept, slope] = (result.rows as Array<[string, number]>).map(([, coefficient]) => coefficient);
    expect(Math.abs(slope! - exactSlope!)).toBeLessThan(1);
    expect(Math.abs(intercept! - exactIntercept!)).toBeLessThan(1);
  });

  it('serves the noisy logistic model as a scoring product that answers a probability', async () => {
    const [b0, b1] = await publishedScoring('dp-high-use', logisticJob);
    const scored = await t.call('POST', '/v1/products/dp-high-use/score', { token: await t.tokenFor('consumer-east-sea-bank'), json: { input: { season: 1 }, purpose: 'peak planning' } });
    expect(scored.status, JSON.stringify(scored.json)).toBe(200);
    expect(scored.json.score).toBeCloseTo(1 / (1 + Math.exp(-(b0! + b1!))), 9);
  });
});

describe('fitting noisy sufficient statistics', () => {
  it('gives least squares when the statistics are exact', () => {
    const x = [1, 2, 3, 4, 5];
    const y = [2.1, 3.9, 6.2, 7.8, 10.1];
    const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
    const fitted = fitNoisyLinearModel({ type: 'linear', target: 'y', features: ['x'] }, 5, [sum(x), sum(x.map((v) => v * v)), sum(x.map((v, i) => v * y[i]!)), sum(y), sum(y.map((v) => v * v))]);
    if ('withheld' in fitted) throw new Error('withheld');
    // y = 0.05 + 1.99 x by the normal equations.
    expect(fitted.rows[0]![1]).toBeCloseTo(0.05, 10);
    expect(fitted.rows[1]![1]).toBeCloseTo(1.99, 10);
  });

  it('withholds rather than divide by a noise-made singular system', () => {
    const fitted = fitNoisyLinearModel({ type: 'linear', target: 'y', features: ['x'] }, 5, [15, -40, 10, 20, 100]);
    expect(fitted).toMatchObject({ withheld: { code: 'MODEL_COLLINEAR' } });
  });
});

describe('odd DP query shapes', () => {
  const shapes = [
    'WITH a AS (SELECT card_id, route_id FROM transit_trips), b AS (SELECT * FROM a WHERE route_id <> \'LG01\') SELECT route_id, count(*) FROM b GROUP BY route_id',
    'WITH u AS (SELECT card_id, route_id FROM transit_trips WHERE fare > 2 UNION ALL SELECT card_id, route_id FROM transit_trips WHERE fare <= 2) SELECT route_id, count(*) FROM u GROUP BY route_id',
    'SELECT route_id, count(*) FROM (SELECT card_id, route_id FROM transit_trips) GROUP BY route_id',
    'WITH p(c, r) AS (SELECT card_id, route_id FROM transit_trips) SELECT r, count(DISTINCT c) FROM p GROUP BY r',
    'WITH p AS (SELECT card_id, route_id FROM transit_trips) SELECT a.route_id, count(*) FROM p a JOIN p b ON a.card_id = b.card_id GROUP BY a.route_id',
    'SELECT upper(route_id) AS r, count(*) FROM transit_trips GROUP BY upper(route_id)',
    'SELECT route_id, count(*) AS n FROM transit_trips GROUP BY route_id ORDER BY sum(fare)',
    'SELECT route_id, count(*) AS n FROM transit_trips GROUP BY route_id ORDER BY n LIMIT 3 OFFSET 2',
    'SELECT route_id, count(*) AS n FROM transit_trips GROUP BY route_id HAVING n NOT IN (1, 2) AND n IS NOT NULL',
    'SELECT route_id, count(NULL), count(1) FROM transit_trips GROUP BY route_id',
    'SELECT route_id, avg(DISTINCT fare) FROM transit_trips GROUP BY route_id',
    'SELECT route_id, sum(fare) FILTER (WHERE fare > 2), avg(fare) FILTER (WHERE fare > 2) FROM transit_trips GROUP BY route_id',
    'SELECT route_id, count(*) FROM transit_trips GROUP BY ROLLUP (route_id)',
    'SELECT route_id, count(*) FROM transit_trips GROUP BY GROUPING SETS ((route_id), ())',
    'SELECT count(*) FROM transit_trips',
    'SELECT route_id, count(*) FROM transit_trips GROUP BY ALL',
    'SELECT route_id, 1 + count(*) FROM transit_trips GROUP BY route_id',
    'SELECT route_id, count(*) FROM transit_trips t LEFT JOIN bus_routes b ON t.route_id = b.route_id GROUP BY route_id',
    'SELECT b.town, count(*) FROM bus_routes b LEFT JOIN transit_trips t ON t.route_id = b.route_id GROUP BY b.town',
    'SELECT route_id, count(*) FROM transit_trips GROUP BY route_id HAVING count(*) > (SELECT 1)',
  ];

  it('a correlation of an expression is refused saying to compute it in a CTE with bounds', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job('SELECT route_id, corr(fare, fare * 2) AS r FROM transit_trips GROUP BY route_id', {}, ['transit_trips']) });
    expect(response.status).toBe(422);
    expect(response.json.error.message).toContain('corr takes two columns; compute an expression in a CTE and give its bounds in privacy.bounds.<name>');
  });

  it('name an output that is not an aggregate of a column by its place, not a made-up name', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job('SELECT route_id, 1 + count(*) FROM transit_trips GROUP BY route_id', {}, ['transit_trips']) });
    expect(response.json.error.message).toContain('output 2 is not COUNT, SUM, AVG, a standard deviation or variance, a correlation, covariance or regression line, or a quantile of a column');
  });

  it('answer every shape with a decision or a refusal, never an internal error', async () => {
    for (const sql of shapes) {
      const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(sql, { delta: 1e-6 }) });
      expect([200, 400, 422], `${sql}: ${JSON.stringify(response.json)}`).toContain(response.status);
    }
  });

  const inlineShapes = [
    'SELECT route_id, sum(fare * 10) FILTER (WHERE fare > 2) AS x FROM transit_trips GROUP BY route_id',
    'SELECT route_id, avg(CASE WHEN fare > 2 THEN 1 ELSE 0 END) AS x FROM transit_trips GROUP BY route_id',
    'SELECT route_id, sum(1) AS x FROM transit_trips GROUP BY route_id',
    'SELECT route_id, sum(NULL) AS x FROM transit_trips GROUP BY route_id',
    'SELECT route_id, sum(fare) + sum(fare * 2) AS x FROM transit_trips GROUP BY route_id',
    'SELECT route_id, sum(DISTINCT fare * 2) AS x FROM transit_trips GROUP BY route_id',
    'SELECT route_id, sum(length(card_id)) AS x FROM transit_trips GROUP BY route_id',
    'SELECT route_id, sum(CAST(fare AS VARCHAR)) AS x FROM transit_trips GROUP BY route_id',
    'SELECT route_id, sum(fare * 10) AS x, avg(fare * 10) AS x FROM transit_trips GROUP BY route_id',
    'SELECT b.town, sum(t.fare * b.stop_seq::INT) AS x FROM transit_trips t JOIN bus_routes b ON t.route_id = b.route_id AND t.board_stop_id = b.stop_id GROUP BY b.town',
    'SELECT route_id, median(fare * 10) AS x FROM transit_trips GROUP BY route_id',
    'SELECT route_id, median(fare * 10) FILTER (WHERE fare > 2) AS x FROM transit_trips GROUP BY route_id ORDER BY x DESC LIMIT 3',
    'SELECT route_id, quantile_disc(fare * 10, 0.25) AS x FROM transit_trips GROUP BY route_id HAVING x > 20',
    'SELECT route_id, median(DISTINCT fare * 10) AS x FROM transit_trips GROUP BY route_id',
    'SELECT route_id, quantile_cont(fare * 10, [0.25, 0.75]) AS x FROM transit_trips GROUP BY route_id',
    'SELECT route_id, quantile_cont(fare * 10, 0.5 + 0.1) AS x FROM transit_trips GROUP BY route_id',
    "SELECT date_trunc('month', boarded_at) AS m, median(fare * 10) AS x FROM transit_trips GROUP BY 1",
    'SELECT median(fare * 10) AS x FROM transit_trips',
  ];

  it('answer every sum of an inline expression with a decision or a refusal, never an internal error', async () => {
    for (const sql of inlineShapes) {
      const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: job(sql, { delta: 1e-6, bounds: { x: { min: 0, max: 30 } } }) });
      expect([200, 400, 422], `${sql}: ${JSON.stringify(response.json)}`).toContain(response.status);
    }
  });

  const models: Array<[string, Record<string, unknown>, Record<string, { min: number; max: number }>]> = [
    ["WITH r AS (SELECT CASE WHEN fare > 2 THEN 1 ELSE 0 END AS dear, hour(boarded_at) AS h FROM transit_trips) SELECT dear, h FROM r", { target: 'dear', features: ['h'] }, { h: { min: 0, max: 23 } }],
    ["SELECT CASE WHEN t.fare > 2 THEN 1 ELSE 0 END AS dear, b.stop_seq::INT AS seq FROM transit_trips t JOIN bus_routes b ON t.route_id = b.route_id AND t.board_stop_id = b.stop_id", { target: 'dear', features: ['seq'] }, { seq: { min: 0, max: 40 } }],
    ["SELECT fare > 2 AS dear, CASE WHEN route_id = 'LG01' THEN 1 END AS lg01, CASE WHEN route_id = 'LG02' THEN 1 ELSE 0 END AS m FROM transit_trips", { target: 'dear', features: ['lg01', 'm'] }, { lg01: { min: 0, max: 1 }, m: { min: 0, max: 1 } }],
    ["SELECT fare AS dear, hour(boarded_at) AS h FROM transit_trips", { target: 'dear', features: ['h'] }, { h: { min: 0, max: 23 } }],
    ["SELECT fare > 2 AS dear, hour(boarded_at) AS h FROM transit_trips", { target: 'dear', features: ['dear'] }, {}],
    ["SELECT fare > 2 AS dear, hour(boarded_at) AS h FROM transit_trips", { target: 'dear', features: ['nowhere'] }, {}],
    ["SELECT fare > 2 AS dear, route_id FROM transit_trips", { target: 'dear', features: ['route_id'] }, {}],
    ["SELECT fare > 2 AS dear, card_id FROM transit_trips", { target: 'dear', features: ['card_id'] }, {}],
  ];

  it('answer every shape of a DP logistic model with a decision or a refusal, never an internal error', async () => {
    for (const [sql, model, bounds] of models) {
      const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { ...job(sql, { bounds }, ['transit_trips', 'bus_routes']), model: { type: 'logistic', ...model } } });
      expect([200, 400, 422], `${sql}: ${JSON.stringify(response.json)}`).toContain(response.status);
    }
  });

  it('run a DP logistic model over a join with open data, and one with a feature that is mostly null, to an output, not a failure', async () => {
    // Rows where a feature is null are left out, as for any model; the join reads a feature from open data.
    for (const [sql, model, bounds] of [models[1]!, models[2]!]) {
      const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { ...job(sql, { epsilon: 1, bounds }), model: { type: 'logistic', ...model } } });
      expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
      const settled = await t.waitForJob(submitted.json.id, 120_000);
      // Noise may withhold one at this ε; neither may fail.
      expect(['in_review', 'withheld'], JSON.stringify(settled)).toContain(settled.status);
    }
  });
});

describe('window functions over a differentially private output', () => {
  it('a share and a rank are computed from the noisy counts, after the noise, and the output sorted by them', async () => {
    const result = { json: await released('SELECT route_id, count(*) AS trips, count(*) / sum(count(*)) OVER () AS share, rank() OVER (ORDER BY count(*) DESC, route_id) AS place FROM transit_trips GROUP BY route_id ORDER BY place', {}, ['transit_trips']) };
    expect(result.json.columns.map((column: { role: string }) => column.role)).toEqual(['group_key', 'dp_count', 'derived', 'derived']);
    const rows = result.json.rows as Array<[string, number, number, number]>;
    expect(rows).toHaveLength(30);
    const total = rows.reduce((sum, row) => sum + row[1], 0);
    for (const [, trips, share] of rows) expect(share).toBeCloseTo(trips / total, 12);
    expect(rows.map((row) => row[3])).toEqual(Array.from({ length: 30 }, (_, index) => index + 1));
    for (let index = 1; index < rows.length; index++) expect(rows[index]![1]).toBeLessThanOrEqual(rows[index - 1]![1]);
  });
});
