import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { auditLeaves, principals } from '../../src/db/schema.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

// Monday 2 November 2026, 10:00 in Shanghai.
const monday = new Date('2026-11-02T02:00:00Z');
const day = 86_400_000;
let t: TestPlatform;
let powerClerk: string;
let marketClerk: string;
let regulator: string;
let admin: string;

/** Moves the frozen clock, and mints fresh tokens at the new time (a token minted months ago has expired). */
async function at(time: Date) {
  t.clock.now = time;
  powerClerk = await t.tokenFor('clerk-power-utility');
  marketClerk = await t.tokenFor('clerk-market-regulator');
  regulator = await t.tokenFor('regulator-data-dept');
  admin = await t.tokenFor('admin-data-centre');
}

beforeAll(async () => {
  t = await createTestPlatform({ demo: true, now: monday });
  await t.platform.db.insert(principals).values([
    { id: 'clerk-market-regulator', role: 'institution', displayName: '市场监管局 · 数据专员', institutionId: 'market-regulator' },
    { id: 'clerk-water', role: 'institution', displayName: '自来水公司 · 数据专员', institutionId: 'water-utility' },
  ]);
  await at(monday);
}, 120_000);

afterEach(async () => {
  await at(monday);
});

afterAll(async () => {
  await t?.close();
});

/** The power utility asks the market regulator for three columns of the enterprise register, which confirms. */
async function openEnterpriseChannel(): Promise<string> {
  const request = await t.call('POST', '/v1/sharing-requests', {
    token: powerClerk,
    json: { dataset: 'enterprises', columns: ['uscc', 'name', 'status'], duty: '核实用电企业登记信息（法定职责）', scenario: '企业用电报装审核' },
  });
  await t.call('POST', `/v1/sharing-requests/${request.json.id}/decision`, { token: marketClerk, json: { decision: 'approve' } });
  const channels = (await t.call('GET', '/v1/channels', { token: powerClerk })).json.channels;
  return channels.find((channel: { request: string }) => channel.request === request.json.id).id;
}

const pull = (channel: string, token = powerClerk, columns?: string) => t.call('GET', `/v1/channels/${channel}/data${columns ? `?columns=${columns}` : ''}`, { token });
const incidentsOf = async (kind: string) => (await t.call('GET', '/v1/incidents', { token: regulator })).json.incidents.filter((incident: { kind: string }) => incident.kind === kind);
const leafTypes = async () => (await t.platform.db.select({ eventType: auditLeaves.eventType }).from(auditLeaves)).map((leaf) => leaf.eventType);

