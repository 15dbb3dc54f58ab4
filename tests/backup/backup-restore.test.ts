import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup, publicTables, backupSignatureType, type BackupManifest } from '../../src/backup/backup.js';
import { rowsOf } from '../../src/db/raw-rows.js';
import { restoreBackup } from '../../src/backup/restore.js';
import { fetchLogSnapshot, verifyLog, type SignedCheckpoint } from '../../src/audit/verify-log.js';
import { ephemeralKeyRing, keyRingOf, signWithPlatformKey } from '../../src/identity/keys.js';
import type { Database } from '../../src/db/connect.js';
import { sql } from 'drizzle-orm';
import { compactVerify, createLocalJWKSet, decodeJwt, decodeProtectedHeader } from 'jose';
import { residentIdCheckCharacter } from '../../src/catalog/identity-numbers.js';
import { createTestPlatform, usingPostgres, type TestPlatform } from '../support/test-platform.js';

let source: TestPlatform;
let target: TestPlatform;
let folder: string;
let manifest: BackupManifest;
let released: { id: string; result: unknown };
let checkpointBefore: SignedCheckpoint;
let keptCall: { input: Record<string, string>; answer: unknown };

const query = 'SELECT town, count(*) AS firms FROM enterprises GROUP BY town ORDER BY town';

beforeAll(async () => {
  source = await createTestPlatform({ demo: true, workers: 1 });
  const analyst = await source.tokenFor('analyst-lingang-analytics');
  const submitted = await source.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['enterprises'], sql: query, purpose: 'backup test' } });
  expect((await source.waitForJob(submitted.json.id)).status).toBe('released');
  released = { id: submitted.json.id, result: (await source.call('GET', `/v1/jobs/${submitted.json.id}/result`, { token: analyst })).json };
  // A call sent with an Idempotency-Key, whose answer is kept for its retries (call_replays, binary column).
  const body = '44010619500000019';
  const input = { id_number: body + residentIdCheckCharacter(body), name: '备份' };
  keptCall = { input, answer: (await verifyKeyed(source, input)).json };
  await source.platform.products.ledger.drain();
  checkpointBefore = (await source.call('GET', '/v1/audit/checkpoint', { token: await source.tokenFor('regulator-data-dept') })).json;
  folder = path.join(source.dataDir, '..', `backup-${path.basename(source.dataDir)}`);
  manifest = await createBackup(source.platform, folder, { actor: 'test' });
  // Another data directory and database, and the platform key rotated since the backup (the backup's key retired,
  // the token key kept): a new machine restoring the backup a while later.
  const { token, platform } = source.platform.keys;
  target = await createTestPlatform({ keys: keyRingOf(token, (await ephemeralKeyRing()).platform, [platform]), workers: 1 });
}, 120_000);
afterAll(async () => {
  await target?.close();
  await source?.close();
  if (folder) fs.rmSync(folder, { recursive: true, force: true });
});

async function verifyKeyed(on: TestPlatform, input: Record<string, string>) {
  return on.call('POST', '/v1/products/resident-identity/verify', { token: await on.tokenFor('consumer-east-sea-bank'), headers: { 'idempotency-key': 'before-backup' }, json: { input, purpose: 'backup test', use: 'industry' } });
}

/** A copy of the backup to damage, so each refusal is tested on its own. */
function copyOfBackup(name: string): string {
  const copy = `${folder}-${name}`;
  fs.cpSync(folder, copy, { recursive: true });
  for (const file of fs.readdirSync(copy, { recursive: true, withFileTypes: true })) if (file.isFile()) fs.chmodSync(path.join(file.parentPath, file.name), 0o600);
  return copy;
}

