import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { principals } from '../../src/db/schema.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

const root = path.resolve(import.meta.dirname, '../..');
let t: TestPlatform;
let server: ServerType;
let base: string;

/** Runs pds as a separate process, asynchronously: the server it talks to lives in this process. */
async function pds(args: string[], token?: string) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/pds.ts'), ...args, ...(token ? ['--server', base, '--token', token] : [])], {
      cwd: root,
      env: { ...process.env, DATA_DIR: '/nonexistent-pds-cli', CI: '' },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

beforeAll(async () => {
  t = await createTestPlatform({ demo: true, workers: 1 });
  server = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}, 120_000);

afterAll(async () => {
  server?.close();
  await t?.close();
});

describe('pds jobs and pds reports against a running server', () => {
  it('jobs --help explains the subcommands and exits 0', async () => {
    const result = await pds(['jobs', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('pds jobs submit');
  });

  it('submits a job, follows it to release and prints its result as CSV', async () => {
    const operator = await t.tokenFor('analyst-lingang-analytics');
    const submitted = await pds(['jobs', 'submit', '--datasets', 'bus_routes', '--purpose', 'cli test', '--sql', 'SELECT route_id, count(*) AS stops FROM bus_routes GROUP BY route_id', '--wait', '--interval', '100'], operator);
    expect(submitted.code).toBe(0);
    const id = submitted.stdout.trim().split('\n')[0]!;
    expect(id).toMatch(/^job_/);
    expect(submitted.stderr).toContain('released');
    const result = await pds(['jobs', 'result', id, '--format', 'csv'], operator);
    expect(result.code).toBe(0);
    expect(result.stdout.split('\r\n')[0]).toBe('route_id,stops,suppressed');
  });

  it('lists the operator\'s jobs, shows one with its SQL, and refuses to cancel a released one with the server\'s code', async () => {
    const operator = await t.tokenFor('analyst-lingang-analytics');
    const sql = 'SELECT stop_name, count(*) AS routes FROM bus_routes GROUP BY stop_name';
    const id = (await pds(['jobs', 'submit', '--datasets', 'bus_routes', '--purpose', '站点线路数', '--sql', sql, '--wait', '--interval', '100'], operator)).stdout.trim().split('\n')[0]!;
    const listed = await pds(['jobs', 'list', '--status', 'released'], operator);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trimEnd().split('\r\n');
    expect(lines[0]).toBe('id,status,code,kind,grade,submitted,purpose');
    expect(lines.find((line) => line.startsWith(`${id},`))).toMatch(/^job_[^,]+,released,[A-Z_]+,[a-z_]+,L1,[^,]+,站点线路数$/);
    // Another operator's list does not hold it.
    expect((await pds(['jobs', 'list'], await t.tokenFor('analyst-harbour-credit'))).stdout).not.toContain(id);

    const shown = await pds(['jobs', 'show', id], operator);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^status +released\n/);
    expect(shown.stdout).toContain('purpose    站点线路数');
    expect(shown.stdout.trimEnd().endsWith(sql)).toBe(true);

    const cancelled = await pds(['jobs', 'cancel', id], operator);
    expect(cancelled.code).toBe(1);
    expect(cancelled.stderr).toMatch(/INVALID_TRANSITION|CONFLICT/);
  });

  it.each([
    ['the connection drops', 'drop'],
    ['a gateway answers 502', 'bad gateway'],
  ] as const)('a submission whose answer is lost (%s) is sent again under its Idempotency-Key, and one job is queued', async (_, loss) => {
    const operator = await t.tokenFor('analyst-lingang-analytics');
    const jobIds = async () => ((await t.call('GET', '/v1/jobs', { token: operator })).json.jobs as Array<{ id: string }>).map((job) => job.id);
    const before = new Set(await jobIds());
    // A server in front that passes the first submission on, then loses the answer: it drops the connection, or
    // answers as a gateway whose upstream went away.
    let dropped = false;
    const flaky = http.createServer(async (request, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const answer = await t.app.fetch(
        new Request(`http://pds.test${request.url}`, { method: request.method, headers: request.headers as Record<string, string>, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) }),
      );
      if (request.method === 'POST' && !dropped) {
        dropped = true;
        if (loss === 'drop') request.socket.destroy();
        else response.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway');
        return;
      }
      response.writeHead(answer.status, Object.fromEntries(answer.headers));
      response.end(Buffer.from(await answer.arrayBuffer()));
    });
    await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', () => resolve()));
    try {
      const flakyBase = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`;
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', path.join(root, 'src/cli/pds.ts'), 'jobs', 'submit', '--datasets', 'bus_routes', '--purpose', `cli retry (${loss})`, '--sql', 'SELECT town, count(*) AS stops FROM bus_routes GROUP BY town', '--server', flakyBase, '--token', operator],
        { cwd: root, env: { ...process.env, DATA_DIR: '/nonexistent-pds-cli', CI: '' }, timeout: 120_000 },
      );
      expect(dropped).toBe(true);
      expect((await jobIds()).filter((id) => !before.has(id))).toEqual([stdout.trim()]);
    } finally {
      flaky.close();
    }
  });

  it('check prints the decision and the output columns, and queues nothing', async () => {
    const operator = await t.tokenFor('analyst-lingang-analytics');
    const before = (await t.call('GET', '/v1/jobs', { token: operator })).json.jobs.length;
    const result = await pds(['jobs', 'check', '--datasets', 'bus_routes', '--purpose', 'cli test', '--sql', 'SELECT route_id, count(*) AS stops FROM bus_routes GROUP BY route_id'], operator);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^accepted: an aggregate job on L1 data/);
    expect(result.stdout).toContain('  stops  count');
    expect((await t.call('GET', '/v1/jobs', { token: operator })).json.jobs.length).toBe(before);
  });

  it('trial prints the output over synthetic rows as CSV and says on stderr that it is synthetic', async () => {
    const result = await pds(['jobs', 'trial', '--datasets', 'bus_routes', '--purpose', 'cli test', '--sql', 'SELECT count(*) AS stops FROM bus_routes'], await t.tokenFor('analyst-lingang-analytics'));
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('stops\r\n500\r\n');
    expect(result.stderr).toContain('over 500 synthetic rows a dataset');
  });

  it("check exits 1 with DuckDB's reason for a column neither grouped nor aggregated", async () => {
    const result = await pds(['jobs', 'check', '--datasets', 'bus_routes', '--purpose', 'cli test', '--sql', 'SELECT route_id, stop_name, count(*) FROM bus_routes GROUP BY route_id'], await t.tokenFor('analyst-lingang-analytics'));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('refused: BIND_ERROR: the SQL does not fit the datasets\' columns and types: column "stop_name" must appear in the GROUP BY clause');
  });

  /** A regulator sets harbour-credit's ε cap on transit_trips (L4, where every job is differentially private). */
  async function setTransitBudget(epsilonCap: number) {
    const [regulator] = await t.twoRegulators();
    const licence = (await t.call('GET', '/v1/licences', { token: regulator })).json.licences.find((entry: { operatorId: string }) => entry.operatorId === 'harbour-credit');
    expect((await t.call('POST', '/v1/budgets', { token: regulator, json: { licenceId: licence.id, datasetId: 'transit_trips', epsilonCap, reason: 'test' } })).status).toBe(200);
  }

  it('checks and submits a differentially private job with its ε and bounds, and shows them on the job', async () => {
    await setTransitBudget(2);
    const operator = await t.tokenFor('analyst-harbour-credit');
    const job = ['--datasets', 'transit_trips', '--purpose', 'cli test', '--sql', 'WITH per_card AS (SELECT card_id, route_id, count(*) AS trips FROM transit_trips GROUP BY card_id, route_id) SELECT route_id, avg(trips) AS trips_per_rider FROM per_card GROUP BY route_id'];
    const checked = await pds(['jobs', 'check', ...job, '--epsilon', '0.5', '--bounds', 'trips: 0..20'], operator);
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toContain('differentially private: ε 0.5, δ 0, laplace; 2 of 2 left on transit_trips');
    // Two figures at ε 0.25 each: the count (10 rows a card) and the sum of trips (at most 20 from each row).
    expect(checked.stdout).toContain('expected noise (95 %): count ±120, sum(trips) ±2397');
    expect(checked.stdout).toMatch(/^accepted: an aggregate job on L4 data \(policy [0-9a-f]{12}…, noise instead of suppression\)/);
    const submitted = await pds(['jobs', 'submit', ...job, '--epsilon', '0.5', '--bounds', 'trips: 0..20'], operator);
    expect(submitted.code, submitted.stderr).toBe(0);
    const shown = await pds(['jobs', 'show', submitted.stdout.trim()], operator);
    expect(shown.stdout).toContain('privacy    differentially private: ε 0.5, δ 0, laplace');
  });

  it('checks a differentially private logistic model and says how it is fitted', async () => {
    await setTransitBudget(2);
    const operator = await t.tokenFor('analyst-harbour-credit');
    const model = JSON.stringify({ type: 'logistic', target: 'dear', features: ['central'] });
    const sql = "SELECT CASE WHEN fare > 2 THEN 1 ELSE 0 END AS dear, CASE WHEN route_id IN ('LG01', 'LG02') THEN 1 ELSE 0 END AS central FROM transit_trips";
    const checked = await pds(['jobs', 'check', '--datasets', 'transit_trips', '--purpose', 'cli test', '--sql', sql, '--model', model, '--epsilon', '0.5', '--bounds', 'central: 0..1'], operator);
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toContain('logistic regression of dear on central; fitted by noisy Newton steps from zero');
    expect(checked.stdout).toMatch(/expected noise \(95 %\) in each of 4 Newton steps: sum\(dear − p\) ±[\d.]+, sum\(central·\(dear − p\)\) ±[\d.]+, sum\(p\(1−p\)\) ±/);
  });

  it('refuses privacy options it cannot read before sending anything', async () => {
    const job = ['jobs', 'check', '--datasets', 'transit_trips', '--purpose', 'cli test', '--sql', 'SELECT route_id, count(*) FROM transit_trips GROUP BY route_id'];
    const unread = await pds([...job, '--epsilon', '0.5', '--bounds', 'trips up to 20'], 'x');
    expect(unread.code).toBe(2);
    expect(unread.stderr).toContain('"trips up to 20" is not column: min..max');
    const alone = await pds([...job, '--delta', '1e-6'], 'x');
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain('--delta, --mechanism and --bounds go with --epsilon');
  });

  it('exits 1 with the policy code when the job is refused', async () => {
    const result = await pds(['jobs', 'submit', '--datasets', 'enterprises', '--purpose', 'cli test', '--sql', 'SELECT name FROM enterprises'], await t.tokenFor('analyst-lingang-analytics'));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/refused: (ROW_LEVEL_OUTPUT|DIRECT_IDENTIFIER_USE)/);
  });

  it('prints the annual product report for a regulator', async () => {
    const result = await pds(['reports', 'products', '--year', '2026', '--format', 'csv'], await t.tokenFor('regulator-data-dept'));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^product,title,titleZh,operator,status,calls/);
  });

  it('prints the supervision report for a regulator', async () => {
    const result = await pds(['reports', 'supervision', '--format', 'csv'], await t.tokenFor('regulator-data-dept'));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^institution,nameZh,datasetsRegistered/);
  });

  it("prints a dataset's use trail for its source, a line per use with its audit leaves", async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const job = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['bus_routes'], purpose: '线路站点数统计（命令行）', sql: 'SELECT route_id, count(*) AS stops FROM bus_routes GROUP BY route_id' } });
    expect(job.status).toBe(201);
    await t.waitForJob(job.json.id);
    await t.platform.db.insert(principals).values({ id: 'clerk-transit-cli', role: 'institution', displayName: '公交公司 · 数据专员', institutionId: 'transit-company' }).onConflictDoNothing();
    const result = await pds(['reports', 'uses', 'bus_routes', '--format', 'csv'], await t.tokenFor('clerk-transit-cli'));
    expect(result.code).toBe(0);
    // CSV lines end in CRLF (RFC 4180).
    const lines = result.stdout.trimEnd().split('\r\n');
    expect(lines[0]).toBe('use,at,by_or_to,what,state,code,calls,rows,audit_leaves');
    expect(lines.find((line) => line.includes('线路站点数统计（命令行）'))).toMatch(/^job,[^,]+,lingang-analytics,线路站点数统计（命令行）,released,CHECKED\w*,,,\d+( \d+)+$/);
    // Another public body is told the dataset does not exist.
    const refused = await pds(['reports', 'uses', 'bus_routes'], await t.tokenFor('clerk-power-utility'));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('NOT_FOUND');
  });

  it('exits 1 with the server’s code when the token may not read the report', async () => {
    const result = await pds(['reports', 'products', '--year', '2026'], await t.tokenFor('consumer-east-sea-bank'));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('FORBIDDEN');
  });

  it('exits 2 on missing arguments', async () => {
    const result = await pds(['jobs', 'submit', '--datasets', 'enterprises'], 'x');
    expect(result.code).toBe(2);
  });
});