describe('sharing channels', () => {
  it('open when a request is approved, scoped to its columns, and deliver those columns of the latest version', async () => {
    const channel = await openEnterpriseChannel();
    const view = (await t.call('GET', '/v1/channels', { token: powerClerk })).json.channels.find((entry: { id: string }) => entry.id === channel);
    expect(view).toMatchObject({ dataset: 'enterprises', columns: ['uscc', 'name', 'status'], status: 'open', freezesOn: '2027-01-31' });
    const response = await pull(channel);
    expect(response.status).toBe(200);
    const lines = response.text.trimEnd().split('\n');
    expect(lines[0]).toBe('uscc,name,status');
    expect(lines.length - 1).toBe(Number(response.headers.get('pds-row-count')));
    expect(response.headers.get('pds-dataset-version')).toBe('2');
    expect(await leafTypes()).toEqual(expect.arrayContaining(['channel.opened', 'channel.pulled']));
  });

  it('refuse a pull beyond the channel\'s columns and report it to the regulator', async () => {
    const channel = await openEnterpriseChannel();
    const before = (await incidentsOf('channel_over_scope')).length;
    const response = await pull(channel, powerClerk, 'uscc,legal_rep_id');
    expect(response.status).toBe(403);
    expect(response.json.error.code).toBe('CHANNEL_BEYOND_SCOPE');
    expect(response.text).not.toMatch(/\d{17}[\dX]/);
    const reported = await incidentsOf('channel_over_scope');
    expect(reported.length).toBe(before + 1);
    expect(reported[0].detail).toMatchObject({ channel, institution: 'power-utility', beyondColumns: ['legal_rep_id'] });
    expect(await leafTypes()).toContain('channel.beyond-scope');
    // The channel itself stays usable within its scope.
    expect((await pull(channel, powerClerk, 'uscc,status')).status).toBe(200);
  });

  it('are pulled only by the requesting public body: operators are refused, other bodies never see it', async () => {
    const channel = await openEnterpriseChannel();
    expect((await pull(channel, await t.tokenFor('analyst-lingang-analytics'))).status).toBe(403);
    expect((await pull(channel, await t.tokenFor('clerk-water'))).status).toBe(404);
    expect((await pull(channel, marketClerk)).status).toBe(404);
  });

  it('freeze after the idle period, reopen only by the data centre, and close for good after a further idle period', async () => {
    const channel = await openEnterpriseChannel();
    await at(new Date(monday.getTime() + 91 * day));
    const frozen = await pull(channel);
    expect(frozen.status).toBe(409);
    expect(frozen.json.error.code).toBe('CHANNEL_FROZEN');
    expect((await t.call('POST', `/v1/channels/${channel}/status`, { token: powerClerk, json: { action: 'reactivate', reason: '恢复业务' } })).status).toBe(403);
    const reactivated = await t.call('POST', `/v1/channels/${channel}/status`, { token: admin, json: { action: 'reactivate', reason: '供电公司说明了恢复使用的需要' } });
    expect(reactivated.json.status).toBe('open');
    expect((await pull(channel)).status).toBe(200);

    await at(new Date(monday.getTime() + (91 + 91 + 91) * day));
    const closed = await pull(channel);
    expect(closed.json.error.code).toBe('CHANNEL_CLOSED');
    expect((await t.call('POST', `/v1/channels/${channel}/status`, { token: admin, json: { action: 'reactivate', reason: 'x' } })).json.error.code).toBe('CHANNEL_CLOSED');
    expect(await leafTypes()).toEqual(expect.arrayContaining(['channel.frozen', 'channel.reactivated', 'channel.closed']));
  });

  it('never deliver more than the daily volume, even to pulls made at the same moment', async () => {
    const channel = await openEnterpriseChannel();
    const limit = t.platform.governance.channels.pullsPerDay;
    const responses = await Promise.all(Array.from({ length: limit + 6 }, () => pull(channel, powerClerk, 'uscc')));
    expect(responses.filter((response) => response.status === 200).length).toBe(limit);
    expect(responses.every((response) => response.status === 200 || response.status === 429 || response.status === 409)).toBe(true);
  });

  it('stop a channel pulled beyond its normal daily volume and report it', async () => {
    const channel = await openEnterpriseChannel();
    const limit = t.platform.governance.channels.pullsPerDay;
    for (let index = 0; index < limit; index++) expect((await pull(channel, powerClerk, 'uscc')).status).toBe(200);
    const over = await pull(channel, powerClerk, 'uscc');
    expect(over.status).toBe(429);
    expect(over.json.error.code).toBe('CHANNEL_VOLUME_EXCEEDED');
    expect((await pull(channel, powerClerk, 'uscc')).json.error.code).toBe('CHANNEL_SUSPENDED');
    expect((await incidentsOf('channel_volume')).some((incident: { detail: { channel: string } }) => incident.detail.channel === channel)).toBe(true);
  });
});

describe('sharing channels under the catalogue as it is now (art. 16)', () => {
  /** The market regulator revises its enterprise register's sharing terms; the data centre publishes them. */
  async function setSharing(changes: Record<string, unknown>) {
    const proposed = await t.call('POST', '/v1/datasets/enterprises/revisions', { token: marketClerk, json: { note: '共享属性重新评估', changes } });
    expect(proposed.status).toBe(201);
    expect((await t.call('POST', `/v1/datasets/enterprises/revisions/${proposed.json.revision}/review`, { token: admin, json: { decision: 'publish' } })).json.status).toBe('published');
  }

  it('deliver nothing once the data is no longer shared, and deliver again once it is', async () => {
    const channel = await openEnterpriseChannel();
    await setSharing({ sharingType: 'none', sharingBasis: '涉及商业秘密，经评估不予共享' });
    try {
      const refused = await pull(channel);
      expect(refused.status).toBe(409);
      expect(refused.json.error).toMatchObject({ code: 'SHARING_WITHDRAWN', message: expect.stringContaining('涉及商业秘密') });
    } finally {
      await setSharing({ sharingType: 'unconditional', sharingBasis: null });
    }
    expect((await pull(channel)).status).toBe(200);
  });

  it('opened by an unconditional request, stop once the data is shared only on conditions, which need the committee', async () => {
    const channel = await openEnterpriseChannel();
    await setSharing({ sharingType: 'conditional', sharingBasis: '仅限法定职责范围内使用' });
    try {
      expect((await pull(channel)).json.error.code).toBe('SHARING_WITHDRAWN');
    } finally {
      await setSharing({ sharingType: 'unconditional', sharingBasis: null });
    }
  });
});

