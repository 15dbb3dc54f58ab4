import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { latestVersion } from '../../src/catalog/catalogue.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

/**
 * A property test over generated aggregate queries: whatever mix of keys, measures and filters an operator writes,
 * every value released has at least the grade's threshold of contributors of its own — counted here independently,
 * in DuckDB on the snapshot, as only a test may. Hand-made cases test each rule; this looks for the combination no
 * one thought of. The generator is seeded, so a failure repeats.
 */
let t: TestPlatform;
let raw: DuckDBConnection;
let closeRaw: () => void;
beforeAll(async () => {
  // Large enough for many cells to pass the L3 threshold of 20.
  t = await createTestPlatform({ demo: true, workers: 1, environment: { PDS_DEMO_SCALE: '0.02' } });
  const version = (await latestVersion(t.platform.db, 'power_readings'))!;
  const instance = await DuckDBInstance.create(t.platform.store.snapshotPath('power_readings', version.contentHash), { access_mode: 'READ_ONLY' });
  raw = await instance.connect();
  await raw.run('CREATE TEMP VIEW power_readings AS SELECT * FROM data');
  closeRaw = () => {
    raw.closeSync();
    instance.closeSync();
  };
});
afterAll(async () => {
  closeRaw?.();
  await t?.close();
});

/** A measure and the rows that are its own contributors (its FILTER, the condition of its CASE, or every row). */
const measures: Array<{ sql: string; ownRows: string }> = [
  { sql: 'count(*)', ownRows: 'true' },
  { sql: 'count(kwh)', ownRows: 'kwh IS NOT NULL' },
  { sql: 'sum(kwh)', ownRows: 'true' },
  { sql: 'avg(kwh)', ownRows: 'true' },
  { sql: 'sum(amount_due)', ownRows: 'true' },
  { sql: 'stddev_samp(kwh)', ownRows: 'true' },
  { sql: 'count(DISTINCT account_id)', ownRows: 'true' },
  { sql: 'sum(kwh) / count(*)', ownRows: 'true' },
  { sql: 'sum(kwh * 2 + 1)', ownRows: 'true' },
  { sql: 'bool_and(paid_on_time)', ownRows: 'true' },
  { sql: 'sum(kwh) - sum(amount_due)', ownRows: 'true' },
  { sql: "sum(kwh) FILTER (WHERE month > DATE '2024-01-01')", ownRows: "month > DATE '2024-01-01'" },
  { sql: 'count(*) FILTER (WHERE paid_on_time)', ownRows: 'paid_on_time' },
  { sql: 'sum(CASE WHEN kwh > 200 THEN kwh END)', ownRows: 'kwh > 200' },
  { sql: 'count(CASE WHEN kwh > 300 THEN 1 END)', ownRows: 'kwh > 300' },
  { sql: 'sum(CASE WHEN paid_on_time THEN 1 ELSE 0 END)', ownRows: 'paid_on_time' },
  { sql: 'corr(kwh, amount_due)', ownRows: 'kwh IS NOT NULL AND amount_due IS NOT NULL' },
  { sql: 'covar_pop(kwh, CASE WHEN paid_on_time THEN 1 ELSE 0 END)', ownRows: 'paid_on_time AND kwh <> 0' },
];
const keys = [
  'town', 'customer_type', 'industry_code', 'month', 'paid_on_time', "date_trunc('quarter', month)", 'year(month)', 'floor(kwh / 1000)',
  'substr(industry_code, 1, 2)', "coalesce(industry_code, 'none')", 'round(amount_due, -3)', "month > DATE '2024-01-01'", 'floor(kwh / 50) * 50',
  "CASE WHEN kwh < 100 THEN 'low' WHEN kwh < 1000 THEN 'mid' ELSE 'high' END",
];
const filters = [
  'kwh > 100', "town = '泥城镇'", "month >= DATE '2024-01-01'", "customer_type = 'enterprise'", 'industry_code IS NOT NULL', "town IN ('泥城镇', '书院镇')",
  'NOT paid_on_time', 'kwh BETWEEN 10 AND 1000', "industry_code LIKE 'C3%'", 'year(month) = 2024', 'kwh > 2000', 'amount_due < 50',
];

