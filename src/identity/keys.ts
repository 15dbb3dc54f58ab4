import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

/**
 * Two Ed25519 keys with separate jobs, so that nothing signed by one can pass as the other:
 * the token key signs access tokens; the platform key signs receipts, answers and audit checkpoints.
 * Both public halves are published in /.well-known/jwks.json.
 */
export type SigningKey = {
  purpose: 'token' | 'platform';
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** The same private key as a Node key object, for signing on the calling thread (see signWithPlatformKey). */
  signingKeyObject: crypto.KeyObject;
  publicJwk: JWK;
  /**
   * A secret derived from the private key, one per label (HMAC-SHA-256): product subject keys, the differencing
   * guard's contributor keys and its storage key. Every process that holds the key derives the same one, and
   * nobody without it can. The key ring derives them from its first platform key (KeyRing.derivedSecret).
   */
  derivedSecret: (label: string) => string;
};

export type KeyRing = {
  token: SigningKey;
  platform: SigningKey;
  /**
   * Platform keys this deployment signed with before the current one, oldest first. They sign nothing new; their
   * public halves stay in the JWKS so that every receipt, answer, checkpoint and backup signed with them still
   * verifies.
   */
  retiredPlatform: SigningKey[];
  /** Public keys a verifier may meet, by kid (current keys, and retired ones still trusted for verification). */
  verificationKeys: Map<string, SigningKey>;
  jwks: () => { keys: JWK[] };
  /**
   * A secret per label, derived from the deployment's first platform key (the oldest retired one, else the current
   * one): product subject keys, the differencing guard's contributor and storage keys, kept answers. Rooted in the
   * first key so that a rotation keeps them: a subject's checks before it still count against its daily limit, and
   * the guard still compares new outputs with those released before it.
   */
  derivedSecret: (label: string) => string;
  /** The key the derived secrets come from: the oldest retired platform key, else the current one. */
  secretRoot: SigningKey;
};

export class KeyError extends Error {
  static readonly code = 'ERR_KEY';
}

async function keyFromPrivateJwk(purpose: SigningKey['purpose'], privateJwk: JWK): Promise<SigningKey> {
  if (privateJwk.kty !== 'OKP' || privateJwk.crv !== 'Ed25519' || !privateJwk.d) {
    throw new KeyError(`the ${purpose} key must be a private Ed25519 JWK`);
  }
  const publicOnly: JWK = { kty: privateJwk.kty, crv: privateJwk.crv, x: privateJwk.x! };
  const kid = privateJwk.kid ?? (await calculateJwkThumbprint(publicOnly, 'sha256'));
  const privateKey = (await importJWK({ ...privateJwk, alg: 'EdDSA' }, 'EdDSA')) as CryptoKey;
  const publicKey = (await importJWK({ ...publicOnly, alg: 'EdDSA' }, 'EdDSA')) as CryptoKey;
  const seed = privateJwk.d;
  return {
    purpose,
    kid,
    privateKey,
    publicKey,
    signingKeyObject: crypto.createPrivateKey({ key: privateJwk as crypto.JsonWebKey, format: 'jwk' }),
    publicJwk: { ...publicOnly, kid, alg: 'EdDSA', use: 'sig' },
    derivedSecret: (label: string) => crypto.createHmac('sha256', Buffer.from(seed, 'base64url')).update(label).digest('hex'),
  };
}

export async function generatePrivateJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint({ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x! }, 'sha256');
  return jwk;
}

function readKeyFile(file: string, purpose: string): JWK {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat) throw new KeyError(`the ${purpose} key file does not exist`);
  // A private key readable by group or others is a key already leaked; refuse rather than warn.
  if ((stat.mode & 0o077) !== 0) throw new KeyError(`the ${purpose} key file must have mode 0600`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as JWK;
  } catch {
    throw new KeyError(`the ${purpose} key file is not a JSON Web Key`);
  }
}

function writeNewKeyFile(file: string, jwk: JWK): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // 'wx' fails if another process created the file first, so two first runs never overwrite each other's key.
  fs.writeFileSync(file, JSON.stringify(jwk), { mode: 0o600, flag: 'wx' });
}

export type KeySource =
  | { mode: 'dev'; dataDir: string }
  | { mode: 'production'; tokenKeyFile: string; platformKeyFile: string; retiredPlatformKeyFiles?: string[] };

/** Where a configuration says the keys are: DATA_DIR/keys in dev, the named files in production. */
export const keySourceOf = (config: { mode: 'dev' | 'production'; dataDir: string; tokenKeyFile?: string; platformKeyFile?: string; retiredPlatformKeyFiles: string[] }): KeySource =>
  config.mode === 'production'
    ? { mode: 'production', tokenKeyFile: config.tokenKeyFile!, platformKeyFile: config.platformKeyFile!, retiredPlatformKeyFiles: config.retiredPlatformKeyFiles }
    : { mode: 'dev', dataDir: config.dataDir };

/** Where dev mode keeps its keys: DATA_DIR/keys, retired platform keys under retired/, named so they sort oldest first. */
export const devKeyFiles = (dataDir: string) => ({
  token: path.join(dataDir, 'keys', 'token-signing.jwk.json'),
  platform: path.join(dataDir, 'keys', 'platform-signing.jwk.json'),
  retiredDir: path.join(dataDir, 'keys', 'retired'),
});

const retiredDevKeyFiles = (retiredDir: string): string[] =>
  fs.existsSync(retiredDir)
    ? fs
        .readdirSync(retiredDir)
        .filter((name) => /^platform-\d{4}-[\w-]+\.jwk\.json$/.test(name))
        .sort()
        .map((name) => path.join(retiredDir, name))
    : [];

