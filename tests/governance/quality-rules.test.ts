import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDemoData } from '../../src/demo/generate-demo-data.js';
import { isValidCreditCode, isValidResidentId } from '../../src/catalog/identity-numbers.js';
import { auditLeaves, principals } from '../../src/db/schema.js';
import { scoreResults } from '../../src/domain-store/quality-check.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let regulator: string;
let marketClerk: string;
let powerClerk: string;

beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
  await t.platform.db.insert(principals).values({ id: 'clerk-market-regulator', role: 'institution', displayName: '市场监管局 · 数据专员', institutionId: 'market-regulator' });
  regulator = await t.tokenFor('regulator-data-dept');
  marketClerk = await t.tokenFor('clerk-market-regulator');
  powerClerk = await t.tokenFor('clerk-power-utility');
}, 120_000);

afterAll(async () => {
  await t?.close();
});

type RuleResult = { label: string; status: string; checked: number; violations: number };
const ruleOf = (check: { rules: RuleResult[] }, label: string) => check.rules.find((rule) => rule.label === label)!;

describe('quality rules on the demo data', () => {
  it('find the defects seeded into the enterprise register\'s second delivery, with the counts a reader of the file finds', async () => {
    // Count the defects independently, in JavaScript, in the very file the demo loaded as version 2.
    const files = await generateDemoData(fs.mkdtempSync(path.join(os.tmpdir(), 'pds-quality-')), { seed: t.platform.config.demoSeed, scale: t.platform.config.demoScale, lastDay: t.platform.config.demoEnd });
    const read = (datasetId: string, version: number) => {
      const [header, ...lines] = fs.readFileSync(files.find((file) => file.datasetId === datasetId && file.version === version)!.file, 'utf8').trimEnd().split('\n');
      const names = header!.split(',');
      return lines.map((line) => Object.fromEntries(line.split(',').map((value, index) => [names[index], value])) as Record<string, string>);
    };
    const update = read('enterprises', 2);
    const residentIds = new Set(read('residents', 1).map((row) => row.resident_id));
    const badIds = update.filter((row) => !isValidResidentId(row.legal_rep_id!)).length;
    const unknownReps = update.filter((row) => !residentIds.has(row.legal_rep_id!)).length;
    const duplicateNames = update.length - new Set(update.map((row) => row.name)).size;
    expect(update.every((row) => isValidCreditCode(row.uscc!))).toBe(true);
    expect(badIds).toBeGreaterThanOrEqual(2);
    expect(duplicateNames).toBeGreaterThanOrEqual(2);

    const response = await t.call('GET', '/v1/datasets/enterprises/quality', { token: marketClerk });
    expect(response.status).toBe(200);
    const [second, first] = response.json.checks;
    expect(second.version).toBe(2);
    expect(second.passed).toBe(false);
    expect(ruleOf(second, 'resident_id(legal_rep_id)')).toMatchObject({ status: 'failed', checked: update.length, violations: badIds });
    expect(ruleOf(second, 'reference(legal_rep_id → residents.resident_id)')).toMatchObject({ status: 'failed', violations: unknownReps });
    expect(ruleOf(second, 'unique(name)')).toMatchObject({ status: 'failed', violations: duplicateNames });
    expect(ruleOf(second, 'credit_code(uscc)')).toMatchObject({ status: 'passed', violations: 0 });
    // Every enterprise of the first delivery is still in the second.
    expect(ruleOf(second, 'completeness(uscc)')).toMatchObject({ status: 'passed', checked: read('enterprises', 1).length, violations: 0 });
    expect(ruleOf(first, 'completeness(uscc)')).toMatchObject({ status: 'not_checked', checked: 0 });
    expect(second.score).toBeLessThan(100);
    // The first delivery was clean.
    expect(first).toMatchObject({ version: 1, passed: true, score: 100 });
  });

  it('find stale data: readings whose newest month is far behind the load', async () => {
    const check = (await t.call('GET', '/v1/datasets/power_readings/quality', { token: powerClerk })).json.checks[0];
    // The tests' demo readings end in December 2024 (PDS_DEMO_END), long before any load of it.
    expect(ruleOf(check, 'freshness(month, 2 periods)')).toMatchObject({ status: 'failed', checked: 1, violations: 1 });
    expect(ruleOf(check, 'reference(uscc → enterprises.uscc)')).toMatchObject({ status: 'passed', violations: 0 });
  });

  it('report counts only, never a value from the data', async () => {
    const response = await t.call('GET', '/v1/datasets/enterprises/quality', { token: regulator });
    const name = (await t.call('GET', '/v1/datasets/enterprises', { token: regulator })).json;
    expect(name.versions.map((version: { quality: unknown }) => version.quality)).toEqual([
      { score: 100, passed: true },
      { score: response.json.checks[0].score, passed: false },
    ]);
    for (const rule of response.json.checks[0].rules) expect(Object.keys(rule).sort()).toEqual(['checked', 'label', 'rule', 'status', 'violations']);
  });

  it('flag a failing dataset to its source and to regulators, and to no other institution', async () => {
    const flagged = (token: string) => t.call('GET', '/v1/quality-flags', { token }).then((response) => response.json.flags.map((flag: { dataset: string }) => flag.dataset));
    expect(await flagged(marketClerk)).toEqual(['enterprises']);
    expect(await flagged(powerClerk)).toEqual(['power_readings']);
    expect(await flagged(regulator)).toEqual(expect.arrayContaining(['enterprises', 'power_readings', 'water_readings', 'gas_readings', 'transit_trips']));
    expect((await t.call('GET', '/v1/datasets/enterprises/quality', { token: powerClerk })).status).toBe(404);
    expect((await t.call('GET', '/v1/quality-flags', { token: await t.tokenFor('analyst-lingang-analytics') })).status).toBe(403);
  });

  it('record every check in the audit log, a failing one as a flag', async () => {
    const types = (await t.platform.db.select({ eventType: auditLeaves.eventType }).from(auditLeaves)).map((leaf) => leaf.eventType);
    expect(types.filter((type) => type === 'quality.flagged').length).toBeGreaterThanOrEqual(5);
    expect(types).toContain('quality.checked');
    expect(types.filter((type) => type === 'dataset.version-loaded').length).toBe(8);
  });
});

