/**
 * Measuring processes: wall time, peak RSS (GNU time, `/usr/bin/time`) and CPU (bash's `time`)
 * of a process tree, and the ctr processes in it (a counting `ctr` wrapper first on PATH) with,
 * for CPU accounting, their CPU. ctre's own CPU is the tree's minus its ctr processes' minus the
 * wrapper's.
 *
 * @module
 */
import { join } from "node:path";

export interface Measured {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time in ms, spawn to exit, measured here. */
  wallMs: number;
  /** Peak RSS in KB of the process or any of its descendants (GNU time %M). */
  maxRssKb: number;
  /** User + system CPU ms of the process and its waited-for descendants. */
  cpuMs: number;
  /** Busy CPU ms of the whole machine meanwhile (every process, not only this tree). */
  machineCpuMs: number;
  /** ctr processes started (calls the wrapper logged). */
  ctrCalls: number;
  /** Their user + system CPU ms (`time` wrapper only, else 0). */
  ctrCpuMs: number;
}

/** A `ctr` that logs each call (and with `time`, its CPU time) and runs the real one. */
export interface Counter {
  /** Put first on PATH. */
  dir: string;
  /** The real ctr. */
  real: string;
  reset(): Promise<void>;
  /** The calls logged since the last reset (argument vectors). */
  calls(): Promise<string[]>;
  /** User + system CPU ms of the ctr processes logged since the last reset. */
  cpuMs(): Promise<number>;
  /** The same per call: [ms, args] (`time` wrapper only). */
  cpuByCall(): Promise<[number, string][]>;
}

/** The first executable `name` on PATH, skipping `skip`. */
export async function which(name: string, skip?: string): Promise<string> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "" || dir === skip) continue;
    try {
      const st = await Deno.stat(join(dir, name));
      if (st.isFile && (st.mode ?? 0) & 0o111) return join(dir, name);
    } catch {
      // not here
    }
  }
  throw new Error(`${name} is not on PATH`);
}

/**
 * A wrapper named `ctr`, first on PATH, that appends `call <args>` to a log (one write, so
 * concurrent calls never tear a line) and runs the real ctr.
 *
 * - `count`: a sh script that then execs ctr: ~0.3 ms per call, for wall times and counts.
 * - `time`: a bash script that runs ctr under bash's `time` (getrusage of the child, in ms)
 *   and appends `cpu <user> <sys>`: ~3 ms per call, for CPU accounting only.
 *
 * `target` replaces the real ctr (to measure a wrapper's own cost with `/bin/true`).
 */
export async function counter(kind: "count" | "time", target?: string): Promise<Counter> {
  const dir = await Deno.makeTempDir({ prefix: `ctre-bench-ctr-${kind}-` });
  const real = target ?? await which("ctr", dir);
  const log = join(dir, "calls.log");
  const script = kind === "count"
    ? ["#!/bin/sh", `echo "call $*" >>'${log}'`, `exec '${real}' "$@"`]
    : [
      "#!/bin/bash",
      `echo "call $*" >>'${log}'`,
      // One line per call: `cpu <user> <sys> <args>` (a % in an argument doubled for bash).
      `TIMEFORMAT="cpu %3U %3S \${*//%/%%}"`,
      `{ time '${real}' "$@" 2>&3 3>&-; } 3>&2 2>>'${log}'`,
    ];
  await Deno.writeTextFile(join(dir, "ctr"), script.join("\n") + "\n", { mode: 0o755 });
  const lines = async () => {
    try {
      return (await Deno.readTextFile(log)).split("\n");
    } catch {
      return [];
    }
  };
  const byCall = async (): Promise<[number, string][]> => {
    const out: [number, string][] = [];
    for (const l of await lines()) {
      const m = /^cpu (\d+\.\d+) (\d+\.\d+) ?(.*)$/.exec(l);
      if (m) out.push([(Number(m[1]) + Number(m[2])) * 1000, m[3] ?? ""]);
    }
    return out;
  };
  return {
    dir,
    real,
    reset: () => Deno.writeTextFile(log, ""),
    calls: async () => (await lines()).filter((l) => l.startsWith("call ")).map((l) => l.slice(5)),
    cpuMs: async () => (await byCall()).reduce((sum, [ms]) => sum + ms, 0),
    cpuByCall: byCall,
  };
}

export interface RunOptions {
  /** Prepended to PATH (after the counter's dir, if any). */
  pathFirst?: string;
  stdin?: string;
  env?: Record<string, string>;
}

const HARNESS = [
  `TIMEFORMAT='%3U %3S'; rss=$1; cpu=$2; shift 2`,
  `{ time /usr/bin/time -f %M -o "$rss" "$@" 2>&3 3>&-; } 3>&2 2>"$cpu"`,
].join("\n");

/**
 * Runs `cmd args` under GNU time (peak RSS) under bash's `time` (CPU of the whole tree, in ms:
 * GNU time truncates to 10 ms); never throws for a non-zero exit.
 */
