import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestVersion } from '../../src/catalog/catalogue.js';
import { asc, eq } from 'drizzle-orm';
import { auditLeaves, incidents } from '../../src/db/schema.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let analyst: string;
let otherAnalyst: string;
let regulator: string;

/**
 * Hand-made firms whose right answers are known (grade L2: threshold 10, dominance 2/90 %, no rounding):
 *  district A: sector x 12 firms × 100; y 5 firms × 100 (below threshold); w 15 firms × 50; v 20 firms × 10
 *  district B: sector z one firm 100,000 + 11 × 10 (dominated); q 12 × 100; r 14 × 100
 * Staff: 1–9 by firm number, but 95 at the first two firms of w (a few that a condition on staff can single out).
 */
const firms: Array<{ district: string; sector: string; energy: number; staff: number }> = [];
function firmsCsv(): string {
  const lines = ['firm_id,district,sector,energy,staff'];
  let id = 0;
  const add = (district: string, sector: string, count: number, energy: number) => {
    for (let i = 0; i < count; i++) {
      const staff = sector === 'w' && i < 2 ? 95 : (id % 9) + 1;
      firms.push({ district, sector, energy, staff });
      lines.push(`F${String(++id).padStart(4, '0')},${district},${sector},${energy},${staff}`);
    }
  };
  add('A', 'x', 12, 100);
  add('A', 'y', 5, 100);
  add('A', 'w', 15, 50);
  add('A', 'v', 20, 10);
  add('B', 'z', 1, 100_000);
  add('B', 'z', 11, 10);
  add('B', 'q', 12, 100);
  add('B', 'r', 14, 100);
  return lines.join('\n') + '\n';
}

beforeAll(async () => {
  // A larger demo scale than other files, so that the demo aggregate has cells above the thresholds.
  t = await createTestPlatform({ demo: true, workers: 2, environment: { PDS_DEMO_SCALE: '0.02' } });
  analyst = await t.tokenFor('analyst-lingang-analytics');
  otherAnalyst = await t.tokenFor('analyst-harbour-credit');
  regulator = await t.tokenFor('regulator-data-dept');
  const clerk = await t.tokenFor('clerk-power-utility');
  const registered = await t.call('POST', '/v1/datasets', {
    token: clerk,
    json: {
      id: 'firm_energy',
      title: 'Firm energy (test)',
      titleZh: '企业能耗（测试）',
      description: 'Hand-made firms for disclosure tests.',
      category: 'utilities',
      grade: 'L2',
      sharingType: 'unconditional',
      legalBasis: 'test',
      updateFrequency: 'static',
      privacyUnit: 'firm_id',
      uniqueKey: ['firm_id'],
      columns: [
        { name: 'firm_id', type: 'VARCHAR', class: 'direct_identifier', description: 'Firm' },
        { name: 'district', type: 'VARCHAR', class: 'attribute', description: 'District' },
        { name: 'sector', type: 'VARCHAR', class: 'attribute', description: 'Sector' },
        { name: 'energy', type: 'DOUBLE', class: 'sensitive', description: 'Energy' },
        { name: 'staff', type: 'INTEGER', class: 'attribute', description: 'Staff' },
      ],
    },
  });
  expect(registered.status).toBe(201);
  const loaded = await t.call('POST', '/v1/datasets/firm_energy/versions', { token: clerk, headers: { 'content-type': 'text/csv' }, body: firmsCsv() });
  expect(loaded.status).toBe(201);
  const licence = await t.call('POST', '/v1/operators/lingang-analytics/licences', {
    token: regulator,
    json: {
      title: 'test',
      scope: [{ dataset: 'firm_energy' }, { dataset: 'bus_routes' }],
      purposes: ['public_interest'],
      maxGrade: 'L2',
      validFrom: new Date(Date.now() - 86_400_000).toISOString(),
      validUntil: new Date(Date.now() + 86_400_000 * 30).toISOString(),
      feeMode: 'free',
    },
  });
  expect(licence.status).toBe(201);
});
afterAll(() => t?.close());

/** Submits, waits, and approves the output as a regulator where its grade holds it for review (L3). */
async function run(sql: string, datasets: string[], token = analyst) {
  const submitted = await t.call('POST', '/v1/jobs', { token, json: { datasets, sql, purpose: 'test' } });
  expect(submitted.status, JSON.stringify(submitted.json.error)).toBe(201);
  const finished = await t.waitForJob(submitted.json.id);
  if (finished.status === 'in_review') {
    const review = await t.call('POST', `/v1/reviews/${submitted.json.id}`, { token: regulator, json: { decision: 'approve', reason: 'checked' } });
    expect(review.json.status).toBe('released');
  }
  const result = await t.call('GET', `/v1/jobs/${submitted.json.id}/result`, { token });
  return { id: submitted.json.id as string, result };
}

const byKey = (rows: unknown[][]) => Object.fromEntries(rows.map((row) => [String(row[0]), row.slice(1)]));

