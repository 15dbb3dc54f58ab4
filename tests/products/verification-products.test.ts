import { DuckDBInstance } from '@duckdb/node-api';
import { compactVerify, createLocalJWKSet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBfvContext, plaintextOf, coefficientsOf, toBase64, fromBase64, type BfvContext } from '../../src/products/client/bfv.js';
import { claimChunks, claimDigest } from '../../src/products/client/claim-encoding.js';
import { createCkksContext } from '../../src/products/client/ckks.js';
import { createVerificationClient, type VerificationClient } from '../../src/products/client/verification-client.js';
import { loadSeal } from '../../src/products/seal-loader.js';
import { principals } from '../../src/db/schema.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let consumer: string;
let client: VerificationClient;
let bfv: BfvContext;
const residents: Array<{ id: string; name: string }> = [];
const firms: Array<{ uscc: string; name: string; rep: string }> = [];
let onTimeFirm: string;
let lateFirm: string;

/** Test oracle: reads the snapshot directly, as only a test may. */
async function snapshotRows(dataset: string, sql: string): Promise<unknown[][]> {
  const version = (await t.platform.analysisCatalogue()).latestVersions.get(dataset)!;
  const instance = await DuckDBInstance.create(':memory:');
  try {
    const connection = await instance.connect();
    await connection.run(`ATTACH '${t.platform.store.snapshotPath(dataset, version)}' AS s (READ_ONLY)`);
    return (await connection.runAndReadAll(sql.replaceAll('$table', 's.data'))).getRows();
  } finally {
    instance.closeSync();
  }
}

beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
  consumer = await t.tokenFor('consumer-east-sea-bank');
  client = createVerificationClient({ baseUrl: 'http://pds.test', token: consumer, seal: await loadSeal(), fetch: (url, init) => Promise.resolve(t.app.request(String(url), init)) });
  bfv = createBfvContext(await loadSeal());
  for (const [id, name] of await snapshotRows('residents', 'SELECT resident_id, name FROM $table ORDER BY resident_id LIMIT 14')) residents.push({ id: String(id), name: String(name) });
  for (const [uscc, name, rep] of await snapshotRows('enterprises', 'SELECT uscc, name, legal_rep_name FROM $table ORDER BY uscc LIMIT 12')) firms.push({ uscc: String(uscc), name: String(name), rep: String(rep) });
  const payment = await snapshotRows(
    'power_readings',
    `SELECT uscc, bool_and(paid_on_time) AND count(*) >= 12 AS ok FROM $table
     WHERE customer_type = 'enterprise' AND month > (SELECT max(month) FROM $table) - INTERVAL 12 MONTH GROUP BY uscc ORDER BY uscc`,
  );
  onTimeFirm = String(payment.find((row) => row[1] === true)![0]);
  lateFirm = String(payment.find((row) => row[1] === false)![0]);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const verify = (product: string, input: Record<string, string>, token = consumer) =>
  t.call('POST', `/v1/products/${product}/verify`, { token, json: { input, purpose: '开户实名核验 (test)', use: 'industry' } });

describe('published demo products', () => {
  it('lists the three demo products with input schema, example, price and terms', async () => {
    const response = await t.call('GET', '/v1/products', { token: consumer });
    expect(response.status).toBe(200);
    const ids = response.json.products.map((product: { id: string }) => product.id);
    expect(ids).toEqual(['enterprise-identity', 'enterprise-power-payment', 'resident-identity']);
    const resident = response.json.products.find((product: { id: string }) => product.id === 'resident-identity');
    expect(resident.inputSchema.required).toEqual(['id_number', 'name']);
    expect(resident.example).toHaveProperty('id_number');
    expect(resident.price.industryFen).toBe(30);
    expect(resident.modes).toEqual(['plain', 'encrypted']);
    expect(resident.terms.length).toBeGreaterThan(10);
  });
});

