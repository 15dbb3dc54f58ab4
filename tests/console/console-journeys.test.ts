import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { serve, type ServerType } from '@hono/node-server';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/bootstrap.js';
import { residentIdCheckCharacter } from '../../src/catalog/identity-numbers.js';
import { eq } from 'drizzle-orm';
import { auditLeaves, incidents, jobs, licences, principals, sharingChannels } from '../../src/db/schema.js';
import { reserveBudget } from '../../src/privacy/budget-ledger.js';
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

/** A demo resident's ID number and name, read from the snapshot as only a test may (the n-th by ID number). */
async function residentAt(position: number): Promise<{ id: string; name: string }> {
  const version = (await t.platform.analysisCatalogue()).latestVersions.get('residents')!;
  const instance = await DuckDBInstance.create(':memory:');
  try {
    const connection = await instance.connect();
    await connection.run(`ATTACH '${t.platform.store.snapshotPath('residents', version)}' AS s (READ_ONLY)`);
    const [[id, name]] = (await connection.runAndReadAll(`SELECT resident_id, name FROM s.data ORDER BY resident_id LIMIT 1 OFFSET ${position}`)).getRows() as [[string, string]];
    return { id, name };
  } finally {
    instance.closeSync();
  }
}

/** Opens the analysis page with one dataset ticked (instead of the default) and the SQL written in. */
async function writeQuery(page: Page, dataset: string, sql: string): Promise<void> {
  await page.goto(`${base}/console#analysis`);
  await page.waitForSelector('#sql');
  for (const box of await page.locator('.checks input:checked').all()) await box.uncheck();
  await page.check(`input[value="${dataset}"]`);
  await page.fill('#sql', sql);
}

/** Every response of a page with an error status, as "status url", collected from now on. */
function failedResponses(page: Page): string[] {
  const failed: string[] = [];
  page.on('response', (response) => {
    if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
  });
  return failed;
}

const pageErrors = (page: Page) => (page as Page & { errors?: string[] }).errors ?? [];

