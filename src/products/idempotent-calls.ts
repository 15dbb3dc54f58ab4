import { replayRefusals, type RetryKey } from './call-replays.js';

/**
 * Product calls retried under an Idempotency-Key get the first call's answer again: the same signed JWS, audit
 * index and fee, metered, charged and counted against the subject's daily limit once. A bank whose request timed
 * out must be able to ask again without paying twice or using up the subject's checks.
 *
 * Kept in the API process's memory for a day, at most `maxEntries` keys and `maxBytes` of answers (docs/products.md),
 * so that a retry reaching the process that answered costs no work at all; a retry sent while the first call is
 * still running waits for that call's answer. Behind this, the call ledger keeps every keyed answer for a day in
 * the control plane (call-replays.ts): a retry sent to another process, after a restart, or once an answer has
 * been pushed out of memory is answered from there, metered and counted once all the same. A call that failed (a
 * quota refusal, say) is not kept, so its retry is tried again.
 */
export function createIdempotentCalls(options: {
  clock: () => Date;
  /** Names the call durably: keyed hashes of the consumer's key and of the request (call-replays.ts). */
  retryKey: (consumerId: string, key: string, request: unknown) => RetryKey;
  maxEntries?: number;
  maxBytes?: number;
  ttlMilliseconds?: number;
}) {
  const maxEntries = options.maxEntries ?? 100_000;
  // An encrypted answer is ~0.4 MB and the client library keys every call: bounded by size as well as by count,
  // the kept answers stay within 64 MiB, which still holds the last few minutes' encrypted answers at a busy hour.
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  const ttl = options.ttlMilliseconds ?? 24 * 3_600_000;
  // Insertion order is age order, so expired and surplus entries leave from the front.
  const entries = new Map<string, { requestHash: string; answer: Promise<unknown>; expiresAt: number; bytes: number }>();
  let bytes = 0;

  const remove = (id: string) => {
    bytes -= entries.get(id)?.bytes ?? 0;
    entries.delete(id);
  };
  const evict = (now: number) => {
    for (const [id, entry] of entries) {
      if (entry.expiresAt > now && entries.size <= maxEntries && bytes <= maxBytes) break;
      remove(id);
    }
  };

  return {
    /** `call` is told the retry key to record with the call; it answers whether it gave an earlier call's answer. */
    async run<T>(consumerId: string, key: string, request: unknown, call: (retry: RetryKey) => Promise<{ answer: T; replayed: boolean }>): Promise<{ answer: T; replayed: boolean }> {
      const retry = options.retryKey(consumerId, key, request);
      const { requestHash } = retry;
      // The key hash is of the consumer and the key, so one consumer's key never finds another's answer.
      const id = retry.keyHash;
      const now = options.clock().getTime();
      const earlier = entries.get(id);
      if (earlier && earlier.expiresAt > now) {
        if (earlier.requestHash !== requestHash) throw replayRefusals.keyReused();
        return { answer: ((await earlier.answer) as { answer: T }).answer, replayed: true };
      }
      const answer = call(retry);
      remove(id);
      const entry = { requestHash, answer, expiresAt: now + ttl, bytes: 0 };
      entries.set(id, entry);
      evict(now);
      answer.then(
        (value) => {
          if (entries.get(id) !== entry) return;
          entry.bytes = JSON.stringify(value.answer).length;
          bytes += entry.bytes;
          evict(options.clock().getTime());
        },
        () => {
          if (entries.get(id) === entry) remove(id);
        },
      );
      return answer;
    },
    get size() {
      return entries.size;
    },
    get bytes() {
      return bytes;
    },
  };
}

export type IdempotentCalls = ReturnType<typeof createIdempotentCalls>;