export async function measure(
  cmd: string,
  args: string[],
  counted: Counter | null,
  opts: RunOptions = {},
): Promise<Measured> {
  const rssFile = await Deno.makeTempFile({ prefix: "ctre-bench-rss-" });
  const cpuFile = await Deno.makeTempFile({ prefix: "ctre-bench-cpu-" });
  await counted?.reset();
  const path = [counted?.dir, opts.pathFirst, Deno.env.get("PATH")].filter((p) => p).join(":");
  const busy = await machineBusyMs();
  const started = performance.now();
  const child = new Deno.Command("bash", {
    args: ["-c", HARNESS, "bash", rssFile, cpuFile, cmd, ...args],
    env: { ...opts.env, PATH: path, NO_COLOR: "1" },
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    try {
      await w.write(new TextEncoder().encode(opts.stdin));
      await w.close();
    } catch {
      // It did not read it all.
    }
  }
  const out = await child.output();
  const wallMs = performance.now() - started;
  const machineCpuMs = (await machineBusyMs()) - busy;
  // GNU time prints "Command exited with non-zero status N" first when it failed.
  const rss = Number((await Deno.readTextFile(rssFile)).trim().split("\n").at(-1));
  const [user, sys] = (await Deno.readTextFile(cpuFile)).trim().split(" ").map(Number);
  for (const f of [rssFile, cpuFile]) await Deno.remove(f);
  const d = new TextDecoder();
  return {
    code: out.code,
    stdout: d.decode(out.stdout),
    stderr: d.decode(out.stderr),
    wallMs,
    machineCpuMs,
    maxRssKb: rss || 0,
    cpuMs: ((user ?? 0) + (sys ?? 0)) * 1000,
    ctrCalls: counted ? (await counted.calls()).length : 0,
    ctrCpuMs: counted ? await counted.cpuMs() : 0,
  };
}

/** The version of the `containerd` first on PATH (its cache key for built stores), or "unknown". */
export async function containerdVersion(): Promise<string> {
  const out = await new Deno.Command("containerd", { args: ["--version"], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).split(" ")[2] ?? "unknown";
}

/**
 * ctre's own figures from a run's stderr, as the preloaded own_cpu.ts prints them at exit (that
 * process only, never its ctr): CPU in ms and peak RSS in KB, NaN when a line is missing.
 */
export function ownFigures(stderr: string): { cpuMs: number; rssKb: number } {
  const read = (marker: string) => {
    const hit = new RegExp(`^${marker} (\\d+)$`, "m").exec(stderr);
    return hit === null ? NaN : Number(hit[1]);
  };
  return { cpuMs: read("CTRE_BENCH_OWN_CPU_US") / 1000, rssKb: read("CTRE_BENCH_OWN_MAXRSS_KB") };
}

/** Busy CPU ms of the whole machine so far (all processes, all cores), from /proc/stat. */
export async function machineBusyMs(): Promise<number> {
  const fields = (await Deno.readTextFile("/proc/stat")).split("\n")[0]!.trim().split(/\s+/)
    .slice(1).map(Number);
  const ticks = fields.reduce((a, b) => a + b, 0) - (fields[3] ?? 0) - (fields[4] ?? 0);
  return ticks * 10; // USER_HZ is 100 on Linux
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** `1.23 s` or `87 ms`. */
export function ms(x: number): string {
  return x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${Math.round(x)} ms`;
}

export function mb(kb: number): string {
  return `${(kb / 1024).toFixed(0)} MB`;
}

/** A markdown table with padded columns (as `deno fmt` writes it). */
export function markdownTable(header: string[], rows: string[][]): string[] {
  const width = (s: string) => [...s].length;
  const widths = header.map((h, i) => Math.max(3, width(h), ...rows.map((r) => width(r[i] ?? ""))));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c + " ".repeat(widths[i]! - width(c))).join(" | ")} |`;
  return [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)];
}

/**
 * A benchmark's log (to stderr, stamped with seconds since the start) and its correctness checks:
 * a failed check is logged and kept in `failures`, which makes the run exit 1 at the end.
 */
export function reporter(name: string, width: number): {
  log(text: string): void;
  check(ok: boolean, what: string, detail?: string): boolean;
  failures: string[];
} {
  const t0 = performance.now();
  const failures: string[] = [];
  const log = (text: string): void => {
    const s = ((performance.now() - t0) / 1000).toFixed(0).padStart(width);
    // deno-lint-ignore no-console -- a benchmark reports on stderr, as bench.ts and growth.ts do
    console.error(`[${name} ${s} s] ${text}`);
  };
  const check = (ok: boolean, what: string, detail = ""): boolean => {
    if (!ok) {
      failures.push(`${what}${detail ? `: ${detail}` : ""}`);
      log(`CORRECTNESS FAILURE: ${what} ${detail}`);
    }
    return ok;
  };
  return { log, check, failures };
}
