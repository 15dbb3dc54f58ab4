import { isCanonicalJson } from './canonical-json.js';
import { leafHash } from './merkle.js';

export type LeafChunk = {
  /** The leaf hashes, 32 bytes each, in order. */
  hashes: Buffer;
  problems: Array<{ index: number; problem: string }>;
  /** Release events, kept for reconciliation; other events are checked and dropped. */
  releases: Array<{ index: number; event: Record<string, unknown> }>;
};

/** Checks a slice of leaves (valid JSON, RFC 8785 canonical, at its own index) and hashes them. */
export function checkLeafSlice(first: number, leaves: string[]): LeafChunk {
  const hashes = Buffer.alloc(leaves.length * 32);
  const problems: LeafChunk['problems'] = [];
  const releases: LeafChunk['releases'] = [];
  leaves.forEach((leaf, offset) => {
    const index = first + offset;
    let event: Record<string, unknown> | undefined;
    try {
      event = JSON.parse(leaf) as Record<string, unknown>;
    } catch {
      event = undefined;
    }
    if (!event || event.index !== index || !isCanonicalJson(leaf, event)) {
      problems.push({ index, problem: `leaf ${index} is not the canonical event recorded at that index` });
    } else if (event.type === 'job.released') {
      releases.push({ index, event });
    }
    leafHash(leaf).copy(hashes, offset * 32);
  });
  return { hashes, problems, releases };
}
