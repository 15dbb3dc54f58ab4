import fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { writeDevTokens } from '../../src/demo/seed-demo.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

/**
 * What a newcomer has after `npm start`: the dev tokens and the demo's seeded decisions. Every path the README
 * points to must be walkable with them alone, without minting tokens or acting as a regulator by other means.
 */
let t: TestPlatform;
let tokens: Record<string, string>;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true, workers: 1 });
  tokens = JSON.parse(fs.readFileSync(await writeDevTokens(t.platform), 'utf8'));
}, 120_000);
afterAll(() => t?.close());

it('the dev tokens include two regulators, as L4 outputs need two reviewers', async () => {
  const regulators = [];
  for (const key of ['regulator', 'regulator2']) {
    const me = await t.call('GET', '/v1/me', { token: tokens[key] });
    expect(me.status, key).toBe(200);
    regulators.push(me.json);
  }
  expect(regulators.map((principal) => principal.role)).toEqual(['regulator', 'regulator']);
  expect(new Set(regulators.map((principal) => principal.id)).size).toBe(2);
});

it('a differentially private job on L4 data goes from submission to release with the dev tokens alone', async () => {
  const budgets = (await t.call('GET', '/v1/budgets', { token: tokens.operator2 })).json.budgets;
  expect(budgets).toEqual([expect.objectContaining({ datasetId: 'transit_trips', epsilonCap: 10, epsilonSpent: 0, deltaCap: 0.00001 })]);
  const submitted = await t.call('POST', '/v1/jobs', {
    token: tokens.operator2,
    json: { datasets: ['transit_trips'], purpose: 'route planning', sql: 'SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY route_id', privacy: { differentialPrivacy: true, epsilon: 1 } },
  });
  expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
  expect((await t.waitForJob(submitted.json.id)).status).toBe('in_review');
  for (const key of ['regulator', 'regulator2']) {
    const review = await t.call('POST', `/v1/reviews/${submitted.json.id}`, { token: tokens[key], json: { decision: 'approve', reason: 'noise checked' } });
    expect(review.status, JSON.stringify(review.json)).toBe(200);
  }
  const result = await t.call('GET', `/v1/jobs/${submitted.json.id}/result`, { token: tokens.operator2 });
  expect(result.status).toBe(200);
  expect(result.json.manifest.differentialPrivacy.epsilon).toBe(1);
});