describe('disclosure control on loaded data, end to end', () => {
  it('threshold and secondary suppression: y is below threshold, x goes with it, w and v are exact', async () => {
    const { result } = await run("SELECT sector, count(*) AS firms, sum(energy) AS energy FROM firm_energy WHERE district = 'A' GROUP BY sector ORDER BY sector", ['firm_energy']);
    expect(result.status).toBe(200);
    expect(byKey(result.json.rows)).toEqual({ v: [20, 200], w: [15, 750], x: [null, null], y: [null, null] });
    const codes = Object.fromEntries(result.json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [result.json.rows[entry.row][0], entry.code]));
    expect(codes).toEqual({ x: 'SECONDARY_SUPPRESSION', y: 'BELOW_THRESHOLD' });
  });

  it('dominance: z is suppressed though it has 12 firms, q goes with it, r is exact', async () => {
    const { result } = await run("SELECT sector, sum(energy) AS energy FROM firm_energy WHERE district = 'B' GROUP BY sector ORDER BY sector", ['firm_energy']);
    expect(byKey(result.json.rows)).toEqual({ q: [null], r: [1400], z: [null] });
    const codes = Object.fromEntries(result.json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [result.json.rows[entry.row][0], entry.code]));
    expect(codes).toEqual({ q: 'SECONDARY_SUPPRESSION', z: 'DOMINANCE' });
  });

  it('counts are rounded before any arithmetic, so scaling a count cannot undo the rounding (L3, base 5)', async () => {
    const { result } = await run(
      'SELECT town, count(*) * 1000 AS scaled, sum(1) * 1000 AS disguised, CASE WHEN town IS NOT NULL THEN count(*) * 7 END AS in_case FROM power_readings GROUP BY town',
      ['power_readings'],
    );
    expect(result.status).toBe(200);
    const released = result.json.rows.filter((row: unknown[]) => row[1] !== null);
    expect(released.length).toBeGreaterThan(0);
    for (const [, scaled, disguised, inCase] of released) expect([scaled % 5000, disguised % 5000, inCase % 35]).toEqual([0, 0, 0]);
  });

  it('dominance applies to a variance too, of the sample or the population: z is suppressed, q goes with it', async () => {
    const { result } = await run("SELECT sector, var_samp(energy) AS spread, stddev_samp(energy) AS sd, var_pop(energy) AS pop, stddev_pop(energy) AS pop_sd FROM firm_energy WHERE district = 'B' GROUP BY sector ORDER BY sector", ['firm_energy']);
    const codes = Object.fromEntries(result.json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [result.json.rows[entry.row][0], entry.code]));
    expect(codes).toEqual({ q: 'SECONDARY_SUPPRESSION', z: 'DOMINANCE' });
    expect(byKey(result.json.rows).r![0]).toEqual(expect.any(Number));
    expect(byKey(result.json.rows).r![2]).toEqual(expect.any(Number));
  });

  it('a correlation, a covariance and a regression slope of two columns are released where the sums they are made of pass', async () => {
    const { result } = await run(
      "SELECT corr(energy, staff) AS r, covar_samp(energy, staff) AS covariance, regr_slope(energy, staff) AS slope FROM firm_energy WHERE district = 'A'",
      ['firm_energy'],
    );
    expect(result.status).toBe(200);
    const [r, covariance, slope] = result.json.rows[0] as number[];
    // Computed here from the firms as written, not by DuckDB.
    const inA = firms.filter((firm) => firm.district === 'A');
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    const [mx, my] = [mean(inA.map((firm) => firm.staff)), mean(inA.map((firm) => firm.energy))];
    const sxy = inA.reduce((sum, firm) => sum + (firm.staff - mx) * (firm.energy - my), 0);
    const sxx = inA.reduce((sum, firm) => sum + (firm.staff - mx) ** 2, 0);
    const syy = inA.reduce((sum, firm) => sum + (firm.energy - my) ** 2, 0);
    expect(covariance).toBeCloseTo(sxy / (inA.length - 1), 6);
    expect(r).toBeCloseTo(sxy / Math.sqrt(sxx * syy), 9);
    expect(slope).toBeCloseTo(sxy / sxx, 9);
    expect(result.json.manifest.suppressedRows).toEqual([]);
  });

  it('dominance applies to a correlation: z, where one firm holds nearly all the energy, is suppressed', async () => {
    const { result } = await run("SELECT sector, corr(energy, staff) AS r FROM firm_energy WHERE district = 'B' GROUP BY sector ORDER BY sector", ['firm_energy']);
    const codes = Object.fromEntries(result.json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [result.json.rows[entry.row][0], entry.code]));
    expect(codes).toEqual({ q: 'SECONDARY_SUPPRESSION', z: 'DOMINANCE' });
  });

  it('a covariance with a condition that leaves out a few firms is suppressed: with the mean it would give their energy', async () => {
    // Σ energy·[staff < 90] = n·(covar_pop + means) and Σ energy is known: their difference is the two large firms' energy.
    const { result } = await run(
      "SELECT sector, covar_pop(energy, CASE WHEN staff < 90 THEN 1 ELSE 0 END) AS c, avg(energy) AS mean FROM firm_energy WHERE district = 'A' AND sector IN ('v', 'w', 'x') GROUP BY sector ORDER BY sector",
      ['firm_energy'],
    );
    const codes = Object.fromEntries(result.json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [result.json.rows[entry.row][0], entry.code]));
    expect(codes.w).toBe('SMALL_COMPLEMENT');
  });

  it("a correlation of a constant, which has no value, is null and not NaN in the JSON and the CSV", async () => {
    const { id, result } = await run("SELECT sector, corr(energy, staff) AS r, count(*) AS firms FROM firm_energy WHERE district = 'A' AND sector IN ('v', 'w') GROUP BY sector ORDER BY sector", ['firm_energy']);
    expect(result.json.rows).toEqual([
      ['v', null, 20],
      ['w', null, 15],
    ]);
    const csv = await t.call('GET', `/v1/jobs/${id}/result?format=csv`, { token: analyst });
    expect(csv.text).not.toMatch(/NaN/i);
  });

  it("a suppressed cell's band of a sensitive column is withheld with its values, so one firm's energy is not listed as a key", async () => {
    const { result } = await run("SELECT sector, floor(energy) AS band, count(*) AS firms FROM firm_energy WHERE district = 'B' GROUP BY sector, band ORDER BY sector", ['firm_energy']);
    expect(result.status).toBe(200);
    // z's lone large firm is below the threshold; z's other band goes with it (secondary); both are listed last, without a band.
    expect(result.json.rows).toEqual([
      ['q', 100, 12],
      ['r', 100, 14],
      ['z', null, null],
      ['z', null, null],
    ]);
    expect(JSON.stringify(result.json)).not.toContain('100000');
  });

  it('a name that differs from another only in case is refused as ambiguous, as DuckDB would bind the first of them', async () => {
    // DuckDB matches names without regard to case: this D is the energy column, not the district.
    const response = await t.call('POST', '/v1/jobs', {
      token: analyst,
      json: { datasets: ['firm_energy'], purpose: 'test', sql: "SELECT D, count(*) AS n FROM (SELECT CASE WHEN district = 'B' THEN energy ELSE 0 END AS d, district AS D FROM firm_energy) GROUP BY D" },
    });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('AMBIGUOUS_COLUMN');
  });

  it('a CTE named like a table in other case shadows it for the checks as for DuckDB: its sensitive key is refused', async () => {
    const response = await t.call('POST', '/v1/jobs', {
      token: analyst,
      json: {
        datasets: ['firm_energy'],
        purpose: 'test',
        sql: "WITH Firm_Energy AS (SELECT firm_id, CASE WHEN district = 'B' THEN energy ELSE 0 END AS sector FROM firm_energy) SELECT sector, count(*) AS firms FROM firm_energy GROUP BY sector",
      },
    });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('SENSITIVE_GROUP_KEY');
  });

  it("a name of the platform's hidden figures in other case is refused as reserved", async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['firm_energy'], purpose: 'test', sql: 'SELECT district, 1 AS __PDS_CELL, count(*) AS n FROM firm_energy GROUP BY district' } });
    expect(response.json.error.code).toBe('RESERVED_NAME');
  });

  it('UNION BY NAME over protected data is refused: it pairs columns by name, not by position', async () => {
    const sql = 'SELECT x, count(*) AS n FROM (SELECT district AS x, energy AS y FROM firm_energy UNION ALL BY NAME SELECT district AS y, energy AS x FROM firm_energy) GROUP BY x';
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['firm_energy'], purpose: 'test', sql } });
    expect(response.json.error).toMatchObject({ code: 'UNSUPPORTED_QUERY_SHAPE', message: expect.stringContaining('UNION BY NAME') });
  });

  it('in a suppressed cell, keys from quasi-identifiers are withheld too: a rare birth year and sex are not listed', async () => {
    const sql = 'SELECT sex, year(birth_date) AS born, count(*) AS people FROM residents GROUP BY sex, born';
    const decision = await t.call('POST', '/v1/jobs/dry-run', { token: otherAnalyst, json: { datasets: ['residents'], purpose: 'test', sql } });
    expect(decision.json.outputColumns).toEqual([
      { name: 'sex', role: 'group_key', hiddenWhenSuppressed: true },
      { name: 'born', role: 'group_key', hiddenWhenSuppressed: true },
      { name: 'people', role: 'count' },
    ]);
    const { result } = await run(sql, ['residents'], otherAnalyst);
    const suppressed = (result.json.rows as unknown[][]).filter((row) => row[2] === null);
    expect(suppressed.length).toBeGreaterThan(0);
    expect(suppressed.every((row) => row[0] === null && row[1] === null)).toBe(true);
  });

  it('a PIVOT statement is refused with what to write instead', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['firm_energy'], purpose: 'test', sql: 'PIVOT firm_energy ON sector USING count(*)' } });
    expect(response.json.error).toMatchObject({ code: 'UNSUPPORTED_QUERY_SHAPE', message: expect.stringContaining('GROUP BY') });
  });

  it('GROUP BY ALL gives the checked output of the same query with its keys named', async () => {
    const { result } = await run("SELECT sector, count(*) AS firms, sum(energy) AS energy FROM firm_energy WHERE district = 'A' GROUP BY ALL ORDER BY 1", ['firm_energy']);
    expect(result.json.rows).toEqual([
      ['v', 20, 200],
      ['w', 15, 750],
      ['x', null, null],
      ['y', null, null],
    ]);
    const codes = Object.fromEntries(result.json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [result.json.rows[entry.row][0], entry.code]));
    expect(codes).toEqual({ x: 'SECONDARY_SUPPRESSION', y: 'BELOW_THRESHOLD' });
  });

  it('GROUP BY ALL over a sensitive column groups by it, and is refused as such', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['firm_energy'], purpose: 'test', sql: 'SELECT sector, energy, count(*) AS firms FROM firm_energy GROUP BY ALL' } });
    expect(response.json.error.code).toBe('SENSITIVE_GROUP_KEY');
  });

  it('a sensitive column banded by a CASE with constant labels is a group key, and a withheld band is not named', async () => {
    const sql = "SELECT CASE WHEN energy >= 1000 THEN 'huge' WHEN energy >= 100 THEN 'high' ELSE 'low' END AS band, count(*) AS firms FROM firm_energy GROUP BY band";
    const { result } = await run(sql, ['firm_energy']);
    // huge: the one firm of 100,000 (below threshold); high: 43 firms, withheld with it so that it cannot be
    // recovered from a total; low: 46 firms.
    expect(result.json.rows).toEqual([['low', 46], [null, null], [null, null]]);
    expect(result.json.manifest.suppressedByCode).toEqual({ BELOW_THRESHOLD: 1, SECONDARY_SUPPRESSION: 1 });
  });

  it('a band of a sensitive column may be computed further (floor(x / 50) * 50 gives the band\'s lower edge)', async () => {
    const { result } = await run('SELECT floor(energy / 50) * 50 AS band, count(*) AS firms FROM firm_energy GROUP BY band', ['firm_energy']);
    // The band of 100,000 holds one firm; the 50 band (15 firms, the smallest) is withheld with it.
    expect(byKey(result.json.rows)).toEqual({ '0': [31], '100': [43], null: [null] });
    expect(result.json.rows.filter((row: unknown[]) => row[0] === null)).toHaveLength(2);
  });

  it('a band made in a CTE may be grouped by outside it, and gives what the same band made outside gives', async () => {
    const { result } = await run('WITH banded AS (SELECT firm_id, floor(energy / 50) * 50 AS band FROM firm_energy) SELECT band, count(*) AS firms FROM banded GROUP BY band', ['firm_energy']);
    expect(byKey(result.json.rows)).toEqual({ '0': [31], '100': [43], null: [null] });
    expect(result.json.rows.filter((row: unknown[]) => row[0] === null)).toHaveLength(2);
  });

  it.each([
    ['passed through a CTE as it is', 'WITH raw AS (SELECT energy AS band FROM firm_energy) SELECT band, count(*) AS firms FROM raw GROUP BY band'],
    ['passed through a CTE by a star', 'WITH raw AS (SELECT * FROM firm_energy) SELECT energy, count(*) AS firms FROM raw GROUP BY energy'],
    ['a band in one branch of a UNION ALL and raw in the other', 'WITH mixed AS (SELECT floor(energy / 50) AS band FROM firm_energy UNION ALL SELECT energy FROM firm_energy) SELECT band, count(*) AS firms FROM mixed GROUP BY band'],
    ['a CTE band with the raw value added outside', 'WITH banded AS (SELECT floor(energy / 50) AS band, energy FROM firm_energy) SELECT band + energy AS key, count(*) AS firms FROM banded GROUP BY key'],
  ])('a sensitive value %s is still refused as a group key', async (_, sql) => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['firm_energy'], sql, purpose: 'test' } });
    expect(response.json.error?.code).toBe('SENSITIVE_GROUP_KEY');
  });

  it('ORDER BY a figure sorts the released output: the largest cell, suppressed, is not listed first, and LIMIT cuts after', async () => {
    // z holds 100,110 (one firm dominates), q 1,200 (withheld with z), r 1,400: sorted on the exact figures, the first
    // row would be z's, withheld — telling that z's energy is the largest.
    const { result } = await run("SELECT sector, sum(energy) AS energy FROM firm_energy WHERE district = 'B' GROUP BY sector ORDER BY energy DESC", ['firm_energy']);
    expect(result.json.rows).toEqual([
      ['r', 1400],
      ['q', null],
      ['z', null],
    ]);
    const { result: top } = await run("SELECT sector, sum(energy) AS energy FROM firm_energy WHERE district = 'B' GROUP BY sector ORDER BY energy DESC LIMIT 1", ['firm_energy']);
    expect(top.json.rows).toEqual([['r', 1400]]);
    expect(top.json.manifest.suppressedRows).toEqual([]);
  });

  it("HAVING on a figure the output does not list checks that figure like an output one, then drops it: a withheld cell is left out whatever its count", async () => {
    // x has 12 firms, above the threshold of 10, but is withheld with y: on the exact counts it would pass.
    const { id, result } = await run("SELECT sector, sum(energy) AS energy FROM firm_energy WHERE district = 'A' GROUP BY sector HAVING count(*) >= 10 ORDER BY sector", ['firm_energy']);
    expect(result.json.columns.map((column: { name: string }) => column.name)).toEqual(['sector', 'energy']);
    expect(result.json.rows).toEqual([
      ['v', 200],
      ['w', 750],
    ]);
    expect(result.json.manifest.columnCount).toBe(2);
    expect(result.json.manifest.checkedTable).toEqual({ rowCount: 4, suppressedByCode: { BELOW_THRESHOLD: 1, SECONDARY_SUPPRESSION: 1 } });
    const dryRun = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['firm_energy'], sql: "SELECT sector, sum(energy) AS energy FROM firm_energy GROUP BY sector HAVING count(*) >= 10", purpose: 'test' } });
    expect(dryRun.json.outputColumns.map((column: { name: string }) => column.name)).toEqual(['sector', 'energy']);
    expect((await t.call('GET', `/v1/jobs/${id}`, { token: analyst })).json.code).toBe('CHECKED_WITH_SUPPRESSION');
    // The two firms of w with 95 staff are a figure of two contributors: withheld, so the HAVING cannot say that w
    // has any (on the exact figure, w would be listed and v not).
    const { result: few } = await run("SELECT sector, count(*) AS firms FROM firm_energy WHERE district = 'A' GROUP BY sector HAVING count(*) FILTER (WHERE staff > 90) > 0", ['firm_energy']);
    expect(few.json.rows).toEqual([]);
  });

  it('a share of the total and a rank come from the released cells: withheld ones have no share, rank last and are not in the total', async () => {
    // On the exact figures x (1,200, withheld with y) would rank first and the total would be 2,450, not 950.
    const { result } = await run(
      "SELECT sector, sum(energy) AS energy, sum(energy) / sum(sum(energy)) OVER () AS share, rank() OVER (ORDER BY sum(energy) DESC) AS place FROM firm_energy WHERE district = 'A' GROUP BY sector ORDER BY sector",
      ['firm_energy'],
    );
    expect(result.json.columns.map((column: { name: string; role: string }) => `${column.name}:${column.role}`)).toEqual(['sector:group_key', 'energy:measure', 'share:derived', 'place:derived']);
    expect(result.json.rows).toEqual([
      ['v', 200, 200 / 950, 2],
      ['w', 750, 750 / 950, 1],
      ['x', null, null, 3],
      ['y', null, null, 3],
    ]);
    expect(result.json.manifest.columnCount).toBe(4);
    expect(result.json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [entry.row, entry.code])).toEqual([
      [2, 'SECONDARY_SUPPRESSION'],
      [3, 'BELOW_THRESHOLD'],
    ]);
  });

  it("a running total and the row before skip withheld cells' values, and ORDER BY and LIMIT apply after them", async () => {
    const { result } = await run(
      "SELECT sector, count(*) AS firms, sum(count(*)) OVER (ORDER BY sector) AS running, lag(count(*)) OVER (ORDER BY sector) AS before FROM firm_energy WHERE district = 'A' GROUP BY sector ORDER BY running DESC, sector LIMIT 2",
      ['firm_energy'],
    );
    // v 20, w 15, x withheld, y withheld: running 20, 35, 35, 35; the row before x is w, the row before y is x's.
    expect(result.json.rows).toEqual([
      ['w', 15, 35, 20],
      ['x', null, 35, 15],
    ]);
    expect(result.json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [entry.row, entry.code])).toEqual([[1, 'SECONDARY_SUPPRESSION']]);
  });

  it('a moving mean over a ROWS frame takes the released cells in its frame and skips withheld ones', async () => {
    const { result } = await run(
      "SELECT sector, count(*) AS firms, avg(count(*)) OVER (ORDER BY sector ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS moving FROM firm_energy WHERE district = 'A' GROUP BY sector ORDER BY sector",
      ['firm_energy'],
    );
    // v 20, w 15, x withheld, y withheld: v's frame is v alone, w's v and w, x's w and x (x has no figure), y's two withheld cells.
    expect(result.json.rows).toEqual([
      ['v', 20, 20],
      ['w', 15, 17.5],
      ['x', null, 15],
      ['y', null, null],
    ]);
  });

  it('QUALIFY on a rank keeps the top released cells, not a withheld one that is larger', async () => {
    const { result } = await run(
      "SELECT sector, sum(energy) AS energy, rank() OVER (ORDER BY sum(energy) DESC) AS place FROM firm_energy WHERE district = 'A' GROUP BY sector QUALIFY place <= 1",
      ['firm_energy'],
    );
    expect(result.json.rows).toEqual([['w', 750, 1]]);
    expect(result.json.manifest.suppressedRows).toEqual([]);
    // The table checked is still told, and sets the job's status: its withheld cells were cut by the QUALIFY only.
    expect(result.json.manifest.checkedTable).toEqual({ rowCount: 4, suppressedByCode: { BELOW_THRESHOLD: 1, SECONDARY_SUPPRESSION: 1 } });
    expect((await t.call('GET', `/v1/jobs/${result.json.jobId}`, { token: analyst })).json.code).toBe('CHECKED_WITH_SUPPRESSION');
  });

  it('a window function written only in the QUALIFY keeps the top released cell and is not output', async () => {
    const sql = "SELECT sector, sum(energy) AS energy FROM firm_energy WHERE district = 'A' GROUP BY sector QUALIFY rank() OVER (ORDER BY sum(energy) DESC) <= 1";
    const dryRun = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['firm_energy'], sql, purpose: 'test' } });
    expect(dryRun.json.outputColumns.map((column: { name: string }) => column.name)).toEqual(['sector', 'energy']);
    const { result } = await run(sql, ['firm_energy']);
    expect(result.json.columns.map((column: { name: string }) => column.name)).toEqual(['sector', 'energy']);
    expect(result.json.rows).toEqual([['w', 750]]);
    expect(result.json.manifest.columnCount).toBe(2);
    expect(result.json.manifest.checkedTable).toEqual({ rowCount: 4, suppressedByCode: { BELOW_THRESHOLD: 1, SECONDARY_SUPPRESSION: 1 } });
  });

  it('a window function over rows runs as written over open data alone, whose rows may leave anyway', async () => {
    const sql = 'SELECT route_id, stop_seq, stop_name, row_number() OVER (PARTITION BY route_id ORDER BY stop_seq DESC) AS from_end FROM bus_routes';
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['bus_routes'], sql, purpose: 'test' } });
    expect(submitted.status).toBe(201);
    const job = await t.waitForJob(submitted.json.id);
    expect(job.status).toBe('released');
    const { json } = await t.call('GET', `/v1/jobs/${submitted.json.id}/result`, { token: analyst });
    const route = json.rows.filter((row: unknown[]) => row[0] === json.rows[0][0]) as Array<[string, number, string, number]>;
    const last = Math.max(...route.map((row) => row[1]));
    for (const [, seq, , fromEnd] of route) expect(fromEnd).toBe(last - seq + 1);
  });

  it('a window function over what is not an output column is refused, naming where', async () => {
    const sql = "SELECT sector, rank() OVER (ORDER BY sum(energy) DESC) AS place FROM firm_energy WHERE district = 'A' GROUP BY sector";
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['firm_energy'], sql, purpose: 'test' } });
    expect(response.json.error.code).toBe('WINDOW_FUNCTION');
    expect(response.json.error.message).toMatch(/sum\(…\) here is not an output column: add it to SELECT as a column of its own \(at character 38\)/);
    const reserved = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['firm_energy'], sql: 'SELECT sector, count(*) AS firms, rank() OVER (ORDER BY firms) AS __pds_place FROM firm_energy GROUP BY sector', purpose: 'test' } });
    expect(reserved.json.error.code).toBe('RESERVED_NAME');
  });

  it('HAVING on a figure keeps the released cells that pass it; suppressed cells are left out whatever their values', async () => {
    // x (1,200, withheld with y) and y (500, below the threshold) would pass on their exact values.
    const { id, result } = await run("SELECT sector, sum(energy) AS energy FROM firm_energy WHERE district = 'A' GROUP BY sector HAVING energy > 100 ORDER BY ALL", ['firm_energy']);
    expect(result.json.rows).toEqual([
      ['v', 200],
      ['w', 750],
    ]);
    // The manifest and the job's status still tell of the table that was checked, suppressions included.
    expect(result.json.manifest.suppressedRows).toEqual([]);
    expect(result.json.manifest.checkedTable).toEqual({ rowCount: 4, suppressedByCode: { BELOW_THRESHOLD: 1, SECONDARY_SUPPRESSION: 1 } });
    expect((await t.call('GET', `/v1/jobs/${id}`, { token: analyst })).json.code).toBe('CHECKED_WITH_SUPPRESSION');
    // The LIMIT cuts what the HAVING kept, as SQL orders them: not the first two sectors before it.
    const { result: limited } = await run("SELECT sector, count(*) AS firms FROM firm_energy WHERE district = 'A' GROUP BY sector HAVING firms > 10 ORDER BY sector DESC LIMIT 2", ['firm_energy']);
    expect(limited.json.rows).toEqual([
      ['w', 15],
      ['v', 20],
    ]);
    const { result: withNulls } = await run("SELECT sector, sum(energy) AS energy FROM firm_energy WHERE district = 'A' GROUP BY sector HAVING energy > 100 OR energy IS NULL ORDER BY sector", ['firm_energy']);
    expect(withNulls.json.rows).toEqual([
      ['v', 200],
      ['w', 750],
      ['x', null],
      ['y', null],
    ]);
    expect(withNulls.json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [entry.row, entry.code])).toEqual([
      [2, 'SECONDARY_SUPPRESSION'],
      [3, 'BELOW_THRESHOLD'],
    ]);
  });

  it('ROLLUP adds subtotals and a total as cells of their own, each checked and balanced with the cells it adds up', async () => {
    const { result } = await run('SELECT district, sector, count(*) AS firms, sum(energy) AS energy FROM firm_energy GROUP BY ROLLUP (district, sector) ORDER BY district, sector', ['firm_energy']);
    expect(result.status).toBe(200);
    const rows = result.json.rows as unknown[][];
    const codes = new Map(result.json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [JSON.stringify(rows[entry.row]!.slice(0, 2)), entry.code]));
    const cell = (district: string | null, sector: string | null) => rows.find((row) => row[0] === district && row[1] === sector);
    // District A's subtotal: 52 firms, 2,650 — released, while y (5 firms) and x (withheld with it) are not.
    expect(cell('A', null)!.slice(2)).toEqual([52, 2650]);
    expect(codes.get(JSON.stringify(['A', 'y']))).toBe('BELOW_THRESHOLD');
    expect(codes.get(JSON.stringify(['A', 'x']))).toBe('SECONDARY_SUPPRESSION');
    // District B's subtotal and the total are dominated by z's one firm, as z is: each is withheld on its own
    // figures. With B's subtotal withheld, z is no longer the only unknown of its line, so q is released.
    expect(codes.get(JSON.stringify(['B', null]))).toBe('DOMINANCE');
    expect(codes.get(JSON.stringify([null, null]))).toBe('DOMINANCE');
    expect(codes.get(JSON.stringify(['B', 'z']))).toBe('DOMINANCE');
    expect(cell('B', 'q')!.slice(2)).toEqual([12, 1200]);
    expect(cell('B', 'r')!.slice(2)).toEqual([14, 1400]);
    expect(rows).toHaveLength(4 + 3 + 2 + 1);
  });

  it('grouping() labels the totals of a CUBE, told from cells whose key is null', async () => {
    const { result } = await run('SELECT district, grouping(district) AS total, count(*) AS firms FROM firm_energy GROUP BY CUBE (district) ORDER BY total, district', ['firm_energy']);
    expect(result.json.rows).toEqual([
      ['A', 0, 52],
      ['B', 0, 38],
      [null, 1, 90],
    ]);
  });

  it('the manifest names each total and the keys it adds up over, whether or not the query asked grouping()', async () => {
    const { result } = await run('SELECT district, sector, grouping(district, sector) AS level, count(*) AS firms FROM firm_energy GROUP BY ROLLUP (district, sector) ORDER BY district, sector', ['firm_energy']);
    const rows = result.json.rows as unknown[][];
    const expected = rows.flatMap((row, index) => (row[2] === 0 ? [] : [{ row: index, over: row[2] === 3 ? ['district', 'sector'] : ['sector'] }]));
    expect(expected).toHaveLength(3);
    expect(result.json.manifest.totals).toEqual(expected);
    const plain = await run('SELECT district, count(*) AS firms FROM firm_energy GROUP BY district', ['firm_energy']);
    expect(plain.result.json.manifest.totals).toBeUndefined();
  });

  it('the CSV of an output with totals names the keys each total adds up over, where its keys are empty', async () => {
    const { id, result } = await run('SELECT district, count(*) AS firms FROM firm_energy GROUP BY ROLLUP (district) ORDER BY district NULLS LAST', ['firm_energy']);
    expect(result.json.rows).toEqual([
      ['A', 52],
      ['B', 38],
      [null, 90],
    ]);
    const csv = await t.call('GET', `/v1/jobs/${id}/result?format=csv`, { token: analyst });
    expect(csv.text.trim().split(/\r?\n/)).toEqual(['district,firms,suppressed,total_over', 'A,52,,', 'B,38,,', ',90,,district']);
  });

  it('a null key value and a total are told apart: the 5 firms of a null sector are not counted as the 52 of the total', async () => {
    // Sectors of district A, with y's sector nulled: the null-sector cell (y's 5 firms) is below the threshold, A's
    // total (52 firms) is not. Named by their keys alone, the two would be one cell with one count of contributors.
    const { result } = await run(
      "SELECT district, CASE WHEN sector = 'y' THEN NULL ELSE sector END AS part, count(*) AS firms FROM firm_energy WHERE district = 'A' GROUP BY ROLLUP (district, part) ORDER BY district, part",
      ['firm_energy'],
    );
    const rows = result.json.rows as unknown[][];
    const codes = new Map(result.json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [entry.row, entry.code]));
    const nullParts = [...rows.keys()].filter((index) => rows[index]![0] === 'A' && rows[index]![1] === null);
    const found = nullParts.map((index) => [rows[index]![2], codes.get(index) ?? null]);
    expect(found).toHaveLength(2);
    expect(found).toEqual(expect.arrayContaining([
      [52, null],
      [null, 'BELOW_THRESHOLD'],
    ]));
  });

  it('ROLLUP stays refused inside a subquery of protected data', async () => {
    const inner = await t.call('POST', '/v1/jobs/dry-run', {
      token: analyst,
      json: { datasets: ['firm_energy'], purpose: 'test', sql: 'SELECT sector, sum(e) AS e FROM (SELECT firm_id, sector, sum(energy) AS e FROM firm_energy GROUP BY ROLLUP (firm_id, sector)) GROUP BY sector' },
    });
    expect(inner.json.error).toMatchObject({ code: 'UNSUPPORTED_QUERY_SHAPE', message: expect.stringContaining('only in the outermost query') });
  });

  it('ORDER BY ALL over an aggregate of protected data sorts the released output by every column', async () => {
    const dryRun = (sql: string) => t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['firm_energy'], purpose: 'test', sql } });
    expect((await dryRun('SELECT sector, district FROM firm_energy GROUP BY ALL ORDER BY ALL')).json.decision).toBe('accept');
    expect((await dryRun('SELECT sector, count(*) AS firms FROM firm_energy GROUP BY ALL ORDER BY ALL')).json.decision).toBe('accept');
  });

  it('an inner aggregation may group by its privacy unit by position or by alias', async () => {
    for (const grouping of ['1, 2', 'firm, sector']) {
      const { result } = await run(`SELECT sector, sum(e) AS energy FROM (SELECT firm_id AS firm, sector, sum(energy) AS e FROM firm_energy WHERE district = 'A' GROUP BY ${grouping}) GROUP BY sector ORDER BY sector`, ['firm_energy']);
      expect(byKey(result.json.rows)).toEqual({ v: [200], w: [750], x: [null], y: [null] });
    }
  });

  it('upper-case names are read as DuckDB reads them', async () => {
    const { result } = await run('SELECT DISTRICT, COUNT(*) AS FIRMS FROM FIRM_ENERGY GROUP BY DISTRICT ORDER BY DISTRICT', ['firm_energy']);
    expect(result.json.rows).toEqual([
      ['A', 52],
      ['B', 38],
    ]);
  });

  it("a case that isolates one account's reading cannot carry it out of a large cell", async () => {
    // The largest reading, read from the snapshot as only a test may.
    const version = (await latestVersion(t.platform.db, 'power_readings'))!;
    const instance = await DuckDBInstance.create(t.platform.store.snapshotPath('power_readings', version.contentHash), { access_mode: 'READ_ONLY' });
    const connection = await instance.connect();
    const [largest, town, holders] = (await connection.runAndReadAll('SELECT max(kwh), arg_max(town, kwh), count(*) FILTER (WHERE kwh = (SELECT max(kwh) FROM data)) FROM data')).getRows()[0]!;
    connection.closeSync();
    instance.closeSync();
    expect(Number(holders)).toBe(1);
    const { id, result } = await run(`SELECT town, count(*) AS readings, sum(CASE WHEN kwh >= ${largest} THEN kwh END) AS top FROM power_readings GROUP BY town`, ['power_readings']);
    // The town's cell has many accounts, but the filtered sum has one contributor of its own; in the other towns
    // nobody's reading is that large, a zero (L3 withholds zeros): nothing is left to release.
    expect(result.status).toBe(409);
    const job = await t.waitForJob(id);
    expect(job.manifest).toMatchObject({ suppressedByCode: { BELOW_THRESHOLD: 1, ZERO_CELL: 4 } });
    expect(job.output).toBeNull();
    expect(town).toEqual(expect.any(String));
  });

  it.each([
    ['count(*) FILTER (WHERE …)', "count(*) FILTER (WHERE sector = 'y')"],
    ['count_if, the same count written as a function', "count_if(sector = 'y')"],
    ['a summed 0/1 case', "sum(CASE WHEN sector = 'y' THEN 1 ELSE 0 END)"],
    ['a count of a case', "count(CASE WHEN sector = 'y' THEN 1 END)"],
    ['bool_or, whether any firm is in y', "bool_or(sector = 'y')"],
    ['bool_and, whether every firm is outside y', "bool_and(sector <> 'y')"],
  ])('a small table hidden in a large cell (%s) must meet the threshold itself', async (_, figure) => {
    // District A has 52 firms, 5 of them in sector y: the cell passes, the figure about y's five does not; B goes
    // with A (secondary), and an output of nothing but suppressed cells is withheld whole. Before, it was released
    // as A: 52 firms, 5 in y.
    const { id, result } = await run(`SELECT district, count(*) AS firms, ${figure} AS y_firms FROM firm_energy GROUP BY district ORDER BY district`, ['firm_energy']);
    expect(result.status).toBe(409);
    const job = (await t.call('GET', `/v1/jobs/${id}`, { token: analyst })).json;
    expect([job.status, job.code]).toEqual(['withheld', 'NOTHING_RELEASABLE']);
    expect(((await t.waitForJob(id)).manifest as { suppressedByCode: object }).suppressedByCode).toEqual({ BELOW_THRESHOLD: 1, SECONDARY_SUPPRESSION: 1 });
  });

  it("a self-join cannot spread one firm's dominant value over the other side's firms", async () => {
    // Each firm of district B on side a is joined to every firm of sector z on side b, so each a-firm "contributes"
    // the same 100,110: weighed by side a's firms nothing dominates, yet the cell is 38 × (one firm's 100,000 + 110).
    // The figure is weighed by the firms whose values it adds up (side b) too.
    const { result } = await run(
      "SELECT b.sector, sum(b.energy) AS energy FROM firm_energy a JOIN firm_energy b ON a.district = b.district WHERE b.district = 'B' GROUP BY b.sector ORDER BY 1",
      ['firm_energy'],
    );
    expect(result.status).toBe(200);
    const codes = Object.fromEntries(result.json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [result.json.rows[entry.row][0], entry.code]));
    expect(codes.z).toBe('DOMINANCE');
    expect(byKey(result.json.rows).z).toEqual([null]);
  });

  it('where zeros are withheld (L3), a bool_or that no row makes true is a zero: "nobody in this town" is withheld', async () => {
    const { id, result } = await run("SELECT town, count(*) AS readings, bool_or(customer_type = 'government') AS government FROM power_readings GROUP BY town", ['power_readings']);
    expect(result.status).toBe(409);
    const job = await t.waitForJob(id);
    expect([job.status, job.statusCode, (job.manifest as { suppressedByCode: Record<string, number> }).suppressedByCode.ZERO_CELL]).toEqual(['withheld', 'NOTHING_RELEASABLE', 5]);
  });

  it.each([
    ['a FILTER', "sum(energy) FILTER (WHERE sector <> 'y')"],
    ['a condition written as a function', "sum(energy * (1 - starts_with(sector, 'y')::INTEGER))"],
    // 0⁰ = 1 and 0ⁿ = 0: a weight of 0 for the two firms of w with 95 staff and 1 for every other, by arithmetic alone.
    ['a weight made of another column by arithmetic', 'sum(energy * (1 - power(0, abs(staff - 95))))'],
    // '2024-01-95' is no date: NULL for those two firms, and so is the value it is added to.
    ['a NULL made by TRY_CAST and carried by arithmetic', "sum(energy + 0 * year(TRY_CAST(concat('2024-01-', staff) AS DATE)))"],
  ])("a figure that leaves out a few firms of its cell (%s) is withheld: the cell's plain total minus it would be theirs", async (_, figure) => {
    // District A: 52 firms; the figure adds up 47 of them (50, leaving out w's two with 95 staff). Released, A's
    // total energy (released elsewhere, or by this very output as another column) minus it is the left-out firms'.
    const { id, result } = await run(`SELECT district, count(*) AS firms, ${figure} AS energy FROM firm_energy GROUP BY district ORDER BY district`, ['firm_energy']);
    expect(result.status).toBe(409);
    // (District B goes too, dominated by its one large firm.)
    expect(((await t.waitForJob(id)).manifest as { suppressedByCode: object }).suppressedByCode).toEqual({ SMALL_COMPLEMENT: 1, DOMINANCE: 1 });
  });

  it('a count made by a function of one column that is 0 for a few firms is a selection: it leaves them out and is withheld', async () => {
    // 1 − 0^|staff − 95| is 0 for w's two firms with 95 staff and 1 for the rest: count(*) minus it counts those two.
    const { id } = await run('SELECT district, count(*) AS firms, sum(1 - power(0, abs(staff - 95))) AS others FROM firm_energy GROUP BY district ORDER BY district', ['firm_energy']);
    expect(((await t.waitForJob(id)).manifest as { suppressedByCode: Record<string, number> }).suppressedByCode.SMALL_COMPLEMENT).toBe(1);
  });

  it("a weight made of an inner count, which reads no column, is a selection too: a few firms' figures left out are withheld", async () => {
    // n counts the open bus-route rows with stop_seq ≤ a firm's staff: all of them (N) only for w's two firms with
    // 95 staff. The weight 1 − 0^|n − N| is 0 for those two and 1 for the rest, so A's figure leaves them out as
    // sum(e) FILTER (WHERE n <> N) would.
    const { result: routes } = await run('SELECT count(*) AS n FROM bus_routes', ['bus_routes']);
    const [[all]] = routes.json.rows as [[number]];
    const sql =
      'WITH a AS (SELECT f.firm_id, f.district, sum(f.energy) AS e, count(*) AS n FROM firm_energy f JOIN bus_routes b ON b.stop_seq <= f.staff GROUP BY f.firm_id, f.district) ' +
      `SELECT district, count(*) AS firms, sum(e * (1 - power(0, abs(n - ${all})))) AS energy FROM a GROUP BY district ORDER BY district`;
    const { id } = await run(sql, ['firm_energy', 'bus_routes']);
    expect(((await t.waitForJob(id)).manifest as { suppressedByCode: Record<string, number> }).suppressedByCode.SMALL_COMPLEMENT).toBe(1);
  });

  it.each([
    ['a value of the outer join\'s optional side added as 0', 'sum(a.energy + 0 * b.staff)'],
    ['the optional side\'s own value', 'sum(b.energy)'],
  ])("a figure over an outer join whose optional side a condition leaves empty for a few firms is withheld (%s)", async (_, figure) => {
    // For w's two firms with 95 staff the LEFT JOIN finds no b, so their rows carry NULLs from b and drop out of the
    // figure: A's figure is then the other 50 firms', and A's plain total minus it theirs.
    const sql = `SELECT a.district, count(*) AS firms, ${figure} AS energy FROM firm_energy a LEFT JOIN firm_energy b ON a.firm_id = b.firm_id AND b.staff <> 95 GROUP BY a.district ORDER BY a.district`;
    const { id } = await run(sql, ['firm_energy']);
    expect(((await t.waitForJob(id)).manifest as { suppressedByCode: Record<string, number> }).suppressedByCode.SMALL_COMPLEMENT).toBe(1);
  });

  it('two figures of a cell that differ by a few firms are withheld, though each leaves out more than the threshold', async () => {
    // District A: 40 firms outside sector x, 35 outside x and y; the difference is y's five.
    const { id, result } = await run(
      "SELECT district, sum(energy) FILTER (WHERE sector NOT IN ('x')) AS a, sum(energy) FILTER (WHERE sector NOT IN ('x', 'y')) AS b FROM firm_energy GROUP BY district ORDER BY district",
      ['firm_energy'],
    );
    expect(result.status).toBe(409);
    expect(((await t.waitForJob(id)).manifest as { suppressedByCode: object }).suppressedByCode).toEqual({ DIFFERENCING: 1, DOMINANCE: 1 });
  });

  it('a figure that differs by a few firms from a figure released before is withheld', async () => {
    const first = await run("SELECT district, sum(energy) FILTER (WHERE sector <> 'x') AS rest FROM firm_energy WHERE district = 'A' GROUP BY district", ['firm_energy']);
    expect(first.result.json.rows).toEqual([['A', 1450]]);
    const { id, result } = await run("SELECT district, sum(energy) FILTER (WHERE sector NOT IN ('x', 'y')) AS rest FROM firm_energy WHERE district = 'A' GROUP BY district", ['firm_energy']);
    expect(result.status).toBe(409);
    expect(((await t.waitForJob(id)).manifest as { suppressedByCode: object }).suppressedByCode).toEqual({ DIFFERENCING: 1 });
  });

  it.each([
    ['a FILTER', (largest: unknown) => `sum(kwh) FILTER (WHERE kwh < ${largest})`],
    ['a condition cast to a number', (largest: unknown) => `sum(kwh * (kwh < ${largest})::INTEGER)`],
    ['a case', (largest: unknown) => `sum(CASE WHEN kwh < ${largest} THEN kwh ELSE 0 END)`],
  ])("the town total less one account's largest reading is withheld (%s): one row of one account is left out", async (_, figure) => {
    const version = (await latestVersion(t.platform.db, 'power_readings'))!;
    const instance = await DuckDBInstance.create(t.platform.store.snapshotPath('power_readings', version.contentHash), { access_mode: 'READ_ONLY' });
    const connection = await instance.connect();
    const [largest, town] = (await connection.runAndReadAll('SELECT max(kwh), arg_max(town, kwh) FROM data')).getRows()[0]!;
    connection.closeSync();
    instance.closeSync();
    const { result } = await run(`SELECT town, ${figure(largest)} AS rest FROM power_readings GROUP BY town`, ['power_readings']);
    expect(result.status).toBe(200);
    const row = result.json.rows.findIndex((entry: unknown[]) => entry[0] === town);
    expect(result.json.manifest.suppressedRows.find((entry: { row: number }) => entry.row === row)?.code).toBe('SMALL_COMPLEMENT');
    // The other towns' figures leave nobody out and are released.
    expect(result.json.rows.filter((entry: unknown[]) => entry[1] !== null).length).toBeGreaterThan(0);
  });

  it('contributors are counted through a CTE and a subquery, not rows', async () => {
    const { result } = await run(
      "WITH a AS (SELECT district, sector, energy, firm_id FROM firm_energy WHERE district = 'A') SELECT s.sector, count(*) AS n FROM (SELECT * FROM a) s GROUP BY s.sector ORDER BY 1",
      ['firm_energy'],
    );
    expect(result.status).toBe(200);
    expect(byKey(result.json.rows)).toEqual({ v: [20], w: [15], x: [null], y: [null] });
  });

  it('a UNION ALL of two branches keeps the privacy unit of each', async () => {
    const { result } = await run(
      "SELECT u.sector, sum(u.energy) AS energy FROM (SELECT sector, energy FROM firm_energy WHERE district = 'A' UNION ALL SELECT sector, energy FROM firm_energy WHERE district = 'B') u GROUP BY u.sector ORDER BY 1",
      ['firm_energy'],
    );
    expect(result.status).toBe(200);
    expect(byKey(result.json.rows).r).toEqual([1400]);
    expect(byKey(result.json.rows).y).toEqual([null]);
  });

  it('per-firm totals inside, then the distribution outside (an inner aggregation by the privacy unit)', async () => {
    const { result } = await run(
      'SELECT t.sector, avg(t.total) AS mean_total FROM (SELECT firm_id, sector, sum(energy) AS total FROM firm_energy GROUP BY firm_id, sector) t GROUP BY t.sector ORDER BY 1',
      ['firm_energy'],
    );
    expect(result.status).toBe(200);
    expect(byKey(result.json.rows).r).toEqual([100]);
  });
});

