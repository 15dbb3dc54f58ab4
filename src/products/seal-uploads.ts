import crypto from 'node:crypto';
import type { CipherText } from 'node-seal/implementation/cipher-text.js';
import type { Context } from 'node-seal/implementation/context.js';
import type { PublicKey } from 'node-seal/implementation/public-key.js';
import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import { AppError } from '../errors/app-error.js';

/**
 * Loads a consumer's encrypted request (BFV or CKKS) only once it is exactly what the server's parameters
 * produce: seeded and uncompressed (so the consumer could not choose the random parts the server relies on), of
 * the exact byte sizes, with a SEAL header and the server's parms_id — all checked before SEAL parses anything.
 * `fresh` then checks the loaded ciphertext (size, form, level or scale). The caller owns, and deletes, the result.
 */
export type SealParameters = { seal: SEALLibrary; context: Context; seededCiphertextBytes: number; seededPublicKeyBytes: number; parmsId: Uint8Array };
export type EncryptedUpload = { ciphertext: Uint8Array; publicKey: Uint8Array };
export type LoadedUpload = { ciphertext: CipherText; publicKey: PublicKey };

export const refused = (problem: string) => new AppError('CIPHERTEXT_REJECTED', `the encrypted request was refused before evaluation: ${problem}`);

/** Checks a public key's bytes without SEAL (exact seeded size, an uncompressed SEAL object). */
function checkKeyBytes(parameters: SealParameters, publicKey: Uint8Array): void {
  if (publicKey.length !== parameters.seededPublicKeyBytes) {
    throw refused(`the public key must be a seeded, uncompressed public key of ${parameters.seededPublicKeyBytes} bytes`);
  }
  if (!isUncompressedSealObject(publicKey)) throw refused('the public key is not an uncompressed SEAL object');
}

const isUncompressedSealObject = (bytes: Uint8Array) => bytes[0] === 0x5e && bytes[1] === 0xa1 && bytes[5] === 0;

/** A public key alone, as registered for later calls: checked like the key of a request, loaded, then freed. */
export function checkSeededPublicKey(parameters: SealParameters, bytes: Uint8Array): void {
  checkKeyBytes(parameters, bytes);
  const publicKey = parameters.seal.PublicKey();
  try {
    publicKey.loadArray(parameters.context, bytes);
  } catch {
    throw refused('SEAL could not load the public key under the server parameters');
  } finally {
    publicKey.delete();
  }
}

export function loadSeededUpload(parameters: SealParameters, upload: EncryptedUpload, fresh: (ciphertext: CipherText) => string | undefined): LoadedUpload {
  if (upload.ciphertext.length !== parameters.seededCiphertextBytes) {
    throw refused(`the ciphertext must be a seeded, uncompressed ciphertext of ${parameters.seededCiphertextBytes} bytes under the parameters of he-params`);
  }
  checkKeyBytes(parameters, upload.publicKey);
  if (!isUncompressedSealObject(upload.ciphertext)) throw refused('the ciphertext is not an uncompressed SEAL object');
  if (!crypto.timingSafeEqual(upload.ciphertext.subarray(16, 48), parameters.parmsId)) throw refused('the ciphertext was made under other encryption parameters');

  const ciphertext = parameters.seal.CipherText();
  const publicKey = parameters.seal.PublicKey();
  let problem: string | undefined;
  try {
    ciphertext.loadArray(parameters.context, upload.ciphertext);
    publicKey.loadArray(parameters.context, upload.publicKey);
    problem = fresh(ciphertext);
  } catch {
    problem = 'SEAL could not load it under the server parameters';
  }
  if (problem) {
    ciphertext.delete();
    publicKey.delete();
    throw refused(problem);
  }
  return { ciphertext, publicKey };
}
