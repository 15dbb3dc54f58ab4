import crypto from 'node:crypto';
import { DuckDBInstance, LIST, listValue, UBIGINT } from '@duckdb/node-api';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestVersion } from '../../src/catalog/catalogue.js';
import { jobs } from '../../src/db/schema.js';
import { planJob, prepareJob } from '../../src/jobs/prepare-job.js';
import { findPrincipal } from '../../src/identity/principals.js';
import { sandboxQueries, type ExecutionPlan } from '../../src/analysis/execution-plan.js';
import {
  bucketOf,
  cellKeyOf,
  CELLS_PARAMETER,
  contributorsOf,
  differenceLowerBound,
  differencingSuspected,
  sketchBytes,
  sketchesFromRows,
  sketchFromBytes,
  sketchOfKeys,
  sketchSql,
  SKETCH_SECRET_VARIABLE,
  type Sketch,
} from '../../src/privacy/contributor-sketch.js';
import { cellsToGuard, CONTRIBUTOR_BAND, contributorBandOf, guardKeyOf, openSketch, recordCells, sealSketch } from '../../src/privacy/differencing-guard.js';
import { releasedCells } from '../../src/db/schema.js';
import { createSandboxPool } from '../../src/sandbox/sandbox-pool.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

// The policy's layout at threshold 10: four buckets per threshold.
const threshold = 10;
const buckets = 40;
const sketchOf = (keys: bigint[]): Sketch => sketchOfKeys(keys, buckets);
// Keys from a counter, not fresh randomness, so that a test gives the same answer on every run.
let keyCounter = 0;
const randomKeys = (count: number) => Array.from({ length: count }, () => crypto.createHash('sha256').update(`key ${keyCounter++}`).digest().readBigUInt64LE());
/** Two cells sharing `shared` contributors, with `onlyA` more in the first and `onlyB` more in the second. */
const pair = (shared: number, onlyA: number, onlyB: number) => {
  const common = randomKeys(shared);
  return [sketchOf([...common, ...randomKeys(onlyA)]), sketchOf([...common, ...randomKeys(onlyB)])] as const;
};

describe('contributor sketches', () => {
  it('report every difference of one to threshold − 1 people as a pair, on one side or on both', () => {
    for (let trial = 0; trial < 300; trial++) {
      const difference = 1 + (trial % (threshold - 1));
      const onlyA = trial % 3 === 0 ? difference : Math.floor(difference / 2);
      const [a, b] = pair(200, onlyA, difference - onlyA);
      expect(differencingSuspected(a, b, threshold)).toBe(true);
    }
  });

  it('report one person replaced by another as a pair even when both land in the same bucket', () => {
    const [first] = randomKeys(1);
    const second = randomKeys(10_000).find((key) => bucketOf(key, buckets) === bucketOf(first!, buckets))!;
    const common = randomKeys(100);
    expect(differencingSuspected(sketchOf([...common, first!]), sketchOf([...common, second]), threshold)).toBe(true);
  });

  it('do not report identical contributor sets', () => {
    const keys = randomKeys(150);
    expect(differencingSuspected(sketchOf(keys), sketchOf([...keys].reverse()), threshold)).toBe(false);
  });

  it('do not report cells differing by twice the threshold or more, nor unrelated cells', () => {
    for (let trial = 0; trial < 200; trial++) {
      const [a, b] = pair(100, threshold, threshold + (trial % 5));
      expect(differencingSuspected(a, b, threshold)).toBe(false);
    }
    expect(differencingSuspected(sketchOf(randomKeys(300)), sketchOf(randomKeys(300)), threshold)).toBe(false);
  });

  it('never bound the difference above its true size', () => {
    for (let trial = 0; trial < 300; trial++) {
      const [onlyA, onlyB] = [trial % 17, (trial * 7) % 23];
      const [a, b] = pair(50, onlyA, onlyB);
      expect(differenceLowerBound(a, b)).toBeLessThanOrEqual(onlyA + onlyB);
    }
  });

  it('come out of DuckDB exactly as they are built here, for the main query\'s cells only', async () => {
    const keysByCell = new Map([['南汇新城镇', randomKeys(37)], ['泥城镇', randomKeys(3)], ['书院镇', randomKeys(120)]]);
    const values = [...keysByCell].flatMap(([town, keys]) => keys.map((key) => `('${town}', ${key}::UBIGINT)`)).join(', ');
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      const inner = `SELECT town AS __pds_g_0, key AS __pds_k FROM (VALUES ${values}) AS rows(town, key)`;
      const cellOf = async (town: string) => BigInt(String((await connection.runAndReadAll(`SELECT hash('${town}')::VARCHAR`)).getRows()[0]![0]));
      // The main query output two of the three towns: only theirs are sketched.
      const prepared = await connection.prepare(sketchSql(inner, ['__pds_g_0'], buckets));
      prepared.bind({ [CELLS_PARAMETER]: listValue([await cellOf('南汇新城镇'), await cellOf('书院镇')]) }, { [CELLS_PARAMETER]: LIST(UBIGINT) });
      const result = await prepared.runAndReadAll();
      const sketches = sketchesFromRows(result.columnNames(), result.getRowsJson(), buckets);
      expect(sketches.size).toBe(2);
      for (const town of ['南汇新城镇', '书院镇']) expect(sketches.get(String(await cellOf(town)))).toEqual(sketchOfKeys(keysByCell.get(town)!, buckets));
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });

  it('count contributors and survive encoding', () => {
    const sketch = sketchOf(randomKeys(500));
    expect(contributorsOf(sketch)).toBe(500);
    expect(sketchFromBytes(sketchBytes(sketch), buckets)).toEqual(sketch);
    expect(() => sketchFromBytes(sketchBytes(sketch), buckets * 2)).toThrow(/expected size/);
  });
});

