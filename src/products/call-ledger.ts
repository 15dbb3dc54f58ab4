import { sql } from 'drizzle-orm';
import { lockAuditLog, nextLeafIndex, numberAuditLeaves, type AuditEvent } from '../audit/audit-log.js';
import { bulkInsert, rowsFor } from '../db/bulk-insert.js';
import type { Database } from '../db/connect.js';
import { rowsOf } from '../db/raw-rows.js';
import { auditLeaves, productCalls } from '../db/schema.js';
import type { AppError } from '../errors/app-error.js';
import { replayRefusals, type CallReplays, type EarlierCall, type RetryKey } from './call-replays.js';
import type { QuotaClaim, SharedCounts, SharedQuotas } from './shared-quotas.js';

/**
 * Meters product calls and logs each as an audit leaf, with group commit: calls that arrive while a write is in
 * flight go together in the next transaction (up to 500), so a busy product costs one transaction per batch
 * rather than per call. In that transaction, under the audit log's lock, a call retried under an
 * Idempotency-Key another process (or this one, before a restart) answered is given that answer (call-replays.ts),
 * then the shared quotas settle the others (admitted with its fee, or refused) before the admitted ones are
 * written. A call is answered only after its leaf and metering row have committed; if the write fails, every call
 * in the batch fails (fail closed: no answer without a record).
 */
export type MeteredCall = Omit<typeof productCalls.$inferInsert, 'auditIndex' | 'feeFen'>;
/**
 * What the ledger records: the call, its claim on the quotas, its audit event once the fee is known, and for a
 * call sent with an Idempotency-Key, the key and the sealed answer to keep for its retries.
 */
export type CallEntry = { call: MeteredCall; claim: QuotaClaim; event: (feeFen: number) => AuditEvent; retry?: { key: RetryKey; sealed: Buffer } };
/** A recorded call's leaf and fee; or, for a retry, the earlier call's, with the answer kept for it. */
export type RecordedCall = { auditIndex: number; feeFen: number; replayOf?: { sealed: Buffer } };

type Outcome = { kind: 'admitted'; feeFen: number } | { kind: 'refused'; refusal: AppError } | { kind: 'replayed'; earlier: EarlierCall } | { kind: 'same key as'; offset: number };

const maxBatch = 500;

