import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { principals } from '../../src/db/schema.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

// The enterprise register's use trail (art. 12: 数据使用可追溯), after one use of each kind: a released job, calls of
// a product built on it, a pull through a sharing channel, an export for a body outside Lingang, a derived dataset.
let t: TestPlatform;
let marketClerk: string;
let powerClerk: string;
let admin: string;
let regulator: string;
let jobId: string;
let refusedId: string;
let callLeaves: number[];
const jobSql = 'SELECT town, count(*) AS firms, sum(registered_capital) AS capital FROM enterprises GROUP BY town';
const claimedCode = '91310115MA1H7XQ08N';

beforeAll(async () => {
  t = await createTestPlatform({ demo: true, workers: 1 });
  await t.platform.db.insert(principals).values({ id: 'clerk-market-regulator', role: 'institution', displayName: '市场监管局 · 数据专员', institutionId: 'market-regulator' });
  marketClerk = await t.tokenFor('clerk-market-regulator');
  powerClerk = await t.tokenFor('clerk-power-utility');
  admin = await t.tokenFor('admin-data-centre');
  const [filer, reviewer] = await t.twoRegulators();
  regulator = filer;
  const analyst = await t.tokenFor('analyst-lingang-analytics');

  jobId = (await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['enterprises'], purpose: '各镇企业数与注册资本统计', sql: jobSql } })).json.id;
  expect((await t.waitForJob(jobId)).status).toBe('released');
  // A job the policy refuses: it asked for the register's rows.
  refusedId = (await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['enterprises'], purpose: '企业名单', sql: 'SELECT name, legal_rep_name FROM enterprises' } })).json.job.id;

  const consumer = await t.tokenFor('consumer-east-sea-bank');
  callLeaves = [];
  for (const name of ['临港智造科技有限公司', '另一家公司']) {
    const call = await t.call('POST', '/v1/products/enterprise-identity/verify', { token: consumer, json: { input: { credit_code: claimedCode, name, legal_representative: '李娜' }, purpose: '对公开户核验', use: 'industry' } });
    expect(call.status).toBe(200);
    callLeaves.push(call.json.auditLeafIndex);
  }
  await t.platform.products.ledger.drain();

  const request = await t.call('POST', '/v1/sharing-requests', { token: powerClerk, json: { dataset: 'enterprises', columns: ['uscc', 'name', 'status'], duty: '核实用电企业登记信息（法定职责）', scenario: '企业用电报装审核' } });
  await t.call('POST', `/v1/sharing-requests/${request.json.id}/decision`, { token: marketClerk, json: { decision: 'approve' } });
  const channel = (await t.call('GET', '/v1/channels', { token: powerClerk })).json.channels.find((entry: { request: string }) => entry.request === request.json.id).id;
  expect((await t.call('GET', `/v1/channels/${channel}/data`, { token: powerClerk })).status).toBe(200);
  // A pull beyond the channel's columns: refused, and an incident over the register.
  expect((await t.call('GET', `/v1/channels/${channel}/data?columns=uscc,legal_rep_id`, { token: powerClerk })).status).toBe(403);

  const filed = await t.call('POST', '/v1/external-requests', {
    token: filer,
    json: { requester: '上海市奉贤区经济委员会', scenario: '核对跨区经营企业的登记状态', items: [{ dataset: 'enterprises', columns: ['uscc', 'status'] }], safeguards: '专人专机处理，审核结束后删除' },
  });
  await t.call('POST', `/v1/external-requests/${filed.json.id}/decision`, { token: reviewer, json: { decision: 'approve' } });
  expect((await t.call('GET', `/v1/external-requests/${filed.json.id}/data?dataset=enterprises`, { token: admin })).status).toBe(200);

  const proposal = await t.call('POST', '/v1/derived-datasets', { token: admin, json: { job: jobId, id: 'firms_by_town', title: 'Enterprises by town', titleZh: '分镇企业数', description: 'Firms by town.', category: 'economy' } });
  expect((await t.call('POST', `/v1/derived-datasets/${proposal.json.id}/decision`, { token: reviewer, json: { decision: 'publish' } })).json.status).toBe('published');
}, 180_000);
afterAll(() => t?.close());