describe('plain verification', () => {
  it('answers true for a correct name and ID number', async () => {
    const response = await verify('resident-identity', { id_number: residents[0]!.id, name: residents[0]!.name });
    expect(response.status).toBe(200);
    expect(response.json.match).toBe(true);
  });

  it('answers false for a wrong name', async () => {
    const response = await verify('resident-identity', { id_number: residents[1]!.id, name: `${residents[1]!.name}明` });
    expect(response.json.match).toBe(false);
  });

  it('answers false for an ID number that is not registered', async () => {
    const response = await verify('resident-identity', { id_number: '310115190001019997', name: residents[2]!.name });
    expect(response.json.match).toBe(false);
  });

  it('refuses a mistyped ID number (wrong check character) before any lookup, and meters nothing', async () => {
    await t.platform.products.ledger.drain();
    const before = (await t.call('GET', '/v1/usage', { token: consumer })).json.totals.calls;
    const mistyped = `${residents[3]!.id.slice(0, 17)}${residents[3]!.id[17] === '1' ? '2' : '1'}`;
    const response = await verify('resident-identity', { id_number: mistyped, name: residents[3]!.name });
    expect(response.status).toBe(400);
    expect(response.json.error.details).toEqual([{ path: 'input.id_number', problem: 'fails its GB 11643 check character' }]);
    await t.platform.products.ledger.drain();
    expect((await t.call('GET', '/v1/usage', { token: consumer })).json.totals.calls).toBe(before);
  });

  it('refuses an input of the wrong form naming the field and the form it lacks, not the value', async () => {
    const response = await verify('resident-identity', { id_number: '12345', name: residents[3]!.name });
    expect(response.status).toBe(400);
    expect(response.json.error.details).toEqual([{ path: 'input.id_number', problem: 'does not have the required form' }]);
  });

  it('reads a lower-case x check character as X', async () => {
    const [row] = await snapshotRows('residents', "SELECT resident_id, name FROM $table WHERE resident_id LIKE '%X' LIMIT 1");
    const response = await verify('resident-identity', { id_number: String(row![0]).toLowerCase(), name: String(row![1]) });
    expect(response.json.match).toBe(true);
  });

  it('ignores leading and trailing spaces and Unicode composition in claims', async () => {
    const response = await verify('resident-identity', { id_number: residents[3]!.id, name: `  ${residents[3]!.name.normalize('NFD')} ` });
    expect(response.json.match).toBe(true);
  });

  it('answers each kind of wrong enterprise claim with false and the right one with true', async () => {
    const firm = firms[0]!;
    expect((await verify('enterprise-identity', { credit_code: firm.uscc, name: firm.name, legal_representative: firm.rep })).json.match).toBe(true);
    expect((await verify('enterprise-identity', { credit_code: firm.uscc, name: `${firm.name}分公司`, legal_representative: firm.rep })).json.match).toBe(false);
    expect((await verify('enterprise-identity', { credit_code: firm.uscc, name: firm.name, legal_representative: firms[1]!.rep === firm.rep ? '某某' : firms[1]!.rep })).json.match).toBe(false);
    expect((await verify('enterprise-identity', { credit_code: firms[2]!.uscc, name: firm.name, legal_representative: firm.rep })).json.match).toBe(false);
  });

  it('answers the power-payment condition from the last twelve months of data', async () => {
    expect((await verify('enterprise-power-payment', { credit_code: onTimeFirm })).json.match).toBe(true);
    expect((await verify('enterprise-power-payment', { credit_code: lateFirm })).json.match).toBe(false);
  });

  it('signs an answer that verifies with the JWKS alone and names its audit leaf', async () => {
    const response = await verify('resident-identity', { id_number: residents[4]!.id, name: residents[4]!.name });
    const jwks = createLocalJWKSet((await t.call('GET', '/.well-known/jwks.json')).json);
    const { payload, protectedHeader } = await compactVerify(response.json.jws, jwks);
    const claims = JSON.parse(new TextDecoder().decode(payload));
    expect(protectedHeader.typ).toBe('pds-answer+jws');
    expect(claims).toMatchObject({ product: 'resident-identity', mode: 'plain', match: true, audit_leaf_index: response.json.auditLeafIndex });
    const regulator = await t.tokenFor('regulator-data-dept');
    const entries = await t.call('GET', `/v1/audit/entries?start=${claims.audit_leaf_index}&end=${claims.audit_leaf_index + 1}`, { token: regulator });
    const event = entries.json.entries[0].event;
    expect(event).toMatchObject({ type: 'product.called', details: { product: 'resident-identity', match: true, request_hash: claims.request_hash } });
    expect(entries.json.entries[0].leaf).not.toContain(residents[4]!.id);
  });

  it('refuses an input of the wrong form without echoing it', async () => {
    const response = await verify('resident-identity', { id_number: 'not-an-id-12345', name: '王伟' });
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe('VALIDATION_FAILED');
    expect(response.text).not.toContain('not-an-id-12345');
  });

  it('refuses inputs the product does not declare', async () => {
    const response = await verify('resident-identity', { id_number: residents[0]!.id, name: 'x', birth_date: '1990-01-01' });
    expect(response.status).toBe(400);
  });

  it('lets the client library check the signature of a plain answer', async () => {
    const answer = await client.verify('enterprise-identity', { credit_code: firms[3]!.uscc, name: firms[3]!.name, legal_representative: firms[3]!.rep }, 'counterparty check');
    expect(answer.match).toBe(true);
    expect(answer.payload.audit_leaf_index).toBe(answer.auditLeafIndex);
  });
});

