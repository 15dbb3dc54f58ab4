import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
beforeAll(async () => {
  t = await createTestPlatform();
});
afterAll(() => t?.close());

// Pages for people (HTML and their assets) and the document itself are the only routes outside the API document.
const pages = [/^\/openapi\.json$/, /^\/docs$/, /^\/console(\/|$)/];

it('the OpenAPI document is 3.1 and documents every route the server answers but its pages', async () => {
  const response = await t.call('GET', '/openapi.json');
  expect(response.status).toBe(200);
  expect(response.json.openapi).toBe('3.1.0');
  const documented = new Set(
    Object.entries(response.json.paths as Record<string, Record<string, unknown>>).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    ),
  );
  const served = t.app.routes
    .filter((route) => route.method !== 'ALL' && route.path !== '/*' && !pages.some((page) => page.test(route.path)))
    .map((route) => `${route.method} ${route.path.replace(/:(\w+)/g, '{$1}')}`);
  expect(served.length).toBeGreaterThan(10);
  expect(served.filter((route) => !documented.has(route))).toEqual([]);
});

it('the documentation page is served locally with no external resources', async () => {
  const response = await t.call('GET', '/docs');
  expect(response.status).toBe(200);
  expect(response.text).toContain('/openapi.json');
  expect(response.text).not.toMatch(/<(script|link)[^>]+(src|href)="https?:/);
});

it('the OpenAPI document validates against the OpenAPI 3.1 schema', async () => {
  const { Validator } = await import('@seriousme/openapi-schema-validator');
  const validator = new Validator();
  const document = (await t.call('GET', '/openapi.json')).json;
  const result = await validator.validate(document);
  expect(result.errors ?? []).toEqual([]);
  expect(result.valid).toBe(true);
  expect(validator.version).toBe('3.1');
});

it('gives every operation an example of its request body and of its answer', async () => {
  const document = (await t.call('GET', '/openapi.json')).json as { paths: Record<string, Record<string, any>> };
  const missing: string[] = [];
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const body = operation.requestBody?.content?.['application/json'];
      if (body && body.example === undefined && body.examples === undefined) missing.push(`${method} ${path}: request`);
      const success = Object.entries(operation.responses).find(([status]) => status.startsWith('2'))?.[1] as { content?: Record<string, { example?: unknown; examples?: unknown }> };
      const answers = Object.values(success?.content ?? {});
      if (answers.length > 0 && !answers.some((content) => content.example !== undefined || content.examples !== undefined)) missing.push(`${method} ${path}: response`);
    }
  }
  expect(missing).toEqual([]);
});
