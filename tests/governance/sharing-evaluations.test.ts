import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMonths } from '../../src/governance/sharing-evaluations.js';
import { chinaDay } from '../../src/time/china-time.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
const start = new Date();
const monthsLater = (months: number) => new Date(start.getTime() + months * 30.5 * 86_400_000);

beforeAll(async () => {
  t = await createTestPlatform({ demo: true, now: start });
}, 120_000);
afterAll(() => t?.close());

// Tokens are minted at the test clock's time, which moves by months here.
const admin = () => t.tokenFor('admin-data-centre');
const regulator = () => t.tokenFor('regulator-data-dept');
const due = async (query = '') => (await t.call('GET', `/v1/sharing-evaluations${query}`, { token: await regulator() })).json.datasets as Array<{ dataset: string; dueOn: string; overdue: boolean; lastEvaluation: { outcome: string } | null }>;
const evaluate = async (dataset: string, json: Record<string, unknown>, token?: string) => t.call('POST', `/v1/datasets/${dataset}/sharing-evaluations`, { token: token ?? (await admin()), json });
const overdueAlerts = async () =>
  (await t.call('GET', '/v1/incidents?kind=sharing_evaluation_overdue', { token: await regulator() })).json.incidents as Array<{ detail: { datasets: string[]; dueOn: string } }>;

describe('periodic evaluation of conditionally shared data (art. 16)', () => {
  it('lists each conditionally shared dataset, due twelve months after it became conditional, and no other', async () => {
    const datasets = await due();
    expect(datasets.find((entry) => entry.dataset === 'power_readings')).toMatchObject({ title: 'Monthly power readings', titleZh: '月度用电数据', dueOn: addMonths(chinaDay(start), 12), overdue: false, lastEvaluation: null });
    expect(datasets.map((entry) => entry.dataset)).not.toContain('enterprises');
    expect(datasets.map((entry) => entry.dataset)).not.toContain('transit_trips');
  });

  it('the data centre keeps a dataset conditional, with its reason, and its next evaluation falls due a year later', async () => {
    t.clock.now = monthsLater(2);
    const response = await evaluate('water_readings', { outcome: 'keep_conditional', reason: '《城镇供水条例》规定的用户信息保护仍然适用' });
    expect(response.status).toBe(201);
    expect(response.json).toMatchObject({ dataset: 'water_readings', outcome: 'keep_conditional', revision: null, evaluatedBy: 'admin-data-centre' });
    expect((await due()).find((entry) => entry.dataset === 'water_readings')).toMatchObject({ dueOn: addMonths(chinaDay(t.clock.now), 12), lastEvaluation: { outcome: 'keep_conditional' } });
  });

  it('a conversion proposes the catalogue change; once another reviewer publishes it the data is shared unconditionally and no longer due', async () => {
    const response = await evaluate('gas_readings', { outcome: 'convert_unconditional', reason: '燃气用户数据已完成脱敏，具备无条件共享条件' });
    expect(response.status).toBe(201);
    const revision = response.json.revision as number;
    expect(revision).toBeGreaterThan(1);
    const ownReview = await t.call('POST', `/v1/datasets/gas_readings/revisions/${revision}/review`, { token: await admin(), json: { decision: 'publish' } });
    expect(ownReview.json.error.code).toBe('SELF_REVIEW');
    const published = await t.call('POST', `/v1/datasets/gas_readings/revisions/${revision}/review`, { token: await regulator(), json: { decision: 'publish' } });
    expect(published.json.status).toBe('published');
    expect((await t.call('GET', '/v1/datasets/gas_readings', { token: await regulator() })).json.sharingType).toBe('unconditional');
    expect((await due()).map((entry) => entry.dataset)).not.toContain('gas_readings');
  });

  it('refuses to evaluate data that is not conditionally shared', async () => {
    const response = await evaluate('enterprises', { outcome: 'keep_conditional', reason: 'x' });
    expect(response.status).toBe(409);
    expect(response.json.error.code).toBe('INVALID_TRANSITION');
  });

  it('is done by the data centre only, and with a reason', async () => {
    expect((await evaluate('power_readings', { outcome: 'keep_conditional', reason: '仍需授权' }, await regulator())).status).toBe(403);
    expect((await evaluate('power_readings', { outcome: 'keep_conditional' })).json.error.code).toBe('VALIDATION_FAILED');
  });

  it('an evaluation left past its due date alerts regulators once, and an evaluation clears it', async () => {
    t.clock.now = monthsLater(13);
    expect((await due('?overdue=true')).map((entry) => entry.dataset)).toContain('power_readings');
    const alerts = (await overdueAlerts()).filter((alert) => alert.detail.datasets.includes('power_readings'));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.detail.dueOn).toBe(addMonths(chinaDay(start), 12));
    expect((await overdueAlerts()).filter((alert) => alert.detail.datasets.includes('power_readings'))).toHaveLength(1);
    // water_readings was evaluated two months in: not due yet.
    expect((await due('?overdue=true')).map((entry) => entry.dataset)).not.toContain('water_readings');

    await evaluate('power_readings', { outcome: 'keep_conditional', reason: '《电力法》规定的用户信息保护仍然适用' });
    expect((await due('?overdue=true')).map((entry) => entry.dataset)).not.toContain('power_readings');
  });
});

describe('months as the calendar counts them', () => {
  it('keeps the day of the month, or the month\'s last day when it has fewer', () => {
    expect(addMonths('2026-11-28', 12)).toBe('2027-11-28');
    expect(addMonths('2026-01-31', 1)).toBe('2026-02-28');
    expect(addMonths('2028-02-29', 12)).toBe('2029-02-28');
    expect(addMonths('2026-12-15', 1)).toBe('2027-01-15');
  });
});