describe('encrypted verification', () => {
  it('answers true for a correct claim the server never sees', async () => {
    const answer = await client.verifyEncrypted('resident-identity', { id_number: residents[5]!.id, name: residents[5]!.name }, 'encrypted check');
    expect(answer.match).toBe(true);
    expect(answer.payload.mode).toBe('encrypted');
  });

  it('answers false for a wrong name', async () => {
    const answer = await client.verifyEncrypted('resident-identity', { id_number: residents[6]!.id, name: residents[7]!.name }, 'encrypted check');
    expect(answer.match).toBe(false);
  });

  it('answers false for a subject that is not registered', async () => {
    const answer = await client.verifyEncrypted('resident-identity', { id_number: '310115190001019997', name: residents[6]!.name }, 'encrypted check');
    expect(answer.match).toBe(false);
  });

  it('answers each kind of wrong enterprise claim with false and the right one with true', async () => {
    const firm = firms[4]!;
    const check = (name: string, rep: string) => client.verifyEncrypted('enterprise-identity', { credit_code: firm.uscc, name, legal_representative: rep }, 'encrypted check');
    expect((await check(firm.name, firm.rep)).match).toBe(true);
    expect((await check(`${firm.name}分公司`, firm.rep)).match).toBe(false);
    expect((await check(firm.name, `${firm.rep}某`)).match).toBe(false);
  });

  it('refuses encrypted mode for a product that has no claims', async () => {
    const response = await t.call('GET', '/v1/products/enterprise-power-payment/he-params', { token: consumer });
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe('ENCRYPTED_MODE_UNAVAILABLE');
  });
});

/** Builds an encrypted request by hand, as a consumer trying to learn more than one bit would. */
async function craftedRequest(coefficients: Map<number, bigint>) {
  const { seal } = bfv;
  const keys = seal.KeyGenerator(bfv.context);
  const secretKey = keys.secretKey();
  const encryptor = seal.Encryptor(bfv.context, keys.createPublicKey(), secretKey);
  const ciphertext = encryptor.encryptSymmetricSerializable(plaintextOf(bfv, coefficients));
  return {
    body: {
      ciphertext: toBase64(ciphertext.saveArray(seal.ComprModeType.none)),
      publicKey: toBase64(keys.createPublicKeySerializable().saveArray(seal.ComprModeType.none)),
    },
    decrypt(answer: string, count: number): bigint[] {
      const cipher = seal.CipherText();
      cipher.loadArray(bfv.context, fromBase64(answer));
      return coefficientsOf(bfv, seal.Decryptor(bfv.context, secretKey).decrypt(cipher)!, count);
    },
  };
}

const encryptedCall = (subject: Record<string, string>, body: Record<string, string>) =>
  t.call('POST', '/v1/products/resident-identity/verify-encrypted', { token: consumer, json: { subject, ...body, purpose: 'crafted', use: 'industry' } });

