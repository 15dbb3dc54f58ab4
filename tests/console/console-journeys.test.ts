import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { serve, type ServerType } from '@hono/node-server';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/bootstrap.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

/**
 * The three console journeys of the interfaces issue, in real headless Chromium (Debian's, driven by
 * playwright-core) against a real server. Screenshots go to test-artifacts/console/. Without Chromium the suite is
 * skipped with a warning, except in CI, where .ci/run installs it and a missing browser fails.
 */
const chromiumPath = process.env.PDS_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = fs.existsSync(chromiumPath);
if (!haveChromium && process.env.CI) throw new Error(`browser tests need Chromium at ${chromiumPath} (.ci/run installs Debian's chromium)`);
if (!haveChromium) console.warn(`[console tests] skipped: no Chromium at ${chromiumPath} (apt-get install chromium)`);

const artifacts = path.join(projectRoot, 'test-artifacts', 'console');
let t: TestPlatform;
let server: ServerType;
let base: string;
let browser: Browser;

beforeAll(async () => {
  if (!haveChromium) return;
  fs.mkdirSync(artifacts, { recursive: true });
  t = await createTestPlatform({ demo: true, workers: 2, environment: { PDS_DEMO_SCALE: '0.01' } });
  server = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    // As root on a closed network: no sandbox, and no background connections Chromium would try to make.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  server?.close();
  await t?.close();
});

async function signedIn(principalId: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  (page as Page & { errors?: string[] }).errors = errors;
  await page.goto(`${base}/console`);
  await page.fill('#token', await t.tokenFor(principalId));
  await page.click('#sign-in');
  await page.waitForSelector('#who');
  return page;
}

const pageErrors = (page: Page) => (page as Page & { errors?: string[] }).errors ?? [];

describe.skipIf(!haveChromium)('console journeys in Chromium', () => {
  it('an operator checks a query against policy, submits it and sees its released result', async () => {
    const page = await signedIn('analyst-lingang-analytics');
    await page.goto(`${base}/console#analysis`);
    await page.waitForSelector('#sql');
    await page.uncheck('input[value="power_readings"]');
    await page.check('input[value="enterprises"]');
    await page.fill('#sql', 'SELECT industry_code, count(*) AS firms, sum(registered_capital) AS capital FROM enterprises GROUP BY industry_code');
    await page.click('#check');
    await page.waitForSelector('#verdict .badge.ok');
    await page.click('#submit');
    await page.waitForSelector('#result-table', { timeout: 60_000 });
    const rows = await page.locator('#result-table tbody tr').count();
    expect(rows).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(artifacts, 'operator-result.png'), fullPage: true });
    // A query the policy refuses is explained before submission, by code and reason.
    await page.goto(`${base}/console#analysis`);
    await page.waitForSelector('#sql');
    await page.uncheck('input[value="power_readings"]');
    await page.check('input[value="enterprises"]');
    await page.fill('#sql', 'SELECT name, legal_rep_name FROM enterprises');
    await page.click('#check');
    await page.waitForSelector('#verdict .badge.bad');
    expect(await page.textContent('#verdict')).toMatch(/ROW_LEVEL_OUTPUT|DIRECT_IDENTIFIER_USE/);
    await page.screenshot({ path: path.join(artifacts, 'operator-refusal.png'), fullPage: true });
    expect(pageErrors(page)).toEqual([]);
  });

  it('a regulator approves a held output and verifies the audit log in the browser', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const submitted = await t.call('POST', '/v1/jobs', {
      token: analyst,
      json: { datasets: ['power_readings'], sql: 'SELECT town, count(DISTINCT account_id) AS accounts, sum(kwh) AS kwh FROM power_readings GROUP BY town', purpose: '新片区能源规划' },
    });
    const held = await t.waitForJob(submitted.json.id);
    expect(held.status).toBe('in_review');

    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#reviews`);
    const card = page.locator(`section[data-job="${held.id}"]`);
    await card.waitFor();
    await page.screenshot({ path: path.join(artifacts, 'regulator-review.png'), fullPage: true });
    await card.locator('button.approve').click();
    await card.waitFor({ state: 'detached' });
    expect((await t.call('GET', `/v1/jobs/${held.id}`, { token: analyst })).json.status).toBe('released');

    await page.goto(`${base}/console#audit`);
    await page.click('#verify-log');
    await page.waitForSelector('#audit-outcome .badge.ok', { timeout: 30_000 });
    expect(await page.locator('#audit-table .badge.bad').count()).toBe(0);
    await page.screenshot({ path: path.join(artifacts, 'regulator-audit.png'), fullPage: true });

    await page.goto(`${base}/console#licences`);
    await page.waitForSelector('table tbody tr');
    const before = await page.locator('table tbody tr').count();
    await page.selectOption('#grant-operator', 'harbour-credit');
    await page.fill('#grant-title', '公交出行研究（公益）');
    await page.check('input[value="bus_routes"]');
    await page.selectOption('#grant-grade', 'L1');
    await page.click('#grant-licence');
    await page.waitForFunction((count) => document.querySelectorAll('table tbody tr').length > count, before);
    await page.screenshot({ path: path.join(artifacts, 'regulator-licences.png'), fullPage: true });

    await page.goto(`${base}/console#supervision`);
    await page.waitForSelector('#supervision-table tbody tr');
    expect(await page.locator('#supervision-table tbody tr').count()).toBeGreaterThanOrEqual(7);
    await page.screenshot({ path: path.join(artifacts, 'regulator-supervision.png'), fullPage: true });
    expect(pageErrors(page)).toEqual([]);
  });

  it('a consumer runs an encrypted verification in the browser, and the claim never leaves it', async () => {
    const version = (await t.platform.analysisCatalogue()).latestVersions.get('residents')!;
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await connection.run(`ATTACH '${t.platform.store.snapshotPath('residents', version)}' AS s (READ_ONLY)`);
    const [[id, name]] = (await connection.runAndReadAll('SELECT resident_id, name FROM s.data ORDER BY resident_id LIMIT 1')).getRows() as [[string, string]];
    instance.closeSync();

    const page = await signedIn('consumer-east-sea-bank');
    const sentInClear: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/verify-encrypted') && (request.postData() ?? '').includes(name)) sentInClear.push(request.url());
    });
    await page.goto(`${base}/console#products`);
    const card = page.locator('section[data-product="resident-identity"]');
    await card.waitFor();
    await card.locator('input[name="id_number"]').fill(id);
    await card.locator('input[name="name"]').fill(name);
    await card.locator('button.encrypted').click();
    await card.locator('.answer .badge.ok').waitFor({ timeout: 60_000 });
    await page.screenshot({ path: path.join(artifacts, 'consumer-encrypted.png'), fullPage: true });
    expect(sentInClear).toEqual([]);

    await card.locator('input[name="name"]').fill(`${name}甲`);
    await card.locator('button.encrypted').click();
    await card.locator('.answer .badge.bad').waitFor({ timeout: 60_000 });
    expect(pageErrors(page)).toEqual([]);
  });

  it('serves every console asset from this server', async () => {
    const page = await browser.newPage();
    const foreign: string[] = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(base) && !request.url().startsWith('data:')) foreign.push(request.url());
    });
    await page.goto(`${base}/console`);
    await page.waitForSelector('#token');
    expect(foreign).toEqual([]);
  });
});
