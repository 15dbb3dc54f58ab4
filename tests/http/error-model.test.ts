import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let institution: string;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true, environment: { PDS_BODY_LIMIT_BYTES: '4096' } });
  institution = await t.tokenFor('clerk-power-utility');
});
afterAll(() => t?.close());

const looksInternal = (text: string) => /at .+\(.+:\d+:\d+\)|node_modules|\/work\/|\.ts:\d+|SELECT |duckdb/i.test(text);

describe('the error model', () => {
  it('a malformed JSON body gives BAD_REQUEST and nothing internal', async () => {
    const response = await t.call('POST', '/v1/datasets', { token: institution, body: '{"id": ', headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe('BAD_REQUEST');
    expect(looksInternal(response.text)).toBe(false);
  });

  it('a body over the limit gives 413 BODY_TOO_LARGE', async () => {
    const response = await t.call('POST', '/v1/datasets', { token: institution, json: { description: 'x'.repeat(10_000) } });
    expect(response.status).toBe(413);
    expect(response.json.error.code).toBe('BODY_TOO_LARGE');
  });

  it.each([
    ['a declared Content-Length', false],
    ['chunked transfer encoding', true],
  ])('over a real socket, a body over the limit sent with %s gives 413 BODY_TOO_LARGE', async (_name, chunked) => {
    const server = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' });
    try {
      await new Promise<void>((resolve) => server.once('listening', () => resolve()));
      const { port } = server.address() as AddressInfo;
      const body = JSON.stringify({ description: 'x'.repeat(10_000) });
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const request = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/datasets', headers: { authorization: `Bearer ${institution}`, 'content-type': 'application/json', ...(chunked ? {} : { 'content-length': Buffer.byteLength(body) }) } }, (response) => {
          let received = '';
          response.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
          response.on('end', () => resolve({ status: response.statusCode!, text: received }));
        });
        request.on('error', reject);
        // Without a declared length, Node sends the body chunked.
        if (chunked) for (let offset = 0; offset < body.length; offset += 1000) request.write(body.slice(offset, offset + 1000));
        else request.write(body);
        request.end();
      });
      expect(status).toBe(413);
      expect(JSON.parse(text).error.code).toBe('BODY_TOO_LARGE');
    } finally {
      server.close();
    }
  });

  it('an unknown route gives a JSON 404', async () => {
    const response = await t.call('GET', '/v1/nothing-here', { token: institution });
    expect(response.status).toBe(404);
    expect(response.json.error.code).toBe('NOT_FOUND');
  });

  it('validation errors name the field and the rule, not the value sent', async () => {
    const response = await t.call('POST', '/v1/datasets', { token: institution, json: { id: 'SECRET Value 123', grade: 'L9' } });
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe('VALIDATION_FAILED');
    expect(response.text).not.toContain('SECRET Value 123');
    expect(response.json.error.details.map((d: { path: string }) => d.path)).toEqual(expect.arrayContaining(['id', 'grade']));
  });

  it('an unexpected failure answers a generic 500 with a reference only', async () => {
    const broken = await createTestPlatform();
    await broken.platform.controlPlane.close();
    const token = await broken.tokenFor('anyone');
    const response = await broken.call('GET', '/v1/datasets', { token });
    expect(response.status).toBe(500);
    expect(response.json.error.code).toBe('INTERNAL');
    expect(response.json.error.message).toMatch(/^internal error \(reference [0-9a-f-]{36}\)$/);
    expect(looksInternal(response.text)).toBe(false);
  });

  it('a NUL character in a body field is refused as VALIDATION_FAILED naming the field, and no job is created', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const before = (await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs.length;
    const response = await t.call('POST', '/v1/jobs', {
      token: analyst,
      json: { datasets: ['bus_routes'], purpose: 'route\u0000planning', sql: 'SELECT route_id, count(*) AS stops FROM bus_routes GROUP BY 1' },
    });
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe('VALIDATION_FAILED');
    expect(response.json.error.details).toEqual([{ path: 'purpose', problem: expect.stringContaining('U+0000') }]);
    expect((await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs.length).toBe(before);
  });

  it('an unpaired surrogate inside a nested body field is refused with the field path', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const response = await t.call('POST', '/v1/jobs/dry-run', {
      token: analyst,
      headers: { 'content-type': 'application/json' },
      body: '{"datasets":["bus_routes","\\ud800"],"purpose":"p","sql":"SELECT 1"}',
    });
    expect(response.status).toBe(400);
    expect(response.json.error.details).toEqual([{ path: 'datasets.1', problem: expect.stringContaining('surrogate') }]);
  });

  it('escaped text that only looks like a NUL, and a surrogate pair, are accepted', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const response = await t.call('POST', '/v1/jobs/dry-run', {
      token: analyst,
      json: { datasets: ['bus_routes'], purpose: 'literal \\u0000 and 😀', sql: 'SELECT route_id, count(*) AS stops FROM bus_routes GROUP BY 1' },
    });
    expect(response.status).toBe(200);
  });

  it('no route answers 500 to a NUL character (%00) in its path or query', async () => {
    const regulator = await t.tokenFor('regulator-data-dept');
    const document = (await t.call('GET', '/openapi.json')).json as { paths: Record<string, Record<string, unknown>> };
    const failures: string[] = [];
    for (const [template, operations] of Object.entries(document.paths)) {
      for (const method of Object.keys(operations)) {
        const url = template.includes('{') ? template.replace(/\{[^}]+\}/g, 'a%00b') : `${template}?x=%00`;
        const response = await t.call(method.toUpperCase(), url, { token: regulator, ...(method === 'get' ? {} : { json: {} }) });
        if (response.status >= 500) failures.push(`${method.toUpperCase()} ${template}: ${response.status}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('every route that takes JSON answers, and documents, 415 UNSUPPORTED_MEDIA_TYPE for a body of another media type', async () => {
    const regulator = await t.tokenFor('regulator-data-dept');
    const document = (await t.call('GET', '/openapi.json')).json as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown> }>> };
    const answers = new Map<string, string>();
    for (const [template, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        if (!operation.requestBody?.content['application/json']) continue;
        const url = template.replace(/\{[^}]+\}/g, '1');
        const response = await t.call(method.toUpperCase(), url, { token: regulator, body: 'a,b\n1,2\n', headers: { 'content-type': 'text/csv' } });
        answers.set(`${method.toUpperCase()} ${template}`, `${response.status} ${response.json?.error?.code}${operation.responses['415'] ? '' : ' (not documented)'}`);
      }
    }
    expect(answers.size).toBeGreaterThan(30);
    expect([...answers].filter(([, answer]) => answer !== '415 UNSUPPORTED_MEDIA_TYPE')).toEqual([]);
  });

  it('every response carries security headers', async () => {
    const response = await t.call('GET', '/healthz');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  });
});

describe('loading over HTTP', () => {
  const csv = (rows: string) =>
    'account_id,customer_type,household_id,uscc,town,industry_code,month,kwh,amount_due,paid_on_time\n' + rows;
  /** The source institution's clerk sends a file as a new version of a dataset. */
  const deliver = (dataset: string, contentType: string, body: BodyInit) =>
    t.call('POST', `/v1/datasets/${dataset}/versions`, { token: institution, headers: { 'content-type': contentType }, body });

  it('the source institution uploads a CSV and gets version 2', async () => {
    const response = await deliver('power_readings', 'text/csv', csv('P0000000001,household,H00000001,,泥城镇,,2025-01-01,120.5,74.35,true\n'));
    expect(response.status).toBe(201);
    expect(response.json).toMatchObject({ versionNumber: 2, rowCount: 1, contentHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('the same file delivered several times at the same moment is loaded once, and its snapshot stays', async () => {
    const body = csv('P0000000009,household,H00000001,,泥城镇,,2025-02-01,99.5,61.2,true\n');
    const answers = await Promise.all(Array.from({ length: 6 }, () => deliver('power_readings', 'text/csv', body)));
    expect(answers.map((answer) => `${answer.status} ${answer.json.error?.code ?? ''}`).sort()).toEqual(['201 ', ...Array(5).fill('409 VERSION_EXISTS')]);
    const loaded = answers.find((answer) => answer.status === 201)!.json;
    // The losers built the same bytes: removing "their" copy removed the winner's snapshot.
    expect(fs.existsSync(t.platform.store.snapshotPath('power_readings', loaded.contentHash))).toBe(true);
  });

  it("another institution's dataset is refused", async () => {
    const response = await deliver('residents', 'text/csv', 'resident_id\n1\n');
    expect(response.status).toBe(403);
  });

  it('a file of the wrong type is refused with 415', async () => {
    const response = await deliver('power_readings', 'application/zip', 'PK');
    expect(response.status).toBe(415);
  });

  it('a CSV sent as charset=GBK is read as GB 18030', async () => {
    const response = await deliver(
      'power_readings',
      'text/csv; charset=GBK',
      // "泥城镇" in GBK.
      Buffer.concat([Buffer.from(csv('P0000000003,household,H00000001,,')), Buffer.from('c4e0b3c7d5f2', 'hex'), Buffer.from(',,2025-01-01,1.5,0.93,true\n')]),
    );
    expect(response.status).toBe(201);
    expect(response.json.rowCount).toBe(1);
  });

  it('a CSV in a charset other than UTF-8 or GB 18030 is refused with 415', async () => {
    const response = await deliver('power_readings', 'text/csv; charset=iso-8859-1', csv('P0000000004,household,H00000001,,x,,2025-01-01,1.5,0.93,true\n'));
    expect(response.status).toBe(415);
    expect(response.json.error.message).toContain('gb18030');
  });

  it('a schema mismatch is refused with 422 and the column named', async () => {
    const response = await deliver('power_readings', 'text/csv', csv('P0000000002,household,H00000001,,泥城镇,,2025-01-01,lots,74.35,true\n'));
    expect(response.status).toBe(422);
    expect(response.json.error.details).toContainEqual({ path: 'kwh', problem: '1 value(s) are not DOUBLE (first at data row 1)' });
    expect(response.text).not.toContain('lots');
  });
});
