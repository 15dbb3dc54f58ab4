import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { auditLeaves, jobs, principals } from '../../src/db/schema.js';
import { runJob } from '../../src/jobs/run-job.js';
import { createSandboxPool } from '../../src/sandbox/sandbox-pool.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let waterClerk: string;
let powerClerk: string;
let admin: string;
let regulator: string;

beforeAll(async () => {
  t = await createTestPlatform({ demo: true, now: new Date('2026-11-27T02:00:00Z') });
  await t.platform.db.insert(principals).values({ id: 'clerk-water', role: 'institution', displayName: '自来水公司 · 数据专员', institutionId: 'water-utility' });
  waterClerk = await t.tokenFor('clerk-water');
  powerClerk = await t.tokenFor('clerk-power-utility');
  admin = await t.tokenFor('admin-data-centre');
  regulator = await t.tokenFor('regulator-data-dept');
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const hydrants = {
  id: 'fire_hydrants',
  title: 'Fire hydrants',
  titleZh: '消防栓',
  description: 'Hydrants on the water network with their pressure class',
  category: 'infrastructure',
  grade: 'L1',
  openData: true,
  sharingType: 'unconditional',
  legalBasis: '《临港新片区公共数据管理办法》第八条',
  updateFrequency: 'quarterly',
  privacyUnit: 'hydrant_id',
  columns: [
    { name: 'hydrant_id', type: 'VARCHAR', class: 'attribute', nullable: false, description: 'Hydrant number' },
    { name: 'pressure_class', type: 'VARCHAR', nullable: false, description: 'Pressure class' },
  ],
};
const system = {
  kind: 'system',
  name: '智慧水务管网系统',
  description: '供水管网设备与巡检',
  system: { ownerDepartment: '管网运行部', deployment: '临港政务云', liveSince: '2024-06-01' },
  tables: [hydrants],
  unstructured: [{ name: '巡检照片', format: 'JPEG', volume: '约 2 TB' }],
  procured: [{ name: '第三方管网测绘数据', supplier: '某测绘公司', grade: 'L2' }],
};

describe('registration (art. 8)', () => {
  it('runs a technical review that names every missing grade, class and procurement detail', async () => {
    const response = await t.call('POST', '/v1/registrations', { token: waterClerk, json: system });
    expect(response.status).toBe(201);
    expect(response.json.status).toBe('submitted');
    expect(response.json.findings.map((finding: { path: string }) => finding.path).sort()).toEqual(['procured.0.contract', 'tables.0.columns.1.class', 'unstructured.0.grade']);
  });

  it('says a field left out of a table is required, and names the rule a field written wrongly breaks', async () => {
    const table = { ...hydrants, id: 'hydrant_inspections', grade: 'L9', columns: [{ name: 'hydrant_id', type: 'VARCHAR', class: 'attribute', nullable: false }] };
    const response = await t.call('POST', '/v1/registrations', { token: waterClerk, json: { ...system, tables: [table] } });
    const byPath = Object.fromEntries(response.json.findings.map((finding: { path: string; code: string; problem: string }) => [finding.path, finding]));
    expect(byPath['tables.0.columns.0.description']).toMatchObject({ code: 'REQUIRED', problem: 'is required' });
    expect(byPath['tables.0.grade'].code).toBe('INVALID');
    expect(byPath['tables.0.grade'].problem).toMatch(/expected one of/);
  });

  it('cannot be approved while the review finds problems; it is returned with reasons and resubmitted', async () => {
    const submitted = (await t.call('POST', '/v1/registrations', { token: waterClerk, json: system })).json;
    const refused = await t.call('POST', `/v1/registrations/${submitted.id}/review`, { token: admin, json: { decision: 'approve' } });
    expect(refused.status).toBe(422);
    expect(refused.json.error.code).toBe('REGISTRATION_INCOMPLETE');
    expect((await t.call('POST', `/v1/registrations/${submitted.id}/review`, { token: admin, json: { decision: 'return' } })).status).toBe(400);
    const returned = await t.call('POST', `/v1/registrations/${submitted.id}/review`, { token: admin, json: { decision: 'return', reasons: ['补全字段分类、非结构化数据分级和外采合同'] } });
    expect(returned.json).toMatchObject({ status: 'returned', returnReasons: ['补全字段分类、非结构化数据分级和外采合同'] });
    expect((await t.call('PUT', `/v1/registrations/${submitted.id}`, { token: powerClerk, json: system })).status).toBe(404);

    const corrected = {
      ...system,
      tables: [{ ...hydrants, columns: [hydrants.columns[0], { ...hydrants.columns[1], class: 'attribute' }] }],
      unstructured: [{ ...system.unstructured[0], grade: 'L2' }],
      procured: [{ ...system.procured[0], contract: 'LG-WS-2024-017' }],
    };
    const resubmitted = await t.call('PUT', `/v1/registrations/${submitted.id}`, { token: waterClerk, json: corrected });
    expect(resubmitted.json).toMatchObject({ status: 'submitted', submission: 2, findings: [] });
    expect((await t.call('POST', `/v1/registrations/${submitted.id}/review`, { token: waterClerk, json: { decision: 'approve' } })).status).toBe(403);

    const filed = await t.call('POST', `/v1/registrations/${submitted.id}/review`, { token: admin, json: { decision: 'approve' } });
    expect(filed.json.status).toBe('filed');
    // The demo's own registrations were filed first this year; this one takes the next number.
    expect(filed.json.filing).toMatchObject({ number: expect.stringMatching(/^LG-DR-2026-\d{5}$/), with: 'lingang-committee' });
    const numbers = (await t.call('GET', '/v1/registrations?status=filed', { token: regulator })).json.registrations.map((row: { filing: { number: string } }) => row.filing.number).sort();
    expect(numbers.at(-1)).toBe(filed.json.filing.number);
    expect(new Set(numbers).size).toBe(numbers.length);
    // The approved tables are in the catalogue, as revision 1 of their history, from the registering institution.
    const entry = await t.call('GET', '/v1/datasets/fire_hydrants', { token: regulator });
    expect(entry.json).toMatchObject({ institution: { id: 'water-utility' }, catalogueVersion: 1 });
    const committee = (await t.call('GET', '/v1/registrations?status=filed', { token: regulator })).json.registrations;
    expect(committee.map((row: { id: string }) => row.id)).toContain(submitted.id);
    const leaves = (await t.platform.db.select({ eventType: auditLeaves.eventType }).from(auditLeaves)).map((leaf) => leaf.eventType);
    expect(leaves).toEqual(expect.arrayContaining(['registration.submitted', 'registration.returned', 'registration.filed', 'catalogue.registered']));
  });

  it('shows an institution only its own registrations', async () => {
    const seen = (await t.call('GET', '/v1/registrations', { token: powerClerk })).json.registrations;
    // The power utility's own (the demo's filed registration of its readings), never the water company's.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((row: { institution: string }) => row.institution === 'power-utility')).toBe(true);
  });
});

describe('catalogue versions (art. 10)', () => {
  const propose = (token: string, dataset: string, changes: Record<string, unknown>, note = '年度目录复核') => t.call('POST', `/v1/datasets/${dataset}/revisions`, { token, json: { note, changes } });
  const review = (token: string, dataset: string, revision: number, json: Record<string, unknown>) => t.call('POST', `/v1/datasets/${dataset}/revisions/${revision}/review`, { token, json });

  it('records a change as a proposed revision with a readable diff, and changes nothing until it is published', async () => {
    const proposed = await propose(powerClerk, 'power_readings', { sharingType: 'unconditional', sharingBasis: null, columns: undefined, description: 'Monthly metered power use per account (revised)' });
    expect(proposed.status).toBe(201);
    expect(proposed.json).toMatchObject({ revision: 2, status: 'proposed' });
    const fields = proposed.json.diff.map((entry: { field: string }) => entry.field);
    expect(fields).toEqual(expect.arrayContaining(['description', 'sharingType', 'sharingBasis']));
    expect(proposed.json.diff.find((entry: { field: string }) => entry.field === 'sharingType')).toEqual({ field: 'sharingType', from: 'conditional', to: 'unconditional' });
    expect((await t.call('GET', '/v1/datasets/power_readings', { token: regulator })).json).toMatchObject({ sharingType: 'conditional', catalogueVersion: 1 });

    expect((await review(powerClerk, 'power_readings', 2, { decision: 'publish' })).status).toBe(403);
    const published = await review(admin, 'power_readings', 2, { decision: 'publish' });
    expect(published.json.status).toBe('published');
    expect((await t.call('GET', '/v1/datasets/power_readings', { token: regulator })).json).toMatchObject({ sharingType: 'unconditional', catalogueVersion: 2 });
    const history = (await t.call('GET', '/v1/datasets/power_readings/revisions', { token: await t.tokenFor('analyst-lingang-analytics') })).json.revisions;
    expect(history.map((entry: { revision: number; status: string }) => [entry.revision, entry.status])).toEqual([[1, 'published'], [2, 'published']]);
  });

  it('describes a column change attribute by attribute', async () => {
    const entry = (await t.call('GET', '/v1/datasets/water_readings', { token: regulator })).json;
    const columns = entry.columns.map((column: { name: string; description: string }) => (column.name === 'town' ? { ...column, description: '所属镇（街道）' } : column));
    const proposed = await propose(await t.tokenFor('clerk-water'), 'water_readings', { columns });
    expect(proposed.json.diff).toEqual([{ field: 'columns.town.description', from: entry.columns.find((column: { name: string }) => column.name === 'town').description, to: '所属镇（街道）' }]);
    const rejected = await review(regulator, 'water_readings', proposed.json.revision, { decision: 'reject', reason: '描述应保留英文' });
    expect(rejected.json).toMatchObject({ status: 'rejected', reviewReason: '描述应保留英文' });
  });

  it('refuses structural changes once data is loaded, changes to someone else\'s entry, and empty changes', async () => {
    const entry = (await t.call('GET', '/v1/datasets/gas_readings', { token: regulator })).json;
    const renamed = entry.columns.map((column: { name: string }) => (column.name === 'town' ? { ...column, name: 'district' } : column));
    const structural = await propose(powerClerk, 'power_readings', { uniqueKey: ['account_id'] });
    expect(structural.json.error.code).toBe('CHANGE_NEEDS_NEW_DATASET');
    expect((await propose(powerClerk, 'gas_readings', { columns: renamed })).status).toBe(403);
    expect((await propose(powerClerk, 'power_readings', { title: 'Monthly power readings' })).json.error.code).toBe('NO_CHANGE');
  });

  it('refuses to class a loaded column of resident ID numbers as an attribute, naming the column, and lets a stricter class through', async () => {
    await t.platform.db.insert(principals).values({ id: 'clerk-transit', role: 'institution', displayName: '公交公司 · 数据专员', institutionId: 'transit-company' }).onConflictDoNothing();
    const clerk = await t.tokenFor('clerk-transit');
    const entry = (await t.call('GET', '/v1/datasets/transit_trips', { token: regulator })).json;
    const reclassed = (name: string, to: string) => entry.columns.map((column: { name: string; class: string }) => (column.name === name ? { ...column, class: to } : column));
    const refused = await propose(clerk, 'transit_trips', { columns: reclassed('resident_id', 'attribute') });
    expect(refused.status).toBe(422);
    expect(refused.json.error.code).toBe('COLUMN_CLASS_SUSPECT');
    expect(refused.json.error.details).toEqual([{ path: 'resident_id', problem: expect.stringMatching(/^\d+ of \d+ value\(s\) look like resident ID numbers, but the column is classed attribute/) }]);
    const revisions = (await t.call('GET', '/v1/datasets/transit_trips/revisions', { token: regulator })).json.revisions;
    expect(revisions.filter((revision: { status: string }) => revision.status === 'proposed')).toEqual([]);
    const stricter = await propose(clerk, 'transit_trips', { columns: reclassed('fare', 'sensitive') });
    expect(stricter.status).toBe(201);
    expect((await review(admin, 'transit_trips', stricter.json.revision, { decision: 'reject', reason: '票价不是敏感信息' })).json.status).toBe('rejected');
  });

  it('lets only one of several proposals made at the same moment through', async () => {
    const water = await Promise.all(['A', 'B', 'C'].map((suffix) => propose(waterClerk, 'water_readings', { title: `Water readings ${suffix}` })));
    expect(water.map((response) => response.status).sort()).toEqual([201, 409, 409]);
  });

  it('lists proposals under review across the catalogue for reviewers, oldest first, and a source\'s own by institution', async () => {
    await t.platform.db.insert(principals).values({ id: 'clerk-transit', role: 'institution', displayName: '公交公司 · 数据专员', institutionId: 'transit-company' }).onConflictDoNothing();
    const transit = await propose(await t.tokenFor('clerk-transit'), 'bus_routes', { category: 'public transport' }, '类别按新目录调整');
    const queue = (await t.call('GET', '/v1/catalogue-revisions?status=proposed', { token: admin })).json.revisions;
    const transitEntry = queue.find((entry: { dataset: string }) => entry.dataset === 'bus_routes');
    expect(transitEntry).toMatchObject({ revision: transit.json.revision, status: 'proposed', note: '类别按新目录调整', institution: 'transit-company', datasetTitleZh: expect.any(String) });
    expect(transitEntry.diff).toEqual([{ field: 'category', from: expect.any(String), to: 'public transport' }]);
    expect(queue.every((entry: { status: string }) => entry.status === 'proposed')).toBe(true);
    const created = queue.map((entry: { createdAt: string }) => entry.createdAt);
    expect(created).toEqual([...created].sort());

    const own = (await t.call('GET', '/v1/catalogue-revisions?institution=power-utility', { token: powerClerk })).json.revisions;
    expect(own.length).toBeGreaterThan(0);
    expect(own.every((entry: { institution: string }) => entry.institution === 'power-utility')).toBe(true);
    // Decided revisions follow those under review, newest decision first.
    const decided = own.filter((entry: { status: string }) => entry.status !== 'proposed').map((entry: { decidedAt: string }) => entry.decidedAt);
    expect(decided).toEqual([...decided].sort().reverse());
    await review(admin, 'bus_routes', transit.json.revision, { decision: 'reject', reason: '类别沿用原目录' });
  });

  it('refuses an unknown status in the revision list with the parameter named', async () => {
    const response = await t.call('GET', '/v1/catalogue-revisions?status=pending', { token: admin });
    expect(response.status).toBe(400);
    expect(response.json.error.details[0].path).toBe('status');
  });

  it('keeps one proposal under review at a time and never lets a reviewer decide twice', async () => {
    const first = await propose(powerClerk, 'power_readings', { title: 'Power readings by month' });
    expect((await propose(powerClerk, 'power_readings', { title: 'Power readings' })).json.error.code).toBe('CONFLICT');
    await review(regulator, 'power_readings', first.json.revision, { decision: 'publish' });
    expect((await review(admin, 'power_readings', first.json.revision, { decision: 'publish' })).json.error.code).toBe('INVALID_TRANSITION');
  });

  it('keeps a description in Chinese beside the registered one, for the entry and each column, revised like any other field after data is loaded', async () => {
    const entry = (await t.call('GET', '/v1/datasets/power_readings', { token: regulator })).json;
    const kwh = (columns: Array<{ name: string; descriptionZh?: string }>) => columns.find((column) => column.name === 'kwh')!.descriptionZh;
    expect(entry.descriptionZh).toBe('每个居民和企业户号的月度用电量与电费，24个月。');
    expect(kwh(entry.columns)).toBe('当月计量用量（kWh）');
    const columns = entry.columns.map((column: { name: string }) => (column.name === 'kwh' ? { ...column, descriptionZh: '当月抄表用电量（千瓦时）' } : column));
    const proposed = await propose(powerClerk, 'power_readings', { descriptionZh: '居民与企业户号的月度用电与电费', columns });
    expect(proposed.status).toBe(201);
    expect(proposed.json.diff).toEqual([
      { field: 'descriptionZh', from: entry.descriptionZh, to: '居民与企业户号的月度用电与电费' },
      { field: 'columns.kwh.descriptionZh', from: '当月计量用量（kWh）', to: '当月抄表用电量（千瓦时）' },
    ]);
    await review(admin, 'power_readings', proposed.json.revision, { decision: 'publish' });
    const revised = (await t.call('GET', '/v1/datasets/power_readings', { token: regulator })).json;
    expect([revised.descriptionZh, kwh(revised.columns), revised.description]).toEqual(['居民与企业户号的月度用电与电费', '当月抄表用电量（千瓦时）', entry.description]);
    // Taking it away leaves the registered description, which the console then shows in every language.
    const removed = await propose(powerClerk, 'power_readings', { descriptionZh: null });
    expect(removed.json.diff).toEqual([{ field: 'descriptionZh', from: '居民与企业户号的月度用电与电费', to: null }]);
    await review(admin, 'power_readings', removed.json.revision, { decision: 'publish' });
    expect((await t.call('GET', '/v1/datasets/power_readings', { token: regulator })).json.descriptionZh).toBeNull();
  });
});

describe('jobs run and are released only under what they were checked under: catalogue entries and the disclosure policy', () => {
  const propose = (token: string, dataset: string, changes: Record<string, unknown>) => t.call('POST', `/v1/datasets/${dataset}/revisions`, { token, json: { note: '目录复核', changes } });
  const publish = async (token: string, dataset: string, changes: Record<string, unknown>) => {
    const proposed = await propose(token, dataset, changes);
    expect(proposed.status).toBe(201);
    expect((await t.call('POST', `/v1/datasets/${dataset}/revisions/${proposed.json.revision}/review`, { token: admin, json: { decision: 'publish' } })).json.status).toBe('published');
  };
  const submit = async (dataset: string, sql: string) => {
    const submitted = await t.call('POST', '/v1/jobs', { token: await t.tokenFor('analyst-lingang-analytics'), json: { datasets: [dataset], purpose: 'catalogue test', sql } });
    expect(submitted.status).toBe(201);
    return submitted.json.id as string;
  };
  const run = async (id: string) => {
    const [queued] = await t.platform.db.select().from(jobs).where(eq(jobs.id, id));
    return t.rerunWithPlan(id, queued!.plan);
  };
  const reviewed = async (id: string) =>
    (await t.call('GET', '/v1/audit/entries?type=review.recorded&start=0&end=10000', { token: regulator })).json.entries.filter((entry: { event: { job: string } }) => entry.event.job === id);
  let gasClerk: string;
  beforeAll(async () => {
    await t.platform.db.insert(principals).values({ id: 'clerk-gas', role: 'institution', displayName: '燃气公司 · 数据专员', institutionId: 'gas-utility' });
    gasClerk = await t.tokenFor('clerk-gas');
  });

  it('a job queued before its dataset was regraded does not run, and says to submit it again', async () => {
    const id = await submit('gas_readings', 'SELECT town, count(*) AS readings FROM gas_readings GROUP BY town');
    await publish(gasClerk, 'gas_readings', { grade: 'L2' });
    expect(await run(id)).toMatchObject({ status: 'failed', statusCode: 'CATALOGUE_CHANGED', output: null });
  });

  it('a revision of what analysis does not read (a description) leaves a queued job to run', async () => {
    const id = await submit('gas_readings', 'SELECT town, count(*) AS readings FROM gas_readings GROUP BY town');
    await publish(gasClerk, 'gas_readings', { description: 'Monthly gas use per account (revised)' });
    expect((await run(id))?.status).not.toBe('failed');
  });

  it('an output held for review is not released after a column was reclassified; the approval is refused and not recorded', async () => {
    const id = await submit('power_readings', 'SELECT town, count(*) AS readings FROM power_readings GROUP BY town');
    expect((await run(id))?.status).toBe('in_review');
    const entry = (await t.call('GET', '/v1/datasets/power_readings', { token: regulator })).json;
    await publish(powerClerk, 'power_readings', { columns: entry.columns.map((column: { name: string; class: string }) => (column.name === 'town' ? { ...column, class: 'quasi_identifier' } : column)) });
    const approval = await t.call('POST', `/v1/reviews/${id}`, { token: regulator, json: { decision: 'approve', reason: 'no disclosure risk seen' } });
    expect(approval.status).toBe(409);
    expect(approval.json.error.code).toBe('CATALOGUE_CHANGED');
    expect((await t.platform.db.select().from(jobs).where(eq(jobs.id, id)))[0]).toMatchObject({ status: 'in_review', receipt: null });
    expect(await reviewed(id)).toEqual([]);
    const queued = (await t.call('GET', '/v1/reviews', { token: regulator })).json.reviews.find((review: { job: { id: string } }) => review.job.id === id);
    expect(queued.releaseBlocked).toMatchObject({ code: 'CATALOGUE_CHANGED', reason: expect.stringContaining('power_readings') });
    expect((await t.call('POST', `/v1/reviews/${id}`, { token: regulator, json: { decision: 'withhold', reason: 'checked under the old entry' } })).json.status).toBe('withheld');
  });

  /** As a process started with another policy file would see it. */
  async function underAnotherPolicy<T>(action: () => Promise<T>): Promise<T> {
    const policy = t.platform.disclosurePolicy as { hash: string };
    const saved = policy.hash;
    policy.hash = 'another-policy';
    try {
      return await action();
    } finally {
      policy.hash = saved;
    }
  }

  it('a job accepted under another disclosure policy does not run', async () => {
    const id = await submit('power_readings', 'SELECT town, count(*) AS readings FROM power_readings GROUP BY town');
    expect(await underAnotherPolicy(() => run(id))).toMatchObject({ status: 'failed', statusCode: 'POLICY_CHANGED', output: null });
  });

  it('an output checked under another disclosure policy is not released; the approval is refused and not recorded', async () => {
    const id = await submit('power_readings', 'SELECT month, count(*) AS readings FROM power_readings GROUP BY month');
    expect((await run(id))?.status).toBe('in_review');
    const approval = await underAnotherPolicy(() => t.call('POST', `/v1/reviews/${id}`, { token: regulator, json: { decision: 'approve', reason: 'no disclosure risk seen' } }));
    expect(approval.json.error.code).toBe('POLICY_CHANGED');
    expect(await reviewed(id)).toEqual([]);
    expect((await t.call('POST', `/v1/reviews/${id}`, { token: regulator, json: { decision: 'approve', reason: 'no disclosure risk seen' } })).json.status).toBe('released');
  });

  it('rows of open data closed while the job ran are discarded, not released', async () => {
    await t.platform.db.insert(principals).values({ id: 'clerk-transit-2', role: 'institution', displayName: '公交公司 · 数据专员', institutionId: 'transit-company' }).onConflictDoNothing();
    const transitClerk = await t.tokenFor('clerk-transit-2');
    const id = await submit('bus_routes', 'SELECT route_id, stop_seq FROM bus_routes');
    const entry = (await t.call('GET', '/v1/datasets/bus_routes', { token: regulator })).json;
    // Closed data needs a privacy unit that names someone; the route is it here.
    const closed = { openData: false, columns: entry.columns.map((column: { name: string }) => (column.name === 'route_id' ? { ...column, class: 'direct_identifier' } : column)) };
    const pool = createSandboxPool({ size: 1 });
    // The source closes its open data after the sandbox has answered and before the rows are released.
    const closingPool = {
      ...pool,
      run: async (...args: Parameters<typeof pool.run>) => {
        const outcome = await pool.run(...args);
        await publish(transitClerk, 'bus_routes', closed);
        return outcome;
      },
    };
    try {
      const { db, store, disclosurePolicy, keys, clock } = t.platform;
      await runJob({ db, store, pool: closingPool, disclosurePolicy, keys, clock }, id);
    } finally {
      await pool.close();
    }
    expect((await t.platform.db.select().from(jobs).where(eq(jobs.id, id)))[0]).toMatchObject({ status: 'failed', statusCode: 'CATALOGUE_CHANGED', output: null, receipt: null });
  });
});