describe('a demo generated now', () => {
  it('passes the readings\' freshness rules: they end with the last whole month before the day it was generated', async () => {
    const now = new Date('2026-11-28T09:00:00+08:00');
    const fresh = await createTestPlatform({ demo: true, now, environment: { PDS_DEMO_END: 'yesterday' } });
    try {
      const token = await fresh.tokenFor('regulator-data-dept');
      for (const dataset of ['power_readings', 'water_readings', 'gas_readings']) {
        const [check] = (await fresh.call('GET', `/v1/datasets/${dataset}/quality`, { token })).json.checks;
        expect(ruleOf(check, 'freshness(month, 2 periods)')).toMatchObject({ status: 'passed', checked: 1, violations: 0 });
        expect(check).toMatchObject({ passed: true, score: 100 });
      }
    } finally {
      await fresh.close();
    }
  }, 120_000);
});

describe('freshness in the catalogue', () => {
  it('shows a dataset whose next delivery is late as overdue, and a static one never', async () => {
    const entries = (await t.call('GET', '/v1/datasets', { token: regulator })).json.datasets;
    const enterprises = entries.find((entry: { id: string }) => entry.id === 'enterprises');
    // The register is updated daily: due one day after its last load, not overdue yet at the load time.
    expect(enterprises.updateOverdue).toBe(false);
    expect(Date.parse(enterprises.nextUpdateDue) - Date.parse(enterprises.versions.at(-1).createdAt)).toBe(86_400_000);
    t.clock.now = new Date(t.clock.now.getTime() + 2 * 86_400_000);
    const later = (await t.call('GET', '/v1/datasets/enterprises', { token: await t.tokenFor('regulator-data-dept') })).json;
    expect(later.updateOverdue).toBe(true);
    t.clock.now = new Date(t.clock.now.getTime() - 2 * 86_400_000);
  });
});

/** A street-light register declaring these rules (each field can be replaced). */
const entry = (qualityRules: unknown[], overrides: Record<string, unknown> = {}) => ({
  id: 'street_lights',
  title: 'Street lights',
  titleZh: '路灯设施',
  description: 'Street lights and their wattage',
  category: 'infrastructure',
  grade: 'L1',
  openData: true,
  sharingType: 'unconditional',
  legalBasis: '《临港新片区公共数据管理办法》第十条',
  updateFrequency: 'monthly',
  privacyUnit: 'light_id',
  columns: [
    { name: 'light_id', type: 'VARCHAR', class: 'attribute', nullable: false, description: 'Light id' },
    { name: 'watts', type: 'INTEGER', class: 'attribute', nullable: true, description: 'Power (W)' },
  ],
  qualityRules,
  ...overrides,
});

describe('quality rules as declared', () => {

  it('are refused when they name an unknown column or do not suit its type', async () => {
    const response = await t.call('POST', '/v1/datasets', {
      token: powerClerk,
      json: entry([{ rule: 'range', column: 'light_id', min: 0 }, { rule: 'not_null', column: 'lumens' }, { rule: 'pattern', column: 'light_id', pattern: '(?=x)' }]),
    });
    expect(response.status).toBe(400);
    const problems = response.json.error.details.map((detail: { problem: string }) => detail.problem).join(' | ');
    expect(problems).toContain('range needs a numeric column');
    expect(problems).toContain('unknown column lumens');
    expect(problems).toContain('RE2');
  });

  it('run on a version loaded over the API and count each kind of defect', async () => {
    const created = await t.call('POST', '/v1/datasets', {
      token: powerClerk,
      json: entry([
        { rule: 'not_null', column: 'watts' },
        { rule: 'range', column: 'watts', min: 10, max: 400 },
        { rule: 'pattern', column: 'light_id', pattern: 'SL-[0-9]{4}' },
        { rule: 'unique', columns: ['light_id'], tolerance: 0.5 },
      ]),
    });
    expect(created.status).toBe(201);
    const csv = 'light_id,watts\nSL-0001,100\nSL-0002,\nSL-0003,900\nSL-03,120\nSL-0001,80\n';
    const loaded = await t.call('POST', '/v1/datasets/street_lights/versions', { token: powerClerk, body: csv, headers: { 'content-type': 'text/csv' } });
    expect(loaded.status).toBe(201);
    expect(loaded.json.quality.passed).toBe(false);
    const check = (await t.call('GET', '/v1/datasets/street_lights/quality', { token: powerClerk })).json.checks[0];
    expect(check.rules.map((rule: RuleResult) => [rule.label, rule.checked, rule.violations, rule.status])).toEqual([
      ['not_null(watts)', 5, 1, 'failed'],
      ['range(watts, 10..400)', 4, 1, 'failed'],
      ['pattern(light_id)', 5, 1, 'failed'],
      // One repeat in five rows is within the declared tolerance of one half.
      ['unique(light_id)', 5, 1, 'passed'],
    ]);
  });
});

