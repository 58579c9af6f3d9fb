/**
 * Seeded randomness for generated tests, fuzzing and the churn soak: the same seed gives the same
 * run, and a failing run prints its seed so `CTRE_SEED=<seed>` replays it.
 *
 * @module
 */

/** mulberry32: a small deterministic PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seeds of a run: `CTRE_SEED` (comma-separated) when set, else `count` fresh ones. */
export function seeds(count: number): number[] {
  const given = Deno.env.get("CTRE_SEED");
  if (given) return given.split(",").map((s) => Number(s.trim()));
  return Array.from({ length: count }, () => Math.floor(Math.random() * 2 ** 31));
}
