import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { residentIdCheckCharacter } from '../../src/catalog/identity-numbers.js';
import { ephemeralKeyRing, generateKeyFile, KeyError, loadKeyRing, rotateDevKey, signWithPlatformKey, type KeyRing } from '../../src/identity/keys.js';
import { startEvents } from '../../src/identity/key-changes.js';
import { recordAuditEvents } from '../../src/audit/audit-log.js';
import { mintToken, verifyToken } from '../../src/identity/tokens.js';
import { createVerificationClient } from '../../src/products/client/verification-client.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'pds-rotation-'));
const settings = { issuer: 'urn:pds:test', audience: 'urn:pds:api', maxAgeSeconds: 3600 };

describe('rotating a dev key', () => {
  it('retires the platform key: the JWKS keeps it, and what it signed still verifies with the JWKS alone', async () => {
    const dir = tempDir();
    const before = await loadKeyRing({ mode: 'dev', dataDir: dir });
    const receipt = signWithPlatformKey(before, 'pds-receipt+jws', { job: 'job_1', output_hash: 'ab' });
    const { retiredKid, newKid } = await rotateDevKey(dir, 'platform');
    const after = await loadKeyRing({ mode: 'dev', dataDir: dir });
    expect(retiredKid).toBe(before.platform.kid);
    expect(after.platform.kid).toBe(newKid);
    expect(after.retiredPlatform.map((key) => key.kid)).toEqual([before.platform.kid]);
    expect(after.jwks().keys.map((key) => key.kid).sort()).toEqual([before.token.kid, before.platform.kid, newKid].sort());
    await expect(compactVerify(receipt, createLocalJWKSet(after.jwks()))).resolves.toBeDefined();
    // New signatures name the new key.
    expect(decodeProtectedHeader(signWithPlatformKey(after, 'pds-receipt+jws', { job: 'job_2' })).kid).toBe(newKid);
    // The retired key stays as private as it was.
    const [retiredFile] = fs.readdirSync(path.join(dir, 'keys', 'retired'));
    expect(fs.statSync(path.join(dir, 'keys', 'retired', retiredFile!)).mode & 0o777).toBe(0o600);
  });

  it('keeps the derived secrets across rotations: they stay rooted in the first platform key', async () => {
    const dir = tempDir();
    const first = await loadKeyRing({ mode: 'dev', dataDir: dir });
    await rotateDevKey(dir, 'platform');
    await rotateDevKey(dir, 'platform');
    const third = await loadKeyRing({ mode: 'dev', dataDir: dir });
    expect(third.retiredPlatform.map((key) => key.kid)).toEqual([first.platform.kid, expect.any(String)]);
    expect(third.derivedSecret('product subject keys')).toBe(first.derivedSecret('product subject keys'));
    // Another deployment's keys derive other secrets.
    expect((await loadKeyRing({ mode: 'dev', dataDir: tempDir() })).derivedSecret('product subject keys')).not.toBe(first.derivedSecret('product subject keys'));
  });

  it('replaces the token key: every token the old key signed is refused', async () => {
    const dir = tempDir();
    const before = await loadKeyRing({ mode: 'dev', dataDir: dir });
    const now = new Date();
    const old = await mintToken(before, settings, 'analyst', { now });
    await rotateDevKey(dir, 'token');
    const after = await loadKeyRing({ mode: 'dev', dataDir: dir });
    await expect(verifyToken(after, settings, old, now)).rejects.toMatchObject({ code: 'TOKEN_UNKNOWN_KEY' });
    await expect(verifyToken(after, settings, await mintToken(after, settings, 'analyst', { now }), now)).resolves.toMatchObject({ principalId: 'analyst' });
    // The platform key is untouched, and the old token key is not kept.
    expect(after.platform.kid).toBe(before.platform.kid);
    expect(after.jwks().keys.map((key) => key.kid)).not.toContain(before.token.kid);
  });
});

describe('production key files', () => {
  it('are written new with mode 0600 and never over an existing file', async () => {
    const file = path.join(tempDir(), 'platform.jwk.json');
    const kid = await generateKeyFile(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid });
    await expect(generateKeyFile(file)).rejects.toThrow(KeyError);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).kid).toBe(kid);
  });

  it('read retired platform keys oldest first, and refuse one that is also the current key', async () => {
    const dir = tempDir();
    const [token, oldest, older, current] = ['token', 'oldest', 'older', 'current'].map((name) => path.join(dir, `${name}.jwk.json`));
    for (const file of [token!, oldest!, older!, current!]) await generateKeyFile(file);
    const ring = await loadKeyRing({ mode: 'production', tokenKeyFile: token!, platformKeyFile: current!, retiredPlatformKeyFiles: [oldest!, older!] });
    const oldestKey = await loadKeyRing({ mode: 'production', tokenKeyFile: token!, platformKeyFile: oldest! });
    expect(ring.retiredPlatform[0]!.kid).toBe(oldestKey.platform.kid);
    expect(ring.derivedSecret('x')).toBe(oldestKey.derivedSecret('x'));
    await expect(loadKeyRing({ mode: 'production', tokenKeyFile: token!, platformKeyFile: current!, retiredPlatformKeyFiles: [current!] })).rejects.toThrow(KeyError);
  });
});