describe("a model's sufficient statistics pass the same control as a one-cell table", () => {
  // With one feature, a linear model's coefficients and standard errors determine Σy, Σx, Σx², Σxy and n exactly;
  // before, only the training rows' contributors and the degrees of freedom were checked.
  async function trainModel(sql: string, feature: string) {
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['firm_energy'], sql, purpose: 'test', model: { type: 'linear', target: 'energy', features: [feature] } } });
    expect(submitted.status).toBe(201);
    const job = await t.waitForJob(submitted.json.id);
    return { status: job.status, code: job.statusCode, result: (await t.call('GET', `/v1/jobs/${submitted.json.id}/result`, { token: analyst })).json };
  }

  it("a model whose target one firm dominates is withheld (district B: one firm's 100,000 among 37 small ones)", async () => {
    const { status, code, result } = await trainModel("SELECT energy, CASE WHEN sector = 'q' THEN 1 ELSE 0 END AS is_q FROM firm_energy WHERE district = 'B'", 'is_q');
    expect([status, code]).toEqual(['withheld', 'MODEL_DOMINATED']);
    expect(JSON.stringify(result)).not.toMatch(/100000|100110/);
  });

  it("a dummy feature for fewer firms than the threshold is withheld: its coefficient is that small group's mean", async () => {
    const { status, code } = await trainModel("SELECT energy, CASE WHEN sector = 'y' THEN 1 ELSE 0 END AS is_y FROM firm_energy WHERE district = 'A'", 'is_y');
    expect([status, code]).toEqual(['withheld', 'MODEL_TOO_FEW_CONTRIBUTORS']);
  });

  it('a dummy whose reference group is fewer firms than the threshold is withheld: the intercept is their mean', async () => {
    const { status, code } = await trainModel("SELECT energy, CASE WHEN sector <> 'y' THEN 1 ELSE 0 END AS not_y FROM firm_energy WHERE district = 'A'", 'not_y');
    expect([status, code]).toEqual(['withheld', 'MODEL_TOO_FEW_CONTRIBUTORS']);
  });

  it('a second model over the same firms but a handful is withheld by the differencing guard', async () => {
    const first = await trainModel("SELECT energy, CASE WHEN sector = 'x' THEN 1 ELSE 0 END AS is_x FROM firm_energy WHERE district = 'A'", 'is_x');
    expect(first.status).toBe('released');
    expect(first.result.manifest.model.observations).toBe(52);
    // The same firms but sector y's five: the two fits together would give those five firms' total.
    const second = await trainModel("SELECT energy, CASE WHEN sector = 'x' THEN 1 ELSE 0 END AS is_x FROM firm_energy WHERE district = 'A' AND sector <> 'y'", 'is_x');
    expect([second.status, second.code]).toEqual(['withheld', 'MODEL_DIFFERENCING']);
  });
});

