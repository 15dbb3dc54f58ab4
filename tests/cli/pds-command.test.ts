import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, jwtVerify } from 'jose';
import { createTestPlatform, usingPostgres, type TestPlatform } from '../support/test-platform.js';
import { createScratchDatabase } from '../../src/db/scratch-database.js';

const root = path.resolve(import.meta.dirname, '../..');

function pds(args: string[], environment: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/pds.ts'), ...args], {
    cwd: root,
    env: { ...process.env, ...environment },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('pds without a platform', () => {
  it('--help prints usage and exits 0', () => {
    const result = pds(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('pds datasets load <id> <file>');
  });

  it('an unknown command exits 2', () => {
    expect(pds(['frobnicate'], { DATA_DIR: '/nonexistent-pds' }).code).toBe(2);
  });

  it('a bad configuration exits 2 naming the variable', () => {
    const result = pds(['datasets', 'list'], { PORT: 'none' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^pds: invalid configuration: PORT /);
  });
});

describe('pds keys', () => {
  it('rotates the dev platform key, and lists the retired key as the root of the derived secrets', () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pds-keys-cli-'));
    const first = pds(['keys', 'list'], { DATA_DIR: dataDir });
    expect(first.code).toBe(0);
    const original = /^platform\s+current\s+(\S+)\s+\(roots the derived secrets\)$/m.exec(first.stdout)![1];
    const rotated = pds(['keys', 'rotate', 'platform'], { DATA_DIR: dataDir });
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toContain(`${original} retired`);
    const listed = pds(['keys', 'list'], { DATA_DIR: dataDir }).stdout;
    expect(listed).toMatch(new RegExp(`^platform\\s+retired\\s+${original}\\s+\\(roots the derived secrets\\)$`, 'm'));
    expect(listed).toMatch(/^platform\s+current\s+\S+$/m);
  });

  it('refuses to rotate in production, where the key files are the administrator\'s, and generates a key file there', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pds-keys-cli-'));
    const production = { PDS_MODE: 'production', PDS_TOKEN_KEY_FILE: path.join(dir, 't.jwk.json'), PDS_PLATFORM_KEY_FILE: path.join(dir, 'p.jwk.json'), DATABASE_URL: 'postgres://127.0.0.1:1/none', DATA_DIR: dir };
    const refused = pds(['keys', 'rotate', 'platform'], production);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('pds keys generate');
    const generated = pds(['keys', 'generate', path.join(dir, 'p.jwk.json')], production);
    expect(generated.code).toBe(0);
    expect(fs.statSync(path.join(dir, 'p.jwk.json')).mode & 0o777).toBe(0o600);
    // Never over an existing file.
    const again = pds(['keys', 'generate', path.join(dir, 'p.jwk.json')], production);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('never overwritten');
  });
});

// The command line works on the same data directory and control plane as the server. On PostgreSQL it shares
// this file's database; a PGlite directory cannot be opened by two processes, so there it gets a copy.
describe('pds on a data directory', () => {
  let t: TestPlatform;
  let dataDir: string;
  let environment: Record<string, string>;
  beforeAll(async () => {
    t = await createTestPlatform({ demo: true });
    if (usingPostgres) {
      dataDir = t.dataDir;
      environment = { DATA_DIR: dataDir, DATABASE_URL: t.databaseUrl! };
      return;
    }
    dataDir = path.join(t.dataDir, 'cli');
    fs.mkdirSync(path.join(dataDir, 'control-plane'), { recursive: true });
    const dump = await t.platform.controlPlane.dumpDataDir!();
    const { PGlite } = await import('@electric-sql/pglite');
    const copy = await PGlite.create({ dataDir: path.join(dataDir, 'control-plane'), loadDataDir: dump });
    await copy.close();
    environment = { DATA_DIR: dataDir, DATABASE_URL: '' };
  });
  afterAll(() => t?.close());

  it.skipIf(usingPostgres)('a command refuses the embedded database while another live process holds it', () => {
    const lockFile = path.join(dataDir, 'control-plane.lock');
    // This test's own process stands in for a running pds serve: alive, and not the command's process.
    fs.writeFileSync(lockFile, JSON.stringify({ pid: process.pid, command: 'serve', since: new Date().toISOString() }));
    try {
      const result = pds(['datasets', 'list'], environment);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`the embedded database in ${path.join(dataDir, 'control-plane')} is in use by process ${process.pid} (serve`);
      expect(result.stdout).toBe('');
    } finally {
      fs.rmSync(lockFile, { force: true });
    }
  });

  it('serve on a port already taken exits 1 saying so, and lets go of the database', async () => {
    const taken = http.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = String((taken.address() as AddressInfo).port);
      const result = pds(['serve'], { ...environment, PORT: port, PDS_WORKERS: '0' });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`pds: 127.0.0.1:${port} is already in use`);
      expect(fs.existsSync(path.join(dataDir, 'control-plane.lock'))).toBe(false);
    } finally {
      taken.close();
    }
  });

  it('datasets load creates a new version and prints its hash', () => {
    const csv = path.join(dataDir, 'routes.csv');
    fs.writeFileSync(csv, 'route_id,route_name,stop_seq,stop_id,stop_name,town,latitude,longitude\nLG99,临港99路,1,LG99-S01,测试站,泥城镇,30.9,121.9\n');
    const result = pds(['datasets', 'load', 'bus_routes', csv], environment);
    expect(result.stderr).toMatch(/loaded bus_routes version 2: 1 rows, sha256 [0-9a-f]{64}/);
    expect(result.code).toBe(0);
    expect(pds(['datasets', 'list'], environment).stdout).toMatch(/bus_routes\s+L1\s+transit-company\s+v2 1 rows/);
  });

  it('datasets load --encoding gbk reads a GBK file', () => {
    const csv = path.join(dataDir, 'routes-gbk.csv');
    // The header, then "LG98,临港98路,1,LG98-S01,测试站,泥城镇,30.9,121.9" with its Chinese in GBK.
    const gbk = (hex: string) => Buffer.from(hex, 'hex');
    fs.writeFileSync(csv, Buffer.concat([
      Buffer.from('route_id,route_name,stop_seq,stop_id,stop_name,town,latitude,longitude\nLG98,'), gbk('c1d9b8db'), Buffer.from('98'), gbk('c2b7'),
      Buffer.from(',1,LG98-S01,'), gbk('b2e2cad4d5be'), Buffer.from(','), gbk('c4e0b3c7d5f2'), Buffer.from(',30.9,121.9\n'),
    ]));
    expect(pds(['datasets', 'load', 'bus_routes', csv], environment).stderr).toContain('not UTF-8 encoded');
    const result = pds(['datasets', 'load', 'bus_routes', csv, '--encoding', 'gbk'], environment);
    expect(result.stderr).toMatch(/loaded bus_routes version \d+: 1 rows/);
    expect(result.code).toBe(0);
  });

  it('datasets load with an encoding it does not read exits 2', () => {
    const result = pds(['datasets', 'load', 'bus_routes', path.join(dataDir, 'routes.csv'), '--encoding', 'latin1'], environment);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--encoding takes utf-8 or gb18030');
  });

  it('datasets load names each quality rule the new version fails, with counts only', () => {
    const csv = path.join(dataDir, 'enterprises.csv');
    fs.writeFileSync(csv, 'uscc,name,legal_rep_id,legal_rep_name,registered_capital,industry_code,established_on,town,status\n91310115MA1K000001,上海测试有限公司,110105194912310021,张三,100.00,C3612,2020-01-01,南汇新城镇,active\n');
    const result = pds(['datasets', 'load', 'enterprises', csv], environment);
    expect(result.code).toBe(0);
    expect(result.stdout, result.stderr).toContain('quality rule failed: resident_id(legal_rep_id) — 1 of 1 rows');
    expect(result.stdout).not.toContain('110105194912310021');
  });

  it('datasets load of a mismatching file exits 1 and names the problem', () => {
    const csv = path.join(dataDir, 'bad.csv');
    fs.writeFileSync(csv, 'route_id,oops\nLG1,x\n');
    const result = pds(['datasets', 'load', 'bus_routes', csv], environment);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('SCHEMA_MISMATCH');
    expect(result.stderr).toContain('route_name registered column missing from the file');
  });

  it('token mints a token for an existing principal, signed by the key in the data directory', async () => {
    const result = pds(['token', 'regulator-data-dept'], environment);
    expect(result.code).toBe(0);
    const jwk = JSON.parse(fs.readFileSync(path.join(dataDir, 'keys', 'token-signing.jwk.json'), 'utf8'));
    const { importJWK } = await import('jose');
    const key = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, 'EdDSA');
    const { payload } = await jwtVerify(result.stdout.trim(), key);
    expect(payload.sub).toBe('regulator-data-dept');
  });

  it('token records in the audit log who minted it for whom, by its id, never the token', async () => {
    const result = pds(['token', 'regulator-data-dept'], environment);
    expect(result.code).toBe(0);
    const token = result.stdout.trim();
    const { jti } = decodeJwt(token);
    let leaves: string[];
    if (usingPostgres) {
      const entries = (await t.call('GET', '/v1/audit/entries?type=token.minted&order=desc&limit=1000', { token: await t.tokenFor('regulator-data-dept') })).json.entries;
      leaves = entries.map((entry: { leaf: string }) => entry.leaf);
    } else {
      // The command ran on its own copy of the control plane, closed now.
      const { PGlite } = await import('@electric-sql/pglite');
      const copy = await PGlite.create({ dataDir: path.join(dataDir, 'control-plane') });
      leaves = (await copy.query<{ leaf: string }>("SELECT leaf FROM audit_leaves WHERE event_type = 'token.minted'")).rows.map((row) => row.leaf);
      await copy.close();
    }
    const event = leaves.map((leaf) => JSON.parse(leaf)).find((candidate) => candidate.details.tokenId === jti);
    expect(event).toMatchObject({ actor: `cli:${os.userInfo().username}`, details: { subject: 'regulator-data-dept', role: 'regulator' } });
    expect(leaves.some((leaf) => leaf.includes(token.split('.')[2]!))).toBe(false);
  });

  it('backup writes a signed backup; restore refuses it without the platform key and restores it into a new data directory with it', async () => {
    const folder = path.join(t.dataDir, 'cli-backup');
    // On PGlite this directory got a copy of the control plane alone; the snapshots it names are the platform's.
    if (!usingPostgres) fs.cpSync(path.join(t.dataDir, 'domain'), path.join(dataDir, 'domain'), { recursive: true, force: false });
    const backup = pds(['backup', folder], environment);
    expect(backup.stderr).toMatch(/backed up \d+ rows in \d+ tables and \d+ snapshots/);
    expect(backup.code).toBe(0);

    const fresh = path.join(t.dataDir, 'restored');
    const scratch = usingPostgres ? await createScratchDatabase(process.env.DATABASE_URL!, 'pds_restore') : undefined;
    try {
      const target = { DATA_DIR: fresh, DATABASE_URL: scratch?.url ?? '' };
      const withoutKey = pds(['restore', folder], target);
      expect(withoutKey.code).toBe(1);
      expect(withoutKey.stderr).toContain('signed with another platform key');
      // The keys travel apart from backups: the administrator puts them in place.
      fs.cpSync(path.join(dataDir, 'keys'), path.join(fresh, 'keys'), { recursive: true });
      const restored = pds(['restore', folder], target);
      expect(restored.stderr).toContain('restored the backup');
      expect(restored.code).toBe(0);
      expect(pds(['datasets', 'list'], target).stdout).toEqual(pds(['datasets', 'list'], environment).stdout);
    } finally {
      await scratch?.drop();
    }
  });

  it('token refuses an unknown principal with exit 1', () => {
    const result = pds(['token', 'nobody'], environment);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('NOT_FOUND');
  });
});