const uses = (token: string, query = '') => t.call('GET', `/v1/datasets/enterprises/uses${query}`, { token });
/** The events at the given leaves, as the audit log holds them. */
const eventsAt = async (indexes: number[]) =>
  Promise.all(indexes.map(async (index) => (await t.call('GET', `/v1/audit/entries?start=${index}&end=${index + 1}`, { token: regulator })).json.entries[0].event));

describe("a dataset's use trail (art. 12)", () => {
  it('lists each job over the dataset with its operator, purpose and state, and the leaves that record it', async () => {
    const response = await uses(marketClerk);
    expect(response.status).toBe(200);
    const job = response.json.jobs.find((entry: { job: string }) => entry.job === jobId);
    expect(job).toMatchObject({ job: jobId, operator: 'lingang-analytics', operatorNameZh: expect.any(String), kind: 'aggregate', purpose: '各镇企业数与注册资本统计', status: 'released', code: expect.stringMatching(/^CHECKED/) });
    const events = await eventsAt(job.auditIndexes);
    expect(events.map((event) => event.type)).toEqual(expect.arrayContaining(['job.queued', 'job.released']));
    expect(events.every((event) => event.job === jobId && event.datasets.includes('enterprises'))).toBe(true);
    expect(response.json.totals).toMatchObject({ jobs: 2, jobsReleased: 1 });
  });

  it('lists a job the policy refused, with its code and not its reason', async () => {
    const response = await uses(marketClerk);
    const refused = response.json.jobs.find((entry: { job: string }) => entry.job === refusedId);
    expect(refused).toMatchObject({ status: 'rejected', code: expect.stringMatching(/^(ROW_LEVEL_OUTPUT|DIRECT_IDENTIFIER_USE)$/), purpose: '企业名单' });
    expect(Object.keys(refused)).not.toContain('reason');
  });

  it("never shows a job's SQL", async () => {
    const response = await uses(marketClerk);
    expect(response.text).not.toContain('registered_capital');
    expect(response.text).not.toContain('legal_rep_name');
    for (const job of response.json.jobs) expect(job).not.toHaveProperty('sql');
  });

  it('counts the calls of each product built on the dataset, citing the first and last call, and names no consumer or subject', async () => {
    const response = await uses(marketClerk);
    const product = response.json.products.find((entry: { product: string }) => entry.product === 'enterprise-identity');
    expect(product).toMatchObject({ kind: 'verification', operator: 'harbour-credit', calls: 2, industryCalls: 2, publicInterestCalls: 0, firstAuditIndex: Math.min(...callLeaves), lastAuditIndex: Math.max(...callLeaves) });
    // Products over other datasets are not listed.
    expect(response.json.products.map((entry: { product: string }) => entry.product)).toEqual(['enterprise-identity']);
    expect(response.text).not.toContain('consumer-east-sea-bank');
    expect(response.text).not.toContain(claimedCode);
    expect(response.json.totals.productCalls).toBe(2);
  });

  it('lists a pull through a sharing channel with the body that received it, the version, columns and rows', async () => {
    const response = await uses(marketClerk);
    expect(response.json.channelPulls).toEqual([expect.objectContaining({ recipient: 'power-utility', recipientNameZh: '临港供电公司', version: 2, columns: ['uscc', 'name', 'status'], rows: expect.any(Number) })]);
    const [pull] = response.json.channelPulls;
    expect(pull.rows).toBeGreaterThan(0);
    expect((await eventsAt([pull.auditIndex]))[0]).toMatchObject({ type: 'channel.pulled', actor: 'clerk-power-utility' });
    expect(response.json.totals).toMatchObject({ channelPulls: 1, rowsPulled: pull.rows });
  });

  it('lists an export for a body outside Lingang, and a high-quality dataset derived from the data', async () => {
    const response = await uses(admin);
    expect(response.json.externalDeliveries).toEqual([expect.objectContaining({ recipient: '上海市奉贤区经济委员会', columns: ['uscc', 'status'] })]);
    expect((await eventsAt([response.json.externalDeliveries[0].auditIndex]))[0].type).toBe('external.delivered');
    expect(response.json.derivedDatasets).toEqual([expect.objectContaining({ dataset: 'firms_by_town', job: jobId })]);
  });

  it('lists an incident over the dataset by its kind, without who caused it or its detail', async () => {
    const response = await uses(marketClerk);
    expect(response.json.incidents).toEqual([expect.objectContaining({ kind: 'channel_over_scope', operator: null, job: null })]);
    expect(Object.keys(response.json.incidents[0]).sort()).toEqual(['at', 'auditIndex', 'job', 'kind', 'operator', 'outcome']);
    expect(response.json.incidents[0].outcome).toBeNull();
    expect((await eventsAt([response.json.incidents[0].auditIndex]))[0]).toMatchObject({ type: 'incident.recorded', details: { kind: 'channel_over_scope' } });
    expect(response.text).not.toContain('clerk-power-utility');
    expect(response.json.totals.incidents).toBe(1);
  });

  it('leaves out uses outside the period asked for', async () => {
    // The uses all happened at the test clock's instant; this period ends a minute before it.
    const earlier = new Date(t.clock.now.getTime() - 60_000).toISOString();
    const response = await uses(regulator, `?to=${encodeURIComponent(earlier)}`);
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ jobs: [], channelPulls: [], externalDeliveries: [], derivedDatasets: [], incidents: [] });
    expect(response.json.products[0]).toMatchObject({ product: 'enterprise-identity', calls: 0, firstAuditIndex: null });
  });

  it('gives the trail as CSV, a line per use with its leaves', async () => {
    const response = await uses(marketClerk, '?format=csv');
    expect(response.headers.get('content-type')).toContain('text/csv');
    const lines = response.text.trimEnd().split('\r\n');
    expect(lines[0]).toBe('use,at,by_or_to,what,state,code,calls,rows,audit_leaves');
    const json = (await uses(marketClerk)).json;
    expect(lines.filter((line) => line.startsWith('job,'))).toHaveLength(json.jobs.length);
    expect(lines.find((line) => line.startsWith('product_calls,'))).toMatch(/^product_calls,[^,]+,harbour-credit,enterprise-identity,published,,2,,\d+ \d+$/);
    expect(lines.find((line) => line.startsWith('incident,'))).toMatch(/^incident,[^,]+,,,open,channel_over_scope,,,\d+$/);
  });

  it("shows a regulator's outcome once the incident is resolved, and not its reason", async () => {
    const [incident] = (await t.call('GET', '/v1/incidents?kind=channel_over_scope', { token: regulator })).json.incidents;
    await t.call('POST', `/v1/incidents/${incident.id}/resolution`, { token: regulator, json: { outcome: 'referred', reason: '移交市场监管局核查通道用途' } });
    const response = await uses(marketClerk);
    expect(response.json.incidents).toEqual([expect.objectContaining({ kind: 'channel_over_scope', outcome: 'referred' })]);
    expect(response.text).not.toContain('移交市场监管局');
  });

  it('refuses a period that ends before it starts', async () => {
    const response = await uses(regulator, '?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z');
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe('VALIDATION_FAILED');
  });

  it('is read by the source, the data centre and regulators; another public body and operators are told it does not exist', async () => {
    expect((await uses(regulator)).status).toBe(200);
    expect((await uses(powerClerk)).status).toBe(404);
    expect((await uses(await t.tokenFor('analyst-lingang-analytics'))).status).toBe(404);
    expect((await uses(await t.tokenFor('consumer-east-sea-bank'))).status).toBe(404);
  });
});