describe.skipIf(!haveChromium)('console journeys in Chromium', () => {
  it('an operator checks a query against policy, submits it and sees its released result', async () => {
    const page = await signedIn('analyst-lingang-analytics');
    await writeQuery(page, 'enterprises', 'SELECT industry_code, count(*) AS firms, sum(registered_capital) AS capital FROM enterprises GROUP BY industry_code');
    await page.click('#check');
    await page.waitForSelector('#verdict .badge.ok');
    await page.click('#submit');
    await page.waitForSelector('#result-table', { timeout: 60_000 });
    const rows = await page.locator('#result-table tbody tr').count();
    expect(rows).toBeGreaterThan(0);
    // Its status in the chosen language, the API's word kept as the badge's title.
    expect(await page.locator('.badge[title="released"]').first().textContent()).toBe('已发布');
    // The released output saves as a CSV that Excel on Chinese Windows opens as UTF-8.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#result-csv')]);
    const csv = fs.readFileSync((await download.path())!, 'utf8');
    expect(csv.startsWith('\uFEFFindustry_code,firms,capital,suppressed\r\n')).toBe(true);
    expect(csv.trimEnd().split('\r\n')).toHaveLength(rows + 1);
    await page.screenshot({ path: path.join(artifacts, 'operator-result.png'), fullPage: true });
    // A query the policy refuses is explained before submission, by code and reason.
    await writeQuery(page, 'enterprises', 'SELECT name, legal_rep_name FROM enterprises');
    await page.click('#check');
    await page.waitForSelector('#verdict .badge.bad');
    // The code, what it means in the chosen language, and the server's reason.
    expect(await page.textContent('#verdict')).toMatch(/ROW_LEVEL_OUTPUT 非开放数据只能输出聚合结果|DIRECT_IDENTIFIER_USE 直接标识符只能用作连接键/);
    await page.screenshot({ path: path.join(artifacts, 'operator-refusal.png'), fullPage: true });
    expect(pageErrors(page)).toEqual([]);
  });

  it('an operator writing SQL reads the chosen datasets\' columns within its licence, and is told how many lie outside it', async () => {
    const before = (await t.platform.db.select().from(incidents)).length;
    const page = await signedIn('analyst-harbour-credit');
    await page.goto(`${base}/console#analysis`);
    const power = page.locator('#column-reference details[data-dataset="power_readings"]');
    await power.locator('summary').click();
    const names = await power.locator('tbody tr td:first-child').allTextContents();
    expect(names).toEqual(['account_id', 'customer_type', 'uscc', 'town', 'industry_code', 'month', 'paid_on_time']);
    expect(await power.locator('tbody tr', { hasText: 'paid_on_time' }).locator('td').last().textContent()).toBe('是否按期缴费');
    expect(await power.locator('.outside-licence').textContent()).toContain('另有 3 个字段不在您的许可范围内');
    // The example query names none of them.
    expect(await page.inputValue('#sql')).toContain('FROM power_readings');
    expect(await page.inputValue('#sql')).not.toContain('kwh');
    // Ticking a dataset adds its columns; unticking takes them away.
    await page.check('input[value="enterprises"]');
    await page.locator('#column-reference details[data-dataset="enterprises"]').waitFor();
    await page.uncheck('input[value="power_readings"]');
    expect(await page.locator('#column-reference details[data-dataset="power_readings"]').count()).toBe(0);
    // Reading the columns sends nothing to the policy check: no incident.
    expect((await t.platform.db.select().from(incidents)).length).toBe(before);
    expect(pageErrors(page)).toEqual([]);
  });

  it('an operator trial-runs its SQL over synthetic data and reads the output, labelled as synthetic', async () => {
    const page = await signedIn('analyst-lingang-analytics');
    await writeQuery(page, 'power_readings', 'SELECT town, count(*) AS readings, avg(kwh) AS mean_kwh FROM power_readings GROUP BY town ORDER BY town');
    await page.click('#trial-run');
    await page.locator('#trial-table tbody tr').first().waitFor();
    expect(await page.locator('#trial-table thead th').allTextContents()).toEqual(['town', 'readings', 'mean_kwh']);
    // Figures are shown as released ones are: grouped digits, no float rounding error (at most six decimals).
    const means = await page.locator('#trial-table tbody tr td:nth-child(3)').allTextContents();
    expect(means.length).toBeGreaterThan(0);
    for (const mean of means) expect(mean).toMatch(/^[\d,]+(\.\d{1,6})?$/);
    expect(await page.textContent('#trial .synthetic-note')).toContain('不读取真实数据');
    // An edit of the SQL clears the rows of the query they came from.
    await page.locator('#sql').press('End');
    await page.locator('#sql').type(' ');
    expect(await page.locator('#trial-table').count()).toBe(0);
    // A query the policy refuses is refused here too, before anything runs.
    await writeQuery(page, 'power_readings', 'SELECT account_id, kwh FROM power_readings');
    await page.click('#trial-run');
    await page.locator('#trial .badge.bad').waitFor();
    expect(await page.locator('#trial-table').count()).toBe(0);
    await page.screenshot({ path: path.join(artifacts, 'operator-trial-run.png'), fullPage: true });
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
    // Its operator reads, in Chinese, what the job waits for, and what was submitted.
    const own = await signedIn('analyst-lingang-analytics');
    await own.goto(`${base}/console#jobs/${encodeURIComponent(held.id)}`);
    await own.locator('#job-state').waitFor();
    expect(await own.locator('#job-state').innerText()).toMatch(/^待审核 等待 [12] 名审核人审核 · 已通过披露控制/);
    expect(await own.locator('#job-facts').innerText()).toContain('新片区能源规划');
    expect(await own.locator('#job-sql pre').textContent()).toBe('SELECT town, count(DISTINCT account_id) AS accounts, sum(kwh) AS kwh FROM power_readings GROUP BY town');
    expect(pageErrors(own)).toEqual([]);

    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#reviews`);
    const card = page.locator(`section[data-job="${held.id}"]`);
    await card.waitFor();
    // The output as it would be released, and how many of the reviewers it needs have approved.
    expect(await card.locator('table.review-output tbody tr').count()).toBeGreaterThan(0);
    expect(await card.locator('.approvals').textContent()).toMatch(/^已批准 0 \/ [12]$/);
    await page.screenshot({ path: path.join(artifacts, 'regulator-review.png'), fullPage: true });
    // No reason, no decision: the reviewer writes one (it is kept in the audit log).
    await card.locator('button.approve').click();
    await card.getByText(/VALIDATION_FAILED/).waitFor();
    await card.locator('input.reason').fill('已核对输出与披露控制记录');
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
    // A body that answered no request has no on-time share: a dash, not an empty bar that reads as none on time.
    const headers = await page.locator('#supervision-table thead th').allTextContents();
    const [onTime, share, late] = ['按时答复', '按时率', '逾期答复'].map((header) => headers.indexOf(header));
    const cells = await page.locator('#supervision-table tbody tr').evaluateAll((rows) => rows.map((row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent)));
    const unanswered = cells.filter((row) => row[onTime!] === '0' && row[late!] === '0');
    expect(unanswered.length).toBeGreaterThan(0);
    expect(unanswered.map((row) => row[share!])).toEqual(unanswered.map(() => '—'));
    await page.screenshot({ path: path.join(artifacts, 'regulator-supervision.png'), fullPage: true });
    expect(pageErrors(page)).toEqual([]);
  });

  it("a reviewer sees a long held output's first rows and, on request, every row", async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['power_readings'], sql: 'SELECT town, industry_code, month, count(*) AS readings FROM power_readings GROUP BY town, industry_code, month', purpose: '月度用电明细' } });
    const held = await t.waitForJob(submitted.json.id);
    expect(held.status).toBe('in_review');
    const rows = (held.output as { rows: unknown[][] }).rows.length;
    expect(rows).toBeGreaterThan(50);

    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#reviews`);
    const card = page.locator(`section[data-job="${held.id}"]`);
    await card.waitFor();
    expect(await card.locator('table.review-output tbody tr').count()).toBe(50);
    // One line counts the whole output, released and withheld by rule, whatever is shown of it.
    const manifest = held.manifest as { suppressedRows: unknown[]; suppressedByCode: Record<string, number> };
    const withheld = manifest.suppressedRows.length;
    expect(withheld).toBeGreaterThan(0);
    const summary = await card.locator('.output-summary').textContent();
    expect(summary).toContain(`共 ${rows.toLocaleString('en')} 行：发布 ${(rows - withheld).toLocaleString('en')} 行，抑制 ${withheld.toLocaleString('en')} 行`);
    if (manifest.suppressedByCode.BELOW_THRESHOLD) expect(summary).toContain(`贡献者少于阈值 ${manifest.suppressedByCode.BELOW_THRESHOLD.toLocaleString('en')}`);
    await card.locator('button.show-all').click();
    expect(await card.locator('table.review-output tbody tr').count()).toBe(rows);
    expect(pageErrors(page)).toEqual([]);
  });

  it('an operator picks a worked example its licence covers, and the form is filled for the check to accept it', async () => {
    const page = await signedIn('analyst-harbour-credit');
    await page.goto(`${base}/console#analysis`);
    await page.waitForSelector('#example');
    // Harbour Credit's licence leaves out power readings' kWh: no example reading it is offered.
    const offered = await page.locator('#example option').evaluateAll((options) => options.map((option) => (option as HTMLOptionElement).value).filter(Boolean));
    expect(offered).toEqual(['on-time-by-industry', 'trips-by-route', 'trips-by-hour']);
    await page.selectOption('#example', 'trips-by-route');
    expect(await page.inputValue('#sql')).toContain('avg(fare) AS mean_fare');
    expect(await page.inputValue('#job-kind')).toBe('dp_aggregate');
    expect(await page.inputValue('#dp-bounds')).toBe('fare: 0..5');
    expect(await page.locator('input[value="transit_trips"]').isChecked()).toBe(true);
    expect(await page.locator('input[value="power_readings"]').isChecked()).toBe(false);
    await page.click('#check');
    await page.waitForSelector('#verdict .badge.ok');
    expect(pageErrors(page)).toEqual([]);
  });

  it('a released output filtered by a HAVING after release tells the operator how many rows were checked and withheld', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const submitted = await t.call('POST', '/v1/jobs', {
      token: analyst,
      json: { datasets: ['power_readings'], sql: 'SELECT town, count(DISTINCT account_id) AS accounts FROM power_readings GROUP BY town HAVING accounts > 0 ORDER BY accounts DESC LIMIT 2', purpose: '新片区能源规划' },
    });
    const held = await t.waitForJob(submitted.json.id);
    if (held.status === 'in_review') await t.call('POST', `/v1/reviews/${held.id}`, { token: await t.tokenFor('regulator-data-dept'), json: { decision: 'approve', reason: 'checked' } });
    const result = (await t.call('GET', `/v1/jobs/${held.id}/result`, { token: analyst })).json;
    const page = await signedIn('analyst-lingang-analytics');
    await page.goto(`${base}/console#jobs/${encodeURIComponent(held.id)}`);
    const summary = page.locator('.output-summary');
    await summary.waitFor();
    const withheld = Object.values(result.manifest.checkedTable.suppressedByCode as Record<string, number>).reduce((sum, count) => sum + count, 0);
    expect(await summary.textContent()).toContain(`作用于发布结果之前，共检查 ${result.manifest.checkedTable.rowCount} 行，抑制 ${withheld} 行`);
    expect(await page.locator('#result-table tbody tr').count()).toBe(2);
    expect(pageErrors(page)).toEqual([]);
  });

  it('an operator with no privacy budget is told which jobs spend one', async () => {
    const page = await signedIn('analyst-lingang-analytics');
    await page.goto(`${base}/console#budgets`);
    expect(await page.locator('#no-budgets').textContent()).toContain('只有差分隐私任务消耗预算');
    expect(pageErrors(page)).toEqual([]);
  });

  it('a regulator sets a privacy budget with a reason, and resets what it has spent', async () => {
    const [licence] = await t.platform.db.select().from(licences).where(eq(licences.operatorId, 'harbour-credit'));
    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#budgets`);
    await page.selectOption('#budget-licence', licence!.id);
    await page.selectOption('#budget-dataset', 'residents');
    await page.fill('#budget-epsilon', '2.5');
    // Without a reason nothing is sent.
    await page.click('#set-budget');
    await page.locator('#set-budget-panel .error', { hasText: '请填写理由' }).waitFor();
    await page.fill('#budget-reason', '2027 年度人口研究预算');
    await page.click('#set-budget');
    const row = page.locator('tr', { has: page.locator('td', { hasText: /^residents$/ }) }).filter({ hasText: licence!.id });
    await row.waitFor();
    expect(await row.textContent()).toContain('harbour-credit');
    const leaves = await t.call('GET', '/v1/audit/entries?type=budget.cap-set&start=0&end=10000', { token: await t.tokenFor('regulator-data-dept') });
    expect(leaves.json.entries.at(-1).event.details).toMatchObject({ licence: licence!.id, reason: '2027 年度人口研究预算', epsilonCapMicro: 2_500_000 });

    // Spent by a job, then reset: the row offers a reset only once something is spent.
    expect(await row.locator('button.reset-budget').count()).toBe(0);
    await reserveBudget(t.platform.db, { licenceId: licence!.id, datasetId: 'residents', jobId: 'job-console-budget', epsilon: 0.5 }, new Date());
    await page.reload();
    await row.locator('button.reset-budget').waitFor();
    await row.locator('input.reason').fill('新许可年度');
    await row.locator('button.reset-budget').click();
    await row.locator('button.reset-budget').waitFor({ state: 'detached' });
    const budget = (await t.call('GET', '/v1/budgets', { token: await t.tokenFor('regulator-data-dept') })).json.budgets.find((entry: { licenceId: string; datasetId: string }) => entry.licenceId === licence!.id && entry.datasetId === 'residents');
    expect(budget).toMatchObject({ epsilonCap: 2.5, epsilonSpent: 0 });
    await page.screenshot({ path: path.join(artifacts, 'regulator-budgets.png'), fullPage: true });
    expect(pageErrors(page)).toEqual([]);
  });

  it('a regulator grants a consumer public-interest standing and revokes it', async () => {
    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#public-interest`);
    const row = page.locator('tr', { has: page.locator('[data-consumer="consumer-east-sea-bank"]') });
    await row.waitFor();
    await page.selectOption('#pi-consumer', 'consumer-east-sea-bank');
    await page.fill('#pi-basis', '普惠金融公益项目（测试）');
    await page.click('#pi-grant');
    // The demo already grants this bank a standing in force, so the badge alone does not show that the new grant landed.
    await row.getByText('普惠金融公益项目（测试）').waitFor();
    const grantStanding = row.locator('td').nth(3);
    await grantStanding.locator('.badge.ok').waitFor();
    const consumer = await t.tokenFor('consumer-east-sea-bank');
    expect((await t.call('GET', '/v1/consumers/consumer-east-sea-bank/public-interest', { token: consumer })).json).toMatchObject({ basis: '普惠金融公益项目（测试）', inForce: true });
    await page.screenshot({ path: path.join(artifacts, 'regulator-public-interest.png'), fullPage: true });

    // A revocation needs its written reason: without one the server refuses it and the grant stays in force.
    await row.locator('button').click();
    // The code's meaning in the reader's language first, then the code (the server's message is English).
    await page.locator('p.error').getByText('填写的内容不符合要求（VALIDATION_FAILED）').waitFor();
    expect((await t.call('GET', '/v1/consumers/consumer-east-sea-bank/public-interest', { token: consumer })).json.inForce).toBe(true);
    await row.locator('input.reason').fill('项目结束（测试）');
    await row.locator('button').click();
    await grantStanding.locator('.badge.bad').waitFor();
    // Beside the grant, the regulator sees where the consumer stands against its quotas.
    await row.getByText('/ 100000').waitFor();
    expect((await t.call('GET', '/v1/consumers/consumer-east-sea-bank/public-interest', { token: consumer })).json.inForce).toBe(false);
    expect(pageErrors(page)).toEqual([]);
  });

  it('a consumer runs an encrypted verification in the browser, and the claim never leaves it', async () => {
    const { id, name } = await residentAt(0);

    const page = await signedIn('consumer-east-sea-bank');
    const sentInClear: string[] = [];
    const keyRegistrations: string[] = [];
    const keysSent: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/verify-encrypted') && (request.postData() ?? '').includes(name)) sentInClear.push(request.url());
      if (request.url().endsWith('/v1/he-keys') && request.method() === 'POST') keyRegistrations.push(request.url());
      if (request.url().includes('/verify-encrypted')) keysSent.push(Object.keys(JSON.parse(request.postData() ?? '{}')).filter((field) => field === 'publicKey' || field === 'keyId').join());
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
    // The key pair is made once per sign-in: its public key registered once, and each call names it by id.
    expect(keyRegistrations).toHaveLength(1);
    expect(keysSent).toEqual(['keyId', 'keyId']);
    expect(pageErrors(page)).toEqual([]);
  });

  it("a consumer's claim of the wrong form is refused in the page's language, naming the field", async () => {
    const page = await signedIn('consumer-east-sea-bank');
    await page.goto(`${base}/console#products`);
    const card = page.locator('section[data-product="resident-identity"]');
    await card.locator('input[name="id_number"]').fill('12345');
    await card.locator('input[name="name"]').fill('张三');
    await card.locator('button').filter({ hasText: '明文核验' }).click();
    await card.locator('.answer .badge.bad', { hasText: '填写的内容不符合要求' }).waitFor();
    await card.locator('.answer', { hasText: 'input.id_number does not have the required form' }).waitFor();
    expect(pageErrors(page)).toEqual([]);
  });

  it('the data centre tells a person who checked them: every check by product, consumer and purpose, the identifier not left in the page', async () => {
    const { id, name } = await residentAt(30);
    const bank = await t.tokenFor('consumer-east-sea-bank');
    expect((await t.call('POST', '/v1/products/resident-identity/verify', { token: bank, json: { input: { id_number: id, name }, purpose: '=HYPERLINK("http://x")', use: 'industry' } })).status).toBe(200);

    const page = await signedIn('admin-data-centre');
    await page.goto(`${base}/console#subject-access`);
    await page.selectOption('#subject-product', 'resident-identity');
    await page.fill('#subject-inputs input[name="id_number"]', id);
    await page.fill('#subject-reference', 'SAR-2026-0042');
    await page.click('#subject-ask');
    await page.locator('#subject-checks tbody tr', { hasText: '=HYPERLINK' }).waitFor();
    await page.locator('#subject-answer', { hasText: '申请 SAR-2026-0042：共 1 次核验' }).waitFor();
    expect(await page.locator('#subject-checks tbody tr').first().innerText()).toContain('consumer-east-sea-bank');
    expect(await page.inputValue('#subject-inputs input[name="id_number"]')).toBe('');
    expect(await page.locator('main').innerText()).not.toContain(id);
    // The list for the written reply, as a file: a purpose written like a formula is not run by a spreadsheet.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#subject-csv')]);
    const lines = fs.readFileSync((await download.path())!, 'utf8').trimEnd().split('\r\n');
    expect(lines[0]).toBe('\uFEFFcalledAt,product,productTitleZh,consumer,consumerName,use,purpose,mode,auditIndex');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(',consumer-east-sea-bank,');
    expect(lines[1]).toContain(`,"'=HYPERLINK(""http://x"")",`);
    expect(pageErrors(page)).toEqual([]);
  });

  it('a consumer sees its calls today and its fees this month against its limits', async () => {
    const body = '44010619500000031';
    const wellFormedId = body + residentIdCheckCharacter(body);
    const consumer = await t.tokenFor('consumer-east-sea-bank');
    expect((await t.call('POST', '/v1/products/resident-identity/verify', { token: consumer, json: { input: { id_number: wellFormedId, name: '张三' }, purpose: '开户核验', use: 'industry' } })).status).toBe(200);
    const standing = (await t.call('GET', '/v1/consumers/consumer-east-sea-bank/quota', { token: consumer })).json;
    expect(standing.callsToday).toBeGreaterThan(0);
    const page = await signedIn('consumer-east-sea-bank');
    await page.goto(`${base}/console#usage`);
    const panel = page.locator('#quota-standing');
    await panel.waitFor();
    const text = await panel.innerText();
    expect(text).toContain(`${standing.callsToday} / ${standing.dailyCalls}`);
    expect(text).toContain(`${standing.feesThisMonthFen} / ${standing.monthlyCapFen}`);
    expect(text).toContain('正常');
    // The calls are named in the page's language, not by the API's words (plain, industry).
    const calls = await page.locator('table', { hasText: '调用方式' }).innerText();
    expect(calls).toContain('明文核验');
    expect(calls).toContain('行业用途');
    expect(calls).not.toMatch(/\b(plain|industry)\b/);
    await page.screenshot({ path: path.join(artifacts, 'consumer-quota.png'), fullPage: true });
    expect(pageErrors(page)).toEqual([]);
  });

  it('a public body sees its quality flags, requests shared data, and pulls it through its channel once the source confirms', async () => {
    await t.platform.db.insert(principals).values({ id: 'clerk-market-regulator', role: 'institution', displayName: '市场监管局 · 数据专员', institutionId: 'market-regulator' }).onConflictDoNothing();
    const power = await signedIn('clerk-power-utility');
    // The catalogue shows an entry's revision history (art. 10).
    await power.waitForSelector('#catalogue-history table tbody tr', { state: 'attached' });
    await power.goto(`${base}/console#quality`);
    await power.waitForSelector('section[data-dataset="power_readings"]');
    expect(await power.locator('section[data-dataset="power_readings"] tr', { hasText: 'freshness(month' }).locator('.badge.bad').innerText()).toBe('失败');
    expect(await power.locator('section[data-dataset="power_readings"] tr', { hasText: 'reference(uscc' }).locator('.badge.ok').innerText()).toBe('通过');
    await power.screenshot({ path: path.join(artifacts, 'institution-quality.png'), fullPage: true });

    await power.goto(`${base}/console#sharing`);
    await power.waitForSelector('#share-submit');
    await power.selectOption('#share-dataset', 'enterprises');
    await power.fill('#share-columns', 'uscc,name,status');
    await power.fill('#share-duty', '核实用电企业登记信息（法定职责）');
    await power.fill('#share-scenario', '企业用电报装审核');
    await power.click('#share-submit');
    await power.waitForSelector('#sharing-table tbody tr');

    const market = await signedIn('clerk-market-regulator');
    await market.goto(`${base}/console#sharing`);
    await market.waitForSelector('#sharing-table button.approve');
    await market.click('#sharing-table button.approve');
    await market.waitForSelector('#channels-table tbody tr');

    await power.reload();
    await power.waitForSelector('#channels-table button.pull');
    expect(await power.locator('#channels-table tbody tr', { has: power.locator('button.pull') }).first().locator('.badge').first().innerText()).toBe('开放');
    const [download] = await Promise.all([power.waitForEvent('download'), power.click('#channels-table button.pull')]);
    const file = await download.path();
    const text = fs.readFileSync(file!, 'utf8');
    // A byte order mark first, so that Excel on Chinese Windows reads the Chinese names as UTF-8.
    expect(text.startsWith('\uFEFF')).toBe(true);
    const lines = text.slice(1).trimEnd().split('\n');
    expect(lines[0]).toBe('uscc,name,status');
    expect(lines.length).toBeGreaterThan(1);
    await power.screenshot({ path: path.join(artifacts, 'institution-sharing.png'), fullPage: true });
    expect([...pageErrors(power), ...pageErrors(market)]).toEqual([]);
  });

  it("a source reads who used its data and for what: a job's operator, purpose and state, and a product's calls", async () => {
    await t.platform.db.insert(principals).values({ id: 'clerk-market-regulator', role: 'institution', displayName: '市场监管局 · 数据专员', institutionId: 'market-regulator' }).onConflictDoNothing();
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const purpose = '各镇存续企业数统计（使用记录测试）';
    const job = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['enterprises'], purpose, sql: "SELECT town, count(*) AS firms FROM enterprises WHERE status = 'active' GROUP BY town" } });
    expect((await t.waitForJob(job.json.id)).status).toBe('released');
    const example = (await t.call('GET', '/v1/products', { token: await t.tokenFor('consumer-east-sea-bank') })).json.products.find((product: { id: string }) => product.id === 'enterprise-identity').example;
    expect((await t.call('POST', '/v1/products/enterprise-identity/verify', { token: await t.tokenFor('consumer-east-sea-bank'), json: { input: example, purpose: '对公开户核验', use: 'industry' } })).status).toBe(200);
    await t.platform.products.ledger.drain();

    const market = await signedIn('clerk-market-regulator');
    await market.goto(`${base}/console#uses`);
    await market.waitForSelector('#uses-summary');
    // A public body is offered its own datasets only.
    expect(await market.locator('#uses-dataset option').evaluateAll((options) => options.map((option) => (option as HTMLOptionElement).value))).toEqual(['enterprises']);
    const row = market.locator('#uses-jobs tr', { hasText: purpose });
    expect(await row.locator('.badge').innerText()).toBe('已发布');
    expect(await row.innerText()).toContain('临港数智分析有限公司');
    expect(await row.locator('code.leaves').innerText()).toMatch(/^#\d+( #\d+)+$/);
    expect(await market.locator('#uses-products tr', { hasText: '企业统一社会信用代码、名称与法定代表人一致性核验' }).innerText()).toMatch(/已上线\s+[1-9]\d*/);
    // Never the SQL, nor the consumer that called.
    expect(await market.textContent('#main')).not.toMatch(/SELECT|consumer-east-sea-bank/);
    // The trail saves as a CSV, a line per use, that Excel on Chinese Windows opens as UTF-8.
    const [download] = await Promise.all([market.waitForEvent('download'), market.click('#uses-csv')]);
    const csv = fs.readFileSync((await download.path())!, 'utf8');
    expect(csv.startsWith('\uFEFFuse,at,by_or_to,what,state,code,calls,rows,audit_leaves\r\n')).toBe(true);
    expect(csv).toContain(purpose);
    await market.screenshot({ path: path.join(artifacts, 'institution-data-use.png'), fullPage: true });
    expect(pageErrors(market)).toEqual([]);
  });

  it('a public body without a channel is told where disputes come from; with one it raises a dispute and sees it awaiting an answer', async () => {
    await t.platform.db.insert(principals).values([
      { id: 'clerk-gas', role: 'institution', displayName: '临港燃气公司 · 数据专员', institutionId: 'gas-utility' },
      { id: 'clerk-market-regulator', role: 'institution', displayName: '市场监管局 · 数据专员', institutionId: 'market-regulator' },
    ]).onConflictDoNothing();
    const gas = await signedIn('clerk-gas');
    await gas.goto(`${base}/console#disputes`);
    expect(await gas.locator('#dispute-needs-channel').textContent()).toContain('贵单位目前没有共享通道');
    expect(await gas.locator('#dispute-submit').count()).toBe(0);

    const gasToken = await t.tokenFor('clerk-gas');
    const request = await t.call('POST', '/v1/sharing-requests', { token: gasToken, json: { dataset: 'enterprises', columns: ['uscc', 'name'], duty: '核实用气企业登记信息（法定职责）', scenario: '企业用气报装审核' } });
    expect((await t.call('POST', `/v1/sharing-requests/${request.json.id}/decision`, { token: await t.tokenFor('clerk-market-regulator'), json: { decision: 'approve' } })).status).toBe(200);
    await gas.reload();
    await gas.fill('#dispute-description', '企业名称与营业执照不一致');
    await gas.click('#dispute-submit');
    const row = gas.locator('#disputes-table tr', { hasText: '企业名称与营业执照不一致' });
    await row.waitFor();
    expect(await row.locator('.badge[title="open"]').textContent()).toBe('待答复');
    expect(await gas.locator('#dispute-needs-channel').count()).toBe(0);
    expect(pageErrors(gas)).toEqual([]);
  });

  it("the menu counts what waits on a body's answer — sharing requests, objections to its data, registrations to review — and shows late ones", async () => {
    await t.platform.db.insert(principals).values([
      { id: 'clerk-water', role: 'institution', displayName: '临港水务公司 · 数据专员', institutionId: 'water-utility' },
      { id: 'clerk-market-regulator', role: 'institution', displayName: '市场监管局 · 数据专员', institutionId: 'market-regulator' },
    ]).onConflictDoNothing();
    const water = await t.tokenFor('clerk-water');
    const market = await t.tokenFor('clerk-market-regulator');
    // One request the market regulator confirms (so the water company may object to the data), one left waiting.
    const confirmed = await t.call('POST', '/v1/sharing-requests', { token: water, json: { dataset: 'enterprises', columns: ['uscc', 'name'], duty: '核实用水企业登记信息（法定职责）', scenario: '企业用水报装审核' } });
    await t.call('POST', `/v1/sharing-requests/${confirmed.json.id}/decision`, { token: market, json: { decision: 'approve' } });
    await t.call('POST', '/v1/sharing-requests', { token: water, json: { dataset: 'enterprises', columns: ['uscc', 'status'], duty: '核实用水企业存续状态（法定职责）', scenario: '欠费企业催缴' } });
    await t.call('POST', '/v1/disputes', { token: water, json: { dataset: 'enterprises', description: '企业登记状态与实际经营不符' } });
    // What waits on the market regulator, read as the page reads it.
    const { datasets } = (await t.call('GET', '/v1/datasets', { token: market })).json as { datasets: Array<{ id: string; institution: { id: string } }> };
    const own = new Set(datasets.filter((dataset) => dataset.institution.id === 'market-regulator').map((dataset) => dataset.id));
    const requests = (await t.call('GET', '/v1/sharing-requests', { token: market })).json.requests as Array<{ status: string; dataset: string; sourceDecision: string | null }>;
    const sharing = requests.filter((request) => request.status === 'pending' && own.has(request.dataset) && !request.sourceDecision).length;
    const disputes = ((await t.call('GET', '/v1/disputes', { token: market })).json.disputes as Array<{ status: string; raiser: string }>).filter((dispute) => dispute.status === 'open' && dispute.raiser !== 'market-regulator').length;
    expect(sharing).toBeGreaterThan(0);
    expect(disputes).toBeGreaterThan(0);

    const page = await signedIn('clerk-market-regulator');
    await page.locator('[data-waiting="sharing"]', { hasText: new RegExp(`^${sharing}$`) }).waitFor();
    await page.locator('[data-waiting="disputes"]', { hasText: new RegExp(`^${disputes}$`) }).waitFor();
    // Answering one request takes it off the count.
    await page.goto(`${base}/console#sharing`);
    await page.locator('#sharing-table button.approve').first().click();
    if (sharing > 1) await page.locator('[data-waiting="sharing"]', { hasText: new RegExp(`^${sharing - 1}$`) }).waitFor();
    else await page.locator('[data-waiting="sharing"]').waitFor({ state: 'hidden' });

    // Past art. 18's working days, the count is shown as late, and says how many are.
    await t.call('POST', '/v1/sharing-requests', { token: water, json: { dataset: 'enterprises', columns: ['uscc'], duty: '核实用水企业统一社会信用代码（法定职责）', scenario: '水费账户核对' } });
    const now = t.clock.now;
    t.clock.now = new Date(now.getTime() + 30 * 86_400_000);
    try {
      const later = await signedIn('clerk-market-regulator');
      const late = later.locator('[data-waiting="sharing"].late');
      await late.waitFor();
      expect(await late.getAttribute('title')).toMatch(/^其中 [1-9]\d* 项已超过答复期限$/);
      expect(pageErrors(later)).toEqual([]);
    } finally {
      t.clock.now = now;
    }

    // The data centre's count is of registrations submitted for its review.
    const submitted = ((await t.call('GET', '/v1/registrations', { token: await t.tokenFor('admin-data-centre') })).json.registrations as Array<{ status: string }>).filter((registration) => registration.status === 'submitted').length;
    const admin = await signedIn('admin-data-centre');
    if (submitted > 0) await admin.locator('[data-waiting="registrations"]', { hasText: new RegExp(`^${submitted}$`) }).waitFor();
    else expect(await admin.locator('[data-waiting="registrations"]').isHidden()).toBe(true);
    for (const each of [page, admin]) expect(pageErrors(each)).toEqual([]);
  });

  it('a double click on send files one sharing request', async () => {
    const clerk = await t.tokenFor('clerk-power-utility');
    const count = async () => (await t.call('GET', '/v1/sharing-requests', { token: clerk })).json.requests.length;
    const before = await count();
    const page = await signedIn('clerk-power-utility');
    await page.goto(`${base}/console#sharing`);
    await page.waitForSelector('#share-submit');
    const rows = await page.locator('#sharing-table tbody tr').count();
    await page.selectOption('#share-dataset', 'enterprises');
    await page.fill('#share-columns', 'uscc,town');
    await page.fill('#share-duty', '双击测试（法定职责）');
    await page.fill('#share-scenario', '双击测试');
    await page.dblclick('#share-submit');
    await page.waitForFunction((count) => document.querySelectorAll('#sharing-table tbody tr').length > count, rows);
    // Every request the double click made has been answered before counting.
    await page.waitForLoadState('networkidle');
    expect(await count()).toBe(before + 1);
    expect(pageErrors(page)).toEqual([]);
  });

  it('a regulator reactivates a frozen channel only with a reason written', async () => {
    await t.platform.db.insert(principals).values({ id: 'clerk-market-regulator', role: 'institution', displayName: '市场监管局 · 数据专员', institutionId: 'market-regulator' }).onConflictDoNothing();
    const requested = await t.call('POST', '/v1/sharing-requests', {
      token: await t.tokenFor('clerk-power-utility'),
      json: { dataset: 'enterprises', columns: ['uscc', 'town'], duty: '核实用电企业所在镇（法定职责）', scenario: '用电报装' },
    });
    expect((await t.call('POST', `/v1/sharing-requests/${requested.json.id}/decision`, { token: await t.tokenFor('clerk-market-regulator'), json: { decision: 'approve' } })).status).toBe(200);
    const regulator = await t.tokenFor('regulator-data-dept');
    const channelStatus = async () => (await t.call('GET', '/v1/channels', { token: regulator })).json.channels.find((channel: { request: string }) => channel.request === requested.json.id);
    // Idle past the policy's limit, the governance sweep would freeze it; here it is frozen directly.
    await t.platform.db.update(sharingChannels).set({ status: 'frozen' }).where(eq(sharingChannels.id, (await channelStatus()).id));

    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#sharing`);
    const row = page.locator('#channels-table tbody tr', { has: page.locator('button.reactivate') }).first();
    await row.locator('button.reactivate').click();
    await row.locator('.message', { hasText: '请填写理由' }).waitFor();
    expect((await channelStatus()).status).toBe('frozen');
    await row.locator('input.reason').fill('监管复核：用途未变，恢复');
    await row.locator('button.reactivate').click();
    await page.waitForFunction(() => document.querySelectorAll('#channels-table button.reactivate').length === 0);
    expect((await channelStatus()).status).toBe('open');
    expect(pageErrors(page)).toEqual([]);
  });

  it('the data centre returns an incomplete registration with its findings and files a complete one', async () => {
    await t.platform.db.insert(principals).values({ id: 'clerk-water', role: 'institution', displayName: '自来水公司 · 数据专员', institutionId: 'water-utility' }).onConflictDoNothing();
    const water = await t.tokenFor('clerk-water');
    const registration = {
      kind: 'project',
      name: '二次供水泵房改造',
      description: '泵房设备台账',
      unstructured: [{ name: '泵房巡检记录扫描件', format: 'PDF', volume: '约 20 GB' }],
    };
    const submitted = await t.call('POST', '/v1/registrations', { token: water, json: registration });
    const admin = await signedIn('admin-data-centre');
    await admin.goto(`${base}/console#registrations`);
    const card = admin.locator(`section[data-registration="${submitted.json.id}"]`);
    await card.waitFor();
    const findings = await card.locator('table.findings').textContent();
    // Where, and what in the reader's language (the review's code for a missing grade).
    expect(findings).toContain('unstructured.0.grade');
    expect(findings).toContain('需要安全分级');
    await card.locator('input.reason').fill('非结构化数据需定级');
    await card.locator('button', { hasText: /退回|Return/ }).click();
    await admin.waitForSelector(`section[data-registration="${submitted.json.id}"] .badge.bad`);

    await t.call('PUT', `/v1/registrations/${submitted.json.id}`, { token: water, json: { ...registration, unstructured: [{ ...registration.unstructured[0], grade: 'L2' }] } });
    await admin.reload();
    await admin.locator(`section[data-registration="${submitted.json.id}"] button.approve`).click();
    // Wait for the re-rendered card itself: an "ok" badge can already be on it before the approval lands.
    await admin.locator(`section[data-registration="${submitted.json.id}"] h3`, { hasText: /LG-DR-\d{4}-\d{5}/ }).waitFor();
    expect(await admin.locator(`section[data-registration="${submitted.json.id}"] .badge.ok`).count()).toBeGreaterThan(0);
    await admin.screenshot({ path: path.join(artifacts, 'data-centre-registrations.png'), fullPage: true });
    expect(pageErrors(admin)).toEqual([]);
  });

  it('an operator sees the noise, its scale and a 95 % interval for each figure of a differentially private result', async () => {
    const [regulator, second] = await t.twoRegulators();
    const licence = (await t.call('GET', '/v1/licences', { token: regulator })).json.licences.find((entry: { operatorId: string }) => entry.operatorId === 'harbour-credit');
    await t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId: licence.id, datasetId: 'transit_trips', epsilonCap: 2, reason: 'test' } });
    const analyst = await t.tokenFor('analyst-harbour-credit');
    const submitted = await t.call('POST', '/v1/jobs', {
      token: analyst,
      json: { datasets: ['transit_trips'], sql: 'SELECT route_id, count(*) AS trips, avg(fare) AS mean_fare FROM transit_trips GROUP BY route_id', purpose: '线路规划', privacy: { differentialPrivacy: true, epsilon: 0.5 } },
    });
    expect((await t.waitForJob(submitted.json.id)).status).toBe('in_review');
    for (const token of [regulator, second]) await t.call('POST', `/v1/reviews/${submitted.json.id}`, { token, json: { decision: 'approve', reason: '差分隐私输出' } });
    expect((await t.waitForJob(submitted.json.id)).status).toBe('released');
    const page = await signedIn('analyst-harbour-credit');
    await page.goto(`${base}/console#jobs/${submitted.json.id}`);
    await page.waitForSelector('#dp-noise tbody tr');
    expect(await page.locator('#dp-noise tbody tr').count()).toBe(2);
    expect(await page.locator('#dp-noise').textContent()).toContain('discrete_laplace');
    // The count's header says its interval; a mean's has none (it is a ratio of two noisy figures).
    const headers = await page.locator('table thead th').allTextContents();
    expect(headers).toEqual(expect.arrayContaining(['route_id', expect.stringMatching(/^trips \(± [\d,]+\)$/), 'mean_fare']));
    // What the figures are of, in the reader's language: bounded contributions, not the raw data.
    expect(await page.textContent('#dp-bounded-note')).toContain('每个隐私单元至多 10 行');
    await page.screenshot({ path: path.join(artifacts, 'operator-dp-result.png'), fullPage: true });
    expect(pageErrors(page)).toEqual([]);
  });

  it('an operator reads the total of a differentially private ROLLUP as a total, and that it was made to add up to its cells', async () => {
    const [regulator, second] = await t.twoRegulators();
    const licence = (await t.call('GET', '/v1/licences', { token: regulator })).json.licences.find((entry: { operatorId: string }) => entry.operatorId === 'harbour-credit');
    await t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId: licence.id, datasetId: 'transit_trips', epsilonCap: 2, reason: 'test' } });
    const analyst = await t.tokenFor('analyst-harbour-credit');
    const submitted = await t.call('POST', '/v1/jobs', {
      token: analyst,
      json: { datasets: ['transit_trips'], sql: 'SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY ROLLUP (route_id)', purpose: '线路与全网', privacy: { differentialPrivacy: true, epsilon: 0.5 } },
    });
    expect((await t.waitForJob(submitted.json.id)).status).toBe('in_review');
    for (const token of [regulator, second]) await t.call('POST', `/v1/reviews/${submitted.json.id}`, { token, json: { decision: 'approve', reason: '差分隐私输出' } });
    const page = await signedIn('analyst-harbour-credit');
    // Before a job runs, the check says its totals will be made to add up.
    await writeQuery(page, 'transit_trips', 'SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY ROLLUP (route_id)');
    await page.selectOption('#job-kind', 'dp_aggregate');
    await page.click('#check');
    expect(await page.locator('#expected-totals').textContent()).toContain('使计数与求和的合计等于各单元格之和');
    await page.goto(`${base}/console#jobs/${submitted.json.id}`);
    await page.waitForSelector('#dp-noise tbody tr');
    expect(await page.locator('#result-table tbody tr').last().locator('td').first().textContent()).toBe('（合计）');
    expect(await page.textContent('#dp-bounded-note')).toContain('使计数与求和的合计等于各单元格之和');
    expect(await page.textContent('#dp-bounded-note')).not.toContain('去重人数');
    expect(pageErrors(page)).toEqual([]);
  });

  it("an operator opens its own job's query, datasets, purpose, privacy settings, bounds and model in the editor as a new job", async () => {
    const [regulator] = await t.twoRegulators();
    const licence = (await t.call('GET', '/v1/licences', { token: regulator })).json.licences.find((entry: { operatorId: string }) => entry.operatorId === 'harbour-credit');
    await t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId: licence.id, datasetId: 'transit_trips', epsilonCap: 2, reason: 'test' } });
    const analyst = await t.tokenFor('analyst-harbour-credit');
    const sql = 'SELECT hour(boarded_at) AS hour, count(*) AS trips, sum(fare) AS fares FROM transit_trips GROUP BY hour';
    const submitted = await t.call('POST', '/v1/jobs', {
      token: analyst,
      json: { datasets: ['transit_trips'], sql, purpose: '分时段客流（再分析）', privacy: { differentialPrivacy: true, epsilon: 0.25, mechanism: 'laplace', bounds: { fare: { min: 0, max: 5 } } } },
    });
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    await t.waitForJob(submitted.json.id);
    const page = await signedIn('analyst-harbour-credit');
    await page.goto(`${base}/console#jobs/${submitted.json.id}`);
    await page.click('#edit-as-new');
    await page.waitForSelector('#draft-note:not([hidden])');
    expect(await page.inputValue('#sql')).toBe(sql);
    expect(await page.inputValue('#purpose')).toBe('分时段客流（再分析）');
    expect(await page.inputValue('#job-kind')).toBe('dp_aggregate');
    expect(await page.inputValue('#dp-epsilon')).toBe('0.25');
    expect(await page.locator('.checks input:checked').evaluateAll((boxes) => boxes.map((box) => (box as HTMLInputElement).value))).toEqual(['transit_trips']);
    expect(await page.inputValue('#dp-bounds')).toBe('fare: 0..5');
    expect(await page.textContent('#draft-note')).toContain('已载入任务');
    // Filled once: the analysis page opened again starts afresh.
    await page.goto(`${base}/console#jobs`);
    await page.goto(`${base}/console#analysis`);
    await page.waitForSelector('#sql');
    expect(await page.isHidden('#draft-note')).toBe(true);
    // A model job opens with its model as written: target, features and each category's values.
    const modeller = await t.tokenFor('analyst-lingang-analytics');
    const model = await t.call('POST', '/v1/jobs', {
      token: modeller,
      json: { datasets: ['power_readings'], sql: 'SELECT amount_due, kwh, customer_type FROM power_readings', purpose: '电费与用电量（再分析）', model: { type: 'linear', target: 'amount_due', features: ['kwh', 'customer_type'], categories: { customer_type: ['household', 'enterprise'] } } },
    });
    const lingang = await signedIn('analyst-lingang-analytics');
    await lingang.goto(`${base}/console#jobs/${model.json.id}`);
    await lingang.click('#edit-as-new');
    await lingang.waitForSelector('#draft-note:not([hidden])');
    expect([await lingang.inputValue('#job-kind'), await lingang.inputValue('#model-type'), await lingang.inputValue('#model-target'), await lingang.inputValue('#model-features'), await lingang.inputValue('#model-categories')]).toEqual([
      'model',
      'linear',
      'amount_due',
      'kwh, customer_type',
      'customer_type: household, enterprise',
    ]);
    // A regulator reading the job is offered no editor.
    const reviewer = await signedIn('regulator-data-dept');
    await reviewer.goto(`${base}/console#jobs/${submitted.json.id}`);
    await reviewer.waitForSelector('#job-facts');
    expect(await reviewer.locator('#edit-as-new').count()).toBe(0);
    for (const each of [page, lingang, reviewer]) expect(pageErrors(each)).toEqual([]);
  });

  it('an operator reads, in Chinese, what the coefficients of a differentially private logistic model are', async () => {
    const [regulator] = await t.twoRegulators();
    const licence = (await t.call('GET', '/v1/licences', { token: regulator })).json.licences.find((entry: { operatorId: string }) => entry.operatorId === 'lingang-analytics');
    await t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId: licence.id, datasetId: 'power_readings', epsilonCap: 10, reason: 'test' } });
    const sql = "SELECT CASE WHEN kwh > 200 THEN 1 ELSE 0 END AS high_use, CASE WHEN month(month) IN (1, 2, 7, 8) THEN 1 ELSE 0 END AS peak FROM power_readings WHERE customer_type = 'household'";
    const page = await signedIn('analyst-lingang-analytics');
    // Before submitting, the check tells the noise of one Newton step, the same in each of the four.
    await writeQuery(page, 'power_readings', sql);
    await page.selectOption('#job-kind', 'dp_model');
    await page.selectOption('#model-type', 'logistic');
    await page.fill('#model-target', 'high_use');
    await page.fill('#model-features', 'peak');
    await page.fill('#dp-epsilon', '10');
    await page.fill('#dp-bounds', 'peak: 0..1');
    await page.click('#check');
    await page.waitForSelector('#expected-noise tbody tr');
    expect(await page.locator('#expected-noise tbody tr').count()).toBe(5);
    expect(await page.textContent('#expected-noise')).toContain('× 4');
    const submitted = await t.call('POST', '/v1/jobs', {
      token: await t.tokenFor('analyst-lingang-analytics'),
      json: { datasets: ['power_readings'], sql, purpose: '用电高峰分析', model: { type: 'logistic', target: 'high_use', features: ['peak'] }, privacy: { differentialPrivacy: true, epsilon: 10, bounds: { peak: { min: 0, max: 1 } } } },
    });
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    expect((await t.waitForJob(submitted.json.id)).status).toBe('in_review');
    await t.call('POST', `/v1/reviews/${submitted.json.id}`, { token: regulator, json: { decision: 'approve', reason: '差分隐私模型' } });
    await page.goto(`${base}/console#jobs/${submitted.json.id}`);
    await page.waitForSelector('#dp-noise tbody tr');
    expect(await page.textContent('#model-summary')).toContain('logistic: high_use ~ peak');
    // Four steps of five figures each, and a note that says what they are steps of.
    expect(await page.locator('#dp-noise tbody tr').count()).toBe(20);
    expect(await page.textContent('#dp-bounded-note')).toContain('4 步牛顿迭代');
    expect(pageErrors(page)).toEqual([]);
  });

  it("an operator names a categorical feature's values in the console, and the check says what each 0/1 feature stands for", async () => {
    const page = await signedIn('analyst-lingang-analytics');
    await writeQuery(page, 'power_readings', 'SELECT ln(amount_due + 1) AS log_bill, ln(kwh + 1) AS log_kwh, customer_type FROM power_readings');
    await page.selectOption('#job-kind', 'model');
    await page.fill('#model-target', 'log_bill');
    await page.fill('#model-features', 'log_kwh, customer_type');
    // A part that does not read as feature: values is refused in the page, not dropped.
    await page.fill('#model-categories', 'customer_type household');
    await page.click('#check');
    await page.locator('#verdict', { hasText: 'is not feature: baseline, value' }).waitFor();
    await page.fill('#model-categories', 'customer_type: household, enterprise');
    await page.click('#check');
    await page.locator('#verdict', { hasText: 'linear: log_bill ~ log_kwh + customer_type_1' }).waitFor();
    expect(await page.textContent('#category-columns')).toBe('customer_type_1 = enterprise (对比 household)');
    expect(pageErrors(page)).toEqual([]);
  });

  it("a model's category is described once when it becomes a product, and a consumer scores it by choosing its value", async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const submitted = await t.call('POST', '/v1/jobs', {
      token: analyst,
      json: { datasets: ['power_readings'], sql: 'SELECT ln(amount_due + 1) AS log_bill, ln(kwh + 1) AS log_kwh, customer_type FROM power_readings', purpose: '分类型电费模型', model: { type: 'linear', target: 'log_bill', features: ['log_kwh', 'customer_type'], categories: { customer_type: ['household', 'enterprise'] } } },
    });
    const job = submitted.json.id as string;
    const held = await t.waitForJob(job);
    expect(held.status, JSON.stringify(held)).not.toBe('withheld');
    if (held.status === 'in_review') for (const token of await t.twoRegulators()) await t.call('POST', `/v1/reviews/${job}`, { token, json: { decision: 'approve', reason: '模型参数' } });
    expect((await t.waitForJob(job)).status).toBe('released');

    const operator = await signedIn('analyst-lingang-analytics');
    await operator.goto(`${base}/console#products`);
    await operator.click('#product-new');
    await operator.selectOption('#product-kind', 'scoring');
    await operator.selectOption('#product-job', job);
    await operator.locator('#product-features tbody tr').nth(1).waitFor();
    expect(await operator.locator('#product-features [name="name"]').evaluateAll((inputs) => inputs.map((input) => (input as HTMLInputElement).value))).toEqual(['log_kwh', 'customer_type']);
    await operator.locator('#product-features tbody tr').first().locator('[name="description"]').fill('ln(月用电量 + 1)');
    await operator.locator('#product-features tbody tr').nth(1).locator('[name="description"]').fill('用户类型');
    await operator.fill('#product-id', 'bill-by-type');
    await operator.fill('#product-titleZh', '分类型电费估算');
    await operator.fill('#product-title', 'Bill by customer type');
    await operator.fill('#product-terms', '仅用于估算');
    await operator.click('#product-define');
    await operator.locator('section[data-admin-product="bill-by-type"] .badge[title="draft"]').waitFor();
    const [regulator] = await t.twoRegulators();
    await t.call('POST', '/v1/products/bill-by-type/decision', { token: regulator, json: { decision: 'approve', reason: '模型已发布' } });
    await t.call('POST', '/v1/products/bill-by-type/publication', { token: analyst, json: { action: 'publish' } });

    const consumer = await signedIn('consumer-east-sea-bank');
    await consumer.goto(`${base}/console#products`);
    const card = consumer.locator('section[data-product="bill-by-type"]');
    await card.waitFor();
    expect(await card.locator('select[name="customer_type"] option').allTextContents()).toEqual(['household', 'enterprise']);
    await card.locator('input[name="log_kwh"]').fill('6.5');
    await card.locator('select[name="customer_type"]').selectOption('enterprise');
    const expected = (await t.call('POST', '/v1/products/bill-by-type/score', { token: await t.tokenFor('consumer-east-sea-bank'), json: { input: { log_kwh: 6.5, customer_type: 'enterprise' }, purpose: 'test' } })).json.score as number;
    expect(await card.locator('button.plain').innerText()).toBe('明文评分');
    await card.locator('button.plain').click();
    await card.locator('.answer .badge.info').waitFor();
    expect(Number((await card.locator('.answer .badge').innerText()).replace(/,/g, ''))).toBeCloseTo(expected, 4);
    // The score says what it is: a prediction of the model's target.
    expect(await card.locator('.answer p.muted').innerText()).toContain('log_bill 的预测值');
    // Encrypted in the browser's worker: the client turns the value into the model's 0/1 feature before encrypting.
    await card.locator('button.encrypted').click();
    await card.locator('.answer .badge.info').waitFor({ timeout: 60_000 });
    expect(Math.abs(Number((await card.locator('.answer .badge').innerText()).replace(/,/g, '')) - expected)).toBeLessThan(1e-3 * Math.max(1, Math.abs(expected)));
    for (const page of [operator, consumer]) expect(pageErrors(page)).toEqual([]);
  });

  it('an operator trains a model from the console: the check names the regression, and the released coefficients show', async () => {
    const page = await signedIn('analyst-lingang-analytics');
    await writeQuery(page, 'power_readings', "SELECT ln(amount_due + 1) AS log_bill, ln(kwh + 1) AS log_kwh, CASE WHEN customer_type = 'enterprise' THEN 1 ELSE 0 END AS enterprise FROM power_readings");
    expect(await page.isVisible('#model-fields')).toBe(false);
    await page.selectOption('#job-kind', 'model');
    await page.fill('#model-target', 'log_bill');
    await page.fill('#model-features', 'log_kwh, enterprise');
    await page.click('#check');
    await page.locator('#verdict', { hasText: 'linear: log_bill ~ log_kwh + enterprise' }).waitFor();
    expect(await page.textContent('#verdict')).toContain('模型训练');
    await page.click('#submit');
    await page.waitForURL(/#jobs\/job_/);
    const id = decodeURIComponent(page.url().split('#jobs/')[1]!);
    const held = await t.waitForJob(id);
    if (held.status === 'in_review') {
      const [regulator, second] = await t.twoRegulators();
      for (const token of [regulator, second]) await t.call('POST', `/v1/reviews/${id}`, { token, json: { decision: 'approve', reason: '模型参数' } });
    }
    expect((await t.waitForJob(id)).status).toBe('released');
    await page.reload();
    await page.locator('#result-table', { hasText: '(intercept)' }).waitFor();
    expect(await page.textContent('#model-summary')).toMatch(/linear: log_bill ~ log_kwh \+ enterprise.*样本数.*R²/);
    await page.screenshot({ path: path.join(artifacts, 'operator-model.png'), fullPage: true });

    // The released model becomes a scoring product: its features come from the release.
    await page.goto(`${base}/console#products`);
    await page.click('#product-new');
    await page.selectOption('#product-kind', 'scoring');
    await page.selectOption('#product-job', id);
    await page.locator('#product-features tbody tr').nth(1).waitFor();
    expect(await page.locator('#product-features [name="name"]').evaluateAll((inputs) => inputs.map((input) => (input as HTMLInputElement).value))).toEqual(['log_kwh', 'enterprise']);
    await page.locator('#product-features tbody tr').first().locator('[name="description"]').fill('ln(月用电量 + 1)');
    await page.locator('#product-features tbody tr').nth(1).locator('[name="description"]').fill('是否企业（1/0）');
    await page.fill('#product-id', 'bill-model');
    await page.fill('#product-titleZh', '电费估算模型');
    await page.fill('#product-title', 'Bill model');
    await page.fill('#product-terms', '仅用于估算');
    await page.click('#product-define');
    await page.locator('section[data-admin-product="bill-model"] .badge[title="draft"]').waitFor();
    expect(pageErrors(page)).toEqual([]);
  });

  it('an operator asks for a differentially private aggregate and sees its privacy cost and the budget left before submitting', async () => {
    const [regulator] = await t.twoRegulators();
    const licence = (await t.call('GET', '/v1/licences', { token: regulator })).json.licences.find((entry: { operatorId: string }) => entry.operatorId === 'harbour-credit');
    await t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId: licence.id, datasetId: 'transit_trips', epsilonCap: 3, reason: 'test' } });
    const incidents = async () => (await t.call('GET', '/v1/incidents', { token: regulator })).json.incidents.length;
    const before = await incidents();
    const page = await signedIn('analyst-harbour-credit');
    // Opening the page checks nothing the operator did not write: it used to check a power-readings example at
    // once, an over-scope incident for this operator, whose licence leaves out the readings' kwh.
    await page.goto(`${base}/console#analysis`);
    await page.waitForSelector('#sql');
    await page.waitForLoadState('networkidle');
    expect(await page.locator('.checks input').evaluateAll((boxes) => boxes.map((box) => (box as HTMLInputElement).value))).not.toContain('water_readings');
    await writeQuery(page, 'transit_trips', 'SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY route_id');
    // L4 data without differential privacy is refused, with the reason in the reader's language.
    await page.click('#check');
    await page.locator('#verdict', { hasText: 'DP_REQUIRED' }).waitFor();
    await page.selectOption('#job-kind', 'dp_aggregate');
    await page.fill('#dp-epsilon', '0.25');
    await page.click('#check');
    await page.locator('#budget-estimate', { hasText: 'ε 0.25' }).waitFor();
    expect(await page.textContent('#verdict')).toContain('差分隐私聚合');
    // Not the grade's suppression thresholds, which a noisy output does not go through.
    expect(await page.textContent('#verdict')).toContain('ε 0.25 · δ 0 · laplace');
    expect(await page.textContent('#verdict')).not.toContain('最少贡献者');
    expect(await page.textContent('#budget-estimate')).toMatch(/ε 0\.25 剩余预算 [\d.]+ \/ 3/);
    // Trips per rider, counted per card in a CTE: the computed column needs the operator's bounds, written in the form.
    await page.fill('#sql', 'WITH per_card AS (SELECT card_id, route_id, count(*) AS trips FROM transit_trips GROUP BY card_id, route_id)\nSELECT route_id, avg(trips) AS trips_per_rider FROM per_card GROUP BY route_id');
    await page.click('#check');
    await page.locator('#verdict', { hasText: 'privacy.bounds.trips' }).waitFor();
    await page.fill('#dp-bounds', 'trips 0 to 20');
    await page.click('#check');
    await page.locator('#verdict', { hasText: '"trips 0 to 20" is not column: min..max' }).waitFor();
    await page.fill('#dp-bounds', 'trips: 0..20');
    await page.click('#check');
    await page.locator('#budget-estimate', { hasText: 'ε 0.25' }).waitFor();
    // What the ε buys, before it is spent: each figure's 95 % half-width, from the plan alone.
    expect(await page.textContent('#expected-noise')).toMatch(/预计噪声.*sum\(trips\).*± \d+/);
    await page.screenshot({ path: path.join(artifacts, 'operator-dp-bounds.png'), fullPage: true });
    // A differentially private model asks for both: ε and bounds, target and features.
    await page.selectOption('#job-kind', 'dp_model');
    expect([await page.isVisible('#dp-fields'), await page.isVisible('#model-fields')]).toEqual([true, true]);
    await page.selectOption('#job-kind', 'dp_aggregate');
    await page.locator('#budget-estimate', { hasText: 'ε 0.25' }).waitFor();
    await page.click('#submit');
    await page.waitForURL(/#jobs\/job_/);
    const submitted = await t.waitForJob(decodeURIComponent(page.url().split('#jobs/')[1]!));
    const job = (await t.call('GET', `/v1/jobs/${submitted.id}`, { token: await t.tokenFor('analyst-harbour-credit') })).json;
    // The bounds written in the form are kept with the job as written.
    expect(job.differentialPrivacy).toEqual({ epsilon: 0.25, delta: 0, mechanism: 'laplace', bounds: { trips: { min: 0, max: 20 } } });
    expect(submitted.statusCode).toBe('CHECKED_WITH_NOISE');
    expect(await incidents()).toBe(before);
    await page.goto(`${base}/console#jobs`);
    await page.locator('#jobs-table tr', { hasText: job.id.slice(0, 16) }).getByText('差分隐私聚合').waitFor();
    expect(pageErrors(page)).toEqual([]);
  });

  it('a regulator reads a draft product\'s whole definition and approves it with a reason; its operator publishes it', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const defined = await t.call('POST', '/v1/products', {
      token: analyst,
      json: {
        id: 'industry-class-check',
        title: 'Enterprise industry class check',
        titleZh: '企业行业分类核验',
        terms: '仅用于授信前核对企业所属行业',
        spec: {
          kind: 'verification',
          dataset: 'enterprises',
          inputs: [
            { name: 'credit_code', description: '统一社会信用代码', example: '91310115MA1H7XQ08N', checksum: 'gb32100' },
            { name: 'industry', description: '国民经济行业代码', example: 'C3612' },
          ],
          subject: [{ input: 'credit_code', column: 'uscc' }],
          claims: [{ input: 'industry', column: 'industry_code' }],
        },
      },
    });
    expect(defined.json.status).toBe('draft');

    const regulator = await signedIn('regulator-data-dept');
    await regulator.goto(`${base}/console#products`);
    const card = regulator.locator('section[data-admin-product="industry-class-check"]');
    const definition = await card.locator('table.product-definition').textContent();
    for (const fact of ['enterprises', 'credit_code', 'industry', '国民经济行业代码']) expect(definition).toContain(fact);
    // Its kind and modes in the page's language.
    expect(await card.locator('h3 .badge').last().innerText()).toBe('核验');
    expect(await card.locator('p.muted').first().innerText()).toContain('明文 / 同态加密');
    // A decision without a reason is refused, and says so next to the button.
    await card.locator('button.decide-approve').click();
    await card.getByText(/VALIDATION_FAILED/).waitFor();
    await card.locator('input.reason').fill('核验范围与条款已审查');
    await card.locator('button.decide-approve').click();
    await regulator.locator('section[data-admin-product="industry-class-check"] .badge[title="approved"]').waitFor();
    await regulator.screenshot({ path: path.join(artifacts, 'regulator-products.png'), fullPage: true });

    const operator = await signedIn('analyst-lingang-analytics');
    await operator.goto(`${base}/console#products`);
    await operator.locator('section[data-admin-product="industry-class-check"] button.publish').click();
    await operator.locator('section[data-admin-product="industry-class-check"] .badge[title="published"]').waitFor();
    // Another operator's published product is listed after its own, with nothing to press: it is not this operator's.
    const another = operator.locator('section[data-admin-product="enterprise-identity"]');
    expect(await another.locator('.badge[title="published"]').count()).toBe(1);
    expect(await another.locator('button').count()).toBe(0);
    // The reason written in the console is the one the audit log keeps.
    const leaves = await t.platform.db.select({ leaf: auditLeaves.leaf }).from(auditLeaves).where(eq(auditLeaves.eventType, 'product.approve'));
    expect(leaves.some(({ leaf }) => leaf.includes('industry-class-check') && leaf.includes('核验范围与条款已审查'))).toBe(true);
    for (const page of [regulator, operator]) expect(pageErrors(page)).toEqual([]);
  });

  it('an operator defines a verification product in the console; a definition the server refuses names the field', async () => {
    const page = await signedIn('analyst-lingang-analytics');
    await page.goto(`${base}/console#products`);
    await page.click('#product-new');
    await page.waitForSelector('#product-form');
    await page.fill('#product-id', 'Town-Check');
    await page.fill('#product-titleZh', '企业所在镇核验');
    await page.fill('#product-title', 'Enterprise town check');
    await page.fill('#product-terms', '仅用于核对企业登记所在镇');
    await page.selectOption('#product-dataset', 'enterprises');
    const input = (row: number) => page.locator('#product-inputs tbody tr').nth(row);
    await input(0).locator('[name="name"]').fill('credit_code');
    await input(0).locator('[name="description"]').fill('统一社会信用代码');
    await input(0).locator('[name="example"]').fill('91310115MA1H7XQ08N');
    await input(0).locator('[name="checksum"]').selectOption('gb32100');
    await page.click('#product-inputs button.add');
    await input(1).locator('[name="name"]').fill('town');
    await input(1).locator('[name="description"]').fill('登记所在镇');
    await input(1).locator('[name="example"]').fill('泥城镇');
    await page.locator('#product-subject tbody tr').first().locator('[name="input"]').fill('credit_code');
    await page.locator('#product-subject tbody tr').first().locator('[name="column"]').fill('uscc');
    await page.click('#product-claims button.add');
    await page.locator('#product-claims tbody tr').first().locator('[name="input"]').fill('town');
    await page.locator('#product-claims tbody tr').first().locator('[name="column"]').fill('town');
    await page.click('#product-define');
    // Upper case is not an id: the refusal names the field, and nothing is stored.
    await page.locator('#product-outcome', { hasText: 'VALIDATION_FAILED' }).waitFor();
    expect(await page.textContent('#product-outcome')).toContain('id');
    await page.fill('#product-id', 'town-check');
    await page.click('#product-define');
    await page.locator('#product-outcome .badge.ok').waitFor();
    await page.locator('section[data-admin-product="town-check"] .badge[title="draft"]').waitFor();
    const product = (await t.call('GET', '/v1/products/town-check', { token: await t.tokenFor('regulator-data-dept') })).json;
    expect(product).toMatchObject({ dataset: 'enterprises', subjectInputs: ['credit_code'], claimInputs: ['town'], status: 'draft' });
    expect(pageErrors(page)).toEqual([]);
  });

  it('a double click on submit queues one job', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const before = (await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs.length;
    const page = await signedIn('analyst-lingang-analytics');
    await writeQuery(page, 'bus_routes', 'SELECT town, count(*) AS stops FROM bus_routes GROUP BY town');
    await page.dblclick('#submit');
    await page.waitForURL(/#jobs\/job_/);
    const after = (await t.call('GET', '/v1/jobs', { token: analyst })).json.jobs;
    expect(after.length).toBe(before + 1);
    expect(pageErrors(page)).toEqual([]);
  });

  it('a regulator filters the audit log to licence events, verifies them, and pages to older events', async () => {
    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#audit`);
    await page.waitForSelector('#audit-table tbody tr');
    expect(await page.locator('#audit-table tbody tr').count()).toBe(25);
    await page.click('#audit-older');
    await page.waitForFunction(() => document.querySelectorAll('#audit-table tbody tr').length > 25);
    const indexes = (await page.locator('#audit-table tbody tr td:first-child').allTextContents()).map(Number);
    expect(indexes).toEqual([...indexes].sort((a, b) => b - a));
    expect(new Set(indexes).size).toBe(indexes.length);

    await page.selectOption('#audit-family', 'licence');
    await page.waitForFunction(() => {
      const types = [...document.querySelectorAll('#audit-table tbody tr td:nth-child(2)')].map((cell) => cell.textContent ?? '');
      return types.length > 0 && types.every((type) => type.startsWith('licence.'));
    });
    const types = await page.locator('#audit-table tbody tr td:nth-child(2)').allTextContents();
    expect(types).toContain('licence.granted');
    await page.click('#verify-log');
    await page.waitForSelector('#audit-outcome .badge.ok', { timeout: 30_000 });
    expect(await page.locator('#audit-table .badge.bad').count()).toBe(0);
    expect(pageErrors(page)).toEqual([]);
  });

  it("a regulator narrows the audit log to one dataset's events and verifies them", async () => {
    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#audit`);
    await page.waitForSelector('#audit-table tbody tr');
    const before = await page.locator('#audit-table tbody tr td:first-child').allTextContents();
    await page.selectOption('#audit-dataset', 'enterprises');
    await page.waitForFunction((earlier) => {
      const shown = [...document.querySelectorAll('#audit-table tbody tr td:first-child')].map((cell) => cell.textContent);
      return shown.length > 0 && shown.join() !== earlier;
    }, before.join());
    const indexes = (await page.locator('#audit-table tbody tr td:first-child').allTextContents()).map(Number);
    const regulator = await t.tokenFor('regulator-data-dept');
    for (const index of indexes) {
      const [entry] = (await t.call('GET', `/v1/audit/entries?start=${index}&end=${index + 1}`, { token: regulator })).json.entries;
      expect(entry.event.datasets).toContain('enterprises');
    }
    await page.click('#verify-log');
    await page.waitForSelector('#audit-outcome .badge.ok', { timeout: 30_000 });
    expect(pageErrors(page)).toEqual([]);
  });

  it('the browser witnesses the audit log: a later verification proves the log only grew since the last, and a rewritten history is flagged', async () => {
    const page = await signedIn('regulator-data-dept');
    const verify = async () => {
      await page.goto(`${base}/console#blank`);
      await page.goto(`${base}/console#audit`);
      await page.waitForSelector('#audit-table tbody tr');
      await page.click('#verify-log');
      return page.locator('#audit-witness');
    };
    await (await verify()).filter({ hasText: '首次核验' }).waitFor({ timeout: 30_000 });
    const first = await page.evaluate(() => JSON.parse(localStorage.getItem('pds-witnessed-checkpoint')!));

    // The log grows (a token is minted, an audit leaf); the next verification proves the old tree is its prefix.
    await t.call('POST', '/v1/tokens', { token: await t.tokenFor('admin-data-centre'), json: { principalId: 'consumer-east-sea-bank' } });
    await (await verify()).filter({ hasText: `与本浏览器上次核验的检查点（${first.tree_size} 条` }).waitFor({ timeout: 30_000 });
    expect(await page.locator('#audit-outcome .badge.ok').count()).toBe(1);
    const second = await page.evaluate(() => JSON.parse(localStorage.getItem('pds-witnessed-checkpoint')!));
    expect(second.tree_size).toBeGreaterThan(first.tree_size);

    // A history other than the one witnessed (here: the witness's root changed) cannot be proved consistent.
    const forged = { ...second, root_hash: second.root_hash.replace(/^./, (c: string) => (c === '0' ? '1' : '0')) };
    await page.evaluate((kept) => localStorage.setItem('pds-witnessed-checkpoint', JSON.stringify(kept)), forged);
    await (await verify()).filter({ hasText: '不一致' }).waitFor({ timeout: 30_000 });
    expect(await page.locator('#audit-outcome .badge.bad').count()).toBe(1);
    expect(await page.evaluate(() => JSON.parse(localStorage.getItem('pds-witnessed-checkpoint')!))).toEqual(forged);
    // Only a person's choice lets it go (a deployment rebuilt on purpose); the next verification starts afresh.
    await page.click('#audit-forget-witness');
    await (await verify()).filter({ hasText: '首次核验' }).waitFor({ timeout: 30_000 });
    expect(pageErrors(page)).toEqual([]);
  });

  it('a consumer asks for data to be opened, and reads the data centre\'s answer', async () => {
    const subject = '公交线路与站点（开放需求测试）';
    const bank = await signedIn('consumer-east-sea-bank');
    await bank.goto(`${base}/console#open-data`);
    await bank.waitForSelector('#demand-send');
    await bank.fill('#demand-subject', subject);
    await bank.fill('#demand-scenario', '网点周边出行便利度评估');
    await bank.click('#demand-send');
    const row = bank.locator('#demands-table tbody tr', { hasText: subject });
    await row.waitFor();
    expect(await row.locator('.badge[title="open"]').innerText()).toBe('待答复');
    // Consumers are not shown who asked.
    expect(await bank.locator('#demands-table th').allTextContents()).not.toContain('提出者');

    const admin = await signedIn('admin-data-centre');
    await admin.goto(`${base}/console#open-data`);
    const pending = admin.locator('#demands-table tbody tr', { hasText: subject });
    await pending.waitFor();
    expect(await pending.innerText()).toContain('consumer-east-sea-bank');
    await pending.locator('select.met-by').selectOption('bus_routes');
    await pending.locator('input.answer').fill('公交线路与站点已作为开放数据提供');
    await pending.locator('button.met').click();
    await admin.locator('#demands-table tbody tr', { hasText: subject }).locator('.badge[title="met"]').waitFor();

    await bank.reload();
    const answered = bank.locator('#demands-table tbody tr', { hasText: subject });
    await answered.locator('.badge[title="met"]').waitFor();
    expect(await answered.innerText()).toContain('bus_routes');
    await bank.screenshot({ path: path.join(artifacts, 'consumer-open-data.png'), fullPage: true });
    expect([...pageErrors(bank), ...pageErrors(admin)]).toEqual([]);
  });

  it('an admin disables an account only with a reason written, and enables it again', async () => {
    const admin = await t.tokenFor('admin-data-centre');
    await t.call('POST', '/v1/principals', { token: admin, json: { id: 'console-leaver', role: 'consumer', displayName: '离职测试账号' } });
    const page = await signedIn('admin-data-centre');
    await page.goto(`${base}/console#accounts`);
    const row = page.locator('#accounts-table tbody tr', { has: page.locator('[data-principal="console-leaver"]') });
    // Roles in the page's language, as in the header.
    expect(await row.locator('span[title="consumer"]').textContent()).toBe('接口调用方');
    expect(await page.textContent('#who')).toContain('(大数据中心管理员)');
    await row.locator('button').click();
    await page.locator('#accounts-message', { hasText: '请填写理由' }).waitFor();
    expect((await t.call('GET', '/v1/principals', { token: admin })).json.principals.find((p: { id: string }) => p.id === 'console-leaver').status).toBe('active');
    await row.locator('input.reason').fill('已离职');
    await row.locator('button').click();
    await row.locator('.badge.bad').waitFor();
    expect((await t.call('GET', '/v1/principals', { token: admin })).json.principals.find((p: { id: string }) => p.id === 'console-leaver')).toMatchObject({ status: 'disabled', statusReason: '已离职' });
    await page.screenshot({ path: path.join(artifacts, 'admin-accounts.png'), fullPage: true });
    // The admin's own row offers no button.
    expect(await page.locator('#accounts-table tbody tr', { has: page.locator('[data-principal="admin-data-centre"]') }).locator('button').count()).toBe(0);
    await row.locator('input.reason').fill('返聘');
    await row.locator('button').click();
    await row.locator('.badge.ok').waitFor();
    expect(pageErrors(page)).toEqual([]);
  });

  it('a regulator suspends a licence only with a reason written', async () => {
    const regulator = await t.tokenFor('regulator-data-dept');
    const granted = await t.call('POST', '/v1/operators/harbour-credit/licences', {
      token: regulator,
      json: { title: '暂停测试许可', scope: [{ dataset: 'bus_routes' }], purposes: ['public_interest'], maxGrade: 'L1', validFrom: new Date(t.clock.now.getTime() - 86_400_000).toISOString(), validUntil: new Date(t.clock.now.getTime() + 86_400_000 * 30).toISOString(), feeMode: 'free' },
    });
    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#licences`);
    const row = page.locator('table tbody tr', { hasText: granted.json.id });
    await row.locator('button', { hasText: '暂停' }).click();
    await page.locator('p.error', { hasText: '请填写理由' }).waitFor();
    expect((await t.call('GET', `/v1/licences/${granted.json.id}`, { token: regulator })).json.status).toBe('active');
    await row.locator('input.reason').fill('年度检查未提交报告');
    await row.locator('button', { hasText: '暂停' }).click();
    // The page is drawn again once the change is answered; the row then shows the licence suspended.
    await row.locator('.badge.bad').waitFor();
    expect((await t.call('GET', `/v1/licences/${granted.json.id}`, { token: regulator })).json).toMatchObject({ status: 'suspended', statusReason: '年度检查未提交报告' });
    // Its operator reads why on its own licences page.
    const operatorPage = await signedIn('analyst-harbour-credit');
    await operatorPage.goto(`${base}/console#licences`);
    await operatorPage.locator('table tbody tr', { hasText: '暂停测试许可' }).locator('small', { hasText: '年度检查未提交报告' }).waitFor();
    expect(pageErrors(page)).toEqual([]);
  });

  it("a regulator suspends an operator with a reason, and reinstates it, from the operators panel", async () => {
    const regulator = await t.tokenFor('regulator-data-dept');
    await t.call('POST', '/v1/operators', { token: regulator, json: { id: 'console-standing', name: 'Console Standing', nameZh: '控制台测试主体' } });
    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#licences`);
    const row = page.locator('#operators table tbody tr', { hasText: 'console-standing' });
    await row.locator('button', { hasText: '暂停' }).click();
    await page.locator('#operators p.error', { hasText: '请填写理由' }).waitFor();
    await row.locator('input.reason').fill('未按期报送年度报告');
    await row.locator('button', { hasText: '暂停' }).click();
    await row.locator('.badge.bad').waitFor();
    await row.locator('small', { hasText: '未按期报送年度报告' }).waitFor();
    expect((await t.call('GET', '/v1/operators/console-standing', { token: regulator })).json).toMatchObject({ status: 'suspended', statusReason: '未按期报送年度报告' });
    await row.locator('input.reason').fill('已补报');
    await row.locator('button', { hasText: '恢复' }).click();
    await row.locator('.badge.ok').waitFor();
    expect((await t.call('GET', '/v1/operators/console-standing', { token: regulator })).json.status).toBe('active');
    expect(pageErrors(page)).toEqual([]);
  });

  it("an analyst of a suspended operator is pointed from the refusal to its licences page, which says why", async () => {
    const regulator = await t.tokenFor('regulator-data-dept');
    const setOperator = (status: string, reason: string) => t.call('POST', '/v1/operators/lingang-analytics/status', { token: regulator, json: { status, reason } });
    await setOperator('suspended', '安全评估逾期未提交');
    try {
      const page = await signedIn('analyst-lingang-analytics');
      await page.locator('p.error', { hasText: '授权运营许可不在有效状态（LICENCE_INACTIVE）' }).waitFor();
      await page.click('#why-inactive');
      await page.locator('#own-operator-standing small', { hasText: '安全评估逾期未提交' }).waitFor();
      await page.locator('table tbody tr').first().waitFor();
      expect(pageErrors(page)).toEqual([]);
    } finally {
      await setOperator('active', '已补交');
    }
  });

  it("a reviewer is told a held output cannot be released while its licence is suspended, and is offered only to withhold it", async () => {
    const regulator = await t.tokenFor('regulator-data-dept');
    const submitted = await t.call('POST', '/v1/jobs', { token: await t.tokenFor('analyst-lingang-analytics'), json: { datasets: ['power_readings'], purpose: '暂停期间的审核', sql: 'SELECT town, month, count(*) AS readings FROM power_readings GROUP BY town, month' } });
    expect((await t.waitForJob(submitted.json.id)).status).toBe('in_review');
    const licence = (await t.call('GET', '/v1/licences', { token: regulator })).json.licences.find((entry: { operatorId: string; status: string }) => entry.operatorId === 'lingang-analytics' && entry.status === 'active');
    await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'suspended', reason: '检查' } });
    try {
      const page = await signedIn('regulator-data-dept');
      await page.goto(`${base}/console#reviews`);
      const card = page.locator(`section.card[data-job="${submitted.json.id}"]`);
      await card.locator('.release-blocked', { hasText: 'LICENCE_NOT_IN_FORCE' }).waitFor();
      expect(await card.locator('button.approve').count()).toBe(0);
      await card.locator('input.reason').fill('许可已暂停，不予发布');
      await card.locator('button', { hasText: '不予发布' }).click();
      await page.waitForFunction((id) => !document.querySelector(`section.card[data-job="${id}"]`), submitted.json.id);
      expect((await t.call('GET', `/v1/jobs/${submitted.json.id}`, { token: regulator })).json.status).toBe('withheld');
      expect(pageErrors(page)).toEqual([]);
    } finally {
      await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'active', reason: '检查结束' } });
    }
  });

  it('a regulator adds an operator; a mistyped credit code is refused, naming the field', async () => {
    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#licences`);
    await page.click('details.create-operator summary');
    await page.fill('#operator-id', 'east-sea-analytics');
    await page.fill('#operator-name-zh', '东海数据分析有限公司');
    await page.fill('#operator-name', 'East Sea Analytics Co., Ltd.');
    await page.fill('#operator-credit-code', '91310115MA1H7XQ08M');
    await page.click('#create-operator');
    await page.locator('details.create-operator p.error', { hasText: 'creditCode' }).waitFor();
    await page.fill('#operator-credit-code', '91310115ma1h7xq08n');
    await page.click('#create-operator');
    await page.locator('#operators table tbody tr', { hasText: 'east-sea-analytics' }).locator('.badge.ok').waitFor();
    expect((await t.call('GET', '/v1/operators/east-sea-analytics', { token: await t.tokenFor('regulator-data-dept') })).json).toMatchObject({ nameZh: '东海数据分析有限公司', creditCode: '91310115MA1H7XQ08N', status: 'active' });
    expect(pageErrors(page)).toEqual([]);
  });

  it('a double click on grant grants one licence', async () => {
    const regulator = await t.tokenFor('regulator-data-dept');
    const count = async () => (await t.call('GET', '/v1/licences', { token: regulator })).json.licences.length;
    const before = await count();
    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#licences`);
    await page.waitForSelector('table tbody tr');
    const rows = await page.locator('table tbody tr').count();
    await page.selectOption('#grant-operator', 'harbour-credit');
    await page.fill('#grant-title', '公交线路研究（双击）');
    await page.check('input[value="bus_routes"]');
    await page.selectOption('#grant-grade', 'L1');
    await page.dblclick('#grant-licence');
    await page.waitForFunction((count) => document.querySelectorAll('table tbody tr').length > count, rows);
    expect(await count()).toBe(before + 1);
    expect(pageErrors(page)).toEqual([]);
  });

  it('an operator opens a catalogue entry and reads its source, privacy unit and what each column is', async () => {
    const page = await signedIn('analyst-lingang-analytics');
    await page.goto(`${base}/console#catalogue`);
    await page.click('text=月度用电数据');
    await page.waitForSelector('#dataset-facts');
    expect(await page.textContent('#dataset-facts')).toMatch(/来源机构: 临港供电公司 · 隐私单元: account_id · 更新频率: 每月 · 行数: [\d,]+ \(v1\)/);
    const kwh = page.locator('#dataset-detail tr', { has: page.locator('code', { hasText: /^kwh$/ }) });
    expect(await kwh.locator('td').allTextContents()).toEqual(['kwh', 'DOUBLE', '敏感', '当月计量用量（kWh）']);
    expect(await page.locator('#dataset-detail p.muted').first().textContent()).toBe('每个居民和企业户号的月度用电量与电费，24个月。');
    // In English the entry reads as its source registered it.
    await page.click('#language');
    await page.click('text=Monthly power readings');
    await page.locator('#dataset-detail p.muted', { hasText: 'Monthly electricity use' }).waitFor();
    expect(await kwh.locator('td').allTextContents()).toEqual(['kwh', 'DOUBLE', 'sensitive', 'Metered use in the month (kWh)']);
    await page.click('#language');
    expect(pageErrors(page)).toEqual([]);
  });

  it('a page the reader has already left does not change the address when its data arrives late', async () => {
    const page = await signedIn('analyst-lingang-analytics');
    // Hold the catalogue's data until the reader has moved on to the jobs.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route(/\/v1\/datasets$/, async (route) => {
      await held;
      await route.continue();
    });
    const asked = page.waitForRequest(/\/v1\/datasets$/);
    await page.evaluate(() => (location.hash = 'catalogue/residents'));
    await asked;
    await page.evaluate(() => (location.hash = 'jobs'));
    await page.locator('nav a.active[href="#jobs"]').waitFor();
    const arrived = page.waitForResponse(/\/v1\/datasets$/);
    release();
    await arrived;
    await page.waitForTimeout(200);
    expect(new URL(page.url()).hash).toBe('#jobs');
    await page.unroute(/\/v1\/datasets$/);
    expect(pageErrors(page)).toEqual([]);
  });

  it("moving between pages does not read the menu's counts again; they are kept for a minute", async () => {
    const page = await signedIn('regulator-data-dept');
    const countReads: string[] = [];
    page.on('request', (request) => {
      if (/\/v1\/(incidents\?status=open|jobs\?status=in_review)&limit=1000$/.test(request.url())) countReads.push(request.url());
    });
    await page.goto(`${base}/console#audit`);
    await page.locator('[data-waiting="incidents"]').waitFor({ state: 'attached' });
    for (const hash of ['supervision', 'reviews', 'incidents', 'audit']) {
      await page.evaluate((next) => (location.hash = next), hash);
      await page.locator(`nav a.active[href="#${hash}"]`).waitFor();
    }
    // The first page after signing in read each count once; none of the four moves read them again.
    expect(countReads).toEqual([]);
    expect(pageErrors(page)).toEqual([]);
  });

  it("a public body's catalogue opens on its own entry, marked as its own, and the entry opened is kept in the address", async () => {
    const clerk = await signedIn('clerk-power-utility');
    await clerk.goto(`${base}/console#catalogue`);
    await clerk.waitForSelector('#dataset-facts');
    expect(await clerk.locator('#dataset-detail h3').innerText()).toBe('月度用电数据 · Monthly power readings');
    expect(await clerk.locator('tr.chosen a').getAttribute('data-dataset')).toBe('power_readings');
    expect(await clerk.locator('a[data-dataset="power_readings"] .badge').innerText()).toBe('本单位');
    expect(await clerk.locator('a[data-dataset="residents"] .badge').count()).toBe(0);
    // Another entry opened is in the address, so a reload (or the link shared) opens it again.
    await clerk.click('a[data-dataset="residents"]');
    await clerk.locator('#dataset-detail h3', { hasText: '常住人口基本信息' }).waitFor();
    expect(new URL(clerk.url()).hash).toBe('#catalogue/residents');
    await clerk.reload();
    await clerk.locator('#dataset-detail h3', { hasText: '常住人口基本信息' }).waitFor();
    expect(await clerk.locator('tr.chosen a').getAttribute('data-dataset')).toBe('residents');
    expect(pageErrors(clerk)).toEqual([]);
  });

  it('an operator reads a NULL of the data as NULL and a withheld cell as withheld, with its rule', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    // Households have no industry code (a released row with a NULL key); small industries are withheld.
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['power_readings'], sql: 'SELECT industry_code, count(DISTINCT account_id) AS accounts FROM power_readings GROUP BY industry_code', purpose: '行业户数' } });
    await t.waitForJob(submitted.json.id);
    await t.call('POST', `/v1/reviews/${submitted.json.id}`, { token: await t.tokenFor('regulator-data-dept'), json: { decision: 'approve', reason: '已核对' } });
    const { json: result } = await t.call('GET', `/v1/jobs/${submitted.json.id}/result`, { token: analyst });
    const withheldRows = new Set(result.manifest.suppressedRows.map((entry: { row: number }) => entry.row));
    const households = result.rows.findIndex((row: unknown[], index: number) => row[0] === null && !withheldRows.has(index));
    const withheld = [...withheldRows][0] as number;

    const page = await signedIn('analyst-lingang-analytics');
    await page.goto(`${base}/console#jobs/${submitted.json.id}`);
    const rows = page.locator('#result-table tbody tr');
    await rows.first().waitFor();
    expect(await rows.nth(households).locator('td').first().textContent()).toBe('NULL');
    expect(await rows.nth(households).locator('.suppressed').count()).toBe(0);
    expect(await rows.nth(withheld).locator('td').nth(1).textContent()).toBe('■');
    expect(await rows.nth(withheld).locator('.badge.warn').count()).toBe(1);
    expect(pageErrors(page)).toEqual([]);
  });

  it("an operator reads which columns were computed from the released output, and that withheld cells count in none of them", async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const sql = 'SELECT industry_code, count(DISTINCT account_id) AS accounts, rank() OVER (ORDER BY count(DISTINCT account_id) DESC) AS place FROM power_readings GROUP BY industry_code';
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['power_readings'], sql, purpose: '行业户数排名' } });
    await t.waitForJob(submitted.json.id);
    await t.call('POST', `/v1/reviews/${submitted.json.id}`, { token: await t.tokenFor('regulator-data-dept'), json: { decision: 'approve', reason: '已核对' } });

    const page = await signedIn('analyst-lingang-analytics');
    await page.goto(`${base}/console#jobs/${submitted.json.id}`);
    await page.locator('#result-table tbody tr').first().waitFor();
    expect(await page.locator('#result-table th').allTextContents()).toEqual(['industry_code', 'accounts', 'place ƒ', '']);
    expect(await page.locator('#result-table th .derived').getAttribute('title')).toBe('由已发布的结果计算');
    expect(await page.locator('#derived-note').textContent()).toMatch(/^place 由窗口函数从已发布的结果计算/);
    expect(pageErrors(page)).toEqual([]);
  });

  it('an operator narrows the job list to one status and pages to older jobs', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    // Sixty refused jobs from January, older than every job of this run: more than one page of them.
    await t.platform.db.insert(jobs).values(
      Array.from({ length: 60 }, (_, index) => ({
        id: `job_paging-${String(index).padStart(2, '0')}`,
        operatorId: 'lingang-analytics',
        submittedBy: 'analyst-lingang-analytics',
        datasets: ['power_readings'],
        datasetVersions: {},
        sql: 'SELECT * FROM power_readings',
        sqlHash: 'paging',
        purpose: `分页 ${index}`,
        policyHash: 'paging',
        status: 'rejected' as const,
        statusCode: 'RAW_OUTPUT',
        createdAt: new Date(Date.UTC(2026, 0, 1, 0, index)),
      })),
    );
    const rejected = (await t.call('GET', '/v1/jobs?status=rejected&limit=1000', { token: analyst })).json.jobs.length as number;
    expect(rejected).toBeGreaterThan(50);

    const page = await signedIn('analyst-lingang-analytics');
    await page.goto(`${base}/console#jobs`);
    await page.selectOption('#jobs-status', 'rejected');
    await page.locator('#jobs-table tbody tr').nth(49).waitFor();
    expect(await page.locator('#jobs-table tbody tr').count()).toBe(50);
    expect(await page.locator('#jobs-table tbody .badge').evaluateAll((badges) => [...new Set(badges.map((badge) => (badge as HTMLElement).title))])).toEqual(['rejected']);
    await page.click('#jobs-older');
    await page.locator('#jobs-table tbody tr').nth(50).waitFor();
    expect(await page.locator('#jobs-table tbody tr').count()).toBe(Math.min(rejected, 100));
    // The oldest job comes last.
    if (rejected <= 100) expect(await page.locator('#jobs-table tbody tr').last().textContent()).toContain('分页 0');
    expect(await page.isVisible('#jobs-older')).toBe(rejected > 100);
    expect(pageErrors(page)).toEqual([]);
  });

  it("an operator reads a ROLLUP's totals as totals, told from a NULL of the data", async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    // Households have no industry code: each town's NULL-industry row is data, its subtotal and the total are not.
    const submitted = await t.call('POST', '/v1/jobs', {
      token: analyst,
      json: { datasets: ['power_readings'], sql: "SELECT town, industry_code, count(DISTINCT account_id) AS accounts FROM power_readings WHERE customer_type = 'household' GROUP BY ROLLUP (town, industry_code)", purpose: '分镇户数' },
    });
    if ((await t.waitForJob(submitted.json.id)).status === 'in_review') await t.call('POST', `/v1/reviews/${submitted.json.id}`, { token: await t.tokenFor('regulator-data-dept'), json: { decision: 'approve', reason: '已核对' } });
    const { json: result } = await t.call('GET', `/v1/jobs/${submitted.json.id}/result`, { token: analyst });
    const totals = new Map<number, string[]>(result.manifest.totals.map((entry: { row: number; over: string[] }) => [entry.row, entry.over]));
    const grand = [...totals].find(([, over]) => over.length === 2)![0];
    const subtotal = [...totals].find(([, over]) => over.length === 1)![0];
    const dataNull = result.rows.findIndex((row: unknown[], index: number) => row[1] === null && !totals.has(index) && !result.manifest.suppressedRows.some((entry: { row: number }) => entry.row === index));

    const page = await signedIn('analyst-lingang-analytics');
    await page.goto(`${base}/console#jobs/${submitted.json.id}`);
    const rows = page.locator('#result-table tbody tr');
    await rows.first().waitFor();
    expect(await rows.nth(grand).locator('td').nth(0).textContent()).toBe('（合计）');
    expect(await rows.nth(grand).locator('td').nth(1).textContent()).toBe('（合计）');
    expect(await rows.nth(subtotal).locator('td').nth(0).textContent()).not.toBe('（合计）');
    expect(await rows.nth(subtotal).locator('td').nth(1).textContent()).toBe('（合计）');
    expect(await rows.nth(dataNull).locator('td').nth(1).textContent()).toBe('NULL');
    expect(pageErrors(page)).toEqual([]);
  });

  it('a regulator traces a supervision number to the audit leaves it counts, each proved in the browser, and chooses the period', async () => {
    const regulator = await t.tokenFor('regulator-data-dept');
    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#supervision`);
    await page.locator('#supervision-table tbody tr', { hasText: '临港供电公司' }).locator('a.evidence[data-indicator="qualityScore"]').click();
    await page.locator('#supervision-evidence .badge.ok', { hasText: '验证通过' }).waitFor({ timeout: 30_000 });
    const listed = (await page.locator('#evidence-table tbody tr td:first-child').allInnerTexts()).map(Number);
    const report = (await t.call('GET', '/v1/reports/supervision?evidence=true', { token: regulator })).json;
    expect(listed).toEqual(report.institutions.find((row: any) => row.institution === 'power-utility').evidence.qualityScore);
    for (const type of await page.locator('#evidence-table tbody code').allInnerTexts()) expect(type).toMatch(/^quality\.(checked|flagged)$/);

    // A year before the demo's data existed: nothing registered, nothing to trace.
    await page.fill('#supervision-from', '2025-01-01');
    await page.fill('#supervision-to', '2025-12-31');
    await page.click('#supervision-show');
    await page.locator('#supervision-report p.muted', { hasText: '2025-01-01 – 2025-12-31' }).waitFor();
    expect(await page.locator('#supervision-table a.evidence').count()).toBe(0);
    await page.fill('#supervision-from', '');
    await page.click('#supervision-show');
    await page.locator('#supervision-report p.error', { hasText: '请选择起始日和截止日' }).waitFor();
    expect(pageErrors(page)).toEqual([]);
  });

  it('a third-party assessor reads the oversight pages and every operator, with nothing to decide', async () => {
    const page = await signedIn('assessor-third-party');
    await page.locator('#who', { hasText: '第三方评估机构' }).waitFor();
    const menu = await page.locator('a[href^="#"]').evaluateAll((links) => links.map((link) => link.getAttribute('href')));
    expect(menu).toEqual(expect.arrayContaining(['#audit', '#incidents', '#supervision', '#report', '#uses', '#licences', '#catalogue']));
    for (const hidden of ['#reviews', '#jobs', '#budgets', '#accounts', '#sharing']) expect(menu).not.toContain(hidden);
    await page.goto(`${base}/console#licences`);
    await page.locator('#operators tbody tr', { hasText: 'harbour-credit' }).waitFor();
    expect(await page.locator('main button, main input.reason, #operator-id').count()).toBe(0);
    await page.goto(`${base}/console#audit`);
    await page.click('#verify-log');
    await page.locator('#audit-outcome .badge.ok').waitFor({ timeout: 30_000 });
    expect(pageErrors(page)).toEqual([]);
  });

  it('in English, names the API gives in both languages read in English: products, institutions and datasets', async () => {
    const page = await signedIn('regulator-data-dept');
    await page.click('#language');
    await page.goto(`${base}/console#products`);
    await page.locator('section[data-admin-product="resident-identity"] h3', { hasText: 'Resident name and ID number match' }).waitFor();
    await page.goto(`${base}/console#supervision`);
    await page.getByRole('cell', { name: 'Lingang Power Supply Company' }).waitFor();
    expect(await page.getByRole('cell', { name: '临港供电公司' }).count()).toBe(0);
    await page.goto(`${base}/console#evaluations`);
    expect(await page.locator('[data-dataset="water_readings"]').innerText()).toBe('Monthly water readings\nwater_readings');
    const consumer = await signedIn('consumer-east-sea-bank');
    await consumer.click('#language');
    await consumer.locator('section[data-product="resident-identity"] h3', { hasText: 'Resident name and ID number match' }).waitFor();
    expect(await consumer.locator('section[data-product="resident-identity"] p.muted').first().textContent()).toBe('居民姓名与身份证号一致性核验');
    expect([...pageErrors(page), ...pageErrors(consumer)]).toEqual([]);
  });

  it('the widest pages fit the window, on a desktop and on a phone: wide tables scroll inside their panel', async () => {
    const page = await signedIn('regulator-data-dept');
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 860 });
      for (const hash of ['supervision', 'licences', 'audit']) {
        await page.goto(`${base}/console#${hash}`);
        await page.locator('main table').first().waitFor();
        expect({ width, hash, overflow: await overflow() }).toEqual({ width, hash, overflow: 0 });
      }
    }
    expect(pageErrors(page)).toEqual([]);
  });

  it('a regulator reads an incident by its kind and fields, with its time in China Standard Time', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const refused = await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['residents'], purpose: 'test', sql: 'SELECT town, count(*) AS people FROM residents GROUP BY town' } });
    expect(refused.json.error.code).toBe('OVER_SCOPE');
    const { incidents } = (await t.call('GET', '/v1/incidents', { token: await t.tokenFor('regulator-data-dept') })).json;
    // The newest over-scope incident: other journeys' jobs may record differencing incidents at the same moment.
    const newest = incidents.find((incident: { kind: string }) => incident.kind === 'over_scope');
    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#incidents`);
    await page.waitForSelector('#incidents-table');
    const row = page.locator('#incidents-table tbody tr', { hasText: '超出许可范围' }).first();
    const chinaTime = new Date(newest.createdAt).toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', dateStyle: 'medium', timeStyle: 'short' });
    expect(await row.locator('td').allTextContents()).toEqual(['超出许可范围', 'lingang-analytics', 'analyst-lingang-analytics', expect.stringContaining('datasets: residents'), chinaTime, expect.stringContaining('记录处理结论')]);
  });

  it('a regulator records what it found about an incident, only with a reason; the assessor reads the finding and decides nothing', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['residents'], purpose: 'test', sql: 'SELECT town, count(*) AS people FROM residents GROUP BY town' } });
    const regulatorToken = await t.tokenFor('regulator-data-dept');
    const [incident] = (await t.call('GET', '/v1/incidents?kind=over_scope&status=open&limit=1', { token: regulatorToken })).json.incidents;
    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#incidents`);
    const form = page.locator(`.resolution[data-incident="${incident.id}"]`);
    await form.waitFor();
    // The menu says how many incidents are open and how many outputs wait for review.
    const openBefore = (await t.call('GET', '/v1/incidents?status=open&limit=1000', { token: regulatorToken })).json.incidents.length as number;
    await page.locator('[data-waiting="incidents"]', { hasText: new RegExp(`^${openBefore}$`) }).waitFor();
    const held = (await t.call('GET', '/v1/jobs?status=in_review&limit=1000', { token: regulatorToken })).json.jobs.length as number;
    if (held > 0) await page.locator('[data-waiting="reviews"]', { hasText: new RegExp(`^${held}$`) }).waitFor();
    else expect(await page.isHidden('[data-waiting="reviews"]')).toBe(true);
    // Without a reason the server refuses, and the page says so beside the button.
    await form.locator('button.resolve').click();
    await form.getByText(/VALIDATION_FAILED/).waitFor();
    await form.locator('select.outcome').selectOption('operator_warned');
    await form.locator('input.reason').fill('已约谈运营机构，确认为误选数据集');
    await form.locator('button.resolve').click();
    // Resolved, it leaves the open list and the menu's count; the resolved list shows the finding.
    await form.waitFor({ state: 'detached' });
    if (openBefore > 1) await page.locator('[data-waiting="incidents"]', { hasText: new RegExp(`^${openBefore - 1}$`) }).waitFor();
    else await page.locator('[data-waiting="incidents"]').waitFor({ state: 'hidden' });
    await page.selectOption('#incidents-status', 'resolved');
    const row = page.locator('#incidents-table tbody tr', { hasText: '已约谈运营机构，确认为误选数据集' });
    await row.waitFor();
    expect(await row.locator('.finding .badge').innerText()).toBe('已约谈警示');
    const resolved = (await t.call('GET', '/v1/incidents?status=resolved&limit=1000', { token: regulatorToken })).json.incidents.find((entry: { id: string }) => entry.id === incident.id);
    expect(resolved.resolution).toMatchObject({ outcome: 'operator_warned', resolvedBy: 'regulator-data-dept' });
    // Narrowed to one kind, every incident listed is of it.
    await page.selectOption('#incidents-status', '');
    await page.locator('#incidents-table').waitFor();
    await page.selectOption('#incidents-kind', 'over_scope');
    await page.waitForFunction(() => {
      const kinds = [...document.querySelectorAll('#incidents-table tbody tr td:first-child')].map((cell) => cell.textContent);
      return (document.querySelector('#incidents-kind') as HTMLSelectElement | null)?.value === 'over_scope' && kinds.length > 0 && kinds.every((kind) => kind === '超出许可范围');
    });

    const assessor = await signedIn('assessor-third-party');
    await assessor.goto(`${base}/console#incidents`);
    await assessor.waitForSelector('#incidents-table, .panel p.muted');
    expect(await assessor.locator('.resolution').count()).toBe(0);
    for (const each of [page, assessor]) expect(pageErrors(each)).toEqual([]);
  });

  it('a regulator corrects a finding found wrong later; the earlier one stays, struck through, and the assessor cannot correct', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    await t.call('POST', '/v1/jobs/dry-run', { token: analyst, json: { datasets: ['residents'], purpose: 'test', sql: 'SELECT town, count(*) AS people FROM residents GROUP BY town' } });
    const regulatorToken = await t.tokenFor('regulator-data-dept');
    const [incident] = (await t.call('GET', '/v1/incidents?kind=over_scope&status=open&limit=1', { token: regulatorToken })).json.incidents;
    await t.call('POST', `/v1/incidents/${incident.id}/resolution`, { token: regulatorToken, json: { outcome: 'no_action', reason: '运营机构称为误选数据集' } });
    const page = await signedIn('regulator-data-dept');
    await page.goto(`${base}/console#incidents`);
    await page.selectOption('#incidents-status', 'resolved');
    const correction = page.locator(`.correction[data-incident="${incident.id}"]`);
    await correction.waitFor();
    await correction.locator('summary').click();
    await correction.locator('select.outcome').selectOption('licence_action');
    await correction.locator('input.reason').fill('复查发现同类越权多次发生，已暂停许可');
    await correction.locator('button.correct').click();
    const row = page.locator('#incidents-table tbody tr', { hasText: '复查发现同类越权多次发生，已暂停许可' });
    await row.waitFor();
    expect(await row.locator('.finding > .badge').innerText()).toBe('已处置运营许可');
    await row.locator('.earlier-findings summary').click();
    expect(await row.locator('.earlier-findings s').innerText()).toContain('运营机构称为误选数据集');
    expect(await row.locator('.earlier-findings').innerText()).toContain('regulator-data-dept');
    const corrected = (await t.call('GET', '/v1/incidents?status=resolved&limit=1000', { token: regulatorToken })).json.incidents.find((entry: { id: string }) => entry.id === incident.id);
    expect(corrected.resolution).toMatchObject({ outcome: 'licence_action', earlierFindings: [{ outcome: 'no_action' }] });

    const assessor = await signedIn('assessor-third-party');
    await assessor.goto(`${base}/console#incidents`);
    await assessor.selectOption('#incidents-status', 'resolved');
    await assessor.locator('#incidents-table .finding').first().waitFor();
    expect(await assessor.locator('.correction').count()).toBe(0);
    for (const each of [page, assessor]) expect(pageErrors(each)).toEqual([]);
  });

  it('the sign-in page loads without a failed request when no identity provider is configured', async () => {
    const page = await browser.newPage();
    const failed = failedResponses(page);
    await page.goto(`${base}/console`);
    await page.waitForSelector('#token');
    await page.waitForLoadState('networkidle');
    expect(failed).toEqual([]);
  });

  it('the API reference shows every operation of the OpenAPI document with its request fields, and loads nothing that fails', async () => {
    const document = (await t.call('GET', '/openapi.json')).json as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.values(document.paths).reduce((sum, operations) => sum + Object.keys(operations).length, 0);
    const page = await browser.newPage();
    const failed = failedResponses(page);
    await page.goto(`${base}/docs`);
    await page.waitForSelector('details');
    expect(await page.locator('details').count()).toBe(operations);
    const submit = page.locator('details', { has: page.locator('summary', { hasText: /^POST \/v1\/jobs / }) });
    await submit.locator('summary').click();
    expect(await submit.locator('td code').allTextContents()).toEqual(expect.arrayContaining(['idempotency-key', 'datasets', 'sql', 'purpose']));
    await page.waitForLoadState('networkidle');
    expect(failed).toEqual([]);
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

  it('a public body writes a registration in the console, learns what the review finds, corrects it and has it filed', async () => {
    await t.platform.db.insert(principals).values({ id: 'clerk-water', role: 'institution', displayName: '自来水公司 · 数据专员', institutionId: 'water-utility' }).onConflictDoNothing();
    const clerk = await signedIn('clerk-water');
    const sent: string[] = [];
    clerk.on('request', (request) => sent.push(`${request.url()} ${request.postData() ?? ''}`));
    await clerk.goto(`${base}/console#registrations`);
    await clerk.click('#reg-new');
    await clerk.selectOption('#reg-kind', 'system');
    await clerk.fill('#reg-name', '泵站运行监测系统');
    await clerk.fill('#reg-description', '二次供水泵站的运行与能耗');
    await clerk.click('#reg-add-table');
    const editor = clerk.locator('.table-editor').first();
    for (const [name, value] of Object.entries({ id: 'pump_stations', titleZh: '泵站台账', title: 'Pump stations', category: 'infrastructure', privacyUnit: 'station_id', description: '泵站及其所属镇', legalBasis: '《城镇供水条例》' })) {
      await editor.locator(`input[name="${name}"]`).fill(value);
    }
    await editor.locator('select[name="grade"]').selectOption('L2');
    // The columns come from a sample file's header, read in the page; its rows are never sent.
    await editor.locator('input.csv-header').setInputFiles({ name: 'stations.csv', mimeType: 'text/csv', buffer: Buffer.from('station_id,town,capacity_m3\nPS-SECRET-0001,泥城镇,1200\n') });
    await editor.locator('.columns-editor tbody tr').nth(2).waitFor();
    const columnRows = editor.locator('.columns-editor tbody tr');
    await columnRows.nth(0).locator('select[name="class"]').selectOption('direct_identifier');
    await columnRows.nth(0).locator('input[name="nullable"]').uncheck();
    await columnRows.nth(1).locator('select[name="class"]').selectOption('attribute');
    await columnRows.nth(2).locator('input[name="type"]').fill('DOUBLE');
    await clerk.click('#reg-submit');
    await clerk.waitForSelector('#reg-outcome [data-submitted]');
    const findings = await clerk.textContent('#reg-outcome table.findings');
    // What the review asks for: the system's basic information, and the class of the column left unset.
    expect(findings).toContain('system.ownerDepartment');
    expect(findings).toContain('信息系统必须填写此项');
    expect(findings).toContain('tables.0.columns.2.class');
    expect(findings).toContain('tables.0.columns.0.description');
    expect(findings).toContain('必须填写');
    const id = await clerk.getAttribute('#reg-outcome [data-submitted]', 'data-submitted');

    await t.call('POST', `/v1/registrations/${id}/review`, { token: await t.tokenFor('admin-data-centre'), json: { decision: 'return', reasons: ['补充系统基础信息和字段类别'] } });
    await clerk.reload();
    await clerk.locator(`section[data-registration="${id}"] button.correct`).click();
    // The form comes back filled with what was submitted.
    expect(await clerk.inputValue('#reg-name')).toBe('泵站运行监测系统');
    const again = clerk.locator('.table-editor').first();
    expect(await again.locator('input[name="id"]').inputValue()).toBe('pump_stations');
    const againRows = again.locator('.columns-editor tbody tr');
    await againRows.nth(2).locator('select[name="class"]').selectOption('sensitive');
    for (const [index, description] of ['泵站编号', '所属镇', '设计供水能力（立方米/日）'].entries()) await againRows.nth(index).locator('input[name="description"]').fill(description);
    for (const [name, value] of Object.entries({ ownerDepartment: '供水运行部', deployment: '临港政务云', liveSince: '2023-03-01' })) await clerk.locator(`#reg-system [name="${name}"]`).fill(value);
    await clerk.click('#reg-submit');
    await clerk.locator('#reg-outcome').getByText('技术审查未发现问题').waitFor();
    await clerk.screenshot({ path: path.join(artifacts, 'public-body-registration.png'), fullPage: true });
    expect(sent.some((line) => line.includes('PS-SECRET-0001'))).toBe(false);

    const admin = await signedIn('admin-data-centre');
    await admin.goto(`${base}/console#registrations`);
    await admin.locator(`section[data-registration="${id}"] button.approve`).click();
    await admin.locator(`section[data-registration="${id}"] h3`, { hasText: /LG-DR-\d{4}-\d{5}/ }).waitFor();
    const entry = (await t.call('GET', '/v1/datasets/pump_stations', { token: await t.tokenFor('regulator-data-dept') })).json;
    expect(entry).toMatchObject({ grade: 'L2', privacyUnit: 'station_id', institution: { id: 'water-utility' } });
    expect(entry.columns.map((column: { name: string; type: string; class: string; nullable: boolean }) => [column.name, column.type, column.class, column.nullable])).toEqual([
      ['station_id', 'VARCHAR', 'direct_identifier', false],
      ['town', 'VARCHAR', 'attribute', true],
      ['capacity_m3', 'DOUBLE', 'sensitive', true],
    ]);
    for (const page of [clerk, admin]) expect(pageErrors(page)).toEqual([]);
  });

  it('the data centre keeps conditionally shared data conditional with its basis, and sees when it is next due', async () => {
    const page = await signedIn('admin-data-centre');
    await page.goto(`${base}/console#evaluations`);
    const row = page.locator('tr', { has: page.locator('[data-dataset="water_readings"]') });
    await row.waitFor();
    expect(await row.locator('[data-dataset="water_readings"]').innerText()).toBe('月度用水数据\nwater_readings');
    await row.locator('input.reason').fill('《城镇供水条例》规定的用户信息保护仍然适用');
    await row.locator('button.keep').click();
    // The last-evaluation cell, not the button of the same words.
    await row.getByText(/保持有条件共享 · /).waitFor();
    await page.screenshot({ path: path.join(artifacts, 'data-centre-evaluations.png'), fullPage: true });
    const regulator = await t.tokenFor('regulator-data-dept');
    const listed = (await t.call('GET', '/v1/sharing-evaluations', { token: regulator })).json.datasets.find((entry: { dataset: string }) => entry.dataset === 'water_readings');
    expect(listed.lastEvaluation).toMatchObject({ outcome: 'keep_conditional', reason: '《城镇供水条例》规定的用户信息保护仍然适用', evaluatedBy: 'admin-data-centre' });
    expect(pageErrors(page)).toEqual([]);
  });

  it('a request from outside Lingang is filed by one regulator, approved by another, and exported by the data centre', async () => {
    await t.twoRegulators();
    const filer = await signedIn('regulator-data-dept');
    await filer.goto(`${base}/console#external`);
    await filer.waitForSelector('#ext-requester');
    await filer.fill('#ext-requester', '上海市奉贤区经济委员会');
    await filer.fill('#ext-scenario', '核对跨区经营企业的登记状态');
    await filer.selectOption('#ext-dataset', 'enterprises');
    await filer.fill('#ext-columns', 'uscc, status');
    await filer.fill('#ext-safeguards', '专人专机处理，审核结束后删除');
    await filer.click('#ext-submit');
    await filer.waitForSelector('#external-table tbody tr');
    // The filer sees no buttons to approve its own filing.
    expect(await filer.locator('#external-table button.approve').count()).toBe(0);

    const reviewer = await signedIn('regulator-second');
    await reviewer.goto(`${base}/console#external`);
    await reviewer.click('#external-table button.approve');
    await reviewer.locator('#external-table .badge[title="approved"]').waitFor();

    const centre = await signedIn('admin-data-centre');
    await centre.goto(`${base}/console#external`);
    const [download] = await Promise.all([centre.waitForEvent('download'), centre.click('#external-table button.export')]);
    expect(fs.readFileSync((await download.path())!, 'utf8').split('\n')[0]).toBe('\uFEFFuscc,status');
    await centre.locator('#external-table .badge[title="delivered"]').waitFor();
    await centre.screenshot({ path: path.join(artifacts, 'data-centre-external.png'), fullPage: true });
    for (const page of [filer, reviewer, centre]) expect(pageErrors(page)).toEqual([]);
  });

  it('the data centre backs up the running server from the console and sees it in the history', async () => {
    const page = await signedIn('admin-data-centre');
    await page.goto(`${base}/console#backups`);
    await page.waitForSelector('#backup-now');
    await page.click('#backup-now');
    await page.locator('#backups-table tbody tr', { hasText: '备份' }).first().waitFor({ timeout: 30_000 });
    expect(fs.readdirSync(t.platform.config.backupDir)).toHaveLength(1);
    await page.screenshot({ path: path.join(artifacts, 'data-centre-backups.png'), fullPage: true });
    expect(pageErrors(page)).toEqual([]);
  });

  it('the data centre proposes a released output as an open dataset and a regulator publishes it', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['enterprises'], purpose: 'derived journey', sql: 'SELECT town, count(*) AS firms FROM enterprises GROUP BY town' } });
    expect((await t.waitForJob(submitted.json.id)).status).toBe('released');

    const centre = await signedIn('admin-data-centre');
    await centre.goto(`${base}/console#derived`);
    await centre.waitForSelector('#der-job');
    await centre.fill('#der-job', submitted.json.id);
    await centre.fill('#der-id', 'firms_by_town_journey');
    await centre.fill('#der-title-zh', '分镇企业数');
    await centre.fill('#der-title', 'Firms by town');
    await centre.fill('#der-description', 'Compiled from a released aggregate');
    await centre.fill('#der-description-zh', '由已发布的聚合结果整理');
    await centre.fill('#der-category', 'economy');
    await centre.click('#der-submit');
    await centre.locator('[data-derived="firms_by_town_journey"]').waitFor();

    const regulator = await signedIn('regulator-data-dept');
    await regulator.goto(`${base}/console#derived`);
    const row = regulator.locator('tr', { has: regulator.locator('[data-derived="firms_by_town_journey"]') });
    await row.locator('button.publish').click();
    await row.locator('.badge[title="published"]').waitFor();
    await regulator.screenshot({ path: path.join(artifacts, 'regulator-derived.png'), fullPage: true });
    expect((await t.call('GET', '/v1/datasets/firms_by_town_journey', { token: analyst })).json).toMatchObject({ grade: 'L1', openData: true, descriptionZh: '由已发布的聚合结果整理' });
    for (const page of [centre, regulator]) expect(pageErrors(page)).toEqual([]);
  });

  it('a source proposes a catalogue change with its reason, and the data centre reads the diff and publishes it', async () => {
    // A description stored with CRLF line ends (as a Windows tool sends it) must not read as changed when untouched.
    const clerkToken = await t.tokenFor('clerk-power-utility');
    const crlf = await t.call('POST', '/v1/datasets/power_readings/revisions', { token: clerkToken, json: { note: '说明分行', changes: { description: 'Monthly electricity use and billing\r\nper household and enterprise account, 24 months.' } } });
    await t.call('POST', `/v1/datasets/power_readings/revisions/${crlf.json.revision}/review`, { token: await t.tokenFor('admin-data-centre'), json: { decision: 'publish' } });
    const clerk = await signedIn('clerk-power-utility');
    await clerk.goto(`${base}/console#revisions`);
    await clerk.waitForSelector('#revision-form[data-dataset="power_readings"]');
    await clerk.fill('#rev-column-zh-town', '所属镇（街道）');
    await clerk.click('#rev-propose');
    // No reason, no proposal: the form says so and sends nothing.
    await clerk.getByText('请写明修订理由').waitFor();
    await clerk.fill('#rev-note', '字段说明按年度目录复核补充');
    await clerk.click('#rev-propose');
    await clerk.waitForSelector('#rev-outcome .badge.ok');
    expect(await clerk.locator('#rev-outcome table.diff tbody tr td:first-child').allTextContents()).toEqual(['columns.town.descriptionZh']);
    await clerk.screenshot({ path: path.join(artifacts, 'public-body-catalogue-change.png'), fullPage: true });
    // Once redrawn it is under review, and its proposer has no buttons to decide it.
    const own = clerk.locator('section[data-revision^="power_readings:"]', { has: clerk.locator('.badge[title="proposed"]') });
    await own.waitFor();
    expect(await own.locator('button').count()).toBe(0);

    const centre = await signedIn('admin-data-centre');
    await centre.goto(`${base}/console#revisions`);
    const card = centre.locator('section[data-revision^="power_readings:"]', { has: centre.locator('.badge[title="proposed"]') });
    await card.waitFor();
    expect(await card.textContent()).toContain('字段说明按年度目录复核补充');
    expect(await card.locator('table.diff').textContent()).toContain('所属镇（街道）');
    // The menu counts it as waiting on the centre's review, and no longer once decided.
    await centre.locator('[data-waiting="revisions"]', { hasText: /^1$/ }).waitFor();
    await centre.screenshot({ path: path.join(artifacts, 'data-centre-catalogue-change.png'), fullPage: true });
    await card.locator('button.approve').click();
    await centre.waitForSelector('#no-pending-revisions');
    await centre.locator('[data-waiting="revisions"]').waitFor({ state: 'hidden' });
    const entry = (await t.call('GET', '/v1/datasets/power_readings', { token: await t.tokenFor('analyst-lingang-analytics') })).json;
    const town = entry.columns.find((column: { name: string }) => column.name === 'town');
    expect([town.descriptionZh, town.description]).toEqual(['所属镇（街道）', 'Town of residence or registration']);
    for (const page of [clerk, centre]) expect(pageErrors(page)).toEqual([]);
  });

  it('a conversion the data centre proposes after an art. 16 evaluation is published by a regulator, not by the centre', async () => {
    const centre = await signedIn('admin-data-centre');
    await centre.goto(`${base}/console#evaluations`);
    const row = centre.locator('tr', { has: centre.locator('[data-dataset="gas_readings"]') });
    await row.waitFor();
    await row.locator('input.reason').fill('用户信息已全部脱敏，不再需要共享条件');
    await row.locator('button.convert').click();
    await row.getByText(/r\d+/).waitFor();
    await centre.goto(`${base}/console#revisions`);
    const own = centre.locator('section[data-revision^="gas_readings:"]', { has: centre.locator('.badge[title="proposed"]') });
    await own.getByText('本人提出的修订由他人审查').waitFor();

    const regulator = await signedIn('regulator-data-dept');
    await regulator.goto(`${base}/console#revisions`);
    const card = regulator.locator('section[data-revision^="gas_readings:"]', { has: regulator.locator('.badge[title="proposed"]') });
    expect(await card.locator('table.diff').textContent()).toContain('sharingType');
    await card.locator('button.approve').click();
    await regulator.locator('section[data-revision^="gas_readings:"] .badge[title="published"]').first().waitFor();
    const regulatorToken = await t.tokenFor('regulator-data-dept');
    expect((await t.call('GET', '/v1/datasets/gas_readings', { token: regulatorToken })).json).toMatchObject({ sharingType: 'unconditional', sharingBasis: null });
    for (const page of [centre, regulator]) expect(pageErrors(page)).toEqual([]);
  });

  // Last in this file: it replaces the power readings the journeys above use with a new version.
  it('a source institution delivers a GBK CSV as a new version, and a mismatching file, or one with names in an attribute column, is refused naming the column', async () => {
    const page = await signedIn('clerk-power-utility');
    await page.goto(`${base}/console#delivery`);
    await page.waitForSelector('#delivery-file');
    await page.selectOption('#delivery-dataset', 'power_readings');
    // Before choosing a file the clerk reads the header the registered columns make, the key, and where the entry stands.
    const header = 'account_id,customer_type,household_id,uscc,town,industry_code,month,kwh,amount_due,paid_on_time\n';
    expect(await page.textContent('#delivery-expected pre')).toBe(header.trimEnd());
    expect(await page.textContent('#delivery-expected')).toContain('account_id, month');
    // Each column's class, which the load checks personal identifiers against, beside its type.
    const classOf = async (column: string) => (await page.locator('#delivery-expected tr', { has: page.locator(`code:text-is("${column}")`) }).locator('td').nth(2).textContent())?.trim();
    expect([await classOf('account_id'), await classOf('town'), await classOf('kwh')]).toEqual(['直接标识符', '属性', '敏感']);
    const latest = (await t.call('GET', '/v1/datasets/power_readings', { token: await t.tokenFor('clerk-power-utility') })).json.versions.at(-1).versionNumber;
    expect(await page.textContent('#delivery-standing')).toContain(`最新版本 v${latest}`);
    // "泥城镇" in GBK, as Excel on Chinese Windows saves it.
    const gbk = Buffer.concat([Buffer.from(`${header}P0000000001,household,H00000001,,`), Buffer.from('c4e0b3c7d5f2', 'hex'), Buffer.from(',,2025-01-01,120.5,74.35,true\n')]);
    await page.setInputFiles('#delivery-file', { name: 'readings.csv', mimeType: 'text/csv', buffer: gbk });
    await page.selectOption('#delivery-encoding', 'gb18030');
    await page.click('#deliver');
    await page.waitForSelector('#delivery-outcome .badge.ok');
    expect(await page.textContent('#delivery-outcome')).toMatch(/v\d+ · 行数 1/);

    await page.setInputFiles('#delivery-file', { name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from(`${header}P0000000002,household,H00000001,,x,,2025-01-01,lots,74.35,true\n`) });
    await page.selectOption('#delivery-encoding', 'utf-8');
    await page.click('#deliver');
    await page.waitForSelector('#delivery-outcome .badge.bad');
    const refusal = await page.textContent('#delivery-outcome');
    expect(refusal).toContain('SCHEMA_MISMATCH');
    // In Chinese, with the server's English wording kept as the detail's tooltip.
    expect(refusal).toContain('kwh 1 个值不是 DOUBLE 类型（第一个在第 1 行数据）');
    expect(await page.locator('#delivery-outcome p[title="kwh 1 value(s) are not DOUBLE (first at data row 1)"]').count()).toBe(1);
    expect(refusal).not.toContain('lots');

    // People's names in the town column (an attribute) refuse the file, and the console says what to do.
    const names = Array.from({ length: 40 }, (_, i) => `P${String(i + 10).padStart(10, '0')},household,H00000001,,${['王', '李', '张', '刘', '陈'][i % 5]}${['伟', '芳', '强', '敏', '静', '磊', '军', '洋'][Math.floor(i / 5)]},,2025-01-01,120.5,74.35,true`);
    await page.setInputFiles('#delivery-file', { name: 'names.csv', mimeType: 'text/csv', buffer: Buffer.from(`${header}${names.join('\n')}\n`) });
    await page.click('#deliver');
    await page.waitForFunction(() => document.querySelector('#delivery-outcome')?.textContent?.includes('COLUMN_CLASS_SUSPECT'));
    const namesRefusal = await page.textContent('#delivery-outcome');
    expect(namesRefusal).toContain('姓名');
    expect(namesRefusal).toContain('town 40 个值中有 40 个像姓名，但该列登记为“属性”');
    expect(namesRefusal).not.toContain('王伟');
    expect(pageErrors(page)).toEqual([]);
  });
});
