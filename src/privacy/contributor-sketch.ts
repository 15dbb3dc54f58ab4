/**
 * Invertible Bloom lookup tables (Goodrich and Mitzenmacher 2011) of the contributors to an output cell, for the
 * differencing guard. DuckDB builds them: each contributor's key is DuckDB's 64-bit hash of its privacy unit,
 * placed in one bucket of each of three sub-tables; a bucket keeps the number of keys, the XOR of the keys and
 * the XOR of a check value (the key modulo the Mersenne prime 2⁶¹ − 1: cheap in DuckDB, recomputed here, and not
 * linear in XOR, so a bucket holding several keys almost never passes for one holding a single key).
 * Subtracting two tables leaves a table of the symmetric difference, which peeling decodes when it is small
 * (a few times the sub-table size); when peeling fails, the difference is large.
 */
export const HASH_FUNCTIONS = 3;
/** The sandbox variable holding the secret that keys the contributor hashes. */
export const SKETCH_SECRET_VARIABLE = 'pds_sketch_secret';

export type Sketch = { subTableSize: number; counts: Int32Array; keys: BigUint64Array; checks: BigUint64Array };

const CHECK_MODULUS = 2305843009213693951n;
export const checkOf = (key: bigint) => key % CHECK_MODULUS;
export const bucketsOf = (key: bigint, subTableSize: number) =>
  Array.from({ length: HASH_FUNCTIONS }, (_, index) => index * subTableSize + Number((key >> BigInt(16 * index)) % BigInt(subTableSize)));

/** The hidden column naming a cell by a hash of its group keys, in the main query and the sketch query alike. */
export const CELL_COLUMN = '__pds_cell';

/**
 * The SQL (run in the sandbox) that builds each cell's sketch; `inner` yields __pds_g_* and __pds_k. The keys are
 * materialised once with the cell's hash, placed in the three sub-tables by a UNION ALL (measured faster here than
 * a cross join or an unnest) and grouped by (cell hash, bucket). Each cell's buckets come out as one hex string —
 * per bucket 4 digits of index, 8 of count, 16 of key XOR and 16 of check XOR — so that a million bucket values
 * cross the process boundary as a few thousand strings instead of a million list entries. Each record names its
 * bucket, so the records are concatenated in any order: ordering them and building each with four lpad/to_hex
 * calls took 320 ms of a 2.1 M-row sketch, one printf per record and no ORDER BY 166 ms (bench/sandbox-overhead).
 */
export function sketchSql(inner: string, groupKeys: string[], subTableSize: number): string {
  const cell = `hash(${groupKeys.length > 0 ? groupKeys.join(', ') : '0'})`;
  const placed = Array.from(
    { length: HASH_FUNCTIONS },
    (_, index) => `SELECT ${CELL_COLUMN}, __pds_k, ${index * subTableSize} + ((__pds_k >> ${16 * index}) % ${subTableSize}) AS __pds_b FROM __pds_keys`,
  ).join(' UNION ALL ');
  const buckets =
    `SELECT ${CELL_COLUMN}, __pds_b, count(*) AS __pds_c, bit_xor(__pds_k) AS __pds_kx, bit_xor(__pds_k % ${CHECK_MODULUS}::UBIGINT) AS __pds_hx ` +
    `FROM (${placed}) AS __pds_placed GROUP BY ${CELL_COLUMN}, __pds_b`;
  return (
    `WITH __pds_keys AS MATERIALIZED (SELECT ${cell} AS ${CELL_COLUMN}, __pds_k FROM (${inner}) AS __pds_inner) ` +
    `SELECT ${CELL_COLUMN}, string_agg(printf('%04x%08x%016x%016x', __pds_b, __pds_c, __pds_kx, __pds_hx), '') AS __pds_sketch ` +
    `FROM (${buckets}) AS __pds_buckets GROUP BY ${CELL_COLUMN}`
  );
}

export function emptySketch(subTableSize: number): Sketch {
  const size = subTableSize * HASH_FUNCTIONS;
  return { subTableSize, counts: new Int32Array(size), keys: new BigUint64Array(size), checks: new BigUint64Array(size) };
}

