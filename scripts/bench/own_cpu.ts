/**
 * Preloaded into ctre's CLI runs by bench.ts and growth.ts (`deno run --preload`): when the
 * process ends (main.ts's Deno.exit fires `unload`), prints its own CPU and its own peak RSS on
 * stderr, from getrusage of this process only (node:process resourceUsage), so ctr's CPU and
 * memory are never in them. Needs no permission.
 *
 * @module
 */
import process from "node:process";

/** The stderr lines' markers; measure.ts's ownFigures reads them. */
const OWN_CPU_MARKER = "CTRE_BENCH_OWN_CPU_US";
const OWN_RSS_MARKER = "CTRE_BENCH_OWN_MAXRSS_KB";

globalThis.addEventListener("unload", () => {
  const u = process.resourceUsage();
  Deno.stderr.writeSync(
    new TextEncoder().encode(
      `\n${OWN_CPU_MARKER} ${u.userCPUTime + u.systemCPUTime}\n${OWN_RSS_MARKER} ${u.maxRSS}\n`,
    ),
  );
});