describe('registered public keys', () => {
  const inlineClient = () => createVerificationClient({ baseUrl: 'http://pds.test', token: consumer, seal: bfv.seal, registerKeys: false, fetch: (url, init) => Promise.resolve(t.app.request(String(url), init)) });
  const freshKey = () => toBase64(bfv.seal.KeyGenerator(bfv.context).createPublicKeySerializable().saveArray(bfv.seal.ComprModeType.none));
  const registerKey = (publicKey: string, token = consumer, scheme = 'bfv') => t.call('POST', '/v1/he-keys', { token, json: { scheme, publicKey } });

  it('serve encrypted calls named by id, with requests about half the size of those that carry the key', async () => {
    const person = residents[12]!;
    const withKey = await inlineClient().verifyEncrypted('resident-identity', { id_number: person.id, name: person.name }, 'encrypted check');
    const byId = await client.verifyEncrypted('resident-identity', { id_number: person.id, name: person.name }, 'encrypted check');
    const wrong = await client.verifyEncrypted('resident-identity', { id_number: person.id, name: `${person.name}甲` }, 'encrypted check');
    expect([withKey.match, byId.match, wrong.match]).toEqual([true, true, false]);
    expect(byId.requestBytes).toBeLessThan(withKey.requestBytes * 0.6);
    const keys = (await t.call('GET', '/v1/he-keys', { token: consumer })).json.keys;
    expect(keys.filter((key: { scheme: string }) => key.scheme === 'bfv')).toHaveLength(1);
  });

  it('answer a second registration of the same key with the first', async () => {
    const publicKey = freshKey();
    const first = await registerKey(publicKey);
    const again = await registerKey(publicKey);
    expect([first.status, again.status]).toEqual([201, 200]);
    expect(again.json.id).toBe(first.json.id);
  });

  it('are not found for another consumer', async () => {
    await t.platform.db.insert(principals).values({ id: 'consumer-other-bank', role: 'consumer', displayName: '另一家银行' }).onConflictDoNothing();
    const other = await t.tokenFor('consumer-other-bank');
    const { json: key } = await registerKey(freshKey());
    const request = await craftedRequest(new Map());
    const response = await t.call('POST', '/v1/products/resident-identity/verify-encrypted', { token: other, json: { subject: { id_number: residents[2]!.id }, ciphertext: request.body.ciphertext, keyId: key.id, purpose: 'crafted', use: 'industry' } });
    expect(response.status).toBe(404);
    expect((await t.call('GET', '/v1/he-keys', { token: other })).json.keys).toEqual([]);
  });

  it('keep the newest five of a consumer\'s keys per scheme; a call naming a forgotten one is not found', async () => {
    await t.platform.db.insert(principals).values({ id: 'consumer-many-keys', role: 'consumer', displayName: '多密钥银行' }).onConflictDoNothing();
    const token = await t.tokenFor('consumer-many-keys');
    const ids: string[] = [];
    for (let round = 0; round < 6; round++) {
      ids.push((await registerKey(freshKey(), token)).json.id);
      t.clock.now = new Date(t.clock.now.getTime() + 1000); // registered one after another, as clients do
    }
    const kept = (await t.call('GET', '/v1/he-keys', { token })).json.keys.map((key: { id: string }) => key.id);
    expect(kept.sort()).toEqual(ids.slice(1).sort());
    const request = await craftedRequest(new Map());
    const response = await t.call('POST', '/v1/products/resident-identity/verify-encrypted', { token, json: { subject: { id_number: residents[2]!.id }, ciphertext: request.body.ciphertext, keyId: ids[0], purpose: 'crafted', use: 'industry' } });
    expect(response.status).toBe(404);
  });

  it('do not serve, from another API process that had it cached, a key forgotten since', async () => {
    await t.platform.db.insert(principals).values({ id: 'consumer-keys-elsewhere', role: 'consumer', displayName: '多进程银行' }).onConflictDoNothing();
    const token = await t.tokenFor('consumer-keys-elsewhere');
    const first = (await registerKey(freshKey(), token)).json.id;
    const request = await craftedRequest(new Map());
    const call = (via: typeof t.call) => via('POST', '/v1/products/resident-identity/verify-encrypted', { token, json: { subject: { id_number: residents[3]!.id }, ciphertext: request.body.ciphertext, keyId: first, purpose: 'crafted', use: 'industry' } });
    const elsewhere = await t.anotherApiProcess();
    try {
      expect((await call(elsewhere.call)).status).toBe(200);
      for (let round = 0; round < 5; round++) {
        t.clock.now = new Date(t.clock.now.getTime() + 1000);
        await registerKey(freshKey(), token);
      }
      expect((await call(elsewhere.call)).status).toBe(404);
    } finally {
      await elsewhere.close();
    }
  });

  it('let the client library register its key again when the server has forgotten it, and answer the call', async () => {
    await t.platform.db.insert(principals).values({ id: 'consumer-rotating', role: 'consumer', displayName: '轮换银行' }).onConflictDoNothing();
    const token = await t.tokenFor('consumer-rotating');
    const own = createVerificationClient({ baseUrl: 'http://pds.test', token, seal: bfv.seal, fetch: (url, init) => Promise.resolve(t.app.request(String(url), init)) });
    const person = residents[13]!;
    expect((await own.verifyEncrypted('resident-identity', { id_number: person.id, name: person.name }, 'encrypted check')).match).toBe(true);
    const [first] = (await t.call('GET', '/v1/he-keys', { token })).json.keys;
    // Five newer registrations (other clients of the same consumer) push the first key out.
    for (let round = 0; round < 5; round++) {
      t.clock.now = new Date(t.clock.now.getTime() + 1000);
      await registerKey(freshKey(), token);
    }
    expect((await t.call('GET', '/v1/he-keys', { token })).json.keys.map((key: { id: string }) => key.id)).not.toContain(first.id);
    t.clock.now = new Date(t.clock.now.getTime() + 1000);
    expect((await own.verifyEncrypted('resident-identity', { id_number: person.id, name: person.name }, 'encrypted check')).match).toBe(true);
    const keys = (await t.call('GET', '/v1/he-keys', { token })).json.keys;
    // The same key, registered again under a new id.
    expect(keys.filter((key: { sha256: string }) => key.sha256 === first.sha256)).toHaveLength(1);
    await own.close();
  });

  it('refuse base64 text of an impossible length, as a key or a ciphertext, as VALIDATION_FAILED and store nothing', async () => {
    const before = (await t.call('GET', '/v1/he-keys', { token: consumer })).json.keys.length;
    const key = await registerKey('x');
    expect([key.status, key.json.error.code, key.json.error.details[0].path]).toEqual([400, 'VALIDATION_FAILED', 'publicKey']);
    const call = await encryptedCall({ id_number: residents[2]!.id }, { ciphertext: 'abcde', publicKey: freshKey() });
    expect([call.status, call.json.error.code, call.json.error.details[0].path]).toEqual([400, 'VALIDATION_FAILED', 'ciphertext']);
    expect((await t.call('GET', '/v1/he-keys', { token: consumer })).json.keys).toHaveLength(before);
  });

  it('refuse an unseeded key at registration and store nothing', async () => {
    const before = (await t.call('GET', '/v1/he-keys', { token: consumer })).json.keys.length;
    const unseeded = toBase64(bfv.seal.KeyGenerator(bfv.context).createPublicKey().saveArray(bfv.seal.ComprModeType.none));
    const response = await registerKey(unseeded);
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe('CIPHERTEXT_REJECTED');
    expect((await t.call('GET', '/v1/he-keys', { token: consumer })).json.keys).toHaveLength(before);
  });

  it('refuse a key registered under the wrong scheme, a CKKS key named by a BFV call, and a call that names a key twice', async () => {
    expect((await registerKey(freshKey(), consumer, 'ckks')).json.error.code).toBe('CIPHERTEXT_REJECTED');
    const ckks = createCkksContext(bfv.seal);
    const ckksKey = toBase64(ckks.seal.KeyGenerator(ckks.context).createPublicKeySerializable().saveArray(ckks.seal.ComprModeType.none));
    const { json: registered } = await registerKey(ckksKey, consumer, 'ckks');
    const request = await craftedRequest(new Map());
    const wrongScheme = await encryptedCall({ id_number: residents[2]!.id }, { ciphertext: request.body.ciphertext, keyId: registered.id });
    expect(wrongScheme.status).toBe(400);
    expect(wrongScheme.json.error.details[0]).toEqual({ path: 'keyId', problem: 'is a ckks key' });
    const both = await encryptedCall({ id_number: residents[2]!.id }, { ...request.body, keyId: registered.id });
    expect(both.status).toBe(400);
    expect(both.json.error.details[0].problem).toBe('send exactly one of publicKey and keyId');
  });
});

