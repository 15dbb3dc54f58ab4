/**
 * Runs async work one piece at a time, in the order it was asked for: a DuckDB connection (or prepared
 * statement) serves one call at once. A failed piece does not stop the ones after it.
 */
export function oneAtATime() {
  let queue: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work, work);
    queue = next.catch(() => undefined);
    return next;
  };
}
