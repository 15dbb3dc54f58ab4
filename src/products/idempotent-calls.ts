import crypto from 'node:crypto';
import { canonicalJson } from '../audit/canonical-json.js';
import { AppError } from '../errors/app-error.js';

/**
 * Product calls retried under an Idempotency-Key get the first call's answer again: the same signed JWS, audit
 * index and fee, metered, charged and counted against the subject's daily limit once. A bank whose request timed
 * out must be able to ask again without paying twice or using up the subject's checks.
 *
 * Kept in the API process's memory for a day, at most `maxEntries` keys, like the quota counters it protects
 * (docs/products.md): a retry reaches the process that answered within seconds or minutes. After a restart a retry
 * is a new call and is metered as one. A call that failed (a quota refusal, say) is not kept, so its retry is
 * tried again; a retry sent while the first call is still running waits for that call's answer.
 */
export function createIdempotentCalls(options: { clock: () => Date; maxEntries?: number; ttlMilliseconds?: number }) {
  const maxEntries = options.maxEntries ?? 100_000;
  const ttl = options.ttlMilliseconds ?? 24 * 3_600_000;
  // Insertion order is age order, so expired and surplus entries leave from the front.
  const entries = new Map<string, { requestHash: string; answer: Promise<unknown>; expiresAt: number }>();

  const evict = (now: number) => {
    for (const [id, entry] of entries) {
      if (entry.expiresAt > now && entries.size <= maxEntries) break;
      entries.delete(id);
    }
  };

  return {
    async run<T>(consumerId: string, key: string, request: unknown, call: () => Promise<T>): Promise<{ answer: T; replayed: boolean }> {
      const requestHash = crypto.hash('sha256', canonicalJson(request), 'hex');
      // Keys are visible ASCII (the route checks), so a NUL cannot join two consumers' keys into one.
      const id = `${consumerId}\u0000${key}`;
      const now = options.clock().getTime();
      const earlier = entries.get(id);
      if (earlier && earlier.expiresAt > now) {
        if (earlier.requestHash !== requestHash) throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was sent before with a different call; use a new key for a new call');
        return { answer: (await earlier.answer) as T, replayed: true };
      }
      const answer = call();
      entries.delete(id);
      entries.set(id, { requestHash, answer, expiresAt: now + ttl });
      evict(now);
      answer.catch(() => {
        if (entries.get(id)?.answer === answer) entries.delete(id);
      });
      return { answer: await answer, replayed: false };
    },
    get size() {
      return entries.size;
    },
  };
}

export type IdempotentCalls = ReturnType<typeof createIdempotentCalls>;
