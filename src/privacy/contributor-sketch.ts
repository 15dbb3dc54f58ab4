/**
 * Count-and-XOR sketches of the contributors to an output cell, for the differencing guard. DuckDB builds them:
 * each contributor's key is DuckDB's 64-bit hash of its privacy unit combined with a secret (not a keyed
 * pseudo-random function: stored sketches are encrypted, see differencing-guard.ts), placed in one of `buckets`
 * buckets; a bucket keeps the number of keys and the XOR of the keys.
 *
 * What the guard needs from two cells is not the exact size d of the symmetric difference of their contributor
 * sets but whether 1 ≤ d < threshold. Subtracting two sketches bucket by bucket gives a lower bound L ≤ d that is
 * at least 1 whenever d ≥ 1 (`differenceLowerBound`), so every pair below the threshold is caught — none slips
 * through, unlike peeling an invertible Bloom lookup table (used before, it failed to peel 0.07–0.1 % of
 * differences of 5–19 people, and such a pair was let through). L falls short of d only when three or more differing
 * contributors share a bucket from both sides, so the guard errs towards withholding, and only for differences
 * just above the threshold (measured in docs/privacy.md). One placement per key instead of three also makes the
 * sandbox's sketch query about a third of the cost.
 */
/** The sandbox variable holding the secret that keys the contributor hashes. */
export const SKETCH_SECRET_VARIABLE = 'pds_sketch_secret';
/**
 * Stored with every released cell: sketches of different layouts cannot be compared. `count-xor-rows`: keys of
 * contributors with several rows name those rows too (execution-plan.ts); `count-xor` keys named the unit only.
 */
export const SKETCH_LAYOUT = 'count-xor-rows';

export type Sketch = { buckets: number; counts: Int32Array; keys: BigUint64Array };

export const bucketOf = (key: bigint, buckets: number) => Number(key % BigInt(buckets));

/** The hidden column naming a cell by a hash of its group keys, in the main query and the sketch query alike. */
export const CELL_COLUMN = '__pds_cell';
/**
 * The parameter through which the sandbox hands the follow-up queries the cells the main query returned. Without
 * it they would cover every group before the operator's HAVING or LIMIT, could pass their row limit
 * and leave out exactly the cells that were output — a query shaped to drop a cell's sketch would have had that
 * cell escape the guard.
 */
export const CELLS_PARAMETER = 'pds_cells';
/** A condition keeping only the main query's cells, for the cell hash `expression`. */
export const inMainCells = (expression: string) => `${expression} IN (SELECT unnest($${CELLS_PARAMETER}))`;

/** Bytes of one bucket record in the hex string DuckDB builds: 2 of bucket index, 4 of count, 8 of key XOR. */
const RECORD_BYTES = 14;

/** The cell hash over hidden group columns: the same value the main query gives its cells. */
export const cellHashOf = (groupKeys: string[]) => `hash(${groupKeys.length > 0 ? groupKeys.join(', ') : '0'})`;

/**
 * The SQL (run in the sandbox) that builds each cell's sketch; `inner` yields __pds_g_* and __pds_k, and only the
 * main query's cells are kept (`inMainCells`). Grouped by (cell hash, bucket), each cell's non-empty buckets come
 * out as one hex string — so that a hundred thousand bucket values cross the process boundary as a few thousand
 * strings instead of as list entries (measured about twice as fast as lists). Each record names its bucket, so
 * the records are concatenated in any order.
 */
export function sketchSql(inner: string, groupKeys: string[], buckets: number): string {
  const cell = cellHashOf(groupKeys);
  const perBucket =
    `SELECT ${cell} AS ${CELL_COLUMN}, __pds_k % ${buckets} AS __pds_b, count(*) AS __pds_c, bit_xor(__pds_k) AS __pds_kx ` +
    `FROM (${inner}) AS __pds_inner GROUP BY ${CELL_COLUMN}, __pds_b`;
  // Filtered once grouped: a probe per bucket, not per row (per row it cost ~25 ms of 2.1 M rows, ~110 of 10 M).
  return (
    `SELECT ${CELL_COLUMN}, string_agg(printf('%04x%08x%016x', __pds_b, __pds_c, __pds_kx), '') AS __pds_sketch ` +
    `FROM (${perBucket}) AS __pds_buckets WHERE ${inMainCells(CELL_COLUMN)} GROUP BY ${CELL_COLUMN}`
  );
}

