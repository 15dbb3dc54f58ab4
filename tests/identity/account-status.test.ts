import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let admin: string;
let regulator: string;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
  admin = await t.tokenFor('admin-data-centre');
  regulator = await t.tokenFor('regulator-data-dept');
});
afterAll(() => t?.close());

const setStatus = (id: string, status: 'active' | 'disabled', reason: string, token = admin) => t.call('POST', `/v1/principals/${id}/status`, { token, json: { status, reason } });
const later = (seconds: number) => (t.clock.now = new Date(t.clock.now.getTime() + seconds * 1000));
const auditEvents = async (type: string) =>
  (await t.call('GET', `/v1/audit/entries?type=${type}&order=desc&limit=1000`, { token: regulator })).json.entries.map((entry: { event: Record<string, unknown> }) => entry.event);

describe('disabling and enabling accounts', () => {
  it('a disabled account is refused at once with the token it holds', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    expect((await t.call('GET', '/v1/me', { token: analyst })).status).toBe(200);
    const disabled = await setStatus('analyst-lingang-analytics', 'disabled', 'left the company');
    expect(disabled.json).toMatchObject({ id: 'analyst-lingang-analytics', status: 'disabled', statusReason: 'left the company' });
    const refused = await t.call('GET', '/v1/me', { token: analyst });
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe('PRINCIPAL_DISABLED');
  });

  it('enabled again, the account is refused its old tokens and accepted with a new one', async () => {
    const old = await t.tokenFor('analyst-harbour-credit');
    later(1);
    await setStatus('analyst-harbour-credit', 'disabled', 'token leaked');
    later(1);
    await setStatus('analyst-harbour-credit', 'active', 'new token issued');
    const refused = await t.call('GET', '/v1/me', { token: old });
    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe('TOKEN_REVOKED');
    later(1);
    expect((await t.call('GET', '/v1/me', { token: await t.tokenFor('analyst-harbour-credit') })).status).toBe(200);
  });

  it('each change is in the audit log with who made it and why', async () => {
    expect(await auditEvents('principal.disabled')).toContainEqual(
      expect.objectContaining({ actor: 'admin-data-centre', operator: 'harbour-credit', details: { principal: 'analyst-harbour-credit', role: 'operator', reason: 'token leaked' } }),
    );
    expect(await auditEvents('principal.enabled')).toContainEqual(expect.objectContaining({ details: { principal: 'analyst-harbour-credit', role: 'operator', reason: 'new token issued' } }));
  });

  it('six identical requests sent at once disable once and are recorded once', async () => {
    await t.call('POST', '/v1/principals', { token: admin, json: { id: 'burst-consumer', role: 'consumer', displayName: 'Burst bank' } });
    const answers = await Promise.all(Array.from({ length: 6 }, () => setStatus('burst-consumer', 'disabled', 'burst')));
    expect(answers.map((answer) => answer.status)).toEqual(Array(6).fill(200));
    expect((await auditEvents('principal.disabled')).filter((event: { details: { principal: string } }) => event.details.principal === 'burst-consumer')).toHaveLength(1);
  });

  it('nobody disables their own account', async () => {
    const answer = await setStatus('admin-data-centre', 'disabled', 'oops');
    expect(answer.status).toBe(409);
    expect(answer.json.error.code).toBe('SELF_DISABLE');
  });

  it('only admins change an account, and an unknown one answers 404', async () => {
    expect((await setStatus('consumer-east-sea-bank', 'disabled', 'x', regulator)).status).toBe(403);
    expect((await setStatus('no-such-principal', 'disabled', 'x')).status).toBe(404);
  });

  it('no token is minted for a disabled account', async () => {
    const answer = await t.call('POST', '/v1/tokens', { token: admin, json: { principalId: 'analyst-lingang-analytics' } });
    expect(answer.status).toBe(403);
    expect(answer.json.error.code).toBe('PRINCIPAL_DISABLED');
  });

  it('admins and regulators list accounts with their status; others may not', async () => {
    const listed = await t.call('GET', '/v1/principals', { token: regulator });
    expect(listed.json.principals).toContainEqual(expect.objectContaining({ id: 'analyst-lingang-analytics', status: 'disabled', statusReason: 'left the company' }));
    expect((await t.call('GET', '/v1/principals', { token: await t.tokenFor('consumer-east-sea-bank') })).status).toBe(403);
  });
});
