import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestVersion } from '../../src/catalog/catalogue.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let operatorToken: string;
let institutionToken: string;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
  operatorToken = await t.tokenFor('analyst-lingang-analytics');
  institutionToken = await t.tokenFor('clerk-power-utility');
});
afterAll(() => t?.close());

describe('GET /v1/datasets', () => {
  it('lists at least six datasets with grades, column classes and version hashes', async () => {
    const response = await t.call('GET', '/v1/datasets', { token: operatorToken });
    expect(response.status).toBe(200);
    const datasets = response.json.datasets;
    expect(datasets.length).toBeGreaterThanOrEqual(6);
    for (const dataset of datasets) {
      expect(['L1', 'L2', 'L3', 'L4', 'important', 'core']).toContain(dataset.grade);
      expect(dataset.columns.every((column: { class: string }) => typeof column.class === 'string')).toBe(true);
      expect(dataset.versions.length).toBeGreaterThan(0);
      expect(dataset.latestVersion).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(new Set(datasets.map((d: { grade: string }) => d.grade))).toEqual(new Set(['L1', 'L2', 'L3', 'L4']));
  });

  it('carries no value from the raw rows of a non-open dataset', async () => {
    const version = (await latestVersion(t.platform.db, 'residents'))!;
    const instance = await DuckDBInstance.create(t.platform.store.snapshotPath('residents', version.contentHash), { access_mode: 'READ_ONLY' });
    const connection = await instance.connect();
    const sample = (await connection.runAndReadAll('SELECT resident_id, name, household_id FROM data LIMIT 20')).getRows().flat().map(String);
    connection.closeSync();
    instance.closeSync();
    const everything = [
      (await t.call('GET', '/v1/datasets', { token: operatorToken })).text,
      (await t.call('GET', '/v1/datasets/residents', { token: operatorToken })).text,
    ].join('\n');
    for (const value of sample) expect(everything).not.toContain(value);
  });

  it('is refused to anonymous callers', async () => {
    expect((await t.call('GET', '/v1/datasets')).status).toBe(401);
  });
});

describe('GET /v1/datasets/{id}', () => {
  it('returns one entry with its privacy unit and versions', async () => {
    const response = await t.call('GET', '/v1/datasets/power_readings', { token: operatorToken });
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ id: 'power_readings', grade: 'L3', privacyUnit: 'account_id', institution: { id: 'power-utility' } });
    expect(response.json.versions[0]).toMatchObject({ versionNumber: 1, contentHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('answers 404 with a stable code for an unknown id', async () => {
    const response = await t.call('GET', '/v1/datasets/no_such_dataset', { token: operatorToken });
    expect(response.status).toBe(404);
    expect(response.json.error.code).toBe('NOT_FOUND');
  });
});

describe('POST /v1/datasets (registration)', () => {
  const registration = {
    id: 'ev_chargers',
    title: 'EV charging sessions',
    titleZh: '充电桩充电记录',
    description: 'Charging sessions per charger.',
    category: 'utilities',
    grade: 'L2',
    sharingType: 'unconditional',
    legalBasis: 'Supply contracts.',
    updateFrequency: 'daily',
    privacyUnit: 'charger_id',
    columns: [
      { name: 'charger_id', type: 'VARCHAR', class: 'direct_identifier', description: 'Charger' },
      { name: 'kwh', type: 'DOUBLE', class: 'sensitive', description: 'Energy delivered', bounds: { min: 0, max: 500 } },
    ],
  };

  it('registers an entry for the institution of the caller', async () => {
    const response = await t.call('POST', '/v1/datasets', { token: institutionToken, json: registration });
    expect(response.status).toBe(201);
    expect(response.json).toMatchObject({ id: 'ev_chargers', institution: { id: 'power-utility' }, versions: [], latestVersion: null });
  });

  it('keeps the descriptions in Chinese it is given, and has none where it is given none', async () => {
    const columns = registration.columns.map((column) => (column.name === 'kwh' ? { ...column, descriptionZh: '充电电量' } : column));
    const described = await t.call('POST', '/v1/datasets', { token: institutionToken, json: { ...registration, id: 'ev_chargers_zh', descriptionZh: '各充电桩的充电记录', columns } });
    expect(described.status).toBe(201);
    expect(described.json.descriptionZh).toBe('各充电桩的充电记录');
    expect(described.json.columns.map((column: { descriptionZh?: string }) => column.descriptionZh ?? null)).toEqual(registration.columns.map((column) => (column.name === 'kwh' ? '充电电量' : null)));
    expect((await t.call('GET', '/v1/datasets/ev_chargers', { token: institutionToken })).json.descriptionZh).toBeNull();
  });

  it('refuses a second registration of the same id with 409', async () => {
    const response = await t.call('POST', '/v1/datasets', { token: institutionToken, json: { ...registration, id: 'ev_chargers_b' } });
    expect(response.status).toBe(201);
    const again = await t.call('POST', '/v1/datasets', { token: institutionToken, json: { ...registration, id: 'ev_chargers_b' } });
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('DATASET_EXISTS');
  });

  it('refuses unknown fields (no mass assignment)', async () => {
    const response = await t.call('POST', '/v1/datasets', { token: institutionToken, json: { ...registration, id: 'x_extra', institutionId: 'water-utility' } });
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe('UNKNOWN_FIELD');
  });

  it('refuses a privacy unit that is not a direct identifier', async () => {
    const response = await t.call('POST', '/v1/datasets', { token: institutionToken, json: { ...registration, id: 'x_unit', privacyUnit: 'kwh' } });
    expect(response.status).toBe(400);
    expect(response.json.error.details).toContainEqual({ path: 'privacyUnit', problem: 'must be a direct_identifier column' });
  });

  it('refuses a privacy unit that may be empty (the sandbox counts one-row-per-contributor cells by rows)', async () => {
    const columns = registration.columns.map((column) => (column.name === 'charger_id' ? { ...column, nullable: true } : column));
    const response = await t.call('POST', '/v1/datasets', { token: institutionToken, json: { ...registration, id: 'x_nullable_unit', columns } });
    expect(response.status).toBe(400);
    expect(response.json.error.details).toContainEqual({ path: 'privacyUnit', problem: 'must not be nullable' });
  });

  it('refuses open data above L1', async () => {
    const response = await t.call('POST', '/v1/datasets', { token: institutionToken, json: { ...registration, id: 'x_open', openData: true } });
    expect(response.status).toBe(400);
    expect(response.json.error.details).toContainEqual({ path: 'openData', problem: 'only L1 data may be open data' });
  });

  it('refuses a DECIMAL width DuckDB cannot store, naming the column', async () => {
    const columns = [...registration.columns, { name: 'tariff', type: 'DECIMAL(50,2)', class: 'attribute', description: 'Tariff' }];
    const response = await t.call('POST', '/v1/datasets', { token: institutionToken, json: { ...registration, id: 'x_wide_decimal', columns } });
    expect(response.status).toBe(400);
    expect(response.json.error.details).toContainEqual({ path: 'columns.2.type', problem: 'DECIMAL(p,s) needs 1 ≤ p ≤ 38 and s ≤ p' });
  });

  it('requires a basis for conditional sharing (art. 16)', async () => {
    const response = await t.call('POST', '/v1/datasets', { token: institutionToken, json: { ...registration, id: 'x_cond', sharingType: 'conditional' } });
    expect(response.status).toBe(400);
    expect(response.json.error.details).toContainEqual({ path: 'sharingBasis', problem: 'is required when sharing is conditional or none' });
  });

  it('is refused to operators', async () => {
    const response = await t.call('POST', '/v1/datasets', { token: operatorToken, json: { ...registration, id: 'x_op' } });
    expect(response.status).toBe(403);
    expect(response.json.error.code).toBe('FORBIDDEN');
  });
});
