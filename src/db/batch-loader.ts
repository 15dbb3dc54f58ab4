/**
 * Coalesces lookups by key that arrive while the event loop is busy into one query, the way DataLoader does.
 * Every request still reads the database after it arrived (nothing is cached between batches), so a change
 * such as a disabled account counts from the next request on; only the number of round trips falls.
 */
export function createBatchLoader<K, V>(loadMany: (keys: K[]) => Promise<Map<K, V>>, maxBatch = 500) {
  let queue: Array<{ key: K; resolve: (value: V | undefined) => void; reject: (error: unknown) => void }> = [];
  let scheduled = false;

  async function dispatch(): Promise<void> {
    scheduled = false;
    while (queue.length > 0) {
      const batch = queue.slice(0, maxBatch);
      queue = queue.slice(maxBatch);
      try {
        const found = await loadMany([...new Set(batch.map((entry) => entry.key))]);
        for (const entry of batch) entry.resolve(found.get(entry.key));
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
    }
  }

  return (key: K): Promise<V | undefined> =>
    new Promise((resolve, reject) => {
      queue.push({ key, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => void dispatch());
      }
    });
}