const rowCounts = async (db: Database) =>
  Object.fromEntries(await Promise.all((await publicTables(db)).map(async (name) => [name, Number((await rowsOf<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM ${sql.identifier(name)}`))[0]!.n)])));

async function expectNothingRestored(): Promise<void> {
  expect(Object.values(await rowCounts(target.platform.db)).every((count) => count === 0)).toBe(true);
}

describe('a backup', () => {
  it('lists every table with its rows and every snapshot, and is signed with the platform key', () => {
    expect(manifest.tables.find((table) => table.name === 'audit_leaves')!.rows).toBeGreaterThan(0);
    expect(manifest.tables.find((table) => table.name === 'jobs')!.rows).toBeGreaterThan(0);
    expect(manifest.snapshots.map((snapshot) => snapshot.dataset)).toContain('enterprises');
    for (const snapshot of manifest.snapshots) expect(fs.existsSync(path.join(folder, 'domain', snapshot.dataset, `${snapshot.sha256}.duckdb`))).toBe(true);
    const [header] = fs.readFileSync(path.join(folder, 'manifest.jws'), 'utf8').split('.');
    expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toMatchObject({ alg: 'EdDSA', kid: source.platform.keys.platform.kid, typ: backupSignatureType });
  });

  it('is recorded in the audit log with the hash of its manifest', async () => {
    const hash = (await import('node:crypto')).hash('sha256', fs.readFileSync(path.join(folder, 'manifest.jws'), 'utf8'), 'hex');
    const [leaf] = await rowsOf<{ leaf: string }>(source.platform.db, sql`SELECT leaf FROM audit_leaves WHERE event_type = 'platform.backed-up'`);
    expect(JSON.parse(leaf!.leaf)).toMatchObject({ actor: 'test', details: { manifestSha256: hash, tables: manifest.tables.length, snapshots: manifest.snapshots.length } });
  });

  it('holds no key material', () => {
    const everything = fs.readdirSync(folder, { recursive: true }).map(String);
    // No keys folder and no JWK; consumers' registered homomorphic public keys (he_keys) are public and restored.
    expect(everything.some((name) => name.split(path.sep).includes('keys') || name.endsWith('.jwk.json'))).toBe(false);
    const tables = fs.readdirSync(path.join(folder, 'control-plane')).map((name) => fs.readFileSync(path.join(folder, 'control-plane', name), 'utf8')).join('');
    expect(tables).not.toContain('"d":');
  });

  it('is not written into a folder that already holds files', async () => {
    await expect(createBackup(source.platform, folder, { actor: 'test' })).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});

describe('a backup of the running server', () => {
  it('is written by an admin over the API into the backup folder, named in the answer; nobody else may start one', async () => {
    expect((await source.call('POST', '/v1/backups', { token: await source.tokenFor('regulator-data-dept') })).status).toBe(403);
    const response = await source.call('POST', '/v1/backups', { token: await source.tokenFor('admin-data-centre') });
    expect(response.status).toBe(201);
    expect(response.json).toMatchObject({ folder: expect.stringMatching(/^pds-\d{8}T\d{6}Z-[0-9a-f]{6}$/), tables: manifest.tables.length, snapshots: manifest.snapshots.length });
    expect(response.text).not.toContain(source.dataDir);
    expect(fs.existsSync(path.join(source.platform.config.backupDir, response.json.folder, 'manifest.jws'))).toBe(true);
    const history = (await source.call('GET', '/v1/backups', { token: await source.tokenFor('admin-data-centre') })).json.backups;
    expect(history[0]).toMatchObject({ kind: 'backup', actor: 'admin-data-centre', folder: response.json.folder, tables: manifest.tables.length, manifestSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((await source.call('GET', '/v1/backups', { token: await source.tokenFor('regulator-data-dept') })).status).toBe(403);
  });
});

describe('restoring', () => {
  it('refuses a backup signed with another platform key, and writes nothing', async () => {
    const copy = copyOfBackup('other-key');
    fs.writeFileSync(path.join(copy, 'manifest.jws'), signWithPlatformKey(await ephemeralKeyRing(), backupSignatureType, manifest));
    await expect(restoreBackup(target.platform, copy, { actor: 'test' })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('another platform key') });
    await expectNothingRestored();
  });

  it('refuses a backup whose table was changed after it was made, and writes nothing', async () => {
    const copy = copyOfBackup('edited-table');
    const file = path.join(copy, 'control-plane', 'jobs.jsonl');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('backup test', 'backup tesT'));
    await expect(restoreBackup(target.platform, copy, { actor: 'test' })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('table jobs does not match') });
    await expectNothingRestored();
  });

  it('refuses a backup whose snapshot was changed, and writes nothing', async () => {
    const copy = copyOfBackup('edited-snapshot');
    const snapshot = manifest.snapshots.find((entry) => entry.dataset === 'enterprises')!;
    const file = path.join(copy, 'domain', snapshot.dataset, `${snapshot.sha256}.duckdb`);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] = bytes.at(-1)! ^ 1;
    fs.writeFileSync(file, bytes);
    await expect(restoreBackup(target.platform, copy, { actor: 'test' })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('snapshot of enterprises') });
    await expectNothingRestored();
  });

  it('brings back every row of every table, and records the restore as the next leaf of the audit log', async () => {
    await restoreBackup(target.platform, folder, { actor: 'test' });
    const expected = Object.fromEntries(manifest.tables.map((table) => [table.name, table.rows]));
    expect(await rowCounts(target.platform.db)).toEqual({ ...expected, audit_leaves: expected.audit_leaves! + 1 });
    const [last] = await rowsOf<{ leaf_index: number; event_type: string }>(target.platform.db, sql`SELECT leaf_index::int AS leaf_index, event_type FROM audit_leaves ORDER BY leaf_index DESC LIMIT 1`);
    expect(last).toMatchObject({ leaf_index: expected.audit_leaves, event_type: 'platform.restored' });
  });

  it('brings back an audit log consistent with a checkpoint signed before the backup', async () => {
    const regulator = await target.tokenFor('regulator-data-dept');
    const snapshot = await fetchLogSnapshot({ server: 'http://target', token: regulator, witness: [checkpointBefore], fetch: async (url, init) => target.app.request(url.replace('http://target', ''), init) });
    const report = await verifyLog(snapshot);
    expect(report.findings.filter((finding) => !finding.ok)).toEqual([]);
    expect(report.findings.map((finding) => finding.check)).toContain(`consistency with the checkpoint of size ${checkpointBefore.tree_size}`);
  });

  it('serves the released result as it was, and runs new jobs on the restored snapshots', async () => {
    const analyst = await target.tokenFor('analyst-lingang-analytics');
    expect((await target.call('GET', `/v1/jobs/${released.id}/result`, { token: analyst })).json).toEqual(released.result);
    const submitted = await target.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['enterprises'], sql: query, purpose: 'after restore' } });
    expect(submitted.status).toBe(201);
    expect((await target.waitForJob(submitted.json.id)).status).toBe('released');
    const again = (await target.call('GET', `/v1/jobs/${submitted.json.id}/result`, { token: analyst })).json;
    expect(again.rows).toEqual((released.result as { rows: unknown[] }).rows);
  });

  it('answers a retry of a call made before the backup with the kept answer', async () => {
    const retry = await verifyKeyed(target, keptCall.input);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    // The same answer and signed payload; the signature is the platform key's of now, rotated since the backup.
    const { jws, ...answer } = retry.json;
    const { jws: keptJws, ...kept } = keptCall.answer as { jws: string };
    expect(answer).toEqual(kept);
    expect(decodeJwt(jws)).toEqual(decodeJwt(keptJws));
    expect(decodeProtectedHeader(jws).kid).toBe(target.platform.keys.platform.kid);
    await expect(compactVerify(jws, createLocalJWKSet((await target.call('GET', '/.well-known/jwks.json')).json))).resolves.toBeDefined();
  });

  it('refuses to restore into a control plane that has rows', async () => {
    await expect(restoreBackup(target.platform, folder, { actor: 'test' })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('empty control plane') });
  });
});

describe('from one control plane to another', () => {
  // The way from a trial on the embedded default to a service on PostgreSQL; runs where a server is at hand.
  it.runIf(usingPostgres)('a backup of the embedded database restores into PostgreSQL, row for row', async () => {
    const embedded = await createTestPlatform({ demo: true, embedded: true });
    const server = await createTestPlatform({ keys: embedded.platform.keys });
    const crossing = `${folder}-embedded`;
    try {
      expect(embedded.platform.controlPlane.kind).toBe('pglite');
      expect(server.platform.controlPlane.kind).toBe('postgres');
      const made = await createBackup(embedded.platform, crossing, { actor: 'test' });
      await restoreBackup(server.platform, crossing, { actor: 'test' });
      const expected = Object.fromEntries(made.tables.map((table) => [table.name, table.rows]));
      expect(await rowCounts(server.platform.db)).toEqual({ ...expected, audit_leaves: expected.audit_leaves! + 1 });
      expect(await rowsOf(server.platform.db, sql`SELECT * FROM datasets ORDER BY id`)).toEqual(await rowsOf(embedded.platform.db, sql`SELECT * FROM datasets ORDER BY id`));
    } finally {
      await server.close();
      await embedded.close();
      fs.rmSync(crossing, { recursive: true, force: true });
    }
  }, 120_000);
});
