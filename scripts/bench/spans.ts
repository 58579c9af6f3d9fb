/**
 * A `ctr` wrapper first on PATH that logs, per call, when it ran (bash's `EPOCHREALTIME` before
 * and after) and its CPU (bash's `time`), so a step's **ctr floor** can be told: the wall time
 * during which at least one of its ctr processes was running. Usable wherever measure.ts takes a
 * counter.
 *
 * @module
 */
import { join } from "node:path";
import { type Counter, which } from "./measure.ts";

/** One ctr process: start and end (ms since the epoch), CPU ms, its arguments. */
export interface Span {
  startMs: number;
  endMs: number;
  cpuMs: number;
  args: string;
}

export interface SpanCounter extends Counter {
  /** The calls finished since the last reset. */
  spans(): Promise<Span[]>;
  /** The calls started since the last reset (their arguments), finished or not. */
  started(): Promise<string[]>;
  /** The wall time covered by at least one of `spans` (the union of their intervals). */
  busyMs(spans: Span[]): number;
}

/** A new span-logging `ctr` wrapper in a temp dir (remove `dir` when done). */
export async function spanCounter(): Promise<SpanCounter> {
  const dir = await Deno.makeTempDir({ prefix: "ctre-bench-ctr-span-" });
  const real = await which("ctr", dir);
  const log = join(dir, "calls.log");
  const script = [
    "#!/bin/bash",
    `echo "call $*" >>'${log}'`,
    "s=$EPOCHREALTIME",
    "TIMEFORMAT='%3U %3S'",
    // ctr's stdout and stderr pass through (fds 4 and 3); only `time`'s line is captured.
    "exec 4>&1",
    `cpu=$( { time '${real}' "$@" 2>&3 >&4 3>&- 4>&-; } 3>&2 2>&1 )`,
    "rc=$?",
    `echo "span $s $EPOCHREALTIME $cpu $*" >>'${log}'`,
    "exit $rc",
  ];
  await Deno.writeTextFile(join(dir, "ctr"), script.join("\n") + "\n", { mode: 0o755 });
  const lines = async () => {
    try {
      return (await Deno.readTextFile(log)).split("\n");
    } catch {
      return [];
    }
  };
  const spans = async (): Promise<Span[]> => {
    const out: Span[] = [];
    for (const l of await lines()) {
      const m = /^span (\d+\.\d+) (\d+\.\d+) (\d+\.\d+) (\d+\.\d+) ?(.*)$/.exec(l);
      if (!m) continue;
      out.push({
        startMs: Number(m[1]) * 1000,
        endMs: Number(m[2]) * 1000,
        cpuMs: (Number(m[3]) + Number(m[4])) * 1000,
        args: m[5] ?? "",
      });
    }
    return out;
  };
  return {
    dir,
    real,
    reset: () => Deno.writeTextFile(log, ""),
    calls: async () => (await spans()).map((s) => s.args),
    started: async () =>
      (await lines()).filter((l) => l.startsWith("call ")).map((l) => l.slice(5)),
    cpuMs: async () => (await spans()).reduce((sum, s) => sum + s.cpuMs, 0),
    cpuByCall: async () => (await spans()).map((s): [number, string] => [s.cpuMs, s.args]),
    spans,
    busyMs(list: Span[]): number {
      const sorted = [...list].sort((a, b) => a.startMs - b.startMs);
      let busy = 0;
      let end = -Infinity;
      for (const s of sorted) {
        if (s.endMs <= end) continue;
        busy += s.endMs - Math.max(s.startMs, end);
        end = s.endMs;
      }
      return busy;
    },
  };
}
