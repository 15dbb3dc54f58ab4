import { afterAll, beforeAll, expect, it } from 'vitest';
import { licensedColumns, offeredExamples } from '../../src/console/browser/example-queries.js';
import { readBounds } from '../../src/privacy/bounds-text.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

/** The console's worked examples, sent as the analysis page sends them, under each demo operator's own licence. */
let t: TestPlatform;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
});
afterAll(() => t?.close());

it.each([
  ['analyst-lingang-analytics', ['accounts-by-town', 'town-share', 'quarterly-trend', 'monthly-moving-mean', 'use-bands', 'price-per-kwh', 'on-time-by-industry']],
  ['analyst-harbour-credit', ['on-time-by-industry', 'trips-by-route', 'trips-by-hour']],
])('%s is offered only the examples its licence covers, and the policy accepts each as it is', async (principal, expected) => {
  const token = await t.tokenFor(principal);
  const { licences } = (await t.call('GET', '/v1/licences', { token })).json;
  const examples = offeredExamples((dataset) => licensedColumns(licences, dataset));
  expect(examples.map((example) => example.id)).toEqual(expected);
  for (const example of examples) {
    const bounds = example.privacy?.bounds ? readBounds(example.privacy.bounds) : undefined;
    const privacy = example.kind === 'dp_aggregate' ? { privacy: { differentialPrivacy: true, epsilon: example.privacy!.epsilon, ...(bounds && 'bounds' in bounds ? { bounds: bounds.bounds } : {}) } } : {};
    const response = await t.call('POST', '/v1/jobs/dry-run', { token, json: { datasets: Object.keys(example.reads), sql: example.sql, purpose: 'example', ...privacy } });
    expect(response.json.decision, `${example.id}: ${JSON.stringify(response.json.error)}`).toBe('accept');
  }
});
