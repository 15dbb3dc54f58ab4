import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incidents, jobs, requestReplays } from '../../src/db/schema.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let analyst: string;

beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
  analyst = await t.tokenFor('analyst-lingang-analytics');
}, 120_000);
afterAll(() => t?.close());

const trial = (sql: string, datasets = ['power_readings']) => t.call('POST', '/v1/jobs/trial-run', { token: analyst, json: { datasets, sql, purpose: '试运行' } });
const publicTowns = async () => (await t.call('GET', '/v1/datasets/power_readings', { token: analyst })).json.columns.find((column: { name: string }) => column.name === 'town').publicDomain as string[];

describe('POST /v1/jobs/trial-run', () => {
  it("runs an accepted job's SQL over synthetic rows whose group keys come from the catalogue's public domain", async () => {
    const response = await trial('SELECT town, count(*) AS readings, sum(kwh) AS kwh FROM power_readings GROUP BY town');
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ decision: 'accept', synthetic: true, grade: 'L3', kind: 'aggregate', columns: [{ name: 'town' }, { name: 'readings', type: 'BIGINT' }, { name: 'kwh' }] });
    const towns = await publicTowns();
    for (const [town] of response.json.rows) expect(towns).toContain(town);
    expect(response.json.rows.reduce((sum: number, row: number[]) => sum + row[1]!, 0)).toBe(response.json.rowsPerDataset);
  });

  it('never reads the real data: a count is of the synthetic rows', async () => {
    const real = (await t.call('GET', '/v1/datasets/enterprises', { token: analyst })).json.versions.at(-1).rowCount;
    const response = await trial('SELECT count(*) AS firms FROM enterprises', ['enterprises']);
    expect(response.json.rows).toEqual([[response.json.rowsPerDataset]]);
    expect(real).not.toBe(response.json.rowsPerDataset);
  });

  it('joins same-named identifiers, so a join written wrong shows up as no rows before the job is submitted', async () => {
    const sql = (on: string) => `SELECT e.industry_code, count(*) AS readings FROM power_readings p JOIN enterprises e ON ${on} GROUP BY e.industry_code`;
    expect((await trial(sql('p.uscc = e.uscc'), ['power_readings', 'enterprises'])).json.rowCount).toBeGreaterThan(0);
    expect((await trial(sql('p.account_id = e.uscc'), ['power_readings', 'enterprises'])).json.rowCount).toBe(0);
  });

  it('joins a column to the one its catalogue entry declares it references: legal representatives are residents', async () => {
    const harbour = await t.tokenFor('analyst-harbour-credit');
    const sql = 'SELECT e.town, count(*) AS firms FROM enterprises e JOIN residents r ON e.legal_rep_id = r.resident_id GROUP BY e.town';
    const response = await t.call('POST', '/v1/jobs/trial-run', { token: harbour, json: { datasets: ['enterprises', 'residents'], sql, purpose: '试运行' } });
    expect(response.status).toBe(200);
    expect(response.json.rows.reduce((sum: number, row: number[]) => sum + row[1]!, 0)).toBe(response.json.rowsPerDataset);
  });

  it('refuses what a submission would refuse, with the same code, and runs nothing', async () => {
    const response = await trial('SELECT account_id, kwh FROM power_readings');
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe((await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['power_readings'], sql: 'SELECT account_id, kwh FROM power_readings', purpose: '试运行' } })).json.error.code);
  });

  it('refuses data outside the licence as an over-scope attempt, as a submission would', async () => {
    const before = (await t.platform.db.select().from(incidents)).length;
    const response = await trial('SELECT town, count(*) AS people FROM residents GROUP BY town', ['residents']);
    expect(response.json.error.code).toBe('OVER_SCOPE');
    expect((await t.platform.db.select().from(incidents)).length).toBe(before + 1);
  });

  it('keeps no answer for an Idempotency-Key retry: it changes nothing, so a retry simply runs again', async () => {
    const before = (await t.platform.db.select().from(requestReplays)).length;
    const body = { datasets: ['power_readings'], sql: 'SELECT town, count(*) AS readings FROM power_readings GROUP BY town', purpose: '试运行' };
    const first = await t.call('POST', '/v1/jobs/trial-run', { token: analyst, json: body, headers: { 'idempotency-key': 'trial-1' } });
    const again = await t.call('POST', '/v1/jobs/trial-run', { token: analyst, json: body, headers: { 'idempotency-key': 'trial-1' } });
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect(again.json.rows).toEqual(first.json.rows);
    expect((await t.platform.db.select().from(requestReplays)).length).toBe(before);
  });

  it('records no job', async () => {
    const before = (await t.platform.db.select().from(jobs)).length;
    await trial('SELECT town, count(*) AS readings FROM power_readings GROUP BY town');
    expect((await t.platform.db.select().from(jobs)).length).toBe(before);
  });
});
