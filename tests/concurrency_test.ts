import { deepStrictEqual as assertEquals, rejects as assertRejects } from "node:assert/strict";
import { mapLimit } from "../lib/core/concurrency.ts";

const cases: { name: string; items: number[]; limit: number; peak: number }[] = [
  { name: "empty list", items: [], limit: 4, peak: 0 },
  { name: "fewer items than the limit", items: [1, 2], limit: 4, peak: 2 },
  { name: "more items than the limit", items: [5, 1, 4, 2, 3, 0, 6], limit: 3, peak: 3 },
  { name: "limit 1 runs one at a time", items: [3, 2, 1], limit: 1, peak: 1 },
];

for (const c of cases) {
  Deno.test(`mapLimit: ${c.name}: order kept, at most the limit at once`, async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit(c.items, c.limit, async (n) => {
      running++;
      peak = Math.max(peak, running);
      // Later items finish first when their delay is shorter: the output must not follow.
      await new Promise((r) => setTimeout(r, n * 2));
      running--;
      return n * 10;
    });
    assertEquals(out, c.items.map((n) => n * 10));
    assertEquals(peak, c.peak);
  });
}

Deno.test("mapLimit: a rejection rejects the whole map", async () => {
  await assertRejects(
    () =>
      mapLimit([1, 2, 3], 2, async (n) => {
        await Promise.resolve();
        if (n === 2) throw new Error("boom");
        return n;
      }),
    /boom/,
  );
});