describe('disputes', () => {
  const raise = (token: string, json: Record<string, unknown>) => t.call('POST', '/v1/disputes', { token, json });

  it('may be raised only over data the institution holds through a channel, and only over fields it received', async () => {
    expect((await raise(powerClerk, { dataset: 'residents', description: '户籍信息有误' })).json.error.code).toBe('NOT_HELD');
    await openEnterpriseChannel();
    expect((await raise(powerClerk, { dataset: 'enterprises', column: 'legal_rep_id', description: '法定代表人身份证号校验位错误' })).json.error.code).toBe('NOT_HELD');
    const raised = await raise(powerClerk, { dataset: 'enterprises', column: 'name', recordReference: '户号 1002003', description: '企业名称与营业执照不一致' });
    expect(raised.status).toBe(201);
    // Five working days from Monday 2 November: Monday 9 November.
    expect(raised.json).toMatchObject({ status: 'open', dueOn: '2026-11-09', overdue: false });
  });

  it('are corrected by a version loaded after them, and the raiser sees the answer', async () => {
    await openEnterpriseChannel();
    const raised = await raise(powerClerk, { dataset: 'enterprises', column: 'name', description: '企业名称重复登记' });
    const stale = await t.call('POST', `/v1/disputes/${raised.json.id}/answer`, { token: marketClerk, json: { outcome: 'corrected', version: 2, answer: '已更正' } });
    expect(stale.status).toBe(400);
    await at(new Date(monday.getTime() + 2 * day));
    const csv = 'uscc,name,legal_rep_id,legal_rep_name,registered_capital,industry_code,established_on,town,status\n91310115MA1K000001,上海测试有限公司,110105194912310021,张三,100.00,C3612,2020-01-01,南汇新城镇,active\n';
    const loaded = await t.call('POST', '/v1/datasets/enterprises/versions', { token: marketClerk, body: csv, headers: { 'content-type': 'text/csv' } });
    expect(loaded.status).toBe(201);
    expect((await t.call('POST', `/v1/disputes/${raised.json.id}/answer`, { token: powerClerk, json: { outcome: 'rejected', answer: 'x' } })).status).toBe(403);
    const answered = await t.call('POST', `/v1/disputes/${raised.json.id}/answer`, { token: marketClerk, json: { outcome: 'corrected', version: loaded.json.versionNumber, answer: '已合并重复登记' } });
    expect(answered.json).toMatchObject({ status: 'corrected', answeredOnTime: true });
    const seen = (await t.call('GET', '/v1/disputes', { token: powerClerk })).json.disputes.find((entry: { id: string }) => entry.id === raised.json.id);
    expect(seen.answer).toBe('已合并重复登记');
  });

  it('left unanswered past the deadline show as overdue to regulators, and a late rejection counts as late', async () => {
    await openEnterpriseChannel();
    const raised = await raise(powerClerk, { dataset: 'enterprises', description: '注销企业仍显示为存续' });
    await at(new Date('2026-11-10T02:00:00Z'));
    const overdue = (await t.call('GET', '/v1/disputes?overdue=true', { token: regulator })).json.disputes.map((entry: { id: string }) => entry.id);
    expect(overdue).toContain(raised.json.id);
    const rejected = await t.call('POST', `/v1/disputes/${raised.json.id}/answer`, { token: marketClerk, json: { outcome: 'rejected', answer: '经核实登记状态无误' } });
    expect(rejected.json).toMatchObject({ status: 'rejected', answeredOnTime: false, overdue: false });
    const again = await t.call('POST', `/v1/disputes/${raised.json.id}/answer`, { token: marketClerk, json: { outcome: 'rejected', answer: '重复' } });
    expect(again.json.error.code).toBe('INVALID_TRANSITION');
  });

  it('keep the record reference out of the audit log', async () => {
    const leaves = await t.platform.db.select({ leaf: auditLeaves.leaf }).from(auditLeaves);
    expect(leaves.some((row) => row.leaf.includes('户号 1002003'))).toBe(false);
  });
});

describe('overdue alerts', () => {
  it('alert regulators once to a sharing request and a dispute left unanswered past their deadlines', async () => {
    const request = await t.call('POST', '/v1/sharing-requests', { token: powerClerk, json: { dataset: 'enterprises', duty: '核实企业信息', scenario: '报装审核' } });
    await openEnterpriseChannel();
    const dispute = await t.call('POST', '/v1/disputes', { token: powerClerk, json: { dataset: 'enterprises', description: '名称有误' } });
    const alerts = async () => (await t.call('GET', '/v1/incidents', { token: regulator })).json.incidents.filter((incident: { kind: string }) => incident.kind.endsWith('_overdue'));
    const before = await alerts();
    expect(before.some((alert: { detail: { request?: string } }) => alert.detail.request === request.json.id)).toBe(false);
    await at(new Date('2026-11-10T02:00:00Z'));
    const raised = await alerts();
    expect(raised.find((alert: { detail: { request?: string } }) => alert.detail.request === request.json.id)).toMatchObject({ kind: 'sharing_overdue', detail: { institution: 'market-regulator', dueOn: '2026-11-09' } });
    expect(raised.find((alert: { detail: { dispute?: string } }) => alert.detail.dispute === dispute.json.id)).toMatchObject({ kind: 'dispute_overdue', detail: { institution: 'market-regulator' } });
    // Reading again raises nothing new.
    expect((await alerts()).length).toBe(raised.length);
  });
});
