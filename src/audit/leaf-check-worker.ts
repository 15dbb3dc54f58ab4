/**
 * A worker thread of the verifier: checks one slice of the log's leaves. Leaves are independent, so the verifier
 * spreads them over the machine's cores.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { checkLeafSlice } from './leaf-check.js';

const { first, leaves } = workerData as { first: number; leaves: string[] };
const chunk = checkLeafSlice(first, leaves);
parentPort!.postMessage(chunk, [chunk.hashes.buffer as ArrayBuffer]);
