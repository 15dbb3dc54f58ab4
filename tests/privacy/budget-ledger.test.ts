import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { budgetCharges, licences } from '../../src/db/schema.js';
import { AppError } from '../../src/errors/app-error.js';
import { reserveBudget, settleBudget } from '../../src/privacy/budget-ledger.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let regulator: string;
let licenceId: string;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
  regulator = await t.tokenFor('regulator-data-dept');
  const [licence] = await t.platform.db.select().from(licences).where(eq(licences.operatorId, 'harbour-credit'));
  licenceId = licence!.id;
});
afterAll(() => t?.close());

const setCap = (datasetId: string, epsilonCap: number) => t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId, datasetId, epsilonCap, reason: 'test' } });
const reserve = (datasetId: string, jobId: string, epsilon: number) => reserveBudget(t.platform.db, { licenceId, datasetId, jobId, epsilon }, new Date());

describe('the privacy budget ledger', () => {
  it('50 concurrent reservations of ε = 0.1 against 1.0 charge exactly 10', async () => {
    expect((await setCap('transit_trips', 1)).status).toBe(200);
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, (_, index) => reserve('transit_trips', `job-${index}`, 0.1)));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(10);
    for (const outcome of outcomes) if (outcome.status === 'rejected') expect((outcome.reason as AppError).code).toBe('BUDGET_EXHAUSTED');
    const budget = (await t.call('GET', '/v1/budgets', { token: regulator })).json.budgets.find((entry: { datasetId: string }) => entry.datasetId === 'transit_trips');
    expect(budget).toMatchObject({ epsilonCap: 1, epsilonSpent: 1, epsilonRemaining: 0 });
  });

  it('a system failure is refunded; the job\'s own failure stays charged', async () => {
    await setCap('residents', 1);
    const refunded = await reserve('residents', 'job-system-failure', 0.5);
    const charged = await reserve('residents', 'job-own-failure', 0.5);
    await expect(reserve('residents', 'job-third', 0.1)).rejects.toThrow(AppError);
    await settleBudget(t.platform.db, refunded.chargeId, 'refunded', new Date());
    await settleBudget(t.platform.db, charged.chargeId, 'charged', new Date());
    // A second settlement of the same charge changes nothing.
    await settleBudget(t.platform.db, refunded.chargeId, 'refunded', new Date());
    const budget = (await t.call('GET', '/v1/budgets', { token: regulator })).json.budgets.find((entry: { datasetId: string }) => entry.datasetId === 'residents');
    expect(budget.epsilonSpent).toBe(0.5);
    const states = (await t.platform.db.select().from(budgetCharges)).filter((charge) => charge.jobId.startsWith('job-') && charge.jobId.includes('failure')).map((charge) => charge.state).sort();
    expect(states).toEqual(['charged', 'refunded']);
  });

  it('a cap lowered below what is spent leaves none remaining, not a negative amount, and takes nothing back', async () => {
    // residents: 0.5 charged by the test before.
    const lowered = await setCap('residents', 0.2);
    expect(lowered.json).toMatchObject({ epsilonCap: 0.2, epsilonSpent: 0.5, epsilonRemaining: 0 });
    await expect(reserve('residents', 'job-after-lowering', 0.01)).rejects.toThrow(AppError);
    expect((await setCap('residents', 1)).json).toMatchObject({ epsilonSpent: 0.5, epsilonRemaining: 0.5 });
  });

  it.each([
    ['not a number', Number.NaN],
    ['infinite', Number.POSITIVE_INFINITY],
    ['negative', -1],
    ['zero', 0],
    ['tiny', 1e-9],
    ['huge', 1e6],
  ])('refuses an ε that is %s', async (_name, epsilon) => {
    await setCap('enterprises', 5);
    await expect(reserve('enterprises', `job-bad-${String(epsilon)}`, epsilon)).rejects.toThrow();
  });

  it('only regulators set caps, and a cap change is an audit leaf', async () => {
    const analyst = await t.tokenFor('analyst-harbour-credit');
    expect((await t.call('POST', '/v1/budgets', { token: analyst, json: { licenceId, datasetId: 'residents', epsilonCap: 50, reason: 'test' } })).status).toBe(403);
    const leaves = await t.call('GET', '/v1/audit/entries?type=budget.cap-set&start=0&end=10000', { token: regulator });
    expect(leaves.json.entries.length).toBeGreaterThan(0);
  });

  it('a cap without a reason is refused and changes nothing', async () => {
    const before = (await t.call('GET', '/v1/budgets', { token: regulator })).json.budgets;
    for (const reason of [undefined, '', '   ']) {
      const refused = await t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId, datasetId: 'enterprises', epsilonCap: 77, ...(reason === undefined ? {} : { reason }) } });
      expect(refused.status).toBe(400);
    }
    expect((await t.call('GET', '/v1/budgets', { token: regulator })).json.budgets).toEqual(before);
  });

  it('a cap change records its reason and the cap it replaces in the audit log', async () => {
    expect((await setCap('bus_routes', 2)).status).toBe(200);
    const raised = await t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId, datasetId: 'bus_routes', epsilonCap: 3, deltaCap: 1e-6, reason: 'second study approved' } });
    expect(raised.json).toMatchObject({ epsilonCap: 3, deltaCap: 1e-6 });
    const leaves = await t.call('GET', '/v1/audit/entries?type=budget.cap-set&start=0&end=10000', { token: regulator });
    expect(leaves.json.entries.at(-1).event.details).toEqual({
      licence: licenceId,
      reason: 'second study approved',
      epsilonCapMicro: 3_000_000,
      deltaCapPico: 1_000_000,
      epsilonCapMicroBefore: 2_000_000,
      deltaCapPicoBefore: 0,
    });
  });

  it('a cap on a dataset the licence does not cover is refused as DATASET_NOT_IN_LICENCE and sets nothing', async () => {
    const refused = await setCap('water_readings', 5);
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('DATASET_NOT_IN_LICENCE');
    const budgets = (await t.call('GET', '/v1/budgets', { token: regulator })).json.budgets;
    expect(budgets.some((entry: { licenceId: string; datasetId: string }) => entry.licenceId === licenceId && entry.datasetId === 'water_readings')).toBe(false);
  });

  it('a regulator resets a spent budget, with the reason in the audit log; an operator cannot', async () => {
    const budget = (await t.call('GET', '/v1/budgets', { token: regulator })).json.budgets.find((entry: { datasetId: string }) => entry.datasetId === 'transit_trips');
    expect(budget.epsilonSpent).toBe(1);
    const analyst = await t.tokenFor('analyst-harbour-credit');
    expect((await t.call('POST', `/v1/budgets/${budget.id}/reset`, { token: analyst, json: { reason: 'please' } })).status).toBe(403);
    const reset = await t.call('POST', `/v1/budgets/${budget.id}/reset`, { token: regulator, json: { reason: 'new licence year' } });
    expect(reset.json).toMatchObject({ epsilonSpent: 0, epsilonRemaining: 1 });
    const leaves = await t.call('GET', '/v1/audit/entries?type=budget.reset&start=0&end=10000', { token: regulator });
    expect(leaves.json.entries.at(-1).event.details).toMatchObject({ reason: 'new licence year', spentMicroBefore: 1_000_000 });
  });

  it('resets sent among reservations record, between them and what is left, every ε reserved', async () => {
    expect((await setCap('power_readings', 100)).status).toBe(200);
    const budget = (await t.call('GET', '/v1/budgets', { token: regulator })).json.budgets.find((entry: { datasetId: string }) => entry.datasetId === 'power_readings');
    const firstLeaf = (await t.platform.audit.sync()).size;
    const reservations = Array.from({ length: 20 }, (_, index) => reserve('power_readings', `job-reset-race-${index}`, 0.1));
    const resets = Array.from({ length: 6 }, () => t.call('POST', `/v1/budgets/${budget.id}/reset`, { token: regulator, json: { reason: 'race' } }));
    await Promise.all([...reservations, ...resets]);
    const leaves = await t.call('GET', `/v1/audit/entries?type=budget.reset&start=${firstLeaf}&end=${firstLeaf + 10000}`, { token: regulator });
    const erased = leaves.json.entries.reduce((sum: number, entry: { event: { details: { spentMicroBefore: number } } }) => sum + entry.event.details.spentMicroBefore, 0);
    const left = (await t.call('GET', '/v1/budgets', { token: regulator })).json.budgets.find((entry: { datasetId: string }) => entry.datasetId === 'power_readings');
    expect(erased + Math.round(left.epsilonSpent * 1_000_000)).toBe(20 * 100_000);
  });

  it("operators see their own licences' budgets only", async () => {
    const own = await t.call('GET', '/v1/budgets', { token: await t.tokenFor('analyst-harbour-credit') });
    expect(own.json.budgets.length).toBeGreaterThan(0);
    const other = await t.call('GET', '/v1/budgets', { token: await t.tokenFor('analyst-lingang-analytics') });
    expect(other.json.budgets).toEqual([]);
  });
});
