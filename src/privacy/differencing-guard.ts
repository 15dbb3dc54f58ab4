import crypto from 'node:crypto';
import { and, between, eq, inArray } from 'drizzle-orm';
import type { Database } from '../db/connect.js';
import { jobs, releasedCells } from '../db/schema.js';
import { contributorsOf, decodeSketch, differencingSuspected, encodeSketch, SKETCH_LAYOUT, type Sketch } from './contributor-sketch.js';

/**
 * The differencing guard for threshold-protected grades: a new cell whose contributors differ from those of an
 * already released (or checked and awaiting review) cell of the same dataset (any operator, any job) by at least one and fewer than the threshold
 * would let someone subtract the two and learn about that handful of people, so it is suppressed.
 * Candidates are pre-selected by contributor count (|n − m| must be below the threshold for the difference to
 * be), then compared by subtracting sketches — never by stored lists of identifiers.
 */
export async function cellsToGuard(
  db: Database,
  input: { dataset: string; threshold: number; buckets: number; sketches: Map<string, Sketch>; cellKeys: string[] },
): Promise<Set<number>> {
  const flagged = new Set<number>();
  const contributorCounts = input.cellKeys.map((key) => (input.sketches.get(key) ? contributorsOf(input.sketches.get(key)!) : 0));
  const present = contributorCounts.filter((count) => count > 0);
  if (present.length === 0) return flagged;
  const low = Math.max(1, Math.min(...present) - input.threshold + 1);
  const high = Math.max(...present) + input.threshold - 1;
  const candidates = await db
    .select({ contributors: releasedCells.contributors, sketch: releasedCells.sketch })
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
        between(releasedCells.contributors, low, high),
      ),
    );
  const byCount = new Map<number, Sketch[]>();
  for (const candidate of candidates) {
    const list = byCount.get(candidate.contributors) ?? [];
    list.push(decodeSketch(candidate.sketch, input.buckets));
    byCount.set(candidate.contributors, list);
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

/** Keeps the sketches of the cells a job outputs, to guard later outputs against them. */
export async function recordCells(
  db: Database,
  input: { jobId: string; dataset: string; buckets: number; sketches: Map<string, Sketch>; cellKeys: string[]; released: Set<number> },
): Promise<void> {
  const values = input.cellKeys.flatMap((key, row) => {
    const sketch = input.sketches.get(key);
    if (!sketch || !input.released.has(row)) return [];
    return [
      { id: `cell_${crypto.randomUUID()}`, jobId: input.jobId, lineage: input.dataset, layout: SKETCH_LAYOUT, buckets: input.buckets, contributors: contributorsOf(sketch), sketch: encodeSketch(sketch) },
    ];
  });
  for (let start = 0; start < values.length; start += 1000) await db.insert(releasedCells).values(values.slice(start, start + 1000));
}
