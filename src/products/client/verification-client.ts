import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import { coefficientsOf, createBfvContext, fromBase64, plaintextOf, toBase64, type BfvContext } from './bfv.js';
import { claimChunks, claimDigest } from './claim-encoding.js';
import { createCkksContext, type CkksContext } from './ckks.js';
import { scoringFeatureValues, type ScoringCategories, type ScoringInput } from './scoring-features.js';

/**
 * The consumer's side of verification products, for Node and browsers alike (fetch, WebCrypto and node-seal's
 * WASM only). Encrypted mode: the claims are encoded, encrypted and decrypted here; the server sees only the
 * subject's identifier and ciphertexts. Every answer's signature is checked against the platform's JWKS.
 *
 *   const client = createVerificationClient({ baseUrl, token, seal: await SEAL() });
 *   const { match } = await client.verifyEncrypted('resident-identity', { id_number, name }, '开户核验');
 */
export type VerificationClientOptions = {
  baseUrl: string;
  token: string;
  /** A loaded node-seal 6 library (node-seal's Node or web build). Needed for encrypted mode only. */
  seal?: SEALLibrary;
  fetch?: typeof fetch;
  /**
   * How often a call is sent again when its connection failed or a gateway answered 502, 503 or 504 (default 2).
   * Calls carry an Idempotency-Key, so a call that was answered but whose answer was lost is answered again, by
   * whichever API process the retry reaches, not metered twice.
   */
  retries?: number;
  /**
   * Least time between two fetches of the platform's JWKS (default 30 s). The keys are fetched once and kept; an
   * answer signed with a key not among them (the platform rotated its key) fetches them again, no sooner than this.
   */
  jwksCooldownMs?: number;
  /**
   * Encrypted calls keep one key pair per scheme for this client's life and register its public key once
   * (POST /v1/he-keys), so each call sends the ciphertext and a key id, not ~320 KiB of key as well (default).
   * `false`: a fresh key pair for every call, its public key sent with it. `close()` frees the kept keys.
   */
  registerKeys?: boolean;
};

/** The keys of encrypted calls: SEAL objects (WASM memory, freed explicitly) and how a request names the key. */
type KeySet = {
  encryptor: { encryptSymmetricSerializable: (plain: any) => any; delete: () => void };
  decryptor: { decrypt: (cipher: any) => any; delete: () => void };
  publicKey: string;
  keyId?: string;
  free: () => void;
};

export type SignedAnswer = { match: boolean; jws: string; payload: Record<string, unknown>; auditLeafIndex: number; feeFen: number };

export class VerificationClientError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
    /** The server's details of a refusal: each names the field (path) and what is wrong with it, never its value. */
    readonly details: Array<{ path?: string; problem: string }> = [],
  ) {
    super(message);
  }
}

/** A gateway's answers while the process behind it restarts or is unreachable: the call may or may not have been made. */
export const gatewayStatuses = new Set([502, 503, 504]);

/**
 * How long to wait before sending a call again after a gateway's answer: its Retry-After (seconds, or an HTTP date)
 * when it gives one, capped at 5 s so that a caller is never parked for long, else `fallbackMs`.
 */
export function gatewayRetryDelayMs(response: Response, fallbackMs: number, now: number = Date.now()): number {
  const header = response.headers.get('retry-after')?.trim();
  if (!header) return fallbackMs;
  const seconds = /^\d+$/.test(header) ? Number(header) : (Date.parse(header) - now) / 1000;
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 5) * 1000 : fallbackMs;
}

