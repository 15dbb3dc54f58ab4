import crypto from 'node:crypto';

/**
 * Invertible Bloom lookup tables (Goodrich and Mitzenmacher 2011) of the contributors to an output cell, for the
 * differencing guard. DuckDB builds them: each contributor's key is DuckDB's 64-bit hash of its privacy unit,
 * placed in one bucket of each of three sub-tables; a bucket keeps the number of keys, the XOR of the keys and
 * the XOR of a check value (the first 8 bytes of SHA-256 of the key's decimal text, which this side recomputes).
 * Subtracting two tables leaves a table of the symmetric difference, which peeling decodes when it is small
 * (a few times the sub-table size); when peeling fails, the difference is large.
 */
export const HASH_FUNCTIONS = 3;

export type Sketch = { subTableSize: number; counts: Int32Array; keys: BigUint64Array; checks: BigUint64Array };

export const checkOf = (key: bigint) => BigInt(`0x${crypto.createHash('sha256').update(key.toString()).digest('hex').slice(0, 16)}`);
export const bucketsOf = (key: bigint, subTableSize: number) =>
  Array.from({ length: HASH_FUNCTIONS }, (_, index) => index * subTableSize + Number((key >> BigInt(16 * index)) % BigInt(subTableSize)));

/** The SQL (run in the sandbox) that turns per-cell keys into bucket rows; `inner` yields __pds_g_* and __pds_k. */
export function sketchSql(inner: string, groupKeys: string[], subTableSize: number): string {
  const keys = groupKeys.join(', ');
  return (
    `SELECT ${keys ? `${keys}, ` : ''}__pds_b, count(*) AS __pds_c, bit_xor(__pds_k) AS __pds_kx, bit_xor(__pds_h) AS __pds_hx FROM (` +
    `SELECT ${keys ? `${keys}, ` : ''}__pds_k, ('0x' || left(sha256(CAST(__pds_k AS VARCHAR)), 16))::UBIGINT AS __pds_h, ` +
    `i * ${subTableSize} + ((__pds_k >> (16 * i)) % ${subTableSize}) AS __pds_b ` +
    `FROM (${inner}) AS __pds_keys CROSS JOIN range(${HASH_FUNCTIONS}) AS __pds_fn(i)) AS __pds_placed GROUP BY ${keys ? `${keys}, ` : ''}__pds_b`
  );
}

export function emptySketch(subTableSize: number): Sketch {
  const size = subTableSize * HASH_FUNCTIONS;
  return { subTableSize, counts: new Int32Array(size), keys: new BigUint64Array(size), checks: new BigUint64Array(size) };
}

/** Contributors in a cell: every key lands exactly once in the first sub-table. */
export function contributorsOf(sketch: Sketch): number {
  let total = 0;
  for (let bucket = 0; bucket < sketch.subTableSize; bucket++) total += sketch.counts[bucket]!;
  return total;
}

export function encodeSketch(sketch: Sketch): string {
  return Buffer.concat([Buffer.from(sketch.counts.buffer), Buffer.from(sketch.keys.buffer), Buffer.from(sketch.checks.buffer)]).toString('base64');
}

export function decodeSketch(text: string, subTableSize: number): Sketch {
  const bytes = Buffer.from(text, 'base64');
  const size = subTableSize * HASH_FUNCTIONS;
  const copy = (offset: number, length: number) => bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + length);
  return {
    subTableSize,
    counts: new Int32Array(copy(0, size * 4)),
    keys: new BigUint64Array(copy(size * 4, size * 8)),
    checks: new BigUint64Array(copy(size * 12, size * 8)),
  };
}

/**
 * The size of the symmetric difference of two cells' contributor sets, or null when it is too large to decode
 * (a decoding failure means many differing contributors, which is what the guard wants to see).
 */
export function symmetricDifference(a: Sketch, b: Sketch): number | null {
  const size = a.counts.length;
  const counts = new Int32Array(size);
  const keys = new BigUint64Array(size);
  const checks = new BigUint64Array(size);
  for (let bucket = 0; bucket < size; bucket++) {
    counts[bucket] = a.counts[bucket]! - b.counts[bucket]!;
    keys[bucket] = a.keys[bucket]! ^ b.keys[bucket]!;
    checks[bucket] = a.checks[bucket]! ^ b.checks[bucket]!;
  }
  const pure = (bucket: number) =>
    (counts[bucket] === 1 || counts[bucket] === -1) && keys[bucket] !== 0n && checks[bucket] === checkOf(keys[bucket]!) && bucketsOf(keys[bucket]!, a.subTableSize).includes(bucket);
  let decoded = 0;
  const queue = Array.from({ length: size }, (_, bucket) => bucket).filter(pure);
  while (queue.length > 0) {
    const bucket = queue.pop()!;
    if (!pure(bucket)) continue;
    const key = keys[bucket]!;
    const sign = counts[bucket]!;
    const check = checks[bucket]!;
    for (const target of bucketsOf(key, a.subTableSize)) {
      counts[target]! -= sign;
      keys[target]! ^= key;
      checks[target]! ^= check;
      if (pure(target)) queue.push(target);
    }
    decoded += 1;
    if (decoded > size) return null;
  }
  for (let bucket = 0; bucket < size; bucket++) if (counts[bucket] !== 0 || keys[bucket] !== 0n || checks[bucket] !== 0n) return null;
  return decoded;
}

/** Builds per-cell sketches from the rows of the sketch query. */
export function sketchesFromRows(columns: string[], rows: unknown[][], groupKeyCount: number, subTableSize: number): Map<string, Sketch> {
  const position = (name: string) => columns.indexOf(name);
  const groups = Array.from({ length: groupKeyCount }, (_, index) => position(`__pds_g_${index}`));
  const [bucketAt, countAt, keysAt, checksAt] = ['__pds_b', '__pds_c', '__pds_kx', '__pds_hx'].map(position) as [number, number, number, number];
  const sketches = new Map<string, Sketch>();
  for (const row of rows) {
    const key = JSON.stringify(groups.map((index) => row[index] ?? null));
    let sketch = sketches.get(key);
    if (!sketch) sketches.set(key, (sketch = emptySketch(subTableSize)));
    const bucket = Number(row[bucketAt]);
    sketch.counts[bucket] = Number(row[countAt]);
    sketch.keys[bucket] = BigInt(String(row[keysAt]));
    sketch.checks[bucket] = BigInt(String(row[checksAt]));
  }
  return sketches;
}
