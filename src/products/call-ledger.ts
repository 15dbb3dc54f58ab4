import { nextAuditLeaves, type AuditEvent } from '../audit/audit-log.js';
import { bulkInsert, rowsFor } from '../db/bulk-insert.js';
import type { Database } from '../db/connect.js';
import { auditLeaves, productCalls } from '../db/schema.js';

/**
 * Meters product calls and logs each as an audit leaf, with group commit: calls that arrive while a write is in
 * flight go together in the next transaction (up to 500), so a busy product costs one transaction per batch
 * rather than per call. A call is answered only after its leaf and metering row have committed; if the write
 * fails, every call in the batch fails (fail closed: no answer without a record).
 */
export type MeteredCall = Omit<typeof productCalls.$inferInsert, 'auditIndex'>;

const maxBatch = 500;

export function createCallLedger(db: Database, clock: () => Date, options: { exclusiveTransactions: boolean }) {
  let pending: Array<{ call: MeteredCall; event: AuditEvent; resolve: (index: number) => void; reject: (error: unknown) => void }> = [];
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
        const indexes = await db.transaction(async (tx) => {
          const leaves = await nextAuditLeaves(tx, batch.map((entry) => entry.event), clock(), { exclusive: options.exclusiveTransactions });
          const calls = batch.map((entry, offset) => ({ ...entry.call, auditIndex: leaves[offset]!.leafIndex }));
          await bulkInsert(tx, rowsFor(auditLeaves, leaves), rowsFor(productCalls, calls));
          return leaves.map((leaf) => leaf.leafIndex);
        });
        batch.forEach((entry, offset) => entry.resolve(indexes[offset]!));
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
    /** Resolves with the call's audit leaf index once it has committed. */
    record(call: MeteredCall, event: AuditEvent): Promise<number> {
      return new Promise<number>((resolve, reject) => {
        pending.push({ call, event, resolve, reject });
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
