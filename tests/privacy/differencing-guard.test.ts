import crypto from 'node:crypto';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestVersion } from '../../src/catalog/catalogue.js';
import { contributorsOf, decodeSketch, differencingSuspected, encodeSketch, sketchesFromRows, sketchOfKeys, sketchSql, symmetricDifference, type Sketch } from '../../src/privacy/contributor-sketch.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

const sketchOf = (keys: bigint[], subTableSize = 20): Sketch => sketchOfKeys(keys, subTableSize);
// Keys from a counter, not fresh randomness: peeling an IBLT fails with a small probability, and a test must
// give the same answer on every run.
let keyCounter = 0;
const randomKeys = (count: number) => Array.from({ length: count }, () => crypto.createHash('sha256').update(`key ${keyCounter++}`).digest().readBigUInt64LE());

describe('contributor sketches', () => {
  const shared = randomKeys(500);
  it.each([0, 1, 2, 7, 19])('decode a symmetric difference of %i exactly', (difference) => {
    const extra = randomKeys(difference);
    expect(symmetricDifference(sketchOf([...shared, ...extra]), sketchOf(shared))).toBe(difference);
  });

  it('at the policy\'s three buckets per threshold, decode nearly every difference below a threshold of 10', () => {
    // Keys of its own, so that the other tests' keys stay as they were.
    let counter = 0;
    const keys = (count: number) => Array.from({ length: count }, () => crypto.createHash('sha256').update(`bucket trial ${counter++}`).digest().readBigUInt64LE());
    let decoded = 0;
    const trials = 1000;
    for (let trial = 0; trial < trials; trial++) {
      const common = keys(40);
      const difference = 1 + (trial % 9);
      if (symmetricDifference(sketchOfKeys([...common, ...keys(difference)], 30), sketchOfKeys(common, 30), 10) === difference) decoded++;
    }
    // Deterministic keys: the count is the same on every run. One bucket per threshold misses 11 of these 1,000.
    expect(decoded / trials).toBeGreaterThanOrEqual(0.997);
  });

  it('decode a difference on both sides', () => {
    const [onlyA, onlyB] = [randomKeys(3), randomKeys(4)];
    expect(symmetricDifference(sketchOf([...shared, ...onlyA]), sketchOf([...shared, ...onlyB]))).toBe(7);
  });

  it('report a large difference as undecodable rather than small', () => {
    const result = symmetricDifference(sketchOf(randomKeys(500)), sketchOf(randomKeys(500)));
    expect(result === null || result >= 20).toBe(true);
  });

  it('come out of DuckDB exactly as they are built here, cell by cell', async () => {
    const keysByCell = new Map([['南汇新城镇', randomKeys(37)], ['泥城镇', randomKeys(3)], ['书院镇', randomKeys(120)]]);
    const values = [...keysByCell].flatMap(([town, keys]) => keys.map((key) => `('${town}', ${key}::UBIGINT)`)).join(', ');
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      const inner = `SELECT town AS __pds_g_0, key AS __pds_k FROM (VALUES ${values}) AS rows(town, key)`;
      const result = await connection.runAndReadAll(sketchSql(inner, ['__pds_g_0'], 30));
      const sketches = sketchesFromRows(result.columnNames(), result.getRowsJson(), 1, 30);
      for (const [town, keys] of keysByCell) {
        const cell = (await connection.runAndReadAll(`SELECT hash('${town}')::VARCHAR`)).getRows()[0]![0];
        expect(sketches.get(String(cell))).toEqual(sketchOfKeys(keys, 30));
      }
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });

  it('count contributors and survive encoding', () => {
    const sketch = sketchOf(shared);
    expect(contributorsOf(sketch)).toBe(500);
    expect(symmetricDifference(decodeSketch(encodeSketch(sketch), 20), sketch)).toBe(0);
  });
});

