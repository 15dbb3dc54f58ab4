import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { principals } from '../../src/db/schema.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let filer: string;
let reviewer: string;
let admin: string;

const application = {
  requester: '上海市奉贤区经济委员会',
  scenario: '核对跨区经营企业的登记状态，用于产业扶持资金审核',
  items: [{ dataset: 'enterprises', columns: ['uscc', 'industry_code', 'status'] }],
  safeguards: '专人专机处理，数据仅用于资金审核，审核结束后30日内删除并书面报告',
};

beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
  [filer, reviewer] = await t.twoRegulators();
  admin = await t.tokenFor('admin-data-centre');
  // The enterprise register's source, which revises its catalogue entry.
  await t.platform.db.insert(principals).values({ id: 'clerk-market', role: 'institution', displayName: '市场监管局 · 数据专员', institutionId: 'market-regulator' });
}, 120_000);
afterAll(() => t?.close());

const file = (json: unknown, token = filer) => t.call('POST', '/v1/external-requests', { token, json });
const decide = (id: string, json: unknown, token = reviewer) => t.call('POST', `/v1/external-requests/${id}/decision`, { token, json });
const deliver = (id: string, dataset: string, token = admin) => t.call('GET', `/v1/external-requests/${id}/data?dataset=${dataset}`, { token });

describe('requests from government units outside the special area (art. 19)', () => {
  it('are filed by the committee with scenario, data list and safeguards, and wait for review', async () => {
    const response = await file(application);
    expect(response.status).toBe(201);
    expect(response.json).toMatchObject({ ...application, status: 'pending', recordedBy: 'regulator-data-dept', deliveries: [] });
  });

  it('are not filed for data that is not shared, nor for columns the catalogue does not hold', async () => {
    expect((await file({ ...application, items: [{ dataset: 'transit_trips', columns: ['route_id'] }] })).json.error.code).toBe('NOT_SHAREABLE');
    const unknown = await file({ ...application, items: [{ dataset: 'enterprises', columns: ['uscc', 'secret_column'] }] });
    expect(unknown.json.error).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ path: 'items.0.columns', problem: 'enterprises has no column secret_column' }] });
  });

  it('are reviewed by a regulator other than who filed them, and a refusal gives its reason', async () => {
    const { json: filed } = await file(application);
    expect((await decide(filed.id, { decision: 'approve' }, filer)).json.error.code).toBe('SELF_REVIEW');
    expect((await decide(filed.id, { decision: 'refuse' })).json.error.code).toBe('VALIDATION_FAILED');
    const refused = await decide(filed.id, { decision: 'refuse', reason: '所需字段超出资金审核的必要范围' });
    expect(refused.json).toMatchObject({ status: 'refused', decisionReason: '所需字段超出资金审核的必要范围' });
    expect((await deliver(filed.id, 'enterprises')).json.error.code).toBe('INVALID_TRANSITION');
  });

  it('once approved, the data centre exports the listed columns of the latest version for the city platform, recorded with its hash', async () => {
    const { json: filed } = await file(application);
    expect((await deliver(filed.id, 'enterprises')).json.error.code).toBe('INVALID_TRANSITION');
    await decide(filed.id, { decision: 'approve' });
    expect((await deliver(filed.id, 'enterprises', reviewer)).status).toBe(403);
    expect((await deliver(filed.id, 'residents')).json.error.code).toBe('VALIDATION_FAILED');

    const delivered = await deliver(filed.id, 'enterprises');
    expect(delivered.status).toBe(200);
    const lines = delivered.text.trim().split('\n');
    expect(lines[0]).toBe('uscc,industry_code,status');
    expect(lines.length - 1).toBe(Number(delivered.headers.get('pds-row-count')));
    const listed = (await t.call('GET', '/v1/external-requests', { token: admin })).json.requests.find((request: { id: string }) => request.id === filed.id);
    expect(listed).toMatchObject({ status: 'delivered', deliveries: [{ dataset: 'enterprises', contentHash: delivered.headers.get('pds-content-hash'), rows: lines.length - 1, by: 'admin-data-centre' }] });
  });

  it('an approved request delivers nothing of data made 不予共享 since its approval', async () => {
    const { json: filed } = await file(application);
    await decide(filed.id, { decision: 'approve', reason: '用途明确，保障措施充分' });
    const setSharing = async (changes: Record<string, unknown>) => {
      const proposed = await t.call('POST', '/v1/datasets/enterprises/revisions', { token: await t.tokenFor('clerk-market'), json: { note: '共享属性重新评估', changes } });
      await t.call('POST', `/v1/datasets/enterprises/revisions/${proposed.json.revision}/review`, { token: admin, json: { decision: 'publish' } });
    };
    await setSharing({ sharingType: 'none', sharingBasis: '涉及商业秘密，经评估不予共享' });
    try {
      const refused = await deliver(filed.id, 'enterprises');
      expect(refused.status).toBe(409);
      expect(refused.json.error.code).toBe('SHARING_WITHDRAWN');
    } finally {
      await setSharing({ sharingType: 'unconditional', sharingBasis: null });
    }
    expect((await deliver(filed.id, 'enterprises')).status).toBe(200);
  });

  it('an approved request delivers nothing of data graded core since its approval', async () => {
    const { json: filed } = await file(application);
    await decide(filed.id, { decision: 'approve', reason: '用途明确，保障措施充分' });
    const regrade = async (grade: string) => {
      const proposed = await t.call('POST', '/v1/datasets/enterprises/revisions', { token: await t.tokenFor('clerk-market'), json: { note: '分级复核', changes: { grade } } });
      expect(proposed.status).toBe(201);
      await t.call('POST', `/v1/datasets/enterprises/revisions/${proposed.json.revision}/review`, { token: admin, json: { decision: 'publish' } });
    };
    await regrade('core');
    try {
      expect((await deliver(filed.id, 'enterprises')).json.error.code).toBe('CORE_DATA');
    } finally {
      await regrade('L2');
    }
  });

  it('are neither filed nor seen by public bodies and operators', async () => {
    expect((await file(application, await t.tokenFor('clerk-power-utility'))).status).toBe(403);
    expect((await t.call('GET', '/v1/external-requests', { token: await t.tokenFor('analyst-lingang-analytics') })).status).toBe(403);
  });
});