export function createCallLedger(
  db: Database,
  clock: () => Date,
  options: {
    exclusiveTransactions: boolean;
    sharedQuotas: SharedQuotas;
    callReplays: CallReplays;
    /** Told the shared counters a batch read, as they stand after it. */
    onCounts: (counts: SharedCounts, now: Date) => void;
    /**
     * Told of each call this process admitted that the batch did not record: answered with an earlier call's
     * answer, or refused by the shared counts or as a reused key.
     */
    onNotRecorded: (claim: QuotaClaim) => void;
  },
) {
  let pending: Array<CallEntry & { resolve: (recorded: RecordedCall) => void; reject: (error: unknown) => void }> = [];
  let flushing: Promise<void> | undefined;

  async function flush(): Promise<void> {
    while (pending.length > 0) {
      // Each batch is taken after the event loop's pending I/O has run, not in the same microtask run: on PGlite
      // a transaction executes on this thread without yielding to I/O, so taking the batch at once would commit
      // each call alone while the next requests wait unparsed (measured: batches of 1, a fifth of the throughput).
      await new Promise<void>((resolve) => setImmediate(resolve));
      const batch = pending.slice(0, maxBatch);
      pending = pending.slice(maxBatch);
      try {
        const now = clock();
        const { outcomes, leafOf, counts } = await db.transaction(async (tx) => {
          await lockAuditLog(tx, { exclusive: options.exclusiveTransactions });
          // One statement reads where the log goes on, the counters the batch's quotas need, and earlier calls
          // under the batch's retry keys.
          const quotas = options.sharedQuotas.prepare(batch.map((entry) => entry.claim));
          const retries = batch.flatMap((entry) => (entry.retry ? [entry.retry.key] : []));
          type Read = Parameters<typeof quotas.settle>[0] & { next_leaf: string | number; earlier_calls: Parameters<CallReplays['earlierCallsOf']>[0] };
          const [read] = await rowsOf<Read>(tx, sql`SELECT (SELECT ${nextLeafIndex} FROM ${auditLeaves}) AS next_leaf, ${quotas.columns}, ${options.callReplays.earlierCallsColumn(retries, now)}`);
          const outcomes = replaysOf(batch, options.callReplays.earlierCallsOf(read!.earlier_calls));
          const settled = quotas.settle(read!, outcomes.map((outcome) => outcome === undefined));
          settled.settlements.forEach((settlement, offset) => {
            if (settlement) outcomes[offset] = settlement.admitted ? { kind: 'admitted', feeFen: settlement.feeFen } : { kind: 'refused', refusal: settlement.refusal };
          });
          const admitted = batch.flatMap((entry, offset) => {
            const outcome = outcomes[offset]!;
            return outcome.kind === 'admitted' ? [{ entry, offset, feeFen: outcome.feeFen }] : [];
          });
          const leaves = numberAuditLeaves(admitted.map(({ entry, feeFen }) => entry.event(feeFen)), Number(read!.next_leaf), now);
          const leafOf = new Map(admitted.map(({ offset }, position) => [offset, leaves[position]!.leafIndex]));
          const calls = admitted.map(({ entry, feeFen }, position) => ({ ...entry.call, feeFen, auditIndex: leaves[position]!.leafIndex }));
          const kept = admitted.flatMap(({ entry, offset, feeFen }) => (entry.retry ? [{ retry: entry.retry.key, callId: entry.call.id, auditIndex: leafOf.get(offset)!, feeFen, sealed: entry.retry.sealed }] : []));
          await bulkInsert(tx, rowsFor(auditLeaves, leaves), rowsFor(productCalls, calls), ...settled.store, ...options.callReplays.keep(kept, now));
          return { outcomes: outcomes as Outcome[], leafOf, counts: settled.counts };
        });
        batch.forEach((entry, offset) => {
          let outcome = outcomes[offset]!;
          let at = offset;
          if (outcome.kind === 'same key as') {
            at = outcome.offset;
            outcome = outcomes[at]!;
          }
          if (outcome.kind === 'admitted') {
            const recorded = { auditIndex: leafOf.get(at)!, feeFen: outcome.feeFen };
            entry.resolve(at === offset ? recorded : { ...recorded, replayOf: { sealed: batch[at]!.retry!.sealed } });
          } else if (outcome.kind === 'replayed') entry.resolve({ auditIndex: outcome.earlier.auditIndex, feeFen: outcome.earlier.feeFen, replayOf: { sealed: outcome.earlier.sealed } });
          else entry.reject(outcome.kind === 'refused' ? outcome.refusal : replayRefusals.keyReused());
        });
        // After the answers: the calls have committed, whatever becomes of this process's copy of the counts.
        batch.forEach((entry, offset) => {
          if (outcomes[offset]!.kind !== 'admitted') options.onNotRecorded(entry.claim);
        });
        options.onCounts(counts, now);
      } catch (error) {
        for (const entry of batch) entry.reject(error);
        // Nothing of the batch was recorded.
        for (const entry of batch) options.onNotRecorded(entry.claim);
      }
    }
  }

  function schedule(): Promise<void> {
    flushing ??= Promise.resolve()
      .then(flush)
      .finally(() => {
        flushing = undefined;
        // A call that arrived after the loop's last check is picked up by a new round.
        if (pending.length > 0) void schedule();
      });
    return flushing;
  }

  return {
    /** Resolves with the call's audit leaf index and fee once it has committed; rejects when a quota refuses it. */
    record(entry: CallEntry): Promise<RecordedCall> {
      return new Promise<RecordedCall>((resolve, reject) => {
        pending.push({ ...entry, resolve, reject });
        void schedule();
      });
    },
    /** Waits until everything recorded so far has been written (shutdown, tests). */
    async drain(): Promise<void> {
      while (pending.length > 0 || flushing) await (flushing ?? schedule());
    },
  };
}

export type CallLedger = ReturnType<typeof createCallLedger>;

/**
 * Which calls of a batch are retries of a call already answered: under a key kept from earlier (answered with
 * that call's answer, or refused when the request differs), or under the key of a call earlier in the same batch.
 * The others (undefined) are left to the quotas.
 */
function replaysOf(batch: CallEntry[], earlier: EarlierCall[]): Array<Outcome | undefined> {
  const kept = new Map(earlier.map((call) => [call.keyHash, call]));
  const firstInBatch = new Map<string, number>();
  // Key hashes are keyed by consumer as well, so one consumer's key never answers another's call.
  return batch.map((entry, offset): Outcome | undefined => {
    if (!entry.retry) return undefined;
    const { keyHash, requestHash } = entry.retry.key;
    const before = kept.get(keyHash);
    if (before) return before.requestHash === requestHash ? { kind: 'replayed', earlier: before } : { kind: 'refused', refusal: replayRefusals.keyReused() };
    const first = firstInBatch.get(keyHash);
    if (first === undefined) {
      firstInBatch.set(keyHash, offset);
      return undefined;
    }
    return batch[first]!.retry!.key.requestHash === requestHash ? { kind: 'same key as', offset: first } : { kind: 'refused', refusal: replayRefusals.keyReused() };
  });
}