describe('what a consumer learns from an encrypted answer', () => {
  it('learns one bit: guesses packed into other coefficients neither help nor change the answer', async () => {
    const person = residents[8]!;
    const right = claimChunks(await claimDigest('resident-identity', 'name', person.name));
    const wrong = claimChunks(await claimDigest('resident-identity', 'name', `${person.name}甲`));
    // Right claim in place, wrong guesses elsewhere: still a match (the extra coefficients are ignored).
    const packedAround = await craftedRequest(new Map([[0, right[0]!], [1, right[1]!], [10, wrong[0]!], [11, wrong[1]!], [4000, 12345n]]));
    const first = await encryptedCall({ id_number: person.id }, packedAround.body);
    expect(packedAround.decrypt(first.json.answer, 1)).toEqual([0n]);
    // Wrong claim in place, the right value packed elsewhere: no match, and nothing tells where the right one was.
    const packedRight = await craftedRequest(new Map([[0, wrong[0]!], [1, wrong[1]!], [10, right[0]!], [11, right[1]!]]));
    const second = await encryptedCall({ id_number: person.id }, packedRight.body);
    const [value, ...others] = packedRight.decrypt(second.json.answer, 64);
    expect(value).not.toBe(0n);
    // Every other coefficient is masked with fresh randomness: none is zero where a claim chunk matched.
    expect(others.filter((coefficient) => coefficient === 0n)).toEqual([]);
  });

  it('gives fresh, unrelated masks to two identical requests', async () => {
    const person = residents[9]!;
    const right = claimChunks(await claimDigest('resident-identity', 'name', person.name));
    const request = await craftedRequest(new Map([[0, right[0]!], [1, right[1]!]]));
    const a = request.decrypt((await encryptedCall({ id_number: person.id }, request.body)).json.answer, 8);
    const b = request.decrypt((await encryptedCall({ id_number: person.id }, request.body)).json.answer, 8);
    expect(a[0]).toBe(0n);
    expect(b[0]).toBe(0n);
    expect(a.slice(1)).not.toEqual(b.slice(1));
  });
});

describe('ciphertexts checked before evaluation', () => {
  it('refuses a ciphertext made under other parameters', async () => {
    const seal = await loadSeal();
    const parms = seal.EncryptionParameters(seal.SchemeType.bfv);
    parms.setPolyModulusDegree(4096);
    parms.setCoeffModulus(seal.CoeffModulus.BFVDefault(4096, seal.SecurityLevel.tc128));
    parms.setPlainModulus(seal.PlainModulus.Batching(4096, 20));
    const context = seal.Context(parms, true, seal.SecurityLevel.tc128);
    const keys = seal.KeyGenerator(context);
    const encryptor = seal.Encryptor(context, keys.createPublicKey(), keys.secretKey());
    const ciphertext = encryptor.encryptSymmetricSerializable(seal.PlainText({ coeffCount: 4096 }));
    const response = await encryptedCall(
      { id_number: residents[10]!.id },
      { ciphertext: toBase64(ciphertext.saveArray(seal.ComprModeType.none)), publicKey: toBase64(keys.createPublicKeySerializable().saveArray(seal.ComprModeType.none)) },
    );
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe('CIPHERTEXT_REJECTED');
  });

  it('refuses a compressed or unseeded ciphertext, whose random part the consumer could have chosen', async () => {
    const { seal } = bfv;
    const keys = seal.KeyGenerator(bfv.context);
    const encryptor = seal.Encryptor(bfv.context, keys.createPublicKey(), keys.secretKey());
    const publicKey = toBase64(keys.createPublicKeySerializable().saveArray(seal.ComprModeType.none));
    const unseeded = toBase64(encryptor.encryptSymmetric(plaintextOf(bfv, []))!.saveArray(seal.ComprModeType.none));
    const compressed = toBase64(encryptor.encryptSymmetricSerializable(plaintextOf(bfv, [])).saveArray(seal.ComprModeType.zstd));
    for (const ciphertext of [unseeded, compressed]) {
      const response = await encryptedCall({ id_number: residents[10]!.id }, { ciphertext, publicKey });
      expect(response.json.error.code).toBe('CIPHERTEXT_REJECTED');
    }
  });

  it('refuses an oversized request before reading it', async () => {
    const response = await encryptedCall({ id_number: residents[10]!.id }, { ciphertext: 'A'.repeat(3 * 1024 * 1024), publicKey: 'AAAA' });
    expect(response.status).toBe(413);
    expect(response.json.error.code).toBe('BODY_TOO_LARGE');
  });

  it('refuses a ciphertext whose header was tampered with, without a SEAL error reaching the caller', async () => {
    const request = await craftedRequest(new Map());
    const bytes = fromBase64(request.body.ciphertext);
    bytes[20] = bytes[20]! ^ 0xff; // inside the parms_id
    const response = await encryptedCall({ id_number: residents[10]!.id }, { ...request.body, ciphertext: toBase64(bytes) });
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe('CIPHERTEXT_REJECTED');
  });
});