describe('many jobs of one shape', () => {
  it('past the policy\'s number in 24 hours, each is held for review and the first one past it is an incident', async () => {
    // The same count with another constant each time, as a bisection of one firm's energy would be (L2: no review).
    const limit = t.platform.disclosurePolicy.probing.sameShapeJobsPerDay;
    const statuses: string[] = [];
    for (let step = 0; step <= limit + 1; step++) {
      const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['firm_energy'], sql: `SELECT district, count(*) AS firms FROM firm_energy WHERE energy > ${step} GROUP BY district`, purpose: 'test' } });
      statuses.push((await t.waitForJob(submitted.json.id)).status);
    }
    expect(statuses).toEqual([...Array(limit).fill('released'), 'in_review', 'in_review']);
    const incidents = (await t.call('GET', '/v1/incidents?kind=probing', { token: regulator })).json.incidents;
    expect(incidents).toEqual([expect.objectContaining({ kind: 'probing', operatorId: 'lingang-analytics', detail: { datasets: ['firm_energy'], sameShapeJobs: limit + 1, withinHours: 24 } })]);
    // Another shape from the same operator is not held.
    const other = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['firm_energy'], sql: 'SELECT sector, count(*) AS firms FROM firm_energy GROUP BY sector', purpose: 'test' } });
    expect((await t.waitForJob(other.json.id)).status).toBe('released');
  });
});