export function createVerificationClient(options: VerificationClientOptions) {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const base = options.baseUrl.replace(/\/$/, '');
  let bfv: BfvContext | undefined;
  let ckks: CkksContext | undefined;
  let keys: Promise<Map<string, CryptoKey | Uint8Array>> | undefined;
  let keysFetchedAt = 0;
  const kept: Partial<Record<'bfv' | 'ckks', Promise<KeySet>>> = {};

  function newKeySet(context: BfvContext | CkksContext): KeySet {
    const { seal } = context;
    const keyGenerator = seal.KeyGenerator(context.context);
    const secretKey = keyGenerator.secretKey();
    const serializable = keyGenerator.createPublicKeySerializable();
    const publicKey = keyGenerator.createPublicKey();
    const encryptor = seal.Encryptor(context.context, publicKey, secretKey);
    const decryptor = seal.Decryptor(context.context, secretKey);
    const publicKeyText = toBase64(serializable.saveArray(seal.ComprModeType.none));
    serializable.delete();
    return { encryptor, decryptor, publicKey: publicKeyText, free: () => [keyGenerator, secretKey, publicKey, encryptor, decryptor].forEach((object) => object.delete()) };
  }

  async function register(scheme: 'bfv' | 'ckks', set: KeySet): Promise<KeySet> {
    const registered = await call<{ id: string }>('POST', '/v1/he-keys', { scheme, publicKey: set.publicKey });
    set.keyId = registered.id;
    return set;
  }

  /**
   * Sends one encrypted call with `body(keys)` and hands its answer to `use`. With kept keys, a server that no longer
   * knows the key id (its database was restored from before the registration, say) gets the key registered again
   * and the call sent once more; the ciphertext stays valid, since the key pair is the same.
   */
  async function withKeys<T>(scheme: 'bfv' | 'ckks', context: BfvContext | CkksContext, send: (keys: KeySet, keyField: { keyId: string } | { publicKey: string }) => Promise<T>): Promise<T> {
    if (options.registerKeys === false) {
      const fresh = newKeySet(context);
      try {
        return await send(fresh, { publicKey: fresh.publicKey });
      } finally {
        fresh.free();
      }
    }
    const pending = (kept[scheme] ??= register(scheme, newKeySet(context)).catch((error: unknown) => {
      delete kept[scheme];
      throw error;
    }));
    const set = await pending;
    try {
      return await send(set, { keyId: set.keyId! });
    } catch (error) {
      if (!(error instanceof VerificationClientError && error.status === 404 && error.message.startsWith('registered key'))) throw error;
      await register(scheme, set);
      return send(set, { keyId: set.keyId! });
    }
  }

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const idempotencyKey = method === 'POST' ? globalThis.crypto.randomUUID() : undefined;
    const request = {
      method,
      headers: { authorization: `Bearer ${options.token}`, ...(body ? { 'content-type': 'application/json' } : {}), ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    };
    let response: Response | undefined;
    // Safe to send again: GETs read, and every POST carries its Idempotency-Key.
    const retries = options.retries ?? 2;
    for (let attempt = 0; !response; attempt++) {
      let wait = 250 * 2 ** attempt;
      try {
        response = await doFetch(`${base}${path}`, request);
        if (gatewayStatuses.has(response.status) && attempt < retries) {
          // A proxy's answer while a process restarts or is unreachable: the call may or may not have been made.
          wait = gatewayRetryDelayMs(response, wait);
          await response.body?.cancel();
          response = undefined;
        }
      } catch (error) {
        if (attempt >= retries) throw error;
      }
      if (!response) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const text = await response.text();
    const parsed = text ? (JSON.parse(text) as Record<string, any>) : {};
    if (!response.ok) {
      const retry = response.headers.get('retry-after');
      throw new VerificationClientError(response.status, parsed.error?.code ?? 'HTTP_ERROR', parsed.error?.message ?? `HTTP ${response.status}`, retry ? Number(retry) : undefined, Array.isArray(parsed.error?.details) ? parsed.error.details : []);
    }
    return parsed as T;
  }

  function fetchKeys(): Promise<Map<string, CryptoKey | Uint8Array>> {
    keysFetchedAt = Date.now();
    const fetched = call<{ keys: JWK[] }>('GET', '/.well-known/jwks.json').then(async (jwks) => {
      const byKid = new Map<string, CryptoKey | Uint8Array>();
      for (const jwk of jwks.keys) if (jwk.kid) byKid.set(jwk.kid, await importJWK(jwk, 'EdDSA'));
      return byKid;
    });
    // A failed fetch is not kept: the next answer fetches again.
    fetched.catch(() => {
      if (keys === fetched) keys = undefined;
    });
    return (keys = fetched);
  }

  /**
   * Checks an answer's JWS with the platform keys from /.well-known/jwks.json; returns its payload. The keys are
   * fetched once and kept; an answer naming a key not among them fetches them again (the platform rotated its key
   * since), at most once per `jwksCooldownMs`, so that answers under a bogus key id cannot make every call fetch.
   */
  async function verifySignature(jws: string): Promise<Record<string, unknown>> {
    let byKid = await (keys ?? fetchKeys());
    let kid: unknown;
    try {
      kid = decodeProtectedHeader(jws).kid;
    } catch {
      kid = undefined;
    }
    if (typeof kid === 'string' && !byKid.has(kid) && Date.now() - keysFetchedAt >= (options.jwksCooldownMs ?? 30_000)) byKid = await fetchKeys();
    const { payload, protectedHeader } = await compactVerify(jws, async (header) => {
      const key = header.kid ? byKid.get(header.kid) : undefined;
      if (!key) throw new VerificationClientError(0, 'UNKNOWN_SIGNING_KEY', 'the answer was signed with a key the platform does not publish');
      return key;
    }, { algorithms: ['EdDSA'] });
    if (protectedHeader.typ !== 'pds-answer+jws') throw new VerificationClientError(0, 'WRONG_TYPE', 'the signature is not over a product answer');
    return JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
  }

  /** An encrypted answer's signature must verify and cover exactly these answer bytes, for this product. */
  async function checkedEncryptedAnswer(productId: string, response: { answer: string; jws: string }): Promise<{ payload: Record<string, unknown>; answerBytes: Uint8Array }> {
    const payload = await verifySignature(response.jws);
    const answerBytes = fromBase64(response.answer);
    const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', answerBytes as Uint8Array<ArrayBuffer>));
    const answerHash = [...digest].map((byte) => byte.toString(16).padStart(2, '0')).join('');
    if (payload.answer_hash !== answerHash || payload.product !== productId) throw new VerificationClientError(0, 'ANSWER_MISMATCH', 'the signature is not over this answer');
    return { payload, answerBytes };
  }

  return {
    verifySignature,

    /** Plain scoring: a number per feature, and a category by its value ("enterprise"). */
    async score(productId: string, input: ScoringInput, purpose: string, use: 'public_interest' | 'industry' = 'industry'): Promise<ScoreAnswer> {
      const answer = await call<{ score: number; linearPredictor: number; jws: string; auditLeafIndex: number; feeFen: number }>('POST', `/v1/products/${encodeURIComponent(productId)}/score`, { input, purpose, use });
      const payload = await verifySignature(answer.jws);
      if (payload.score !== answer.score || payload.product !== productId) throw new VerificationClientError(0, 'ANSWER_MISMATCH', 'the signed score differs from the response');
      return { ...answer, payload };
    },

    /**
     * Encrypted scoring (CKKS): the features are encrypted here and never leave in clear. The score is what this
     * client decrypted (approximate, about 1e-6 relative); the JWS binds the encrypted answer's hash.
     */
    async scoreEncrypted(productId: string, input: ScoringInput, purpose: string, use: 'public_interest' | 'industry' = 'industry'): Promise<ScoreAnswer & { requestBytes: number; answerBytes: number }> {
      if (!options.seal) throw new Error('encrypted scoring needs a node-seal library');
      const params = await call<{ parameters: string; features: string[]; categories?: ScoringCategories; link: string }>('GET', `/v1/products/${encodeURIComponent(productId)}/he-params`);
      ckks ??= createCkksContext(options.seal);
      if (toBase64(ckks.parameters) !== params.parameters) throw new VerificationClientError(0, 'PARAMETERS_DIFFER', 'the server uses encryption parameters this client does not');
      // Read here as the server reads a plain call: the server never sees these values to check them.
      const features = scoringFeatureValues(params.features, params.categories ?? {}, input);
      if (features.problems.length > 0) {
        const code = features.problems.every((problem) => problem.problem === 'is required') ? 'MISSING_INPUT' : 'INVALID_INPUT';
        throw new VerificationClientError(0, code, 'the features are not valid', undefined, features.problems);
      }
      const { seal } = ckks;
      const values = new Float64Array(ckks.slots);
      features.values.forEach((value, index) => {
        values[index + 1] = value;
      });
      const encoder = seal.CKKSEncoder(ckks.context);
      const plain = encoder.encode(values, ckks.scale)!;
      try {
        return await withKeys('ckks', ckks, async (keys, keyField) => {
          const ciphertext = keys.encryptor.encryptSymmetricSerializable(plain);
          const answerCipher = seal.CipherText();
          try {
            const body = { ciphertext: toBase64(ciphertext.saveArray(seal.ComprModeType.none)), ...keyField, purpose, use };
            const response = await call<{ answer: string; jws: string; auditLeafIndex: number; feeFen: number }>('POST', `/v1/products/${encodeURIComponent(productId)}/score-encrypted`, body);
            const { payload, answerBytes } = await checkedEncryptedAnswer(productId, response);
            answerCipher.loadArray(ckks!.context, answerBytes);
            const decrypted = keys.decryptor.decrypt(answerCipher)!;
            const slots = encoder.decode(decrypted) as Float64Array;
            decrypted.delete();
            let linearPredictor = 0;
            for (let index = 0; index <= params.features.length; index++) linearPredictor += slots[index]!;
            const score = params.link.startsWith('logistic') ? 1 / (1 + Math.exp(-linearPredictor)) : linearPredictor;
            return { score, linearPredictor, jws: response.jws, payload, auditLeafIndex: response.auditLeafIndex, feeFen: response.feeFen, requestBytes: JSON.stringify(body).length, answerBytes: answerBytes.length };
          } finally {
            ciphertext.delete();
            answerCipher.delete();
          }
        });
      } finally {
        encoder.delete();
        plain.delete();
      }
    },

    async verify(productId: string, input: Record<string, string>, purpose: string, use: 'public_interest' | 'industry' = 'industry'): Promise<SignedAnswer> {
      const answer = await call<{ match: boolean; jws: string; auditLeafIndex: number; feeFen: number }>('POST', `/v1/products/${encodeURIComponent(productId)}/verify`, { input, purpose, use });
      const payload = await verifySignature(answer.jws);
      if (payload.match !== answer.match || payload.product !== productId) throw new VerificationClientError(0, 'ANSWER_MISMATCH', 'the signed answer differs from the response');
      return { ...answer, payload };
    },

    /**
     * Encrypted verification: only the subject's identifying inputs travel in clear. The returned `match` is
     * what this client decrypted; the JWS binds the server's encrypted answer (its hash) to the audit log.
     */
    async verifyEncrypted(productId: string, input: Record<string, string>, purpose: string, use: 'public_interest' | 'industry' = 'industry'): Promise<SignedAnswer & { requestBytes: number; answerBytes: number }> {
      if (!options.seal) throw new Error('encrypted verification needs a node-seal library');
      const params = await call<{ parameters: string; subjectInputs: string[]; claimInputs: string[]; encoding: { chunksPerClaim: number } }>('GET', `/v1/products/${encodeURIComponent(productId)}/he-params`);
      bfv ??= createBfvContext(options.seal);
      if (toBase64(bfv.parameters) !== params.parameters) throw new VerificationClientError(0, 'PARAMETERS_DIFFER', 'the server uses encryption parameters this client does not');
      const { seal } = bfv;

      const coefficients: bigint[] = [];
      for (const name of params.claimInputs) {
        const value = input[name];
        if (value === undefined) throw new VerificationClientError(0, 'MISSING_INPUT', `the claim ${name} is missing`);
        coefficients.push(...claimChunks(await claimDigest(productId, name, value)));
      }
      const subject = Object.fromEntries(params.subjectInputs.map((name) => [name, input[name] ?? '']));

      const claims = plaintextOf(bfv, coefficients);
      try {
        return await withKeys('bfv', bfv, async (keys, keyField) => {
          const ciphertext = keys.encryptor.encryptSymmetricSerializable(claims);
          const answerCipher = seal.CipherText();
          try {
            const body = { subject, ciphertext: toBase64(ciphertext.saveArray(seal.ComprModeType.none)), ...keyField, purpose, use };
            const response = await call<{ answer: string; jws: string; auditLeafIndex: number; feeFen: number }>('POST', `/v1/products/${encodeURIComponent(productId)}/verify-encrypted`, body);
            const { payload, answerBytes } = await checkedEncryptedAnswer(productId, response);
            answerCipher.loadArray(bfv!.context, answerBytes);
            const decrypted = keys.decryptor.decrypt(answerCipher)!;
            const [value] = coefficientsOf(bfv!, decrypted, 1);
            decrypted.delete();
            return { match: value === 0n, jws: response.jws, payload, auditLeafIndex: response.auditLeafIndex, feeFen: response.feeFen, requestBytes: JSON.stringify(body).length, answerBytes: answerBytes.length };
          } finally {
            ciphertext.delete();
            answerCipher.delete();
          }
        });
      } finally {
        claims.delete();
      }
    },

    /** Frees the key pairs kept for encrypted calls (WASM memory is not collected); the next call makes new ones. */
    async close(): Promise<void> {
      for (const scheme of ['bfv', 'ckks'] as const) {
        const pending = kept[scheme];
        delete kept[scheme];
        (await pending?.catch(() => undefined))?.free();
      }
    },
  };
}

export type VerificationClient = ReturnType<typeof createVerificationClient>;

export type ScoreAnswer = { score: number; linearPredictor: number; jws: string; payload: Record<string, unknown>; auditLeafIndex: number; feeFen: number };
