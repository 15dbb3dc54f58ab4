import { sql } from 'drizzle-orm';
import { lockAuditLog, nextLeafIndex, numberAuditLeaves, type AuditEvent } from '../audit/audit-log.js';
import { bulkInsert, rowsFor } from '../db/bulk-insert.js';
import type { Database } from '../db/connect.js';
import { rowsOf } from '../db/raw-rows.js';
import { auditLeaves, productCalls } from '../db/schema.js';
import type { QuotaClaim, SharedCounts, SharedQuotas } from './shared-quotas.js';

/**
 * Meters product calls and logs each as an audit leaf, with group commit: calls that arrive while a write is in
 * flight go together in the next transaction (up to 500), so a busy product costs one transaction per batch
 * rather than per call. In that transaction, under the audit log's lock, the shared quotas settle each call
 * (admitted with its fee, or refused) before the admitted ones are written. A call is answered only after its
 * leaf and metering row have committed; if the write fails, every call in the batch fails (fail closed: no
 * answer without a record).
 */
export type MeteredCall = Omit<typeof productCalls.$inferInsert, 'auditIndex' | 'feeFen'>;
/** What the ledger records: the call, its claim on the quotas, and its audit event once the fee is known. */
export type CallEntry = { call: MeteredCall; claim: QuotaClaim; event: (feeFen: number) => AuditEvent };
export type RecordedCall = { auditIndex: number; feeFen: number };

const maxBatch = 500;

export function createCallLedger(
  db: Database,
  clock: () => Date,
  options: {
    exclusiveTransactions: boolean;
    sharedQuotas: SharedQuotas;
    /** Told the shared counters a batch read, as they stand after it. */
    onCounts: (counts: SharedCounts, now: Date) => void;
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
        const { settlements, counts } = await db.transaction(async (tx) => {
          await lockAuditLog(tx, { exclusive: options.exclusiveTransactions });
          // One statement reads where the log goes on and the counters the batch's quotas need.
          const quotas = options.sharedQuotas.prepare(batch.map((entry) => entry.claim));
          const [read] = await rowsOf<Parameters<typeof quotas.settle>[0] & { next_leaf: string | number }>(tx, sql`SELECT (SELECT ${nextLeafIndex} FROM ${auditLeaves}) AS next_leaf, ${quotas.columns}`);
          const settled = quotas.settle(read!);
          const admitted = batch.flatMap((entry, offset) => {
            const settlement = settled.settlements[offset]!;
            return settlement.admitted ? [{ entry, feeFen: settlement.feeFen }] : [];
          });
          const leaves = numberAuditLeaves(admitted.map(({ entry, feeFen }) => entry.event(feeFen)), Number(read!.next_leaf), now);
          const calls = admitted.map(({ entry, feeFen }, offset) => ({ ...entry.call, feeFen, auditIndex: leaves[offset]!.leafIndex }));
          await bulkInsert(tx, rowsFor(auditLeaves, leaves), rowsFor(productCalls, calls), ...settled.store);
          let next = 0;
          return {
            settlements: settled.settlements.map((settlement) => (settlement.admitted ? { ...settlement, auditIndex: leaves[next++]!.leafIndex } : settlement)),
            counts: settled.counts,
          };
        });
        batch.forEach((entry, offset) => {
          const settlement = settlements[offset]!;
          if (settlement.admitted) entry.resolve({ auditIndex: settlement.auditIndex, feeFen: settlement.feeFen });
          else entry.reject(settlement.refusal);
        });
        // After the answers: the calls have committed, whatever becomes of this process's copy of the counts.
        options.onCounts(counts, now);
      } catch (error) {
        for (const entry of batch) entry.reject(error);
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
