/**
 * The one concurrency helper: run an async function over a list with a bound on how many run at
 * once (used by clean-up, the inventory, the layer guard and the benchmark's scenario).
 *
 * @module
 */

/** Maps `fn` over `items` with at most `limit` running at once, keeping order. */
export async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