/**
 * Dev: generate keys into DATA_DIR/keys on first run. Production: read the files named in config, never generate.
 * Retired platform keys (dev: DATA_DIR/keys/retired; production: PDS_RETIRED_PLATFORM_KEY_FILES, oldest first) are
 * read too: they verify what they signed and root the derived secrets.
 */
export async function loadKeyRing(source: KeySource): Promise<KeyRing> {
  const files =
    source.mode === 'dev'
      ? { ...devKeyFiles(source.dataDir), retired: retiredDevKeyFiles(devKeyFiles(source.dataDir).retiredDir) }
      : { token: source.tokenKeyFile, platform: source.platformKeyFile, retired: source.retiredPlatformKeyFiles ?? [] };
  const keys: Partial<Record<SigningKey['purpose'], SigningKey>> = {};
  for (const purpose of ['token', 'platform'] as const) {
    const file = files[purpose];
    if (source.mode === 'dev' && !fs.existsSync(file)) {
      try {
        writeNewKeyFile(file, await generatePrivateJwk());
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    keys[purpose] = await keyFromPrivateJwk(purpose, readKeyFile(file, purpose));
  }
  const retired = await Promise.all(files.retired.map(async (file) => keyFromPrivateJwk('platform', readKeyFile(file, 'retired platform'))));
  return keyRingOf(keys.token!, keys.platform!, retired);
}

export function keyRingOf(token: SigningKey, platform: SigningKey, retiredPlatform: SigningKey[] = []): KeyRing {
  if (token.kid === platform.kid) throw new KeyError('the token and platform keys must differ');
  const kids = [token.kid, platform.kid, ...retiredPlatform.map((key) => key.kid)];
  if (new Set(kids).size !== kids.length) throw new KeyError('a retired platform key is also the current token or platform key, or is retired twice');
  const verificationKeys = new Map([
    [token.kid, token],
    [platform.kid, platform],
    ...retiredPlatform.map((key) => [key.kid, key] as const),
  ]);
  const root = retiredPlatform[0] ?? platform;
  return {
    token,
    platform,
    retiredPlatform,
    verificationKeys,
    jwks: () => ({ keys: [...verificationKeys.values()].map((key) => ({ ...key.publicJwk })) }),
    derivedSecret: root.derivedSecret,
    secretRoot: root,
  };
}

/**
 * Rotates a dev key in DATA_DIR/keys; the running server reads keys when it starts, so the new key signs from its
 * next start. The platform key is retired, not deleted: what it signed keeps verifying, and the derived secrets
 * stay rooted in the first platform key. The token key is replaced outright: every token it signed is refused from
 * the next start, which is what rotating it after a leak is for (tokens live minutes to hours; mint new ones).
 */
export async function rotateDevKey(dataDir: string, purpose: SigningKey['purpose']): Promise<{ retiredKid?: string; newKid: string }> {
  const files = devKeyFiles(dataDir);
  const current = files[purpose];
  if (!fs.existsSync(current)) throw new KeyError(`there is no ${purpose} key to rotate in ${path.dirname(current)}`);
  const oldKey = await keyFromPrivateJwk(purpose, readKeyFile(current, purpose));
  const fresh = await generatePrivateJwk();
  if (purpose === 'token') {
    // Written beside it, then renamed over it: at every moment there is one whole key file.
    const staged = `${current}.new`;
    fs.rmSync(staged, { force: true });
    fs.writeFileSync(staged, JSON.stringify(fresh), { mode: 0o600, flag: 'wx' });
    fs.renameSync(staged, current);
    return { newKid: fresh.kid! };
  }
  fs.mkdirSync(files.retiredDir, { recursive: true, mode: 0o700 });
  const sequence = retiredDevKeyFiles(files.retiredDir).length + 1;
  fs.renameSync(current, path.join(files.retiredDir, `platform-${String(sequence).padStart(4, '0')}-${oldKey.kid}.jwk.json`));
  writeNewKeyFile(current, fresh);
  return { retiredKid: oldKey.kid, newKid: fresh.kid! };
}

/** Writes a new private Ed25519 JWK, mode 0600, never over an existing file: for production key files. */
export async function generateKeyFile(file: string): Promise<string> {
  const jwk = await generatePrivateJwk();
  try {
    writeNewKeyFile(file, jwk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyError(`${file} already exists; a key file is never overwritten`);
    throw error;
  }
  return jwk.kid!;
}

/** A key ring held only in memory: for tests and benchmarks. */
export async function ephemeralKeyRing(): Promise<KeyRing> {
  return keyRingOf(
    await keyFromPrivateJwk('token', await generatePrivateJwk()),
    await keyFromPrivateJwk('platform', await generatePrivateJwk()),
  );
}

export const randomId = (prefix: string) => `${prefix}_${crypto.randomBytes(12).toString('base64url')}`;

/**
 * A compact JWS over a JSON payload, signed with the platform key (published in /.well-known/jwks.json), so any
 * JOSE library verifies it offline. `typ` keeps the kinds apart: a receipt cannot pass as an answer or checkpoint.
 */
export function signWithPlatformKey(keys: KeyRing, typ: string, payload: object): string {
  // RFC 7515 compact serialisation, signed with node:crypto directly: Ed25519 through WebCrypto (which jose's
  // CompactSign uses) took about 150 µs a signature here against 57 µs for crypto.sign, and product answers are
  // signed one per call. Verification stays with jose; the tests verify these tokens with jose and the JWKS.
  const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid: keys.platform.kid, typ })).toString('base64url');
  const signingInput = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${signingInput}.${crypto.sign(null, Buffer.from(signingInput), keys.platform.signingKeyObject).toString('base64url')}`;
}
