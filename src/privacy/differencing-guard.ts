import crypto from 'node:crypto';
import { and, between, eq, inArray } from 'drizzle-orm';
import type { Database } from '../db/connect.js';
import { jobs, releasedCells } from '../db/schema.js';
import type { KeyRing } from '../identity/keys.js';
import { sketchQueryName, type ExecutionPlan } from '../analysis/execution-plan.js';
import type { QueryResult } from '../sandbox/sandbox-protocol.js';
import { cellKeyOf, contributorsOf, differencingSuspected, emptySketch, SKETCH_LAYOUT, sketchBytes, sketchesFromRows, sketchFromBytes, type Sketch } from './contributor-sketch.js';

/**
 * The differencing guard for threshold-protected grades: a new cell whose contributors differ from those of an
 * already released (or checked and awaiting review) cell of the same dataset (any operator, any job) by at least
 * one and fewer than the threshold would let someone subtract the two and learn about that handful of people, so
 * it is suppressed. Candidates are pre-selected by contributor count (|n − m| must be below the threshold for the
 * difference to be), then compared by subtracting sketches — never by stored lists of identifiers.
 *
 * Stored sketches are encrypted (AES-256-GCM, a key derived from the platform key). The contributor keys inside
 * them are DuckDB hashes of the privacy unit combined with a secret, and DuckDB's hash combination is not a keyed
 * pseudo-random function: XOR-ing two stored single-contributor buckets cancels the secret, so anyone reading the
 * table with a list of candidate ID numbers could find which people they are. Encrypted, the table tells a reader
 * without the platform key nothing but the cells' contributor counts, and those only in bands of
 * `CONTRIBUTOR_BAND`: the exact count is inside the sealed sketch, and the band only pre-selects candidates.
 */
export type GuardKey = Buffer;

/**
 * Stored contributor counts are rounded down to a multiple of 5, the rounding base of the grades that round
 * counts (after OpenSAFELY), so the control plane holds no exact count of a released cell that its output shows
 * rounded. A wider band would cost more candidates to decrypt per job, not privacy.
 */
export const CONTRIBUTOR_BAND = 5;
export const contributorBandOf = (count: number) => Math.floor(count / CONTRIBUTOR_BAND) * CONTRIBUTOR_BAND;

export const guardKeyOf = (keys: KeyRing): GuardKey => Buffer.from(keys.derivedSecret('differencing-guard sketch storage'), 'hex');

/** What a stored sketch is bound to: moved to another dataset or layout, it no longer decrypts. */
const boundTo = (lineage: string, buckets: number) => Buffer.from(`${lineage}\u0000${SKETCH_LAYOUT}\u0000${buckets}`);

export function sealSketch(key: GuardKey, sketch: Sketch, lineage: string): string {
  const nonce = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce).setAAD(boundTo(lineage, sketch.buckets));
  return Buffer.concat([nonce, cipher.update(sketchBytes(sketch)), cipher.final(), cipher.getAuthTag()]).toString('base64');
}

/** The sketch, or null when it does not decrypt under this key (sealed under an earlier platform key). */
export function openSketch(key: GuardKey, stored: string, lineage: string, buckets: number): Sketch | null {
  const bytes = Buffer.from(stored, 'base64');
  if (bytes.length < 28) return null;
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12)).setAAD(boundTo(lineage, buckets));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    return sketchFromBytes(Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]), buckets);
  } catch {
    return null;
  }
}

/**
 * One sketched set per cell of a job (`cellKeys`: the main result's cells, in order). A figure's set may be
 * empty in a cell (`missingIsEmpty`); a unit's set is never, so a cell without one is withheld.
 */
export type GuardInput = { dataset: string; threshold: number; buckets: number; sketches: Map<string, Sketch>; cellKeys: string[]; key: GuardKey; missingIsEmpty?: boolean };