function seeded(seed: number) {
  let state = seed >>> 0;
  const next = () => (state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const some = <T,>(values: T[], most: number): T[] => [...new Set(Array.from({ length: 1 + Math.floor(next() * most) }, () => values[Math.floor(next() * values.length)]!))];
  return { next, some };
}

/** Values as the result's JSON and DuckDB's JSON rows both print them: numbers by value, the rest as text. */
const comparable = (value: unknown) => (typeof value === 'number' || (typeof value === 'string' && value !== '' && !Number.isNaN(Number(value))) ? String(Number(value)) : String(value));

it('every value released from generated queries has at least the threshold of contributors of its own', async () => {
  const random = seeded(20261128);
  const threshold = t.platform.disclosurePolicy.grades.L3!.minContributors;
  const shortfalls: string[] = [];
  let valuesChecked = 0;
  for (let round = 0; round < 40; round++) {
    const groupKeys = random.some(keys, 3);
    const chosen = random.some(measures, 3);
    const where = random.next() < 0.6 ? random.some(filters, 2).join(' AND ') : 'true';
    const sql = `SELECT ${[...groupKeys.map((key, i) => `${key} AS k${i}`), ...chosen.map((measure, i) => `${measure.sql} AS m${i}`)].join(', ')} FROM power_readings WHERE ${where} GROUP BY ALL`;
    // Hours apart, so that the limit on jobs of one shape does not hold them (it is tested on its own).
    t.clock.now = new Date(t.clock.now.getTime() + 3 * 3_600_000);
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['power_readings'], sql, purpose: 'generated' } });
    expect(submitted.status, `${sql}: ${JSON.stringify(submitted.json.error)}`).toBe(201);
    let job = await t.waitForJob(submitted.json.id);
    if (job.status === 'in_review') {
      await t.call('POST', `/v1/reviews/${job.id}`, { token: await t.tokenFor('regulator-data-dept'), json: { decision: 'approve', reason: 'generated' } });
      job = await t.waitForJob(job.id);
    }
    expect(['released', 'withheld'], `${sql}: ${job.status} ${job.statusCode}`).toContain(job.status);
    if (job.status !== 'released') continue;
    const result = (await t.call('GET', `/v1/jobs/${job.id}/result`, { token: analyst })).json as { rows: unknown[][] };

    const counted = await raw.runAndReadAll(
      `SELECT ${groupKeys.map((key, i) => `${key} AS k${i}`).join(', ')}, ${chosen.map((measure, i) => `count(DISTINCT account_id) FILTER (WHERE ${measure.ownRows}) AS o${i}`).join(', ')}
       FROM power_readings WHERE ${where} GROUP BY ALL`,
    );
    const ownByCell = new Map(counted.getRowObjectsJson().map((row) => [groupKeys.map((_, i) => comparable(row[`k${i}`])).join('|'), chosen.map((_, i) => Number(row[`o${i}`]))]));
    for (const row of result.rows) {
      const cell = row.slice(0, groupKeys.length).map(comparable).join('|');
      row.slice(groupKeys.length).forEach((value, i) => {
        if (value === null) return;
        valuesChecked++;
        const own = ownByCell.get(cell)?.[i];
        if (own === undefined || own < threshold) shortfalls.push(`${chosen[i]!.sql} of cell ${cell}: ${own ?? 'no such cell'} contributors — ${sql}`);
      });
    }
  }
  // The run must have released something to say anything: at this seed it releases hundreds of values.
  expect(valuesChecked).toBeGreaterThan(100);
  expect(shortfalls).toEqual([]);
}, 600_000);