describe('a server restarted after a platform key rotation', () => {
  let t: TestPlatform;
  let dir: string;
  let rotated: KeyRing;
  beforeAll(async () => {
    dir = tempDir();
    t = await createTestPlatform({ demo: true, keys: await loadKeyRing({ mode: 'dev', dataDir: dir }) });
    await rotateDevKey(dir, 'platform');
    rotated = await loadKeyRing({ mode: 'dev', dataDir: dir });
  }, 120_000);
  afterAll(() => t?.close());

  it("still counts a subject's checks made before the rotation against its daily limit, and publishes both keys", async () => {
    const body = '44010619500000777';
    const input = { id_number: body + residentIdCheckCharacter(body), name: '周七' };
    const consumer = await t.tokenFor('consumer-east-sea-bank');
    const verify = (call: TestPlatform['call']) => call('POST', '/v1/products/resident-identity/verify', { token: consumer, json: { input, purpose: 'rotation test', use: 'industry' } });
    const before: string[] = [];
    for (let check = 0; check < 5; check++) {
      const answer = await verify(t.call);
      expect(answer.status).toBe(200);
      before.push(answer.json.jws);
    }
    await t.platform.products.ledger.drain();
    const restarted = await t.anotherApiProcess({ keys: rotated });
    try {
      // The subject's sixth check today is refused by the restarted server: its subject key did not change.
      expect((await verify(restarted.call)).json.error.code).toBe('SUBJECT_QUOTA_EXCEEDED');
      // Answers signed before the rotation verify with the restarted server's JWKS alone.
      const jwks = createLocalJWKSet((await restarted.call('GET', '/.well-known/jwks.json')).json);
      for (const jws of before) await expect(compactVerify(jws, jwks)).resolves.toBeDefined();
      // A checkpoint it signs names the new key.
      const checkpoint = (await restarted.call('GET', '/v1/audit/checkpoint', { token: await t.tokenFor('regulator-data-dept') })).json;
      expect(decodeProtectedHeader(checkpoint.jws).kid).toBe(rotated.platform.kid);
    } finally {
      await restarted.close();
    }
  });

  it("a long-lived client fetches the JWKS again when an answer names the new key, and only after its cooldown", async () => {
    const consumer = await t.tokenFor('consumer-east-sea-bank');
    const restarted = await t.anotherApiProcess({ keys: rotated });
    // One client, whose calls reach the server before the rotation and then the restarted one.
    let server: { app: { request: (url: string, init?: RequestInit) => Response | Promise<Response> } } = t;
    const clientWith = (jwksCooldownMs: number) =>
      createVerificationClient({ baseUrl: 'http://pds.test', token: consumer, jwksCooldownMs, fetch: (url, init) => Promise.resolve(server.app.request(String(url), init)) });
    const body = '44010619500000778';
    const input = { id_number: body + residentIdCheckCharacter(body), name: '吴八' };
    try {
      const patient = clientWith(0);
      const impatient = clientWith(3_600_000);
      for (const client of [patient, impatient]) expect(decodeProtectedHeader((await client.verify('resident-identity', input, 'rotation test')).jws).kid).toBe(t.platform.keys.platform.kid);
      server = restarted;
      const answer = await patient.verify('resident-identity', input, 'rotation test');
      expect(decodeProtectedHeader(answer.jws).kid).toBe(rotated.platform.kid);
      // Within its cooldown a client does not fetch the keys again, and says why it cannot check the answer.
      await expect(impatient.verify('resident-identity', input, 'rotation test')).rejects.toMatchObject({ code: 'UNKNOWN_SIGNING_KEY' });
    } finally {
      await restarted.close();
    }
  });

  it('records each key change as an event at the next start: a rotation, a replacement that dropped the old key (with a warning), a new token key', async () => {
    const { db } = t.platform;
    const start = async (keys: KeyRing) => {
      const { events, warnings } = await startEvents(db, keys, 'dev');
      await recordAuditEvents(db, events, t.platform.clock());
      return { types: events.map((event) => event.type), events, warnings };
    };
    await start(t.platform.keys);
    const rotation = await start(rotated);
    expect(rotation).toMatchObject({ types: ['platform.key-rotated', 'platform.started'], warnings: [] });
    expect(rotation.events[0]!.details).toEqual({ from: t.platform.keys.platform.kid, to: rotated.platform.kid });

    const elsewhere = await ephemeralKeyRing();
    const replaced = await start(elsewhere);
    expect(replaced.types).toEqual(['platform.key-replaced', 'token.key-rotated', 'platform.started']);
    expect(replaced.warnings).toEqual([expect.stringContaining(`previous one (${rotated.platform.kid}) is not among the retired keys`)]);
    expect(await start(elsewhere)).toMatchObject({ types: ['platform.started'], warnings: [] });
  });
});