describe('the demo data', () => {
  it('monthly power use by town and industry returns cells, with the small ones suppressed', async () => {
    const { result } = await run(
      "SELECT p.town, e.industry_code, date_trunc('year', p.month) AS year, sum(p.kwh) AS kwh, count(DISTINCT p.account_id) AS accounts FROM power_readings p JOIN enterprises e ON p.uscc = e.uscc GROUP BY 1, 2, 3",
      ['power_readings', 'enterprises'],
    );
    expect(result.status).toBe(200);
    expect(result.json.manifest.rowCount).toBeGreaterThan(0);
    expect(result.json.manifest.suppressedByCode.BELOW_THRESHOLD).toBeGreaterThan(0);
    const suppressed = new Set(result.json.manifest.suppressedRows.map((entry: { row: number }) => entry.row));
    result.json.rows.forEach((row: unknown[], index: number) => {
      if (suppressed.has(index)) expect(row.slice(3)).toEqual([null, null]);
      else expect(row[4] as number % 5).toBe(0);
    });
  });

  it('a join written with USING gives what the same join written with ON gives', async () => {
    const count = 'SELECT e.industry_code, count(DISTINCT p.account_id) AS accounts FROM power_readings p JOIN enterprises e';
    const { result: using } = await run(`${count} USING (uscc) GROUP BY 1 ORDER BY 1`, ['power_readings', 'enterprises']);
    const { result: on } = await run(`${count} ON p.uscc = e.uscc GROUP BY 1 ORDER BY 1`, ['power_readings', 'enterprises']);
    expect(using.json.rows.length).toBeGreaterThan(0);
    expect(using.json.rows).toEqual(on.json.rows);
  });

  it('a USING column named without its table is refused as ambiguous, saying to qualify it; qualified it is accepted', async () => {
    const dryRun = (key: string) =>
      t.call('POST', '/v1/jobs/dry-run', {
        token: analyst,
        json: { datasets: ['power_readings', 'water_readings'], purpose: 'test', sql: `SELECT ${key}, count(*) AS n FROM power_readings p JOIN water_readings w USING (account_id, month) GROUP BY ${key}` },
      });
    expect((await dryRun('month')).json.error).toMatchObject({ code: 'AMBIGUOUS_COLUMN', message: expect.stringContaining('qualify it with a table alias') });
    expect((await dryRun('p.month')).json.decision).toBe('accept');
    const natural = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['power_readings', 'water_readings'], purpose: 'test', sql: 'SELECT p.town, count(*) AS n FROM power_readings p NATURAL JOIN water_readings w GROUP BY p.town' } });
    expect(natural.json.error).toMatchObject({ code: 'UNSUPPORTED_QUERY_SHAPE', message: expect.stringContaining('NATURAL joins are not supported') });
  });

  it('two output columns with the same name keep their own values', async () => {
    const { result } = await run(
      "SELECT town AS place, customer_type AS place, count(*) AS n FROM power_readings WHERE customer_type = 'household' GROUP BY town, customer_type",
      ['power_readings'],
    );
    expect(result.status).toBe(200);
    expect(result.json.columns.map((column: { name: string }) => column.name)).toEqual(['place', 'place', 'n']);
    for (const row of result.json.rows) {
      expect(['南汇新城镇', '泥城镇', '书院镇', '万祥镇', '芦潮港']).toContain(row[0]);
      expect(row[1]).toBe('household');
    }
  });
});

