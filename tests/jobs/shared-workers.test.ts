import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, usingPostgres, type TestPlatform } from '../support/test-platform.js';

const root = path.resolve(import.meta.dirname, '../..');

// Separate worker processes share one PostgreSQL (PGlite serves one process, so this runs on PostgreSQL only).
describe.skipIf(!usingPostgres)('two pds worker processes against one PostgreSQL', () => {
  let t: TestPlatform;
  const workers: ChildProcess[] = [];
  beforeAll(async () => {
    t = await createTestPlatform({ demo: true, workers: 0, environment: { PDS_DEMO_SCALE: '0.01' } });
    for (let i = 0; i < 2; i++) {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/pds.ts'), 'worker', '--workers', '1'], {
        cwd: root,
        env: { ...process.env, DATABASE_URL: t.databaseUrl!, DATA_DIR: t.dataDir },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('taking jobs') && resolve());
        child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
      });
      workers.push(child);
    }
  });
  afterAll(async () => {
    for (const child of workers) child.kill('SIGTERM');
    await Promise.all(workers.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))));
    await t?.close();
  });

  it('share the queue and run no job twice', async () => {
    const analyst = await t.tokenFor('analyst-lingang-analytics');
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const response = await t.call('POST', '/v1/jobs', {
        token: analyst,
        json: { datasets: ['enterprises'], sql: `SELECT town, count(*) AS firms FROM enterprises WHERE registered_capital > ${i} GROUP BY town`, purpose: 'x' },
      });
      expect(response.status).toBe(201);
      ids.push(response.json.id);
    }
    const regulator = await t.tokenFor('regulator-data-dept');
    const runners = new Set<string>();
    for (const id of ids) {
      const job = await t.waitForJob(id, 120_000);
      expect(job.status).toBe('released');
      const record = await t.call('GET', `/v1/jobs/${id}/record`, { token: regulator });
      const running = record.json.audit.map((entry: { leaf: string }) => JSON.parse(entry.leaf)).filter((event: { type: string }) => event.type === 'job.running');
      expect(running).toHaveLength(1);
      runners.add(running[0].details.worker);
    }
    expect(runners.size).toBe(2);
  });
});