export async function cellsToGuard(db: Database, input: GuardInput): Promise<Set<number>> {
  // A cell without a sketch cannot be checked, so it is withheld. The sandbox sketches every output cell; this
  // holds against a fault, not a case that should arise.
  const flagged = new Set(input.cellKeys.flatMap((key, row) => (input.sketches.has(key) || input.missingIsEmpty ? [] : [row])));
  const contributorCounts = input.cellKeys.map((key) => (input.sketches.get(key) ? contributorsOf(input.sketches.get(key)!) : 0));
  const present = contributorCounts.filter((count) => count > 0);
  if (present.length === 0) return flagged;
  const low = Math.max(1, Math.min(...present) - input.threshold + 1);
  const high = Math.max(...present) + input.threshold - 1;
  const candidates = await db
    .select({ sketch: releasedCells.sketch })
    .from(releasedCells)
    .innerJoin(jobs, eq(jobs.id, releasedCells.jobId))
    .where(
      and(
        eq(releasedCells.lineage, input.dataset),
        // Only sketches of the same layout and size can be subtracted.
        eq(releasedCells.layout, SKETCH_LAYOUT),
        eq(releasedCells.buckets, input.buckets),
        // Outputs still waiting for review count too: otherwise two halves of a pair, both in review, would
        // each pass and could both be approved.
        inArray(jobs.status, ['checked', 'in_review', 'released']),
        between(releasedCells.contributors, contributorBandOf(low), contributorBandOf(high)),
      ),
    );
  const byCount = new Map<number, Sketch[]>();
  for (const candidate of candidates) {
    // A sketch sealed under an earlier platform key holds keys made with an earlier secret, which match no
    // contributor's key now: it could not flag anything, and is passed over.
    const sketch = openSketch(input.key, candidate.sketch, input.dataset, input.buckets);
    if (!sketch) continue;
    const count = contributorsOf(sketch);
    const list = byCount.get(count) ?? [];
    list.push(sketch);
    byCount.set(count, list);
  }
  input.cellKeys.forEach((key, row) => {
    const sketch = input.sketches.get(key);
    if (!sketch) return;
    const count = contributorCounts[row]!;
    for (let other = count - input.threshold + 1; other <= count + input.threshold - 1; other++) {
      for (const previous of byCount.get(other) ?? []) {
        if (differencingSuspected(sketch, previous, input.threshold)) {
          flagged.add(row);
          return;
        }
      }
    }
  });
  return flagged;
}

/** Keeps the sketches of the cells a job outputs, sealed, to guard later outputs against them. */
export async function recordCells(
  db: Database,
  input: GuardInput & { jobId: string; released: Set<number> },
): Promise<void> {
  const values = input.cellKeys.flatMap((key, row) => {
    const sketch = input.sketches.get(key);
    if (!sketch || !input.released.has(row)) return [];
    const sealed = sealSketch(input.key, sketch, input.dataset);
    return [{ id: `cell_${crypto.randomUUID()}`, jobId: input.jobId, lineage: input.dataset, layout: SKETCH_LAYOUT, buckets: input.buckets, contributors: contributorBandOf(contributorsOf(sketch)), sketch: sealed }];
  });
  for (let start = 0; start < values.length; start += 1000) await db.insert(releasedCells).values(values.slice(start, start + 1000));
}

/**
 * The guard for every set a plan sketches — each protected unit's contributors per cell, and each selective
 * figure's: the rows of the main result it flags, and the sets' sketches, to record once the output is released
 * (`recordGuardedCells`).
 */
export async function guardPlannedCells(db: Database, key: GuardKey, plan: ExecutionPlan, results: QueryResult[]): Promise<{ differencingRows: Set<number>; guards: GuardInput[] }> {
  const differencingRows = new Set<number>();
  const guards: GuardInput[] = [];
  if (!plan.sketch?.units) return { differencingRows, guards };
  const { buckets, threshold } = plan.sketch;
  const main = results.find((result) => result.name === 'main')!;
  const cellKeys = main.rows.map((row) => cellKeyOf(main.columns, row));
  const sets = plan.sketch.units.map((set) => {
    const sketched = results.find((result) => result.name === sketchQueryName(set))!;
    const guard: GuardInput = { sketches: sketchesFromRows(sketched.columns, sketched.rows, buckets), cellKeys, dataset: set.dataset, threshold, buckets, key, ...(set.measure === undefined ? {} : { missingIsEmpty: true }) };
    return { set, guard };
  });
  // Against what was released before (of the same dataset, any job, cells and figures alike).
  for (const { guard } of sets) {
    guards.push(guard);
    for (const row of await cellsToGuard(db, guard)) differencingRows.add(row);
  }
  // Within each cell: a figure against its cell and against the other figures, in the same unit — the cell's total
  // less a figure of 47 of its 52 firms, or two figures of 40 and 35, give away the handful between them.
  const empty = emptySketch(buckets);
  cellKeys.forEach((cell, row) => {
    const byUnit = new Map<number, Sketch[]>();
    for (const { set, guard } of sets) {
      const sketch = guard.sketches.get(cell) ?? (set.measure === undefined ? undefined : empty);
      if (sketch) byUnit.set(set.unitIndex, [...(byUnit.get(set.unitIndex) ?? []), sketch]);
    }
    for (const list of byUnit.values()) {
      for (let a = 0; a < list.length; a++) for (let b = a + 1; b < list.length; b++) if (differencingSuspected(list[a]!, list[b]!, threshold)) differencingRows.add(row);
    }
  });
  return { differencingRows, guards };
}

/** Records the released cells (positions in the main result) of every guarded set. */
export async function recordGuardedCells(db: Database, jobId: string, guards: GuardInput[], released: Set<number>): Promise<void> {
  for (const guard of guards) await recordCells(db, { jobId, ...guard, released });
}
