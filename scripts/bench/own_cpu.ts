/**
 * Preloaded into ctre's CLI runs by bench.ts (`deno run --preload`): when the process ends
 * (main.ts's Deno.exit fires `unload`), prints its own CPU on stderr, from getrusage of this
 * process only (node:process resourceUsage), so ctr's CPU is never in it. Needs no permission.
 *
 * @module
 */
import process from "node:process";

/** The stderr line's marker; bench.ts reads the microseconds after it (its ownCpuMs). */
const OWN_CPU_MARKER = "CTRE_BENCH_OWN_CPU_US";

globalThis.addEventListener("unload", () => {
  const u = process.resourceUsage();
  Deno.stderr.writeSync(
    new TextEncoder().encode(`\n${OWN_CPU_MARKER} ${u.userCPUTime + u.systemCPUTime}\n`),
  );
});
