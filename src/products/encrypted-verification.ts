import crypto from 'node:crypto';
import { plaintextOf, type BfvContext } from './client/bfv.js';
import { loadSeededUpload, type EncryptedUpload, type LoadedUpload } from './seal-uploads.js';

/**
 * Encrypted verification, server side. The consumer sends Enc(C(x)) where C's first m coefficients are its
 * claims' field elements, and its public key. The server, which never decrypts, returns
 *
 *   Enc( (C(x) − A(x)) · P(x) + M(x) ) + Enc_pk(0), with flooded noise,
 *
 * where A holds the subject's actual field elements (and a random non-zero "no such subject" marker at
 * coefficient m when the subject is missing or fails the condition), P has fresh uniform weights exactly where
 * the constant coefficient of the product collects coefficients 0..m, and M is uniform on every coefficient
 * but the constant one. The consumer learns one value: 0 if every claim matches, else uniform — one bit.
 *
 * Why each step: re-randomising with a fresh encryption of zero hides P in the ciphertext's mask part (c1), and
 * flooding c0 with noise 2^60 times larger than what the multiplication can leave hides P in the noise. Both
 * rely on the public key and ciphertext being seeded (their random part expanded from a seed, so a consumer
 * cannot choose it): that is why only the exact seeded, uncompressed sizes are accepted.
 */
export type EncryptedClaimRequest = EncryptedUpload;

const floodBits = 108n;

export function checkEncryptedRequest(bfv: BfvContext, request: EncryptedClaimRequest): LoadedUpload {
  return loadSeededUpload(bfv, request, (ciphertext) =>
    ciphertext.size !== 2 || ciphertext.isNttForm || ciphertext.polyModulusDegree !== bfv.degree || ciphertext.coeffModulusSize !== bfv.dataModuli.length
      ? 'the ciphertext is not a fresh two-part ciphertext at the top level'
      : undefined,
  );
}

/**
 * Evaluates the answer. `actual` holds the subject's field elements in claim order, or undefined when the
 * subject is missing or fails the condition (then the same work is done against random values).
 */
export function evaluateEncryptedVerification(
  bfv: BfvContext,
  loaded: LoadedUpload,
  actual: bigint[] | undefined,
  fieldCount: number,
): Uint8Array {
  const { seal, degree, plainModulus } = bfv;
  const marker = fieldCount; // coefficient that carries "the subject exists and meets the condition"
  // All the randomness of one answer, drawn at once: degree − 1 mask values, marker + 1 weights, the rest spare.
  const random = uniformValuesBelow(plainModulus, degree + 2 * marker + 2);
  const actualCoefficients = new Map<number, bigint>();
  for (let index = 0; index < fieldCount; index++) actualCoefficients.set(index, actual ? actual[index]! : random.next());
  actualCoefficients.set(marker, actual ? 0n : nonZero(random));

  // coefficient 0 of D·P = d_0·P_0 − Σ_{i≥1} d_i·P_{n−i} (x^n = −1): weights only where claims and marker sit.
  const weights = new Map<number, bigint>([[0, random.next()]]);
  for (let index = 1; index <= marker; index++) weights.set(degree - index, random.next());
  const mask = new Map<number, bigint>();
  for (let index = 1; index < degree; index++) mask.set(index, random.next());

  // From here on this function owns the loaded ciphertext and key, and frees them (WASM memory is not collected).
  const evaluator = seal.Evaluator(bfv.context);
  const encryptor = seal.Encryptor(bfv.context, loaded.publicKey);
  const actualPlain = plaintextOf(bfv, actualCoefficients);
  const weightPlain = plaintextOf(bfv, weights);
  const maskPlain = plaintextOf(bfv, mask);
  const zeroPlain = plaintextOf(bfv, []);
  const freshZero = encryptor.encrypt(zeroPlain)!;
  const answer = loaded.ciphertext;
  try {
    evaluator.subPlain(answer, actualPlain, answer);
    evaluator.multiplyPlain(answer, weightPlain, answer);
    evaluator.addPlain(answer, maskPlain, answer);
    evaluator.add(answer, freshZero, answer);
    const flooded = floodNoise(bfv, answer.saveArray(seal.ComprModeType.none));
    answer.loadArray(bfv.context, flooded);
    return answer.saveArray(seal.ComprModeType.zstd);
  } finally {
    for (const object of [evaluator, encryptor, actualPlain, weightPlain, maskPlain, zeroPlain, freshZero, answer, loaded.publicKey]) object.delete();
  }
}

/** Adds uniform noise in [−2^108, 2^108] to every coefficient of c0, in each RNS residue. */
function floodNoise(bfv: BfvContext, raw: Uint8Array): Uint8Array {
  const moduli = bfv.dataModuli;
  const values = 2 * moduli.length * bfv.degree;
  const dataOffset = raw.length - values * 8;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const span = (1n << (floodBits + 1n)) + 1n;
  const noises = uniformValuesBelow(span, bfv.degree);
  for (let coefficient = 0; coefficient < bfv.degree; coefficient++) {
    const noise = noises.next() - (1n << floodBits);
    for (const [residue, modulus] of moduli.entries()) {
      const at = dataOffset + 8 * (residue * bfv.degree + coefficient);
      const current = view.getBigUint64(at, true);
      view.setBigUint64(at, (((current + noise) % modulus) + modulus) % modulus, true);
    }
  }
  return raw;
}

/**
 * A stream of values uniform in [0, bound), by rejection sampling over node:crypto bytes fetched in bulk (one
 * call per batch rather than per value: per-call overhead dominated the evaluation before).
 */
function uniformValuesBelow(bound: bigint, expected: number) {
  const bits = bound.toString(2).length;
  const width = Math.ceil(bits / 8);
  const excess = BigInt(width * 8 - bits);
  let buffer = Buffer.alloc(0);
  let offset = 0;
  return {
    next(): bigint {
      for (;;) {
        if (offset + width > buffer.length) {
          // Rejections are rarer than one in two; a quarter more than expected nearly always suffices.
          buffer = crypto.randomBytes(width * Math.max(16, Math.ceil(expected * 1.25)));
          offset = 0;
        }
        let value = 0n;
        for (let index = 0; index < width; index += 6) {
          const size = Math.min(6, width - index);
          value = (value << BigInt(size * 8)) | BigInt(buffer.readUIntBE(offset + index, size));
        }
        offset += width;
        value >>= excess;
        if (value < bound) return value;
      }
    },
  };
}

function nonZero(random: { next: () => bigint }): bigint {
  for (;;) {
    const value = random.next();
    if (value !== 0n) return value;
  }
}
