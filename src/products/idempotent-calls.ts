import { canonicalSha256 } from '../audit/canonical-json.js';
import { AppError } from '../errors/app-error.js';

/**
 * Product calls retried under an Idempotency-Key get the first call's answer again: the same signed JWS, audit
 * index and fee, metered, charged and counted against the subject's daily limit once. A bank whose request timed
 * out must be able to ask again without paying twice or using up the subject's checks.
 *
 * Kept in the API process's memory for a day, at most `maxEntries` keys and `maxBytes` of answers (docs/products.md):
 * a retry usually reaches the process that answered within seconds or minutes; one sent to another process is a
 * new call there.
 * After a restart, or once an answer has been pushed out, a retry is a new call and is metered as one. A call that
 * failed (a quota refusal, say) is not kept, so its retry is tried again; a retry sent while the first call is
 * still running waits for that call's answer.
 */
export function createIdempotentCalls(options: { clock: () => Date; maxEntries?: number; maxBytes?: number; ttlMilliseconds?: number }) {
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
    async run<T>(consumerId: string, key: string, request: unknown, call: () => Promise<T>): Promise<{ answer: T; replayed: boolean }> {
      const requestHash = canonicalSha256(request);
      // Keys are visible ASCII (the route checks), so a NUL cannot join two consumers' keys into one.
      const id = `${consumerId}\u0000${key}`;
      const now = options.clock().getTime();
      const earlier = entries.get(id);
      if (earlier && earlier.expiresAt > now) {
        if (earlier.requestHash !== requestHash) throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was sent before with a different call; use a new key for a new call');
        return { answer: (await earlier.answer) as T, replayed: true };
      }
      const answer = call();
      remove(id);
      const entry = { requestHash, answer, expiresAt: now + ttl, bytes: 0 };
      entries.set(id, entry);
      evict(now);
      answer.then(
        (value) => {
          if (entries.get(id) !== entry) return;
          entry.bytes = JSON.stringify(value).length;
          bytes += entry.bytes;
          evict(options.clock().getTime());
        },
        () => {
          if (entries.get(id) === entry) remove(id);
        },
      );
      return { answer: await answer, replayed: false };
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