/** A sketch built here from known keys (the same layout DuckDB builds): for tests, benchmarks and tools. */
export function sketchOfKeys(keys: bigint[], subTableSize: number): Sketch {
  const sketch = emptySketch(subTableSize);
  for (const key of keys) {
    for (const bucket of bucketsOf(key, subTableSize)) {
      sketch.counts[bucket]! += 1;
      sketch.keys[bucket]! ^= key;
      sketch.checks[bucket]! ^= checkOf(key);
    }
  }
  return sketch;
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

export type SketchComparison = { kind: 'large' } | { kind: 'decoded'; difference: number } | { kind: 'undecodable' };

/** The size of the symmetric difference, or null when it is proven large or cannot be decoded. */
export function symmetricDifference(a: Sketch, b: Sketch, below?: number): number | null {
  const comparison = compareSketches(a, b, below);
  return comparison.kind === 'decoded' ? comparison.difference : null;
}

/**
 * Whether two cells are a differencing pair: their contributors differ by at least one and fewer than
 * `threshold`. A subtraction that does not peel counts as no pair. Measured (3 × threshold buckets): a
 * difference of one person — the classic attack — always peels; 5 and 9 people at threshold 10 fail to peel
 * 1 % and 4 % of the time, 19 people at threshold 20 2 %. Treating those as pairs was tried and withheld many
 * legitimate small cells, whose unrelated contributor sets also fail to peel (docs/privacy.md).
 */
export function differencingSuspected(a: Sketch, b: Sketch, threshold: number): boolean {
  const comparison = compareSketches(a, b, threshold);
  return comparison.kind === 'decoded' && comparison.difference >= 1 && comparison.difference < threshold;
}

/**
 * The size of the symmetric difference of two cells' contributor sets, or null when it is too large to decode
 * (a decoding failure means many differing contributors, which is what the guard wants to see).
 */
export function compareSketches(a: Sketch, b: Sketch, below?: number): SketchComparison {
  const size = a.counts.length;
  if (below !== undefined) {
    // Each differing contributor moves the counts of exactly three buckets by one, so a count distance of 3·below
    // or more proves a difference of at least `below` without decoding (the common case, and far cheaper).
    let distance = 0;
    for (let bucket = 0; bucket < size; bucket++) distance += Math.abs(a.counts[bucket]! - b.counts[bucket]!);
    if (distance >= HASH_FUNCTIONS * below) return { kind: 'large' };
  }
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
    if (decoded > size) return { kind: 'undecodable' };
  }
  for (let bucket = 0; bucket < size; bucket++) if (counts[bucket] !== 0 || keys[bucket] !== 0n || checks[bucket] !== 0n) return { kind: 'undecodable' };
  return { kind: 'decoded', difference: decoded };
}

/**
 * Builds per-cell sketches from the rows of the sketch query, keyed by the cell's hash. Plans stored before the
 * hex form (buckets as lists, keyed by the group values) are still read, keyed as before.
 */
export function sketchesFromRows(columns: string[], rows: unknown[][], groupKeyCount: number, subTableSize: number): Map<string, Sketch> {
  const position = (name: string) => columns.indexOf(name);
  const sketches = new Map<string, Sketch>();
  const hexAt = position('__pds_sketch');
  if (hexAt >= 0) {
    const cellAt = position(CELL_COLUMN);
    for (const row of rows) {
      const sketch = emptySketch(subTableSize);
      const bytes = Buffer.from(String(row[hexAt]), 'hex');
      for (let offset = 0; offset + 22 <= bytes.length; offset += 22) {
        const bucket = bytes.readUInt16BE(offset);
        sketch.counts[bucket] = bytes.readUInt32BE(offset + 2);
        sketch.keys[bucket] = bytes.readBigUInt64BE(offset + 6);
        sketch.checks[bucket] = bytes.readBigUInt64BE(offset + 14);
      }
      sketches.set(String(row[cellAt]), sketch);
    }
    return sketches;
  }
  const groups = Array.from({ length: groupKeyCount }, (_, index) => position(`__pds_g_${index}`));
  const [bucketAt, countAt, keysAt, checksAt] = ['__pds_b', '__pds_c', '__pds_kx', '__pds_hx'].map(position) as [number, number, number, number];
  for (const row of rows) {
    const sketch = emptySketch(subTableSize);
    const buckets = row[bucketAt] as unknown[];
    const counts = row[countAt] as unknown[];
    const keys = row[keysAt] as unknown[];
    const checks = row[checksAt] as unknown[];
    buckets.forEach((bucket, index) => {
      const at = Number(bucket);
      sketch.counts[at] = Number(counts[index]);
      sketch.keys[at] = BigInt(String(keys[index]));
      sketch.checks[at] = BigInt(String(checks[index]));
    });
    sketches.set(JSON.stringify(groups.map((index) => row[index] ?? null)), sketch);
  }
  return sketches;
}

/** How run-job names a cell of the main result, matching `sketchesFromRows`: its hash where the plan has one. */
export function cellKeyOf(columns: string[], row: unknown[], groupKeyPositions: number[]): string {
  const cellAt = columns.indexOf(CELL_COLUMN);
  return cellAt >= 0 ? String(row[cellAt]) : JSON.stringify(groupKeyPositions.map((index) => row[index] ?? null));
}
