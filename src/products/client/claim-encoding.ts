/**
 * How a claimed value becomes something comparable without the value itself: the same on the server (computed
 * inside DuckDB from the record) and in the client (WebCrypto, in Node or a browser). Only the digest is ever
 * compared, and in encrypted mode only field elements derived from it are encrypted.
 *
 * digest = SHA-256(UTF-8("pds-verify/v1" US product US input US normalize(value))), US = U+001F.
 * normalize = Unicode NFC, then leading and trailing ASCII spaces removed (what DuckDB's trim removes).
 */
export const claimDomain = 'pds-verify/v1';
export const unitSeparator = '\u001f';

export function normalizeClaim(value: string): string {
  return value.normalize('NFC').replace(/^ +| +$/g, '');
}

export function claimPreimage(productId: string, inputName: string, value: string): string {
  return [claimDomain, productId, inputName, normalizeClaim(value)].join(unitSeparator);
}

export async function claimDigest(productId: string, inputName: string, value: string): Promise<Uint8Array> {
  const bytes = new TextEncoder().encode(claimPreimage(productId, inputName, value));
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
}

/** Bits per field element: below the 40-bit plaintext modulus, so every chunk is a distinct residue. */
export const chunkBits = 39;
export const chunksPerClaim = 2;

/** The field elements of one claim: two 39-bit chunks of its digest (78 bits; collisions are negligible). */
export function claimChunks(digest: Uint8Array): bigint[] {
  const chunks: bigint[] = [];
  for (let index = 0; index < chunksPerClaim; index++) {
    let value = 0n;
    for (const byte of digest.subarray(index * 5, index * 5 + 5)) value = (value << 8n) | BigInt(byte);
    chunks.push(value & ((1n << BigInt(chunkBits)) - 1n));
  }
  return chunks;
}
