import crypto from 'node:crypto';
import type { CkksContext } from './client/ckks.js';
import { loadSeededUpload, type EncryptedUpload, type LoadedUpload } from './seal-uploads.js';

/**
 * Encrypted scoring (CKKS): the consumer sends Enc(x) with feature i in slot i; the server returns
 *   Rescale(Enc(x) ⊙ w) + R + Enc_pk(0)
 * where w holds the coefficients in slots 1..p and R is random with Σ_{i=0..p} R_i = intercept, and random in
 * every other slot. Summing slots 0..p of the decryption gives the linear predictor; one slot alone shows a
 * masked product, not a coefficient. The features never leave the consumer in clear.
 *
 * What it does not hide: the score itself, which reveals a linear model after p+1 chosen calls. The
 * coefficients are a released output (they passed the model's release checks); quotas bound how fast they can
 * be re-derived. CKKS decryption also shows approximation noise: no flooding is applied here (see docs).
 */
/** Loads the request (see seal-uploads.ts): a fresh two-part ciphertext at the agreed scale. */
export function checkScoringRequest(ckks: CkksContext, upload: EncryptedUpload): LoadedUpload {
  return loadSeededUpload(ckks, upload, (ciphertext) =>
    ciphertext.size !== 2 || Math.abs(Math.log2(ciphertext.scale) - Math.log2(ckks.scale)) > 1e-9 ? 'the ciphertext is not fresh at the agreed scale' : undefined,
  );
}

/** Evaluates the masked products; owns, and frees, the loaded ciphertext and key whatever happens. */
export function scoreEncrypted(ckks: CkksContext, loaded: LoadedUpload, coefficients: number[]): Uint8Array {
  const { seal } = ckks;
  const { ciphertext, publicKey } = loaded;
  const encoder = seal.CKKSEncoder(ckks.context);
  const evaluator = seal.Evaluator(ckks.context);
  const owned: Array<{ delete: () => void }> = [ciphertext, publicKey, encoder, evaluator];
  try {
    const p = coefficients.length - 1;
    const weights = new Float64Array(ckks.slots);
    for (let i = 1; i <= p; i++) weights[i] = coefficients[i]!;
    const weightPlain = encoder.encode(weights, ckks.scale)!;
    owned.push(weightPlain);
    evaluator.multiplyPlain(ciphertext, weightPlain, ciphertext);
    evaluator.rescaleToNext(ciphertext, ciphertext);

    // Masks: uniform in ±2^10, the first p+1 summing to the intercept.
    const bound = 1024;
    const masks = new Float64Array(ckks.slots);
    let sum = 0;
    for (let i = 0; i < ckks.slots; i++) {
      masks[i] = (crypto.randomInt(0, 2 ** 40) / 2 ** 40 - 0.5) * 2 * bound;
      if (i <= p) sum += masks[i]!;
    }
    masks[0]! += coefficients[0]! - sum;
    const maskPlain = encoder.encode(masks, ciphertext.scale)!;
    owned.push(maskPlain);
    evaluator.plainModSwitchTo(maskPlain, ciphertext.parmsId, maskPlain);
    evaluator.addPlain(ciphertext, maskPlain, ciphertext);

    // A fresh encryption of zero under the consumer's key re-randomises the answer's second part.
    const encryptor = seal.Encryptor(ckks.context, publicKey);
    owned.push(encryptor);
    const zeroPlain = encoder.encode(new Float64Array(ckks.slots), ciphertext.scale)!;
    owned.push(zeroPlain);
    const zero = encryptor.encrypt(zeroPlain)!;
    owned.push(zero);
    evaluator.cipherModSwitchTo(zero, ciphertext.parmsId, zero);
    zero.setScale(ciphertext.scale);
    evaluator.add(ciphertext, zero, ciphertext);
    return ciphertext.saveArray(seal.ComprModeType.zstd);
  } finally {
    for (const object of owned) object.delete();
  }
}