describe('stored sketches', () => {
  const key = crypto.randomBytes(32);
  const sketch = sketchOf(randomKeys(3));

  it('are sealed: no contributor key can be read from what is stored', () => {
    const stored = Buffer.from(sealSketch(key, sketch, 'residents'), 'base64');
    for (const contributorKey of sketch.keys.filter((value) => value !== 0n)) {
      const bytes = Buffer.alloc(8);
      bytes.writeBigUInt64LE(contributorKey);
      expect(stored.includes(bytes)).toBe(false);
    }
    expect(openSketch(key, stored.toString('base64'), 'residents', buckets)).toEqual(sketch);
  });

  it('do not open under another key, for another dataset or at another size', () => {
    const stored = sealSketch(key, sketch, 'residents');
    expect(openSketch(crypto.randomBytes(32), stored, 'residents', buckets)).toBeNull();
    expect(openSketch(key, stored, 'power_readings', buckets)).toBeNull();
    expect(openSketch(key, stored, 'residents', buckets * 2)).toBeNull();
    expect(openSketch(key, 'not a sketch', 'residents', buckets)).toBeNull();
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

  /** Submits, waits, approves as a regulator (L3 outputs wait for one) and returns the settled job and its result. */
  async function runApproved(token: string, sql: string, datasets = ['residents']) {
    const submitted = await t.call('POST', '/v1/jobs', { token, json: { datasets, sql, purpose: 'x' } });
    expect(submitted.status).toBe(201);
    const job = await t.waitForJob(submitted.json.id);
    await t.call('POST', `/v1/reviews/${submitted.json.id}`, { token: regulator, json: { decision: 'approve', reason: 'ok' } });
    return { job, result: (await t.call('GET', `/v1/jobs/${submitted.json.id}/result`, { token })).json };
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

    const { result: first } = await runApproved(await t.tokenFor('analyst-harbour-credit'), 'SELECT town, count(*) AS people FROM residents GROUP BY town');
    expect(first.manifest.suppressedRows).toEqual([]);
    const { result: second } = await runApproved(
      await t.tokenFor('analyst-lingang-analytics'),
      `SELECT town, count(*) AS people FROM residents WHERE NOT (birth_date = DATE '${birthDate}' AND sex = '${sex}' AND town = '${town}') GROUP BY town`,
    );
    // Town is a quasi-identifier of residents, so the suppressed rows do not even say which towns they are.
    expect(second.manifest.suppressedRows.map((entry: { code: string }) => entry.code).sort()).toEqual(['DIFFERENCING', 'SECONDARY_SUPPRESSION']);
    for (const entry of second.manifest.suppressedRows as Array<{ row: number }>) expect(second.rows[entry.row]).toEqual([null, null]);
    // The target's town is not among the released cells; identical cells (a difference of zero people) are.
    expect(second.rows.filter((row: unknown[]) => row[0] === town)).toEqual([]);
    expect(second.rows.filter((row: unknown[]) => row[1] !== null).length).toBe(second.rows.length - 2);
    // What the table keeps opens only with the platform's key.
    const stored = await t.platform.db.select().from(releasedCells).where(eq(releasedCells.lineage, 'residents'));
    expect(stored.length).toBeGreaterThan(0);
    for (const row of stored) expect(openSketch(guardKeyOf(t.platform.keys), row.sketch, 'residents', row.buckets)).not.toBeNull();
    // Regulators see the second half as an incident: the job, its operator and the counts by code, no cell.
    const incidents = (await t.call('GET', '/v1/incidents?kind=differencing', { token: regulator })).json.incidents;
    expect(incidents).toEqual([
      expect.objectContaining({ kind: 'differencing', jobId: second.jobId, operatorId: 'lingang-analytics', principalId: 'analyst-lingang-analytics', detail: { datasets: ['residents'], suppressed: { DIFFERENCING: 1 } } }),
    ]);
  });

  it('reports the differencing half as an incident even when a HAVING applied after release leaves its cell out', async () => {
    const version = (await latestVersion(t.platform.db, 'residents'))!;
    const instance = await DuckDBInstance.create(t.platform.store.snapshotPath('residents', version.contentHash), { access_mode: 'READ_ONLY' });
    const connection = await instance.connect();
    const [target] = (await connection.runAndReadAll('SELECT birth_date::VARCHAR, sex, town FROM data GROUP BY ALL HAVING count(*) = 1 LIMIT 1 OFFSET 1')).getRows();
    connection.closeSync();
    instance.closeSync();
    const [birthDate, sex, town] = target!.map(String);
    const { result } = await runApproved(
      await t.tokenFor('analyst-lingang-analytics'),
      `SELECT town, count(*) AS people FROM residents WHERE NOT (birth_date = DATE '${birthDate}' AND sex = '${sex}' AND town = '${town}') GROUP BY town HAVING people > 0`,
    );
    // The withheld cells have no value, so the HAVING lists none of them; the checked table still counts them.
    expect(result.manifest.suppressedRows).toEqual([]);
    expect(result.manifest.checkedTable.suppressedByCode).toMatchObject({ DIFFERENCING: 1 });
    const incidents = (await t.call('GET', '/v1/incidents?kind=differencing', { token: regulator })).json.incidents;
    expect(incidents).toContainEqual(expect.objectContaining({ kind: 'differencing', jobId: result.jobId, detail: { datasets: ['residents'], suppressed: { DIFFERENCING: 1 } } }));
  });

  it('keeps no exact contributor count of a released cell in the control plane, only its band', async () => {
    const stored = await t.platform.db.select().from(releasedCells).where(eq(releasedCells.lineage, 'residents'));
    const exact = stored.map((row) => contributorsOf(openSketch(guardKeyOf(t.platform.keys), row.sketch, 'residents', row.buckets)!));
    expect(stored.map((row) => row.contributors)).toEqual(exact.map(contributorBandOf));
    // Some count is not a multiple of the band, so the table would have shown it had it been stored exactly.
    expect(exact.some((count) => count % CONTRIBUTOR_BAND !== 0)).toBe(true);
  });

  it('finds a released cell whose band lies below the range of counts it is compared with: 24 people, then 33', async () => {
    // 24 is stored as 20; a cell of 33 (the same 24 and 9 more) is compared with counts from 24 up, so the band,
    // not the count, must bound the search.
    const [released] = await t.platform.db.select({ id: jobs.id }).from(jobs).where(eq(jobs.status, 'released')).limit(1);
    const people = randomKeys(33);
    const guard = { dataset: 'band-test', threshold: 10, buckets: 40, key: guardKeyOf(t.platform.keys) };
    try {
      await recordCells(t.platform.db, { ...guard, jobId: released!.id, sketches: new Map([['cell', sketchOfKeys(people.slice(0, 24), 40)]]), cellKeys: ['cell'], released: new Set([0]) });
      const flagged = await cellsToGuard(t.platform.db, { ...guard, sketches: new Map([['cell', sketchOfKeys(people, 40)]]), cellKeys: ['cell'] });
      expect([...flagged]).toEqual([0]);
    } finally {
      await t.platform.db.delete(releasedCells).where(eq(releasedCells.lineage, 'band-test'));
    }
  });

  it('catches the pair whichever dataset a join names first, and in every protected dataset it joins', async () => {
    // Before, only the first protected dataset of the FROM was sketched: a pair written once from enterprises and
    // once from power readings was compared across different datasets' sketches, never with each other.
    const path = async (dataset: string) => t.platform.store.snapshotPath(dataset, (await latestVersion(t.platform.db, dataset))!.contentHash);
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await connection.run(`ATTACH '${await path('enterprises')}' AS e (READ_ONLY); ATTACH '${await path('power_readings')}' AS p (READ_ONLY)`);
    // An enterprise with a power account, alone on its date of establishment, in the town with the most: the target.
    const [target] = (
      await connection.runAndReadAll(
        `SELECT e.established_on::VARCHAR, e.town FROM e.data e WHERE e.uscc IN (SELECT uscc FROM p.data) AND e.town = (SELECT town FROM e.data GROUP BY town ORDER BY count(*) DESC LIMIT 1)
         AND e.established_on IN (SELECT established_on FROM e.data GROUP BY established_on HAVING count(*) = 1) ORDER BY 1 LIMIT 1`,
      )
    ).getRows();
    connection.closeSync();
    instance.closeSync();
    const [established, town] = target!.map(String);
    const token = await t.tokenFor('analyst-lingang-analytics');
    const run = (sql: string) => runApproved(token, sql, ['enterprises', 'power_readings']);
    const first = await run('SELECT e.town, count(*) AS readings FROM enterprises e JOIN power_readings p ON p.uscc = e.uscc GROUP BY e.town');
    expect(first.result.rows.find((row: unknown[]) => row[0] === town)?.[1]).toEqual(expect.any(Number));
    // The target's town is the one cell at this scale with enough contributors; without it nothing is left to release.
    const second = await run(`SELECT e.town, count(*) AS readings FROM power_readings p JOIN enterprises e ON p.uscc = e.uscc WHERE e.established_on <> DATE '${established}' GROUP BY e.town`);
    expect([second.job.status, (second.job.manifest as { suppressedByCode: Record<string, number> }).suppressedByCode.DIFFERENCING]).toEqual(['withheld', 1]);
    // Both datasets' contributors were kept for the cells released.
    const lineages = new Set((await t.platform.db.select({ lineage: releasedCells.lineage }).from(releasedCells)).map((row) => row.lineage));
    expect(lineages).toEqual(new Set(['residents', 'enterprises', 'power_readings']));
  });

  it("catches a pair whose cells have the same people but not the same rows: one account's largest reading left out", async () => {
    // Before, a contributor's key named the account only: a WHERE that dropped one of its 24 readings left every
    // key as it was, and the town total less the other was that reading.
    const version = (await latestVersion(t.platform.db, 'power_readings'))!;
    const instance = await DuckDBInstance.create(t.platform.store.snapshotPath('power_readings', version.contentHash), { access_mode: 'READ_ONLY' });
    const connection = await instance.connect();
    const [town, largest] = (
      await connection.runAndReadAll(
        "SELECT town, max(kwh)::VARCHAR FROM data WHERE town = (SELECT town FROM data GROUP BY town ORDER BY count(DISTINCT account_id) DESC LIMIT 1) GROUP BY town",
      )
    ).getRows()[0]!.map(String);
    connection.closeSync();
    instance.closeSync();
    const token = await t.tokenFor('analyst-lingang-analytics');
    const run = (sql: string) => runApproved(token, sql, ['power_readings']);
    const first = await run("SELECT town, sum(kwh) AS kwh FROM power_readings WHERE customer_type <> 'none' GROUP BY town");
    expect(first.result.rows.find((row: unknown[]) => row[0] === town)?.[1]).toEqual(expect.any(Number));
    const second = await run(`SELECT town, sum(kwh) AS kwh FROM power_readings WHERE NOT (town = '${town}' AND kwh >= ${largest}) GROUP BY town`);
    const suppressed = (second.job.manifest as { suppressedByCode: Record<string, number> }).suppressedByCode;
    expect(suppressed.DIFFERENCING).toBe(1);
    if (second.result.rows) expect(second.result.rows.find((row: unknown[]) => row[0] === town)?.[1] ?? null).toBeNull();
  });

  it('fails a job planned with an earlier sketch layout rather than run it without the guard', async () => {
    const token = await t.tokenFor('analyst-lingang-analytics');
    const submitted = await t.call('POST', '/v1/jobs', { token, json: { datasets: ['residents'], sql: 'SELECT sex, count(*) AS people FROM residents GROUP BY sex', purpose: 'x' } });
    await t.waitForJob(submitted.json.id);
    // Turn it back into a queued job whose plan predates the layout, as one queued before an upgrade would be.
    const [job] = await t.platform.db.select().from(jobs).where(eq(jobs.id, submitted.json.id));
    const plan = job!.plan as { sketch: { layout?: string } };
    delete plan.sketch.layout;
    await t.rerunWithPlan(job!.id, plan);
    const after = (await t.call('GET', `/v1/jobs/${job!.id}`, { token })).json;
    expect([after.status, after.code]).toEqual(['failed', 'SYSTEM_FAILURE']);
  });

  it('sketches and contributor figures cover every output cell, however many groups a HAVING or LIMIT drops', async () => {
    // Before, the follow-up queries covered every group before HAVING and LIMIT and stopped at the row limit, so
    // a query with many groups could leave its output cells without sketches — and outside the guard.
    const analyst = (await findPrincipal(t.platform.db, 'analyst-lingang-analytics'))!;
    const sql = "SELECT town, industry_code, sum(kwh) AS kwh FROM power_readings GROUP BY town, industry_code HAVING town <> '泥城镇' ORDER BY industry_code DESC, town LIMIT 3";
    const plan = (await planJob(t.platform, await prepareJob(t.platform, analyst, { datasets: ['power_readings'], sql, purpose: 'x' }))) as ExecutionPlan;
    expect(plan.unitQueries).toHaveLength(1);
    const version = (await latestVersion(t.platform.db, 'power_readings'))!;
    const pool = createSandboxPool({ size: 1 });
    try {
      const outcome = await pool.run({
        jobId: 'cells-of-main',
        snapshots: [{ datasetId: 'power_readings', path: t.platform.store.snapshotPath('power_readings', version.contentHash) }],
        // A row limit far below the number of groups, as a large grouping would meet the policy's.
        queries: sandboxQueries(plan).map((query) => ({ ...query, rowLimit: 4 })),
        limits: { memoryMb: 512, threads: 1, wallSeconds: 30 },
        variables: { [SKETCH_SECRET_VARIABLE]: 'test secret' },
      });
      if (!outcome.ok) throw new Error(outcome.kind);
      const [main, unit, sketch] = ['main', 'unit:0', 'sketch:0'].map((name) => outcome.results.find((result) => result.name === name)!);
      const cells = main!.rows.map((row) => cellKeyOf(main!.columns, row)).sort();
      expect(cells).toHaveLength(3);
      expect([...sketchesFromRows(sketch!.columns, sketch!.rows, plan.sketch!.buckets).keys()].sort()).toEqual(cells);
      const groupValues = (result: typeof main, positions: number[]) => result!.rows.map((row) => JSON.stringify(positions.map((index) => row[index]))).sort();
      const unitPositions = unit!.columns.flatMap((name, index) => (name.startsWith('__pds_g_') ? [index] : []));
      expect(groupValues(unit, unitPositions)).toEqual(groupValues(main, plan.groupKeyPositions));
    } finally {
      await pool.close();
    }
  });

  it('withholds an output cell that has no sketch rather than pass it unchecked', async () => {
    const sketches = new Map([['1', sketchOf(randomKeys(30))]]);
    const flagged = await cellsToGuard(t.platform.db, { dataset: 'residents', threshold, buckets, sketches, cellKeys: ['1', '2'], key: guardKeyOf(t.platform.keys) });
    expect([...flagged]).toEqual([1]);
  });
});