export function emptySketch(buckets: number): Sketch {
  return { buckets, counts: new Int32Array(buckets), keys: new BigUint64Array(buckets) };
}

/** A sketch built here from known keys (the same layout DuckDB builds): for tests, benchmarks and tools. */
export function sketchOfKeys(keys: bigint[], buckets: number): Sketch {
  const sketch = emptySketch(buckets);
  for (const key of keys) {
    const bucket = bucketOf(key, buckets);
    sketch.counts[bucket]! += 1;
    sketch.keys[bucket]! ^= key;
  }
  return sketch;
}

/** Contributors in a cell: every key lands in exactly one bucket. */
export function contributorsOf(sketch: Sketch): number {
  let total = 0;
  for (const count of sketch.counts) total += count;
  return total;
}

/** The sketch's bytes as stored (encrypted by the guard): counts, then key XORs, little-endian. */
export function sketchBytes(sketch: Sketch): Buffer {
  return Buffer.concat([Buffer.from(sketch.counts.buffer, sketch.counts.byteOffset, sketch.counts.byteLength), Buffer.from(sketch.keys.buffer, sketch.keys.byteOffset, sketch.keys.byteLength)]);
}

export function sketchFromBytes(bytes: Buffer, buckets: number): Sketch {
  if (bytes.length !== buckets * 12) throw new Error('a stored sketch does not have the expected size');
  const copy = (offset: number, length: number) => bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + length);
  return { buckets, counts: new Int32Array(copy(0, buckets * 4)), keys: new BigUint64Array(copy(buckets * 4, buckets * 8)) };
}

/**
 * A lower bound on the number of contributors in one cell and not the other, at least 1 whenever the two
 * differ (short of a 2⁻⁶⁴ accident of XOR). Per bucket, with α keys only in `a` and β only in `b`: the counts
 * differ by |α − β| ≤ α + β; when they are equal but the XORs are not, α = β ≥ 1, so at least 2 differ.
 * Counting stops at `stopAt`, where the caller's decision is already made.
 */
export function differenceLowerBound(a: Sketch, b: Sketch, stopAt = Number.POSITIVE_INFINITY): number {
  if (a.buckets !== b.buckets) throw new Error('sketches of different sizes cannot be compared');
  let bound = 0;
  for (let bucket = 0; bucket < a.buckets && bound < stopAt; bucket++) {
    const difference = a.counts[bucket]! - b.counts[bucket]!;
    if (difference !== 0) bound += Math.abs(difference);
    else if (a.keys[bucket] !== b.keys[bucket]) bound += 2;
  }
  return bound;
}

/**
 * Whether two cells may be a differencing pair: their contributors differ by at least one and, as far as the
 * sketches can tell, fewer than `threshold`. Every true pair is reported; a pair of cells differing by a little
 * more than the threshold sometimes is too (the safe direction).
 */
export function differencingSuspected(a: Sketch, b: Sketch, threshold: number): boolean {
  const bound = differenceLowerBound(a, b, threshold);
  return bound >= 1 && bound < threshold;
}

/** Builds per-cell sketches from the rows of the sketch query, keyed by the cell's hash. */
export function sketchesFromRows(columns: string[], rows: unknown[][], buckets: number): Map<string, Sketch> {
  const hexAt = columns.indexOf('__pds_sketch');
  const cellAt = columns.indexOf(CELL_COLUMN);
  if (hexAt < 0 || cellAt < 0) throw new Error('the sketch query returned an unexpected shape');
  const sketches = new Map<string, Sketch>();
  for (const row of rows) {
    const sketch = emptySketch(buckets);
    const bytes = Buffer.from(String(row[hexAt]), 'hex');
    for (let offset = 0; offset + RECORD_BYTES <= bytes.length; offset += RECORD_BYTES) {
      const bucket = bytes.readUInt16BE(offset);
      sketch.counts[bucket] = bytes.readUInt32BE(offset + 2);
      sketch.keys[bucket] = bytes.readBigUInt64BE(offset + 6);
    }
    sketches.set(String(row[cellAt]), sketch);
  }
  return sketches;
}

/** How run-job names a cell of the main result, matching `sketchesFromRows`: by its hash. */
export function cellKeyOf(columns: string[], row: unknown[]): string {
  return String(row[columns.indexOf(CELL_COLUMN)]);
}
