import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { principals } from '../../src/db/schema.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

// Friday 18 September 2026, 10:00 in Shanghai: the Mid-Autumn (25–27 Sep) and National Day (1–7 Oct) holidays
// fall inside the deadlines, and Sunday 20 September is a working day.
const friday = new Date('2026-09-18T02:00:00Z');
let t: TestPlatform;
let powerClerk: string;
let marketClerk: string;
let regulator: string;

beforeAll(async () => {
  t = await createTestPlatform({ demo: true, now: friday });
  await t.platform.db.insert(principals).values({ id: 'clerk-market-regulator', role: 'institution', displayName: '市场监管局 · 数据专员', institutionId: 'market-regulator' });
  powerClerk = await t.tokenFor('clerk-power-utility');
  marketClerk = await t.tokenFor('clerk-market-regulator');
  regulator = await t.tokenFor('regulator-data-dept');
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const request = (token: string, dataset: string) =>
  t.call('POST', '/v1/sharing-requests', { token, json: { dataset, duty: '核实用电企业登记信息（法定职责）', scenario: '企业用电报装审核' } });
const decide = (token: string, id: string, json: Record<string, string>) => t.call('POST', `/v1/sharing-requests/${id}/decision`, { token, json });

describe('sharing requests between public bodies', () => {
  it('gives unconditional data five working days, counting the Sunday worked', async () => {
    const response = await request(powerClerk, 'enterprises');
    expect(response.status).toBe(201);
    expect(response.json).toMatchObject({ sharingType: 'unconditional', status: 'pending', dueOn: '2026-09-24', overdue: false });
    const confirmed = await decide(marketClerk, response.json.id, { decision: 'approve' });
    expect(confirmed.json).toMatchObject({ status: 'approved', answeredOnTime: true });
  });

  it('gives conditional data ten working days around the holidays and needs both the committee and the source', async () => {
    const response = await request(marketClerk, 'power_readings');
    expect(response.json).toMatchObject({ sharingType: 'conditional', dueOn: '2026-10-09' });
    const bySource = await decide(powerClerk, response.json.id, { decision: 'approve' });
    expect(bySource.json.status).toBe('pending');
    const byCommittee = await decide(regulator, response.json.id, { decision: 'approve' });
    expect(byCommittee.json).toMatchObject({ status: 'approved', sourceDecision: 'approve', committeeDecision: 'approve' });
  });

  it('refuses a refusal that gives no legal basis, and shows a complete one to the requester', async () => {
    const response = await request(marketClerk, 'power_readings');
    const bare = await decide(powerClerk, response.json.id, { decision: 'refuse', reason: '涉及个人信息' });
    expect(bare.status).toBe(400);
    const refused = await decide(powerClerk, response.json.id, { decision: 'refuse', reason: '申请范围超出履职需要', legalBasis: '《临港新片区公共数据管理办法》第十六条' });
    expect(refused.json.status).toBe('refused');
    const seen = (await t.call('GET', '/v1/sharing-requests', { token: marketClerk })).json.requests.find((entry: { id: string }) => entry.id === response.json.id);
    expect(seen.refusal).toEqual({ reason: '申请范围超出履职需要', legalBasis: '《临港新片区公共数据管理办法》第十六条' });
  });

  it('shows regulators an unanswered request as overdue after its deadline, and records a late answer as late', async () => {
    const response = await request(powerClerk, 'enterprises');
    t.clock.now = new Date('2026-09-25T02:00:00Z');
    const overdue = (await t.call('GET', '/v1/sharing-requests?overdue=true', { token: await t.tokenFor('regulator-data-dept') })).json.requests;
    expect(overdue.map((entry: { id: string }) => entry.id)).toContain(response.json.id);
    const late = await decide(await t.tokenFor('clerk-market-regulator'), response.json.id, { decision: 'approve' });
    expect(late.json).toMatchObject({ status: 'approved', answeredOnTime: false, overdue: false });
    t.clock.now = friday;
  });

  it('refuses at once data that is not shared', async () => {
    const response = await request(powerClerk, 'transit_trips');
    expect(response.status).toBe(422);
    expect(response.json.error.code).toBe('NOT_SHAREABLE');
  });

  it('lets only the source decide unconditional requests, and hides them from uninvolved institutions', async () => {
    const response = await request(powerClerk, 'enterprises');
    expect((await decide(regulator, response.json.id, { decision: 'approve' })).status).toBe(403);
    await t.platform.db.insert(principals).values({ id: 'clerk-water', role: 'institution', displayName: 'water', institutionId: 'water-utility' });
    expect((await decide(await t.tokenFor('clerk-water'), response.json.id, { decision: 'approve' })).status).toBe(404);
    const visible = (await t.call('GET', '/v1/sharing-requests', { token: await t.tokenFor('clerk-water') })).json.requests;
    expect(visible).toEqual([]);
  });

  it('never lets an operator request shared data', async () => {
    const response = await request(await t.tokenFor('analyst-lingang-analytics'), 'enterprises');
    expect(response.status).toBe(403);
  });
});

describe('the supervision report', () => {
  it('counts, per institution, sharing answered on time and late, refusals and catalogue completeness', async () => {
    // As of the day of the late answer: the report reads the log up to its end date, and the clock was set back.
    t.clock.now = new Date('2026-09-25T03:00:00Z');
    const report = await t.call('GET', '/v1/reports/supervision', { token: await t.tokenFor('regulator-data-dept') });
    t.clock.now = friday;
    expect(report.status).toBe(200);
    const market = report.json.institutions.find((row: { institution: string }) => row.institution === 'market-regulator');
    const power = report.json.institutions.find((row: { institution: string }) => row.institution === 'power-utility');
    // market-regulator is the source of enterprises: one confirmed on time, one late, one still pending.
    expect(market).toMatchObject({ sharingAnsweredOnTime: 1, sharingAnsweredLate: 1, refusalsWithoutLegalBasis: 0, datasetsRegistered: 1, datasetsWithData: 1, catalogueCompleteness: 1 });
    expect(power).toMatchObject({ sharingReceived: 2, sharingRefused: 1, sharingAnsweredOnTime: 2 });
    expect(market.disputesReceived).toBe(0);
  });

  it('is also CSV, and only for regulators', async () => {
    const csv = await t.call('GET', '/v1/reports/supervision?format=csv', { token: regulator });
    expect(csv.text.split('\r\n')[0]).toBe(
      'institution,nameZh,datasetsRegistered,datasetsWithoutFiling,datasetsWithData,catalogueCompleteness,datasetsStale,qualityScore,qualityFailing,sharingReceived,sharingAnsweredOnTime,sharingAnsweredLate,sharingOverdue,sharingRefused,refusalsWithoutLegalBasis,sharingRequested,disputesReceived,disputesHandledOnTime,disputesHandledLate,disputesOverdue,incidentsOnItsData,externalDeliveriesOfItsData,openDataDemandsOnItsData',
    );
    expect((await t.call('GET', '/v1/reports/supervision', { token: powerClerk })).status).toBe(403);
  });
});
