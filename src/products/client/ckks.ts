import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import type { Context } from 'node-seal/implementation/context.js';

/**
 * CKKS parameters for encrypted scoring, fixed by the server and shared with clients: n = 8192, coefficient
 * modulus 60 + 40 + 40 + 60 bits (200 ≤ 218, 128-bit secure), scale 2^40 — one plaintext multiplication and a
 * rescale, with about 20 bits of precision left for the score. 4096 slots; feature i goes in slot i (slot 0 is
 * left zero: the intercept is added by the server).
 */
export const ckksSettings = { polyModulusDegree: 8192, coeffModulusBits: [60, 40, 40, 60], scaleBits: 40 } as const;

export type CkksContext = {
  seal: SEALLibrary;
  context: Context;
  scale: number;
  slots: number;
  parameters: Uint8Array;
  seededCiphertextBytes: number;
  seededPublicKeyBytes: number;
  parmsId: Uint8Array;
};

export function createCkksContext(seal: SEALLibrary): CkksContext {
  const degree = ckksSettings.polyModulusDegree;
  const parms = seal.EncryptionParameters(seal.SchemeType.ckks);
  parms.setPolyModulusDegree(degree);
  parms.setCoeffModulus(seal.CoeffModulus.Create(degree, Int32Array.from(ckksSettings.coeffModulusBits)));
  const context = seal.Context(parms, true, seal.SecurityLevel.tc128);
  if (!context.parametersSet()) throw new Error('SEAL refused the CKKS parameters');
  const scale = 2 ** ckksSettings.scaleBits;
  const encoder = seal.CKKSEncoder(context);
  const keys = seal.KeyGenerator(context);
  const encryptor = seal.Encryptor(context, keys.createPublicKey(), keys.secretKey());
  const plain = encoder.encode(Float64Array.from([0]), scale)!;
  const ciphertext = encryptor.encryptSymmetricSerializable(plain);
  const seeded = ciphertext.saveArray(seal.ComprModeType.none);
  const publicKey = keys.createPublicKeySerializable();
  const seededPublicKeyBytes = publicKey.saveArray(seal.ComprModeType.none).length;
  const slots = encoder.slotCount;
  const parameters = parms.saveArray(seal.ComprModeType.none);
  for (const object of [ciphertext, publicKey, plain, encryptor, keys, encoder, parms]) object.delete();
  return { seal, context, scale, slots, parameters, seededCiphertextBytes: seeded.length, seededPublicKeyBytes, parmsId: seeded.slice(16, 48) };
}
