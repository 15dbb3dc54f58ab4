import { generateKeyPair, SignJWT, UnsecuredJWT, base64url } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
});
afterAll(() => t?.close());

const subject = 'regulator-data-dept';
const nowSeconds = () => Math.floor(t.clock.now.getTime() / 1000);

/** Signs claims with the platform's real token key unless the case says otherwise. */
async function signed(
  claims: Record<string, unknown>,
  options: { key?: CryptoKey; kid?: string | null; alg?: string; typ?: string } = {},
): Promise<string> {
  const { config } = t.platform;
  const header: Record<string, unknown> = { alg: options.alg ?? 'EdDSA', typ: options.typ ?? 'JWT' };
  if (options.kid !== null) header.kid = options.kid ?? t.platform.keys.token.kid;
  return new SignJWT({ iss: config.tokenIssuer, aud: config.tokenAudience, sub: subject, iat: nowSeconds(), exp: nowSeconds() + 600, jti: 'j-1', ...claims })
    .setProtectedHeader(header as never)
    .sign(options.key ?? t.platform.keys.token.privateKey);
}

const without = (claim: string) => ({ [claim]: undefined });

type BrokenToken = { name: string; token: () => Promise<string>; code: string };

const brokenTokens: BrokenToken[] = [
  {
    name: 'unsigned (alg none)',
    token: async () =>
      new UnsecuredJWT({ sub: subject, aud: t.platform.config.tokenAudience, iss: t.platform.config.tokenIssuer, jti: 'x' })
        .setIssuedAt()
        .setExpirationTime('10m')
        .encode(),
    code: 'TOKEN_ALGORITHM_REFUSED',
  },
  {
    name: 'signed by another key under the real key id',
    token: async () => signed({}, { key: (await generateKeyPair('EdDSA', { crv: 'Ed25519' })).privateKey }),
    code: 'TOKEN_SIGNATURE_INVALID',
  },
  {
    name: 'HMAC-signed with the public key as the secret (algorithm confusion)',
    token: async () => signed({}, { alg: 'HS256', key: new TextEncoder().encode(JSON.stringify(t.platform.keys.token.publicJwk)) as never }),
    code: 'TOKEN_ALGORITHM_REFUSED',
  },
  { name: 'expired', token: () => signed({ iat: nowSeconds() - 3600, exp: nowSeconds() - 60 }), code: 'TOKEN_EXPIRED' },
  { name: 'missing exp', token: () => signed(without('exp')), code: 'TOKEN_CLAIM_MISSING' },
  { name: 'missing iat', token: () => signed(without('iat')), code: 'TOKEN_CLAIM_MISSING' },
  { name: 'missing jti', token: () => signed(without('jti')), code: 'TOKEN_CLAIM_MISSING' },
  { name: 'missing sub', token: () => signed(without('sub')), code: 'TOKEN_CLAIM_MISSING' },
  { name: 'for another audience', token: () => signed({ aud: 'urn:someone-else' }), code: 'TOKEN_WRONG_AUDIENCE' },
  { name: 'from another issuer', token: () => signed({ iss: 'urn:other-issuer' }), code: 'TOKEN_WRONG_ISSUER' },
  { name: 'unknown kid', token: () => signed({}, { kid: 'no-such-key' }), code: 'TOKEN_UNKNOWN_KEY' },
  { name: 'no kid', token: () => signed({}, { kid: null }), code: 'TOKEN_UNKNOWN_KEY' },
  {
    name: 'signed with the platform (receipt) key',
    token: () => signed({}, { key: t.platform.keys.platform.privateKey, kid: t.platform.keys.platform.kid }),
    code: 'TOKEN_UNKNOWN_KEY',
  },
  {
    name: 'older than the maximum token age though not expired',
    token: () => signed({ iat: nowSeconds() - t.platform.config.tokenMaxAgeSeconds - 600, exp: nowSeconds() + 600 }),
    code: 'TOKEN_TOO_OLD',
  },
  { name: 'issued in the future', token: () => signed({ iat: nowSeconds() + 3600, exp: nowSeconds() + 7200 }), code: 'TOKEN_NOT_YET_VALID' },
  { name: 'not yet valid (nbf)', token: () => signed({ nbf: nowSeconds() + 3600 }), code: 'TOKEN_NOT_YET_VALID' },
  { name: 'of another type (typ)', token: () => signed({}, { typ: 'pds-receipt+jws' }), code: 'TOKEN_WRONG_TYPE' },
  {
    name: 'payload edited after signing',
    token: async () => {
      const [header, , signature] = (await signed({})).split('.');
      const forged = base64url.encode(JSON.stringify({ iss: t.platform.config.tokenIssuer, aud: t.platform.config.tokenAudience, sub: 'admin-data-centre', iat: nowSeconds(), exp: nowSeconds() + 600, jti: 'x' }));
      return `${header}.${forged}.${signature}`;
    },
    code: 'TOKEN_SIGNATURE_INVALID',
  },
  { name: 'not a JWS at all', token: async () => 'not-a-token', code: 'TOKEN_MALFORMED' },
  { name: 'for a principal that does not exist', token: () => signed({ sub: 'nobody-at-all' }), code: 'PRINCIPAL_UNKNOWN' },
];

describe('a broken bearer token is refused with 401 and a stable code', () => {
  it.each(brokenTokens)('$name → $code', async ({ token, code }) => {
    const response = await t.call('GET', '/v1/datasets', { token: await token() });
    expect(response.status).toBe(401);
    expect(response.json.error.code).toBe(code);
    expect(response.json.datasets).toBeUndefined();
  });
});

describe('the Authorization header', () => {
  it('is required', async () => {
    const response = await t.call('GET', '/v1/datasets');
    expect(response.status).toBe(401);
    expect(response.json.error.code).toBe('TOKEN_MISSING');
  });

  it('must use the Bearer scheme', async () => {
    const response = await t.call('GET', '/v1/datasets', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(response.status).toBe(401);
    expect(response.json.error.code).toBe('TOKEN_MALFORMED');
  });
});

it('a well-formed token of an existing principal is accepted', async () => {
  const response = await t.call('GET', '/v1/me', { token: await signed({}) });
  expect(response.status).toBe(200);
  expect(response.json.id).toBe(subject);
});

it('a token minted by the platform is accepted', async () => {
  const response = await t.call('GET', '/v1/me', { token: await t.tokenFor('analyst-lingang-analytics') });
  expect(response.json).toMatchObject({ id: 'analyst-lingang-analytics', role: 'operator', operatorId: 'lingang-analytics' });
});

it('the JWKS publishes the public halves of the token and platform keys only', async () => {
  const response = await t.call('GET', '/.well-known/jwks.json');
  expect(response.status).toBe(200);
  const kids = response.json.keys.map((key: { kid: string }) => key.kid).sort();
  expect(kids).toEqual([t.platform.keys.platform.kid, t.platform.keys.token.kid].sort());
  for (const key of response.json.keys) {
    expect(key).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(key.d).toBeUndefined();
  }
});
