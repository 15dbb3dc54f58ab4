/**
 * A worker thread of the verifier: checks a slice of leaves (valid JSON, canonical, at its own index) and hashes
 * them. Leaves are independent, so the verifier spreads them over the machine's cores.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isCanonicalJson } from './canonical-json.js';
import { leafHash } from './merkle.js';

type Input = { first: number; leaves: string[] };
const { first, leaves } = workerData as Input;
const hashes = Buffer.alloc(leaves.length * 32);
const problems: Array<{ index: number; problem: string }> = [];
const releases: Array<{ index: number; event: Record<string, unknown> }> = [];
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
parentPort!.postMessage({ hashes, problems, releases }, [hashes.buffer as ArrayBuffer]);