describe('encrypted calls evaluated off the API thread', () => {
  /** A true claim about a resident, encrypted as the client library would. */
  async function trueClaim(person: { id: string; name: string }) {
    const chunks = claimChunks(await claimDigest('resident-identity', 'name', person.name));
    return craftedRequest(new Map(chunks.map((chunk, index) => [index, chunk])));
  }

  it('keeps answering plain calls while an encrypted verification is evaluated', async () => {
    const request = await trueClaim(residents[9]!);
    let settled = false;
    const encrypted = encryptedCall({ id_number: residents[9]!.id }, request.body).finally(() => (settled = true));
    // On the API thread the evaluation would hold every other call until it finished; here they go on.
    let answeredMeanwhile = 0;
    for (let round = 0; round < 20 && !settled; round++) {
      const plain = await verify('resident-identity', { id_number: residents[round % 8]!.id, name: residents[round % 8]!.name });
      expect(plain.status).toBe(200);
      if (!settled) answeredMeanwhile++;
    }
    const answer = await encrypted;
    expect(answer.status).toBe(200);
    expect(request.decrypt(answer.json.answer, 1)).toEqual([0n]);
    expect(answeredMeanwhile).toBeGreaterThanOrEqual(2);
  });

  it('fails a call whose evaluation thread stops, with no answer, and starts a new thread for the next', async () => {
    const evaluator = t.platform.products.sealEvaluator;
    const first = await trueClaim(residents[10]!);
    const lost = encryptedCall({ id_number: residents[10]!.id }, first.body);
    while (evaluator.inFlight() === 0) await new Promise((resolve) => setImmediate(resolve));
    await evaluator.close();
    const failed = await lost;
    expect(failed.status).toBe(500);
    expect(failed.json.answer).toBeUndefined();
    expect(failed.json.error.code).toBe('INTERNAL');

    const second = await trueClaim(residents[11]!);
    const answer = await encryptedCall({ id_number: residents[11]!.id }, second.body);
    expect(answer.status).toBe(200);
    expect(second.decrypt(answer.json.answer, 1)).toEqual([0n]);
  });
});

