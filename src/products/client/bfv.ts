import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import type { Context } from 'node-seal/implementation/context.js';
import type { PlainText } from 'node-seal/implementation/plain-text.js';

/**
 * The BFV parameters of encrypted verification, fixed by the server and shared with every client (Node or
 * browser). n = 8192 with SEAL's default 128-bit-secure coefficient modulus (218 bits) leaves room to flood the
 * noise of the answer with 2^108-sized noise (circuit privacy) after one plaintext multiplication; the 40-bit
 * plaintext modulus makes a wrong claim look like a match with probability about 2^-40.
 *
 * Values are placed in polynomial coefficients, not batched slots: the server's answer is the constant
 * coefficient of D(x)·P(x), an inner product of the claim differences with fresh random weights (see
 * docs/products.md for why this reveals one bit whatever the consumer packs into other coefficients).
 */
export const bfvSettings = { polyModulusDegree: 8192, plainModulusBits: 40, securityLevel: 'tc128' } as const;

export type BfvContext = {
  seal: SEALLibrary;
  context: Context;
  degree: number;
  plainModulus: bigint;
  /** The moduli a fresh ciphertext lives under (the key-switching prime is dropped). */
  dataModuli: bigint[];
  /** Serialized encryption parameters, so a client can check it talks about the same thing. */
  parameters: Uint8Array;
  /** Exact sizes of the seeded, uncompressed forms the server accepts. */
  seededCiphertextBytes: number;
  seededPublicKeyBytes: number;
  /** The 32-byte parms_id every accepted ciphertext must carry. */
  parmsId: Uint8Array;
  zeroPlaintextBytes: Uint8Array;
};

// Offsets in SEAL 4's serialization (header 16 bytes, then the members; checked by tests against SEAL itself).
const headerBytes = 16;
const plainCoefficientsOffset = 88;
const ciphertextParmsIdOffset = headerBytes;

export function createBfvContext(seal: SEALLibrary): BfvContext {
  const degree = bfvSettings.polyModulusDegree;
  const parms = seal.EncryptionParameters(seal.SchemeType.bfv);
  parms.setPolyModulusDegree(degree);
  parms.setCoeffModulus(seal.CoeffModulus.BFVDefault(degree, seal.SecurityLevel.tc128));
  parms.setPlainModulus(seal.PlainModulus.Batching(degree, bfvSettings.plainModulusBits));
  const context = seal.Context(parms, true, seal.SecurityLevel.tc128);
  if (!context.parametersSet()) throw new Error('SEAL refused the BFV parameters');
  const moduli = [...parms.coeffModulus];

  // Measure the accepted wire sizes with a throwaway key rather than hard-coding SEAL's layout.
  const keys = seal.KeyGenerator(context);
  const encryptor = seal.Encryptor(context, keys.createPublicKey(), keys.secretKey());
  const zero = seal.PlainText({ coeffCount: degree });
  const ciphertext = encryptor.encryptSymmetricSerializable(zero);
  const seededCiphertext = ciphertext.saveArray(seal.ComprModeType.none);
  const publicKey = keys.createPublicKeySerializable();
  const seededPublicKeyBytes = publicKey.saveArray(seal.ComprModeType.none).length;
  const zeroPlaintextBytes = zero.saveArray(seal.ComprModeType.none);
  const parameters = parms.saveArray(seal.ComprModeType.none);
  for (const object of [ciphertext, publicKey, zero, encryptor, keys, parms]) object.delete();

  return {
    seal,
    context,
    degree,
    plainModulus: BigInt(seal.PlainModulus.Batching(degree, bfvSettings.plainModulusBits).value),
    dataModuli: moduli.slice(0, -1),
    parameters,
    seededCiphertextBytes: seededCiphertext.length,
    seededPublicKeyBytes,
    parmsId: seededCiphertext.slice(ciphertextParmsIdOffset, ciphertextParmsIdOffset + 32),
    zeroPlaintextBytes,
  };
}

/** A plaintext polynomial with the given coefficients (each in [0, t)); the rest are zero. */
export function plaintextOf(bfv: BfvContext, coefficients: ReadonlyMap<number, bigint> | readonly bigint[]): PlainText {
  const bytes = bfv.zeroPlaintextBytes.slice();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries = Array.isArray(coefficients) ? coefficients.entries() : (coefficients as ReadonlyMap<number, bigint>).entries();
  for (const [index, value] of entries) {
    if (index < 0 || index >= bfv.degree || value < 0n || value >= bfv.plainModulus) throw new RangeError('coefficient out of range');
    view.setBigUint64(plainCoefficientsOffset + 8 * index, value, true);
  }
  const plain = bfv.seal.PlainText();
  plain.loadArray(bfv.context, bytes);
  return plain;
}

/** The first `count` coefficients of a plaintext (a decrypted answer). */
export function coefficientsOf(bfv: BfvContext, plain: PlainText, count: number): bigint[] {
  const bytes = plain.saveArray(bfv.seal.ComprModeType.none);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stored = Number(view.getBigUint64(headerBytes + 32, true));
  const values: bigint[] = [];
  for (let index = 0; index < count; index++) values.push(index < stored ? view.getBigUint64(plainCoefficientsOffset + 8 * index, true) : 0n);
  return values;
}

/** Where each claim's chunks sit in the polynomial: claim i, chunk k at coefficient i·chunks + k. */
export const claimCoefficient = (claimIndex: number, chunk: number, chunksPerClaim: number) => claimIndex * chunksPerClaim + chunk;

export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let offset = 0; offset < bytes.length; offset += 0x8000) binary += String.fromCharCode(...bytes.subarray(offset, offset + 0x8000));
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}
