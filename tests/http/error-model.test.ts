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

  it('every response carries security headers', async () => {
    const response = await t.call('GET', '/healthz');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  });
});

describe('loading over HTTP', () => {
  const csv = (rows: string) =>
    'account_id,customer_type,household_id,uscc,town,industry_code,month,kwh,amount_due,paid_on_time\n' + rows;

  it('the source institution uploads a CSV and gets version 2', async () => {
    const response = await t.call('POST', '/v1/datasets/power_readings/versions', {
      token: institution,
      headers: { 'content-type': 'text/csv' },
      body: csv('P0000000001,household,H00000001,,泥城镇,,2025-01-01,120.5,74.35,true\n'),
    });
    expect(response.status).toBe(201);
    expect(response.json).toMatchObject({ versionNumber: 2, rowCount: 1, contentHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it("another institution's dataset is refused", async () => {
    const response = await t.call('POST', '/v1/datasets/residents/versions', {
      token: institution,
      headers: { 'content-type': 'text/csv' },
      body: 'resident_id\n1\n',
    });
    expect(response.status).toBe(403);
  });

  it('a file of the wrong type is refused with 415', async () => {
    const response = await t.call('POST', '/v1/datasets/power_readings/versions', {
      token: institution,
      headers: { 'content-type': 'application/zip' },
      body: 'PK',
    });
    expect(response.status).toBe(415);
  });

  it('a schema mismatch is refused with 422 and the column named', async () => {
    const response = await t.call('POST', '/v1/datasets/power_readings/versions', {
      token: institution,
      headers: { 'content-type': 'text/csv' },
      body: csv('P0000000002,household,H00000001,,泥城镇,,2025-01-01,lots,74.35,true\n'),
    });
    expect(response.status).toBe(422);
    expect(response.json.error.details).toContainEqual({ path: 'kwh', problem: '1 value(s) are not DOUBLE (first at data row 1)' });
    expect(response.text).not.toContain('lots');
  });
});
