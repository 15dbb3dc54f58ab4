import { api } from './api.js';
import { consistencyHolds } from './audit-check.js';

/**
 * The browser as a witness of the audit log, as a certificate-transparency monitor is one: it keeps the last
 * checkpoint it verified (tree size and root, in localStorage, per server) and, on the next verification, asks for
 * a consistency proof from that size to the new one. A log rewritten, truncated or forked since — even re-signed
 * by whoever holds the platform key — cannot produce it. Inclusion proofs alone would not catch that: they are
 * checked against whatever checkpoint the server shows now.
 */
export type Checkpoint = { tree_size: number; root_hash: string; timestamp: string };
export type Witnessing = { outcome: 'first' } | { outcome: 'consistent' | 'inconsistent'; since: Checkpoint };

const storageKey = 'pds-witnessed-checkpoint';

export function lastWitnessed(): Checkpoint | null {
  try {
    const kept = JSON.parse(localStorage.getItem(storageKey) ?? 'null') as Checkpoint | null;
    return kept && Number.isSafeInteger(kept.tree_size) && /^[0-9a-f]{64}$/.test(kept.root_hash) ? kept : null;
  } catch {
    return null;
  }
}

/** Whether `checkpoint` extends the last one this browser verified (nothing to compare with the first time). */
export async function witness(checkpoint: Checkpoint): Promise<Witnessing> {
  const since = lastWitnessed();
  if (!since) return { outcome: 'first' };
  if (since.tree_size > checkpoint.tree_size) return { outcome: 'inconsistent', since };
  const proof = await api<{ consistency_path: string[] }>('GET', `/v1/audit/proofs/consistency?first=${since.tree_size}&second=${checkpoint.tree_size}`);
  const holds = await consistencyHolds(since.tree_size, checkpoint.tree_size, since.root_hash, checkpoint.root_hash, proof.consistency_path);
  return { outcome: holds ? 'consistent' : 'inconsistent', since };
}

/** For a log known to have been rebuilt lawfully (a new deployment at the same address): the next check starts afresh. */
export function forgetWitnessed(): void {
  localStorage.removeItem(storageKey);
}

/** Kept only after everything verified: an inconsistent log never replaces the checkpoint it contradicts. */
export function rememberWitnessed(checkpoint: Checkpoint): void {
  localStorage.setItem(storageKey, JSON.stringify({ tree_size: checkpoint.tree_size, root_hash: checkpoint.root_hash, timestamp: checkpoint.timestamp }));
}