describe('the differencing guard across operators', () => {
  let t: TestPlatform;
  let regulator: string;
  beforeAll(async () => {
    t = await createTestPlatform({ demo: true, workers: 1, environment: { PDS_DEMO_SCALE: '0.01' } });
    regulator = await t.tokenFor('regulator-data-dept');
    // The second operator gets a licence to residents too.
    const granted = await t.call('POST', '/v1/operators/lingang-analytics/licences', {
      token: regulator,
      json: {
        title: 'residents',
        scope: [{ dataset: 'residents' }],
        purposes: ['public_interest'],
        maxGrade: 'L3',
        validFrom: new Date(Date.now() - 86_400_000).toISOString(),
        validUntil: new Date(Date.now() + 86_400_000 * 30).toISOString(),
        feeMode: 'free',
      },
    });
    expect(granted.status).toBe(201);
  });
  afterAll(() => t?.close());

  async function runApproved(token: string, sql: string) {
    const submitted = await t.call('POST', '/v1/jobs', { token, json: { datasets: ['residents'], sql, purpose: 'x' } });
    expect(submitted.status).toBe(201);
    await t.waitForJob(submitted.json.id);
    await t.call('POST', `/v1/reviews/${submitted.json.id}`, { token: regulator, json: { decision: 'approve', reason: 'ok' } });
    return (await t.call('GET', `/v1/jobs/${submitted.json.id}/result`, { token })).json;
  }

  it('suppresses the second half of a differencing pair that excludes one person', async () => {
    // One resident whose birth date, sex and town together are unique: the "target".
    const version = (await latestVersion(t.platform.db, 'residents'))!;
    const instance = await DuckDBInstance.create(t.platform.store.snapshotPath('residents', version.contentHash), { access_mode: 'READ_ONLY' });
    const connection = await instance.connect();
    const [target] = (await connection.runAndReadAll('SELECT birth_date::VARCHAR, sex, town FROM data GROUP BY ALL HAVING count(*) = 1 LIMIT 1')).getRows();
    connection.closeSync();
    instance.closeSync();
    const [birthDate, sex, town] = target!.map(String);

    const first = await runApproved(await t.tokenFor('analyst-harbour-credit'), 'SELECT town, count(*) AS people FROM residents GROUP BY town');
    expect(first.manifest.suppressedRows).toEqual([]);
    const second = await runApproved(
      await t.tokenFor('analyst-lingang-analytics'),
      `SELECT town, count(*) AS people FROM residents WHERE NOT (birth_date = DATE '${birthDate}' AND sex = '${sex}' AND town = '${town}') GROUP BY town`,
    );
    const codes = Object.fromEntries(second.manifest.suppressedRows.map((entry: { row: number; code: string }) => [second.rows[entry.row][0], entry.code]));
    expect(codes[town!]).toBe('DIFFERENCING');
    // Identical cells (a difference of zero people) are released again; one more cell goes to secondary suppression.
    expect(Object.values(codes).filter((code) => code === 'SECONDARY_SUPPRESSION')).toHaveLength(1);
    expect(second.rows.filter((row: unknown[]) => row[1] !== null).length).toBe(second.rows.length - 2);
  });
});

describe('the count-distance shortcut', () => {
  it('still decodes every difference below the bound', () => {
    const shared = randomKeys(300);
    for (const difference of [1, 5, 19]) {
      expect(symmetricDifference(sketchOf([...shared, ...randomKeys(difference)]), sketchOf(shared), 20)).toBe(difference);
    }
  });

  it('always decodes a difference of one person, the classic differencing attack', () => {
    for (let trial = 0; trial < 200; trial++) {
      const shared = randomKeys(40);
      expect(differencingSuspected(sketchOf([...shared, ...randomKeys(1)], 10), sketchOf(shared, 10), 10)).toBe(true);
    }
  });

  it('answers "large" for unrelated cells without decoding', () => {
    expect(symmetricDifference(sketchOf(randomKeys(300)), sketchOf(randomKeys(300)), 20)).toBeNull();
  });
});