describe('calls retried under an Idempotency-Key', () => {
  const callsSoFar = async () => {
    await t.platform.products.ledger.drain();
    return (await t.call('GET', '/v1/usage', { token: consumer })).json.totals.calls as number;
  };
  const keyed = (key: string, input: Record<string, string>) =>
    t.call('POST', '/v1/products/resident-identity/verify', { token: consumer, headers: { 'idempotency-key': key }, json: { input, purpose: 'retry test', use: 'industry' } });

  it('a retried call gets the first signed answer again and is metered once', async () => {
    const person = residents[2]!;
    const before = await callsSoFar();
    const first = await keyed('retry-plain-1', { id_number: person.id, name: person.name });
    const retry = await keyed('retry-plain-1', { id_number: person.id, name: person.name });
    expect([first.status, retry.status]).toEqual([200, 200]);
    expect(retry.json).toEqual(first.json);
    expect([first.headers.get('idempotent-replayed'), retry.headers.get('idempotent-replayed')]).toEqual([null, 'true']);
    expect(await callsSoFar()).toBe(before + 1);
  });

  it('retries sent while the first call runs all wait for its one answer', async () => {
    const person = residents[3]!;
    const before = await callsSoFar();
    const answers = await Promise.all(Array.from({ length: 5 }, () => keyed('retry-plain-2', { id_number: person.id, name: person.name })));
    expect(new Set(answers.map((answer) => answer.json.jws)).size).toBe(1);
    expect(await callsSoFar()).toBe(before + 1);
  });

  it('the same key with another input is refused as IDEMPOTENCY_KEY_REUSED and not metered', async () => {
    await keyed('retry-plain-3', { id_number: residents[4]!.id, name: residents[4]!.name });
    const before = await callsSoFar();
    const other = await keyed('retry-plain-3', { id_number: residents[4]!.id, name: `${residents[4]!.name}明` });
    expect(other.status).toBe(422);
    expect(other.json.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await callsSoFar()).toBe(before);
  });

  it('the client library resends a call whose answer was lost, and the consumer is metered once', async () => {
    const person = residents[6]!;
    let lost = 0;
    const flaky = createVerificationClient({
      baseUrl: 'http://pds.test',
      token: consumer,
      fetch: async (url, init) => {
        const answer = await t.app.request(String(url), init);
        // The first call reaches the server and is answered, but the answer never arrives.
        if (init?.method === 'POST' && lost++ === 0) throw new TypeError('fetch failed: connection reset');
        return answer;
      },
    });
    const before = await callsSoFar();
    const answer = await flaky.verify('resident-identity', { id_number: person.id, name: person.name }, 'retry test');
    expect(answer.match).toBe(true);
    expect(lost).toBe(2);
    expect(await callsSoFar()).toBe(before + 1);
  });

  it('the client library sends a call again when a gateway answers 502, and the retry reaching another API process is answered once', async () => {
    const person = residents[9]!;
    const elsewhere = await t.anotherApiProcess();
    const statuses: number[] = [];
    let posts = 0;
    const behindGateway = createVerificationClient({
      baseUrl: 'http://pds.test',
      token: consumer,
      fetch: async (url, init) => {
        if (init?.method !== 'POST') return t.app.request(String(url), init);
        // The first call reaches this process and is answered, but the gateway loses the answer and says 502;
        // the retry is routed to the other process.
        const answer = await (posts++ === 0 ? t.app : elsewhere.app).request(String(url), init);
        statuses.push(answer.status);
        return posts === 1 ? new Response('bad gateway', { status: 502 }) : answer;
      },
    });
    try {
      const before = await callsSoFar();
      const answer = await behindGateway.verify('resident-identity', { id_number: person.id, name: person.name }, 'retry test');
      expect(answer.match).toBe(true);
      expect(statuses).toEqual([200, 200]);
      await elsewhere.platform.products.ledger.drain();
      expect(await callsSoFar()).toBe(before + 1);
    } finally {
      await elsewhere.close();
    }
  });

  it('an encrypted call retried with its key gets the same ciphertext back, not a second evaluation', async () => {
    const person = residents[5]!;
    const request = await craftedRequest(new Map(claimChunks(await claimDigest('resident-identity', 'name', person.name)).map((chunk, index) => [index, chunk])));
    const send = () =>
      t.call('POST', '/v1/products/resident-identity/verify-encrypted', {
        token: consumer,
        headers: { 'idempotency-key': 'retry-encrypted-1' },
        json: { subject: { id_number: person.id }, ...request.body, purpose: 'retry test', use: 'industry' },
      });
    const first = await send();
    const retry = await send();
    expect(first.status).toBe(200);
    // A fresh evaluation masks with fresh randomness, so identical bytes mean the first answer was kept.
    expect(retry.json.answer).toBe(first.json.answer);
    expect(request.decrypt(retry.json.answer, 1)).toEqual([0n]);
  });

  it('an encrypted call retried in another API process gets the same ciphertext and signed answer back', async () => {
    const person = residents[8]!;
    const request = await craftedRequest(new Map(claimChunks(await claimDigest('resident-identity', 'name', person.name)).map((chunk, index) => [index, chunk])));
    const send = (via: typeof t.call) =>
      via('POST', '/v1/products/resident-identity/verify-encrypted', {
        token: consumer,
        headers: { 'idempotency-key': 'retry-encrypted-elsewhere' },
        json: { subject: { id_number: person.id }, ...request.body, purpose: 'retry test', use: 'industry' },
      });
    const before = await callsSoFar();
    const first = await send(t.call);
    const elsewhere = await t.anotherApiProcess();
    try {
      const retry = await send(elsewhere.call);
      expect([first.status, retry.status]).toEqual([200, 200]);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.json).toEqual(first.json);
      expect(request.decrypt(retry.json.answer, 1)).toEqual([0n]);
      await elsewhere.platform.products.ledger.drain();
    } finally {
      await elsewhere.close();
    }
    expect(await callsSoFar()).toBe(before + 1);
  });
});