describe('completeness across deliveries (art. 9)', () => {
  it("counts the previous version's rows whose key the new version no longer holds", async () => {
    const stations = [
      { name: 'station_id', type: 'VARCHAR', class: 'attribute', nullable: false, description: 'Station id' },
      { name: 'district', type: 'VARCHAR', class: 'attribute', nullable: true, description: 'District' },
    ];
    const rules = [{ rule: 'completeness', columns: ['station_id', 'district'] }, { rule: 'completeness', columns: ['station_id'], tolerance: 0.5 }];
    const created = await t.call('POST', '/v1/datasets', { token: powerClerk, json: entry(rules, { id: 'substations', privacyUnit: 'station_id', columns: stations }) });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const deliver = (csv: string) => t.call('POST', '/v1/datasets/substations/versions', { token: powerClerk, body: csv, headers: { 'content-type': 'text/csv' } });
    // The first delivery has nothing before it to compare with.
    expect((await deliver('station_id,district\nS1,north\nS2,north\nS3,\nS4,south\n')).json.quality).toMatchObject({ passed: true, score: null });
    // The second drops S2, moves S4 to another district and keeps S3's empty district: two of four keys gone by
    // (station, district), one of four by station, within a tolerance of one half.
    const second = await deliver('station_id,district\nS1,north\nS3,\nS4,east\nS5,east\n');
    expect(second.status).toBe(201);
    const [check] = (await t.call('GET', '/v1/datasets/substations/quality', { token: powerClerk })).json.checks;
    expect(check.rules.map((rule: RuleResult) => [rule.label, rule.checked, rule.violations, rule.status])).toEqual([
      ['completeness(station_id, district)', 4, 2, 'failed'],
      ['completeness(station_id)', 4, 1, 'passed'],
    ]);
    expect(check.passed).toBe(false);
  });

  it('is refused when it names a column the dataset does not have', async () => {
    const response = await t.call('POST', '/v1/datasets', { token: powerClerk, json: entry([{ rule: 'completeness', columns: ['light_code'] }], { id: 'street_lights_x' }) });
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.json.error.details)).toContain('unknown column light_code');
  });
});

describe('a rule that cannot run', () => {
  it('is reported as not checked while the other rules still run', async () => {
    const created = await t.call('POST', '/v1/datasets', {
      token: powerClerk,
      json: {
        id: 'meter_boxes', title: 'Meter boxes', titleZh: '电表箱', description: 'Meter boxes', category: 'infrastructure', grade: 'L1', openData: true,
        sharingType: 'unconditional', legalBasis: '《临港新片区公共数据管理办法》第十条', updateFrequency: 'static', privacyUnit: 'box_id',
        columns: [{ name: 'box_id', type: 'VARCHAR', class: 'attribute', nullable: false, description: 'Box id' }],
        // Valid for JavaScript, refused by RE2 (which caps a repetition at 1,000).
        qualityRules: [{ rule: 'pattern', column: 'box_id', pattern: 'B[0-9]{1001}' }, { rule: 'unique', columns: ['box_id'] }],
      },
    });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const loaded = await t.call('POST', '/v1/datasets/meter_boxes/versions', { token: powerClerk, body: 'box_id\nB1\nB1\n', headers: { 'content-type': 'text/csv' } });
    expect(loaded.status).toBe(201);
    const check = (await t.call('GET', '/v1/datasets/meter_boxes/quality', { token: powerClerk })).json.checks[0];
    expect(check.rules.map((rule: RuleResult) => [rule.label, rule.status])).toEqual([
      ['pattern(box_id)', 'not_checked'],
      ['unique(box_id)', 'failed'],
    ]);
  });
});

describe('the quality score', () => {
  it('is the mean pass share of the rules that ran, and absent when none ran', () => {
    const rule = (checked: number, violations: number, status = 'passed') => ({ rule: 'not_null' as const, label: 'x', status: status as 'passed', checked, violations });
    expect(scoreResults([rule(10, 0), rule(10, 5, 'failed')])).toEqual({ score: 75, passed: false });
    expect(scoreResults([rule(0, 0, 'not_checked')])).toEqual({ score: null, passed: true });
  });
});
