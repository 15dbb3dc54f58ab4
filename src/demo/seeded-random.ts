import crypto from 'node:crypto';

/**
 * A small deterministic generator (sfc32) for demo data only: the same seed gives the same data on every
 * machine. Never used for anything secret — noise, keys, masks and ids use node:crypto.
 */
export function seededRandom(seed: string) {
  const digest = crypto.createHash('sha256').update(seed).digest();
  let a = digest.readUInt32LE(0);
  let b = digest.readUInt32LE(4);
  let c = digest.readUInt32LE(8);
  let d = digest.readUInt32LE(12);
  const next = () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return {
    next,
    integer: (minimum: number, maximum: number) => minimum + Math.floor(next() * (maximum - minimum + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    /** Picks with weights proportional to 1/(rank+1): a few common values and a long tail, as surnames are. */
    pickSkewed: <T>(items: readonly T[]): T => items[Math.min(items.length - 1, Math.floor(items.length ** next()) - 1)]!,
  };
}
export type SeededRandom = ReturnType<typeof seededRandom>;