describe('the job API', () => {
  it('GET /v1/jobs/{id} shows status and the stage', async () => {
    const { id } = await run("SELECT district, count(*) AS n FROM firm_energy GROUP BY district", ['firm_energy']);
    const job = await t.call('GET', `/v1/jobs/${id}`, { token: analyst });
    expect(job.json).toMatchObject({ id, status: 'released', kind: 'aggregate', grade: 'L2', datasetVersions: { firm_energy: expect.stringMatching(/^[0-9a-f]{64}$/) } });
  });

  it('GET /v1/jobs/{id} gives the SQL as submitted; the list leaves it out', async () => {
    const sql = 'SELECT district,\n  count(*) AS n FROM firm_energy GROUP BY district';
    const { id } = await run(sql, ['firm_energy']);
    expect((await t.call('GET', `/v1/jobs/${id}`, { token: analyst })).json.sql).toBe(sql);
    const listed = (await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs.find((job: { id: string }) => job.id === id);
    expect(listed).toBeDefined();
    expect(listed.sql).toBeUndefined();
  });

  it("another operator's job answers 404, and its list does not show it", async () => {
    const { id } = await run("SELECT district, count(*) AS n FROM firm_energy GROUP BY district", ['firm_energy']);
    expect((await t.call('GET', `/v1/jobs/${id}`, { token: otherAnalyst })).status).toBe(404);
    expect((await t.call('GET', `/v1/jobs/${id}/result`, { token: otherAnalyst })).status).toBe(404);
    const list = await t.call('GET', '/v1/jobs', { token: otherAnalyst });
    expect(list.json.jobs.map((job: { id: string }) => job.id)).not.toContain(id);
    expect((await t.call('GET', `/v1/jobs/${id}`, { token: regulator })).status).toBe(200);
  });

  it('a dataset outside the licence is refused as OVER_SCOPE and recorded as an incident', async () => {
    const before = (await t.platform.db.select().from(incidents)).length;
    const response = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['residents'], sql: 'SELECT town, count(*) FROM residents GROUP BY town', purpose: 'x' } });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('OVER_SCOPE');
    expect(response.json.job.status).toBe('rejected');
    expect((await t.platform.db.select().from(incidents)).length).toBe(before + 1);
  });

  it('a query outside the licence that DuckDB could not bind either is refused as OVER_SCOPE, not BIND_ERROR, and recorded', async () => {
    const before = (await t.platform.db.select().from(incidents)).length;
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['residents'], sql: 'SELECT town, count(*) AS n FROM residents WHERE birth_date > 5 GROUP BY town', purpose: 'x' } });
    expect([response.status, response.json.error.code]).toEqual([422, 'OVER_SCOPE']);
    expect((await t.platform.db.select().from(incidents)).length).toBe(before + 1);
  });

  describe("a regulator's finding on an incident", () => {
    const overScope = async () => {
      await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['residents'], sql: 'SELECT town, count(*) AS n FROM residents GROUP BY town', purpose: 'x' } });
      return (await t.call('GET', '/v1/incidents?kind=over_scope&status=open&limit=1', { token: regulator })).json.incidents[0] as { id: string; resolution: unknown };
    };

    it('is recorded once, with its outcome and reason, and audited as incident.resolved', async () => {
      const incident = await overScope();
      expect(incident.resolution).toBeNull();
      const resolved = await t.call('POST', `/v1/incidents/${incident.id}/resolution`, { token: regulator, json: { outcome: 'operator_warned', reason: '已约谈运营机构，确认为误选数据集' } });
      expect(resolved.status).toBe(200);
      expect(resolved.json.resolution).toMatchObject({ outcome: 'operator_warned', reason: '已约谈运营机构，确认为误选数据集', resolvedBy: 'regulator-data-dept' });
      const again = await t.call('POST', `/v1/incidents/${incident.id}/resolution`, { token: regulator, json: { outcome: 'no_action', reason: 'second look' } });
      expect([again.status, again.json.error.code]).toEqual([409, 'INVALID_TRANSITION']);
      const leaves = await t.platform.db.select({ leaf: auditLeaves.leaf }).from(auditLeaves).where(eq(auditLeaves.eventType, 'incident.resolved'));
      expect(leaves.filter(({ leaf }) => leaf.includes(incident.id))).toHaveLength(1);
    });

    it('moves the incident from the open list to the resolved one', async () => {
      const incident = await overScope();
      await t.call('POST', `/v1/incidents/${incident.id}/resolution`, { token: regulator, json: { outcome: 'no_action', reason: '测试数据集选择，已说明' } });
      const ids = async (status: string) => (await t.call('GET', `/v1/incidents?status=${status}&limit=1000`, { token: regulator })).json.incidents.map((entry: { id: string }) => entry.id);
      expect(await ids('open')).not.toContain(incident.id);
      expect(await ids('resolved')).toContain(incident.id);
    });

    it('is refused to an operator, without a reason, with an unknown outcome, and for an unknown incident', async () => {
      const incident = await overScope();
      const attempts = [
        [analyst, incident.id, { outcome: 'no_action', reason: '自己处理' }],
        [regulator, incident.id, { outcome: 'no_action', reason: '' }],
        [regulator, incident.id, { outcome: 'forgiven', reason: 'looks fine' }],
        [regulator, 'inc_missing', { outcome: 'no_action', reason: 'looks fine' }],
      ] as const;
      const outcomes = [];
      for (const [token, id, json] of attempts) {
        const response = await t.call('POST', `/v1/incidents/${id}/resolution`, { token, json });
        outcomes.push([response.status, response.json.error.code]);
      }
      expect(outcomes).toEqual([
        [403, 'FORBIDDEN'],
        [400, 'VALIDATION_FAILED'],
        [400, 'VALIDATION_FAILED'],
        [404, 'NOT_FOUND'],
      ]);
      expect((await t.call('GET', '/v1/incidents?status=open&limit=1000', { token: regulator })).json.incidents.map((entry: { id: string }) => entry.id)).toContain(incident.id);
    });

    it('is corrected by a later finding that stands, the earlier one kept with who corrected it, both in the audit log', async () => {
      const incident = await overScope();
      await t.call('POST', `/v1/incidents/${incident.id}/resolution`, { token: regulator, json: { outcome: 'no_action', reason: '运营机构称为误选数据集' } });
      const second = await t.tokenFor('regulator-second-reviewer');
      const corrected = await t.call('POST', `/v1/incidents/${incident.id}/resolution/correction`, { token: second, json: { outcome: 'licence_action', reason: '复查发现同类越权多次发生，已暂停许可' } });
      expect(corrected.status).toBe(200);
      expect(corrected.json.resolution).toMatchObject({
        outcome: 'licence_action',
        reason: '复查发现同类越权多次发生，已暂停许可',
        resolvedBy: 'regulator-second-reviewer',
        earlierFindings: [{ outcome: 'no_action', reason: '运营机构称为误选数据集', resolvedBy: 'regulator-data-dept', correctedBy: 'regulator-second-reviewer' }],
      });
      // Corrected again: the history grows, oldest first.
      const again = await t.call('POST', `/v1/incidents/${incident.id}/resolution/correction`, { token: regulator, json: { outcome: 'referred', reason: '移交市场监管局' } });
      expect(again.json.resolution.earlierFindings.map((finding: { outcome: string }) => finding.outcome)).toEqual(['no_action', 'licence_action']);
      const listed = (await t.call('GET', '/v1/incidents?status=resolved&limit=1000', { token: regulator })).json.incidents.find((entry: { id: string }) => entry.id === incident.id);
      expect(listed.resolution.outcome).toBe('referred');
      const leaves = await t.platform.db.select({ leaf: auditLeaves.leaf }).from(auditLeaves).where(eq(auditLeaves.eventType, 'incident.finding-corrected')).orderBy(asc(auditLeaves.leafIndex));
      const mine = leaves.map(({ leaf }) => JSON.parse(leaf) as { details: Record<string, unknown> }).filter((leaf) => leaf.details.incident === incident.id);
      expect(mine.map((leaf) => [leaf.details.earlierOutcome, leaf.details.outcome])).toEqual([
        ['no_action', 'licence_action'],
        ['licence_action', 'referred'],
      ]);
    });

    it('cannot correct an open incident, and is refused to an operator and an assessor', async () => {
      const incident = await overScope();
      const json = { outcome: 'operator_warned', reason: '已约谈运营机构' };
      const open = await t.call('POST', `/v1/incidents/${incident.id}/resolution/correction`, { token: regulator, json });
      expect([open.status, open.json.error.code]).toEqual([409, 'INVALID_TRANSITION']);
      await t.call('POST', `/v1/incidents/${incident.id}/resolution`, { token: regulator, json: { outcome: 'no_action', reason: '测试数据集选择，已说明' } });
      for (const token of [analyst, await t.tokenFor('assessor-third-party')]) {
        expect((await t.call('POST', `/v1/incidents/${incident.id}/resolution/correction`, { token, json })).status).toBe(403);
      }
      expect((await t.call('POST', '/v1/incidents/inc_missing/resolution/correction', { token: regulator, json })).status).toBe(404);
      const listed = (await t.call('GET', '/v1/incidents?status=resolved&limit=1000', { token: regulator })).json.incidents.find((entry: { id: string }) => entry.id === incident.id);
      expect(listed.resolution).toMatchObject({ outcome: 'no_action', earlierFindings: [] });
    });
  });

  it('a column outside a column-scoped licence is refused as OVER_SCOPE', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: otherAnalyst, json: { datasets: ['power_readings'], sql: 'SELECT town, sum(kwh) FROM power_readings GROUP BY town', purpose: 'x' } });
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('OVER_SCOPE');
    expect(response.json.error.details).toContainEqual({ problem: 'power_readings.kwh is not in the licence' });
  });

  it('L4 data without privacy settings is refused with DP_REQUIRED', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: otherAnalyst, json: { datasets: ['transit_trips'], sql: 'SELECT route_id, count(*) FROM transit_trips GROUP BY route_id', purpose: 'x' } });
    expect(response.json.error.code).toBe('DP_REQUIRED');
  });

  it('a dry run gives the decision and the policy that would apply, and records no job', async () => {
    const before = (await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs.length;
    const response = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['firm_energy'], sql: 'SELECT sector, sum(energy) FROM firm_energy GROUP BY sector', purpose: 'x' } });
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ decision: 'accept', kind: 'aggregate', grade: 'L2', policy: { minContributors: 10, dominance: { n: 2, k: 90 } } });
    expect((await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs.length).toBe(before);
  });

  it("a column neither grouped nor aggregated is refused before it runs, with DuckDB's reason, and queues no job", async () => {
    const sql = 'SELECT district, sector, count(*) AS n FROM firm_energy GROUP BY district';
    const dryRun = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['firm_energy'], sql, purpose: 'x' } });
    expect(dryRun.status).toBe(422);
    expect(dryRun.json.error).toMatchObject({ code: 'BIND_ERROR', message: expect.stringContaining('column "sector" must appear in the GROUP BY clause') });
    const before = (await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs.filter((job: { status: string }) => job.status === 'queued' || job.status === 'running').length;
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['firm_energy'], sql, purpose: 'x' } });
    expect(submitted.json.error.code).toBe('BIND_ERROR');
    expect((await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs.filter((job: { status: string }) => job.status === 'queued' || job.status === 'running').length).toBe(before);
  });

  it('a dry run of a model job names it a model and the regression it would fit', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', {
      token: analyst,
      json: { datasets: ['firm_energy'], sql: "SELECT energy, CASE WHEN sector = 'x' THEN 1.0 ELSE 0.0 END AS in_x FROM firm_energy", purpose: 'x', model: { type: 'linear', target: 'energy', features: ['in_x'] } },
    });
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ decision: 'accept', kind: 'model', model: { type: 'linear', target: 'energy', features: ['in_x'] } });
  });

  it('a model with a text feature is refused saying how to name its categories', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', {
      token: analyst,
      json: { datasets: ['firm_energy'], sql: 'SELECT sector, energy FROM firm_energy', purpose: 'x', model: { type: 'linear', target: 'energy', features: ['sector'] } },
    });
    expect(response.json.error).toMatchObject({
      code: 'BIND_ERROR',
      message: 'model column sector is VARCHAR: a target or feature must be a number or a boolean (for categories, name their values: "categories": {"sector": ["<baseline>", "<value>", …]})',
    });
  });

  it('a model whose target is text is refused before it runs as BIND_ERROR', async () => {
    const response = await t.call('POST', '/v1/jobs/dry-run', {
      token: analyst,
      json: { datasets: ['firm_energy'], sql: 'SELECT sector, energy FROM firm_energy', purpose: 'x', model: { type: 'linear', target: 'sector', features: ['energy'] } },
    });
    expect(response.json.error).toMatchObject({ code: 'BIND_ERROR', message: 'model column sector is VARCHAR: a target or feature must be a number or a boolean' });
  });

  it('open data may leave row by row', async () => {
    const { result } = await run("SELECT route_id, stop_seq, stop_name FROM bus_routes WHERE route_id = 'LG01' ORDER BY stop_seq", ['bus_routes']);
    expect(result.status).toBe(200);
    expect(result.json.rows.length).toBeGreaterThan(5);
    expect(result.json.manifest.suppressedRows).toEqual([]);
  });

  it('a job sent again with its Idempotency-Key answers with the first job and queues nothing more', async () => {
    const submission = { datasets: ['firm_energy'], sql: 'SELECT district, count(*) AS n FROM firm_energy GROUP BY district', purpose: 'retry test' };
    const before = (await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs.length;
    const first = await t.call('POST', '/v1/jobs', { token: analyst, json: submission, headers: { 'idempotency-key': 'district-counts-1' } });
    const again = await t.call('POST', '/v1/jobs', { token: analyst, json: submission, headers: { 'idempotency-key': 'district-counts-1' } });
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.json.id).toBe(first.json.id);
    expect([first.headers.get('idempotent-replayed'), again.headers.get('idempotent-replayed')]).toEqual([null, 'true']);
    expect((await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs.length).toBe(before + 1);
  });

  it('an Idempotency-Key sent again with another job is refused as IDEMPOTENCY_KEY_REUSED and records nothing', async () => {
    const key = { 'idempotency-key': 'sector-energy-1' };
    await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['firm_energy'], sql: 'SELECT sector, count(*) AS n FROM firm_energy GROUP BY sector', purpose: 'x' }, headers: key });
    const before = (await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs.length;
    const other = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['firm_energy'], sql: 'SELECT district, count(*) AS n FROM firm_energy GROUP BY district', purpose: 'x' }, headers: key });
    expect(other.status).toBe(422);
    expect(other.json.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs.length).toBe(before);
  });

  it('a refused job sent again with its Idempotency-Key gets the same refusal without a second incident', async () => {
    const submission = { datasets: ['residents'], sql: 'SELECT town, count(*) FROM residents GROUP BY town', purpose: 'x' };
    const first = await t.call('POST', '/v1/jobs', { token: analyst, json: submission, headers: { 'idempotency-key': 'residents-1' } });
    const incidentsAfterFirst = (await t.platform.db.select().from(incidents)).length;
    const again = await t.call('POST', '/v1/jobs', { token: analyst, json: submission, headers: { 'idempotency-key': 'residents-1' } });
    expect([first.status, again.status]).toEqual([422, 422]);
    expect(again.json).toMatchObject({ error: { code: 'OVER_SCOPE', message: first.json.error.message }, job: { id: first.json.job.id } });
    expect((await t.platform.db.select().from(incidents)).length).toBe(incidentsAfterFirst);
  });

  it('the same Idempotency-Key is independent per submitter', async () => {
    const submission = { datasets: ['firm_energy'], sql: 'SELECT district, sum(energy) AS e FROM firm_energy GROUP BY district', purpose: 'x' };
    const mine = await t.call('POST', '/v1/jobs', { token: analyst, json: submission, headers: { 'idempotency-key': 'shared-key' } });
    const theirs = await t.call('POST', '/v1/jobs', { token: otherAnalyst, json: { ...submission, sql: 'SELECT district, count(*) AS n FROM firm_energy GROUP BY district' }, headers: { 'idempotency-key': 'shared-key' } });
    expect(mine.status).toBe(201);
    expect(theirs.json.id ?? theirs.json.job?.id).not.toBe(mine.json.id);
    expect(theirs.json.error?.code).not.toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('the result of a job that is not finished or was refused answers 409', async () => {
    const refused = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['power_readings'], sql: 'SELECT * FROM power_readings', purpose: 'x' } });
    const response = await t.call('GET', `/v1/jobs/${refused.json.job.id}/result`, { token: analyst });
    expect(response.status).toBe(409);
    expect(response.json.error.code).toBe('RESULT_NOT_AVAILABLE');
  });
});
