import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLeaves } from '../../src/db/schema.js';
import { openDemandsPerPrincipal } from '../../src/governance/open-data-demands.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let analyst: string;
let bank: string;
let admin: string;
let regulator: string;

beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
  analyst = await t.tokenFor('analyst-lingang-analytics');
  bank = await t.tokenFor('consumer-east-sea-bank');
  admin = await t.tokenFor('admin-data-centre');
  regulator = await t.tokenFor('regulator-data-dept');
}, 120_000);
afterAll(() => t?.close());

const demand = (json: Record<string, unknown>, token = analyst) => t.call('POST', '/v1/open-data-demands', { token, json: { subject: '各镇分行业月度用电量（汇总）', scenario: '园区招商选址分析', ...json } });
const answer = (id: string, json: Record<string, unknown>, token = admin) => t.call('POST', `/v1/open-data-demands/${id}/answer`, { token, json });
const listed = async (token: string) => (await t.call('GET', '/v1/open-data-demands', { token })).json.demands as Array<Record<string, any>>;

describe('demands for open data (art. 20)', () => {
  it('are made by anyone signed in, naming the data and the use, and recorded in the audit log', async () => {
    const made = await demand({ dataset: 'power_readings' });
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ dataset: 'power_readings', status: 'open', mine: true, requestedBy: 'analyst-lingang-analytics' });
    expect((await demand({ subject: '企业按行业的存续数量', scenario: '信贷行业投放研究' }, bank)).status).toBe(201);
    const types = (await t.platform.db.select({ type: auditLeaves.eventType }).from(auditLeaves)).map((leaf) => leaf.type);
    expect(types.filter((type) => type === 'open-data.demanded').length).toBeGreaterThanOrEqual(2);
  });

  it('are listed for everyone with how many name the same data, but who made each only for its maker, the data centre and regulators', async () => {
    const first = (await demand({ dataset: 'water_readings' })).json;
    await demand({ dataset: 'water_readings', subject: '各镇月度用水量', scenario: '节水考核' }, bank);
    const seenByBank = (await listed(bank)).find((entry) => entry.id === first.id)!;
    expect(seenByBank).toMatchObject({ dataset: 'water_readings', demandsForDataset: 2, mine: false, requestedBy: null, subject: first.subject });
    expect((await listed(analyst)).find((entry) => entry.id === first.id)).toMatchObject({ mine: true, requestedBy: 'analyst-lingang-analytics' });
    for (const token of [admin, regulator]) expect((await listed(token)).find((entry) => entry.id === first.id)!.requestedBy).toBe('analyst-lingang-analytics');
    expect(JSON.stringify(await listed(bank))).not.toContain('analyst-lingang-analytics');
  });

  it('are refused for data that is open already, and for a dataset the catalogue does not hold', async () => {
    const open = await demand({ dataset: 'bus_routes' });
    expect(open.status).toBe(409);
    expect(open.json.error.code).toBe('ALREADY_OPEN');
    expect((await demand({ dataset: 'no_such_data' })).status).toBe(404);
    expect((await demand({ subject: ' ', scenario: 'x' })).json.error.code).toBe('VALIDATION_FAILED');
  });

  it('are refused when their text holds a resident ID number or a mobile number, which the refusal does not repeat, and nothing is recorded', async () => {
    const before = (await listed(admin)).length;
    const withId = await demand({ scenario: '核实 310115199003071230 名下企业' });
    expect(withId.status).toBe(400);
    expect(withId.json.error.details).toEqual([expect.objectContaining({ path: 'scenario', problem: expect.stringContaining('resident ID number') })]);
    expect(JSON.stringify(withId.json)).not.toContain('310115199003071230');
    expect((await demand({ subject: '联系人 138-1234-5678' })).json.error.details[0]).toMatchObject({ path: 'subject', problem: expect.stringContaining('mobile number') });
    expect((await listed(admin)).length).toBe(before);
    const open = (await demand({})).json;
    expect((await answer(open.id, { outcome: 'planned', answer: '请致电 13812345678' })).json.error.code).toBe('VALIDATION_FAILED');
  });

  it('are answered once, by the data centre only: planned, declined with a reason, or met by open data', async () => {
    const planned = (await demand({ dataset: 'gas_readings' })).json;
    expect((await answer(planned.id, { outcome: 'planned', answer: '纳入明年开放计划' }, regulator)).status).toBe(403);
    expect((await answer(planned.id, { outcome: 'declined' })).json.error.code).toBe('VALIDATION_FAILED');
    expect((await answer(planned.id, { outcome: 'planned', answer: '纳入明年开放计划' })).json).toMatchObject({ status: 'planned', answer: '纳入明年开放计划' });
    expect((await answer(planned.id, { outcome: 'declined', answer: '改变主意' })).json.error.code).toBe('INVALID_TRANSITION');

    const met = (await demand({ subject: '公交线路与站点', scenario: '出行应用' }, bank)).json;
    // Met only by an open catalogue entry.
    expect((await answer(met.id, { outcome: 'met', dataset: 'power_readings' })).json.error.details).toEqual([{ path: 'dataset', problem: 'is not open data' }]);
    expect((await answer(met.id, { outcome: 'met', dataset: 'bus_routes' })).json).toMatchObject({ status: 'met', metBy: 'bus_routes' });
    expect((await listed(bank)).find((entry) => entry.id === met.id)).toMatchObject({ status: 'met', metBy: 'bus_routes', mine: true });
    expect((await answer('odd_missing', { outcome: 'planned', answer: 'x' })).status).toBe(404);
  });

  it(`hold at most ${openDemandsPerPrincipal} unanswered demands of one account at a time`, async () => {
    const consumer = await t.tokenFor('consumer-east-sea-bank');
    const open = (await listed(admin)).filter((entry) => entry.requestedBy === 'consumer-east-sea-bank' && entry.status === 'open').length;
    for (let index = open; index < openDemandsPerPrincipal; index++) expect((await demand({ subject: `数据 ${index}`, scenario: '测试' }, consumer)).status).toBe(201);
    const refused = await demand({ subject: '再一个', scenario: '测试' }, consumer);
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('TOO_MANY_OPEN_DEMANDS');
    // Sent at once, from a second API process too, one account's demands still stop at the limit.
    const oldest = (await listed(admin)).filter((entry) => entry.requestedBy === 'consumer-east-sea-bank' && entry.status === 'open').at(-1)!;
    await answer(oldest.id, { outcome: 'planned', answer: '纳入开放计划' });
    const second = await t.anotherApiProcess();
    try {
      const sent = await Promise.all([0, 1, 2, 3].map((index) => (index % 2 ? second.call : t.call)('POST', '/v1/open-data-demands', { token: consumer, json: { subject: `同时 ${index}`, scenario: '测试' } })));
      expect(sent.map((response) => response.status).sort()).toEqual([201, 409, 409, 409]);
    } finally {
      await second.close();
    }
    // An answer makes room for another.
    const earliest = (await listed(admin)).filter((entry) => entry.requestedBy === 'consumer-east-sea-bank' && entry.status === 'open').at(-1)!;
    await answer(earliest.id, { outcome: 'declined', answer: '涉及个人信息，不予开放' });
    expect((await demand({ subject: '再一个', scenario: '测试' }, consumer)).status).toBe(201);
  });
});
