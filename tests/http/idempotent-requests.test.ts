import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let clerk: string;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
  clerk = await t.tokenFor('clerk-power-utility');
});
afterAll(() => t?.close());

const request = (scenario: string) => ({ dataset: 'enterprises', columns: ['uscc', 'town'], duty: '核实用电企业（法定职责）', scenario });
const file = (json: unknown, key: string, token = clerk) => t.call('POST', '/v1/sharing-requests', { token, json, headers: { 'idempotency-key': key } });
const requestsWith = async (scenario: string) => (await t.call('GET', '/v1/sharing-requests', { token: clerk })).json.requests.filter((entry: { scenario?: string; id: string }) => entry.scenario === scenario).length;
const count = async () => (await t.call('GET', '/v1/sharing-requests', { token: clerk })).json.requests.length;

describe('an Idempotency-Key on a state-changing request', () => {
  it('makes a retry answer with the first answer instead of filing a second request', async () => {
    const before = await count();
    const first = await file(request('retry'), 'share-1');
    const retry = await file(request('retry'), 'share-1');
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.json).toEqual(first.json);
    expect(await count()).toBe(before + 1);
  });

  it('sent again with another request is refused', async () => {
    await file(request('first'), 'share-2');
    const other = await file(request('second'), 'share-2');
    expect(other.status).toBe(422);
    expect(other.json.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('is free again after a refusal, so the corrected request goes through under it', async () => {
    const refused = await file({ ...request('corrected'), dataset: 'NO SUCH' }, 'share-3');
    expect(refused.status).toBe(400);
    expect((await file(request('corrected'), 'share-3')).status).toBe(201);
  });

  it('sent six times at once files one request', async () => {
    const before = await count();
    const answers = await Promise.all(Array.from({ length: 6 }, () => file(request('burst'), 'share-burst')));
    expect(answers.every((answer) => answer.status === 201 || (answer.status === 409 && answer.headers.get('retry-after') === '1'))).toBe(true);
    expect(answers.filter((answer) => answer.status === 201).length).toBeGreaterThan(0);
    expect(await count()).toBe(before + 1);
  });

  it("belongs to its sender: the same key from another principal is that principal's own", async () => {
    await file(request('mine'), 'shared-key');
    // Same principal, another token: the same sender, so a replay.
    expect((await file(request('mine'), 'shared-key', await t.tokenFor('clerk-power-utility'))).headers.get('idempotent-replayed')).toBe('true');
    const admin = await t.tokenFor('admin-data-centre');
    const created = await t.call('POST', '/v1/principals', { token: admin, json: { id: 'key-owner-a', role: 'consumer', displayName: 'A' }, headers: { 'idempotency-key': 'shared-key' } });
    expect(created.status).toBe(201);
    expect(created.headers.get('idempotent-replayed')).toBeNull();
  });

  it('replays a decision instead of refusing the retry as a second decision', async () => {
    const admin = await t.tokenFor('admin-data-centre');
    await t.call('POST', '/v1/principals', { token: admin, json: { id: 'clerk-market-regulator', role: 'institution', displayName: '市场监管局', institutionId: 'market-regulator' } });
    const filed = await file(request('decided'), 'share-decided');
    const source = await t.tokenFor('clerk-market-regulator');
    const decide = () => t.call('POST', `/v1/sharing-requests/${filed.json.id}/decision`, { token: source, json: { decision: 'approve' }, headers: { 'idempotency-key': 'decide-1' } });
    const first = await decide();
    const retry = await decide();
    expect(first.status).toBe(200);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.json).toEqual(first.json);
    // Without the key, the same decision again is refused as a second one.
    expect((await t.call('POST', `/v1/sharing-requests/${filed.json.id}/decision`, { token: source, json: { decision: 'approve' } })).status).toBe(409);
  });

  it('is kept a day: after that the key names a new request', async () => {
    await file(request('day one'), 'share-day');
    const saved = t.clock.now;
    t.clock.now = new Date(saved.getTime() + 25 * 3600_000);
    try {
      const token = await t.tokenFor('clerk-power-utility');
      const again = await file(request('day two'), 'share-day', token);
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBeNull();
    } finally {
      t.clock.now = saved;
    }
  });

  it('never keeps a minted token: each mint under one key is a new token', async () => {
    const admin = await t.tokenFor('admin-data-centre');
    const mint = () => t.call('POST', '/v1/tokens', { token: admin, json: { principalId: 'clerk-power-utility' }, headers: { 'idempotency-key': 'mint-1' } });
    const [first, second] = [await mint(), await mint()];
    expect(first.json.token).not.toBe(second.json.token);
  });

  it('must be visible ASCII of 1 to 200 characters', async () => {
    const answer = await t.call('POST', '/v1/sharing-requests', { token: clerk, json: request('bad key'), headers: { 'idempotency-key': 'x'.repeat(201) } });
    expect(answer.status).toBe(400);
    expect(answer.json.error.details).toContainEqual({ path: 'idempotency-key', problem: 'must be 1 to 200 visible ASCII characters' });
  });

  it('is documented on the operations it covers, once on those that handle it themselves', async () => {
    const document = (await t.call('GET', '/openapi.json')).json;
    const headersOf = (path: string, method: string) => (document.paths[path][method].parameters ?? []).filter((parameter: { name: string; in: string }) => parameter.in === 'header' && parameter.name.toLowerCase() === 'idempotency-key');
    expect(headersOf('/v1/sharing-requests', 'post')).toHaveLength(1);
    expect(headersOf('/v1/disputes/{id}/answer', 'post')).toHaveLength(1);
    expect(headersOf('/v1/jobs', 'post')).toHaveLength(1);
    expect(headersOf('/v1/tokens', 'post')).toHaveLength(0);
  });
});
