import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestVersion } from '../../src/catalog/catalogue.js';
import { createSandboxPool, type SandboxPool } from '../../src/sandbox/sandbox-pool.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let analyst: string;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true, workers: 1 });
  analyst = await t.tokenFor('analyst-lingang-analytics');
});
afterAll(() => t?.close());

async function submitAndWait(sql: string, datasets = ['power_readings']) {
  const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets, sql, purpose: 'test' } });
  expect(submitted.status).toBe(201);
  await t.waitForJob(submitted.json.id);
  return submitted.json.id as string;
}

describe('a query that fails on data gives the operator no value from it', () => {
  const cases = [
    // In WHERE: a sum of a value put through a cast to a whole number is refused before it runs (a reshaped value).
    { name: 'a failed cast of a sensitive column', sql: "SELECT town, sum(kwh) AS s FROM power_readings WHERE CAST(concat(kwh, 'x') AS INTEGER) > 0 GROUP BY town" },
    { name: 'an overflowing arithmetic on a sensitive column', sql: 'SELECT town, sum(kwh) AS s FROM power_readings WHERE CAST(kwh * 1e300 * 1e300 AS INTEGER) > 0 GROUP BY town' },
    // Binds (DuckDB casts the column to the number's type), then fails on the first customer type it reads.
    { name: 'a text column compared with a number', sql: 'SELECT town, count(*) AS n FROM power_readings WHERE customer_type = 1 GROUP BY town', value: 'household' },
  ];

  it.each(cases)('$name', async ({ sql, value }) => {
    const id = await submitAndWait(sql);
    const job = await t.call('GET', `/v1/jobs/${id}`, { token: analyst });
    expect(job.json).toMatchObject({ status: 'failed', code: 'QUERY_FAILED' });
    const stored = (await t.waitForJob(id)).internalDetail ?? '';
    // DuckDB's own text names the offending value; it is kept for regulators and never shown to the operator.
    expect(stored).toMatch(/Conversion Error|Out of Range|overflow|convert/i);
    const everything = JSON.stringify(job.json) + (await t.call('GET', `/v1/jobs/${id}/result`, { token: analyst })).text + (await t.call('GET', '/v1/jobs', { token: analyst })).text;
    expect(everything).not.toMatch(/\d+\.\d+x|Conversion|DOUBLE|INT32|value/i);
    if (value) expect(everything).not.toContain(value);
  });

  it('the reason for a failure on data says what commonly causes it, a text column compared with a number', async () => {
    const id = await submitAndWait('SELECT town, count(*) AS n FROM power_readings WHERE customer_type = 1 GROUP BY town');
    expect((await t.call('GET', `/v1/jobs/${id}`, { token: analyst })).json.reason).toContain("write industry_code = '3612'");
  });
});

describe('wall-time limit and worker failure', () => {
  let pool: SandboxPool;
  let snapshot: string;
  beforeAll(async () => {
    pool = createSandboxPool({ size: 2, graceSeconds: 2 });
    await pool.warm();
    const version = await latestVersion(t.platform.db, 'power_readings');
    snapshot = t.platform.store.snapshotPath('power_readings', version!.contentHash);
  });
  afterAll(() => pool?.close());

  const request = (jobId: string, sql: string, wallSeconds: number) =>
    pool.run({
      jobId,
      snapshots: [{ datasetId: 'power_readings', path: snapshot }],
      queries: [{ name: 'main', sql, rowLimit: 100 }],
      limits: { memoryMb: 512, threads: 1, wallSeconds },
    });
  const crossJoin = 'SELECT count(*) FROM power_readings a, power_readings b, power_readings c';
  const aggregate = 'SELECT town, count(*) AS n FROM power_readings GROUP BY town ORDER BY town';

  it('a cross join over the largest table is stopped at the limit while a concurrent job finishes', async () => {
    const [slow, fast] = await Promise.all([request('slow', crossJoin, 1), request('fast', aggregate, 30)]);
    expect(slow).toMatchObject({ ok: false, kind: 'time_limit' });
    expect(fast.ok).toBe(true);
    if (fast.ok) expect(fast.results[0]!.rows.length).toBeGreaterThan(0);
  });

  it('a worker killed mid-job fails that job as a system failure and is replaced', async () => {
    const before = pool.pids();
    const running = request('killed', crossJoin, 30);
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const pid of pool.pids()) if (pid) process.kill(pid, 'SIGKILL');
    const outcome = await running;
    expect(outcome).toMatchObject({ ok: false, kind: 'system_error' });
    const after = await request("after", aggregate, 30);
    expect(after.ok).toBe(true);
    expect(pool.pids().some((pid) => !before.includes(pid))).toBe(true);
  });

  it("each job runs with its grade's memory and thread limits, locked, in an instance of its own", async () => {
    const settings = "SELECT current_setting('memory_limit') AS memory, current_setting('threads') AS threads, current_setting('lock_configuration') AS locked, (SELECT count(*) FROM duckdb_views() WHERE NOT internal) AS views";
    const run = (jobId: string, memoryMb: number, threads: number) =>
      pool.run({ jobId, snapshots: [{ datasetId: 'power_readings', path: snapshot }], queries: [{ name: 'main', sql: settings, rowLimit: 10 }], limits: { memoryMb, threads, wallSeconds: 30 } });
    const [first, second] = [await run('limits-a', 300, 1), await run('limits-b', 700, 2)];
    // DuckDB reports its limit in MiB-rounded units; what matters is that each job's own limit is in force.
    expect(first.ok && first.results[0]!.rows[0]).toEqual([expect.stringMatching(/^28\d\.\d MiB$/), 1, true, 1]);
    expect(second.ok && second.results[0]!.rows[0]).toEqual([expect.stringMatching(/^66\d\.\d MiB$/), 2, true, 1]);
  });

  it('a follow-up query whose cells are missing fails as a system failure, not the operator\'s', async () => {
    const outcome = await pool.run({
      jobId: 'no-cells',
      snapshots: [{ datasetId: 'power_readings', path: snapshot }],
      queries: [
        { name: 'main', sql: aggregate, rowLimit: 100 },
        { name: 'sketch', sql: 'SELECT count(*) FROM power_readings WHERE hash(town) IN (SELECT unnest($pds_cells))', rowLimit: 100, cellsOf: 'main' },
      ],
      limits: { memoryMb: 512, threads: 1, wallSeconds: 30 },
    });
    expect(outcome).toMatchObject({ ok: false, kind: 'system_error' });
  });
});