describe('subject access (PIPL arts. 44–45)', () => {
  it('lists every check of a person, by any consumer, with product, purpose and use, and no answer', async () => {
    const rows = (await snapshotRows('residents', 'SELECT resident_id, name FROM $table ORDER BY resident_id LIMIT 2 OFFSET 20')).map((row) => row.map(String));
    const [id, name] = rows[0]!;
    const [otherId, otherName] = rows[1]!;
    await t.platform.db.insert(principals).values({ id: 'consumer-sar-app', role: 'consumer', displayName: '某出行应用 · 接口调用方' });
    const app = await t.tokenFor('consumer-sar-app');
    expect((await verify('resident-identity', { id_number: id!, name: name! })).json.match).toBe(true);
    expect((await verify('resident-identity', { id_number: id!, name: `${name}甲` }, app)).json.match).toBe(false);
    await verify('resident-identity', { id_number: otherId!, name: otherName! });

    const admin = await t.tokenFor('admin-data-centre');
    const answer = await t.call('POST', '/v1/subject-access', { token: admin, json: { product: 'resident-identity', input: { id_number: id! }, reference: 'SAR-2026-001' } });
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ reference: 'SAR-2026-001', total: 2 });
    expect(answer.json.checks.map((check: { consumer: string }) => check.consumer).sort()).toEqual(['consumer-east-sea-bank', 'consumer-sar-app']);
    expect(answer.json.checks[0]).toMatchObject({ product: 'resident-identity', productTitleZh: '居民姓名与身份证号一致性核验', purpose: '开户实名核验 (test)', use: 'industry', mode: 'plain' });
    expect(JSON.stringify(answer.json)).not.toContain('"match"');

    // The request is on the record for regulators, by its reference — never the identifier or its hash.
    const regulator = await t.tokenFor('regulator-data-dept');
    const [leaf] = (await t.call('GET', `/v1/audit/entries?start=${answer.json.auditIndex}&end=${answer.json.auditIndex + 1}`, { token: regulator })).json.entries;
    expect(leaf.event).toMatchObject({ type: 'subject.access-answered', actor: 'admin-data-centre', details: { reference: 'SAR-2026-001', product: 'resident-identity', checks: 2 } });
    const subjectHash = t.platform.products.subjectOf((await t.platform.products.loadProduct('resident-identity'))!, { id_number: id! });
    expect(leaf.leaf).not.toContain(id!);
    expect(leaf.leaf).not.toContain(subjectHash);
  });

  it('is answered by the data centre alone, and refuses an identifier of the wrong form without repeating it', async () => {
    const json = { product: 'resident-identity', input: { id_number: residents[0]!.id }, reference: 'SAR-2026-002' };
    for (const principal of ['consumer-east-sea-bank', 'regulator-data-dept', 'analyst-harbour-credit']) expect((await t.call('POST', '/v1/subject-access', { token: await t.tokenFor(principal), json })).status).toBe(403);
    const admin = await t.tokenFor('admin-data-centre');
    const malformed = await t.call('POST', '/v1/subject-access', { token: admin, json: { ...json, input: { id_number: '3101151990' } } });
    expect(malformed.json.error).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ path: 'input.id_number', problem: 'does not have the required form' }] });
    expect(JSON.stringify(malformed.json)).not.toContain('3101151990');
    expect((await t.call('POST', '/v1/subject-access', { token: admin, json: { ...json, product: 'no-such-product' } })).status).toBe(404);
    expect((await t.call('POST', '/v1/subject-access', { token: admin, json: { ...json, reference: ' ' } })).json.error.code).toBe('VALIDATION_FAILED');
  });

  it("is answered up to the day's limit per admin, then refused until the next China day; another admin is not held", async () => {
    await t.platform.db.insert(principals).values({ id: 'admin-sar-window', role: 'admin', displayName: '大数据中心 · 窗口' });
    const window = await t.tokenFor('admin-sar-window');
    const limit = t.platform.governance.subjectAccess.requestsPerAdminPerDay;
    const json = (n: number) => ({ product: 'resident-identity', input: { id_number: residents[0]!.id }, reference: `SAR-2026-W${n}` });
    for (let n = 0; n < limit; n++) expect((await t.call('POST', '/v1/subject-access', { token: window, json: json(n) })).status).toBe(200);
    const refused = await t.call('POST', '/v1/subject-access', { token: window, json: json(limit) });
    expect([refused.status, refused.json.error.code]).toEqual([429, 'RATE_LIMITED']);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // Past the limit nothing is looked up: not even whether the product named exists.
    const unknown = await t.call('POST', '/v1/subject-access', { token: window, json: { ...json(limit + 2), product: 'no-such-product' } });
    expect([unknown.status, unknown.json.error.code]).toEqual([429, 'RATE_LIMITED']);
    expect((await t.call('POST', '/v1/subject-access', { token: await t.tokenFor('admin-data-centre'), json: json(limit + 1) })).status).toBe(200);
  });

  it('requests sent together at the limit: only as many as the limit allows are answered', async () => {
    await t.platform.db.insert(principals).values({ id: 'admin-sar-burst', role: 'admin', displayName: '大数据中心 · 窗口二' });
    const burst = await t.tokenFor('admin-sar-burst');
    const limit = t.platform.governance.subjectAccess.requestsPerAdminPerDay;
    const json = (n: number) => ({ product: 'resident-identity', input: { id_number: residents[0]!.id }, reference: `SAR-2026-B${n}` });
    for (let n = 0; n < limit - 1; n++) expect((await t.call('POST', '/v1/subject-access', { token: burst, json: json(n) })).status).toBe(200);
    const together = await Promise.all(Array.from({ length: 5 }, (_, n) => t.call('POST', '/v1/subject-access', { token: burst, json: json(limit + n) })));
    expect(together.map((answer) => answer.status).sort()).toEqual([200, 429, 429, 429, 429]);
  });
});
