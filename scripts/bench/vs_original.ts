// deno-lint-ignore-file no-console
/**
 * ctre's forced prune against the original Python ctre's (`ctre prune -f`), side by side on the
 * same node (not a test): bench.ts's scenario (1,050 images in 3 namespaces, 215 containers, a
 * usage DB of 5,000 lines), restored from its cache onto a fresh private containerd before each
 * run, the sides alternating. Both run with their default 15 s double check (a fixed wait
 * re-listing every 1.5 s, the same on both sides), and both without it: ctre with
 * `--double-check 0`, the original with its window set to 0 s (`tmax = tnow + 0`), so the rest of
 * the run, the work, is compared on its own.
 *
 *   deno run -A scripts/bench/vs_original.ts [--pairs 3]
 *
 * The original is scripts/bench/original/ctre.py (ossobv/vcutil's ctre, public domain). It reads
 * its usage DB at /var/spool/ctre/image_starts; each run gets a copy whose path points into that
 * run's state dir (the only change, but for the window above), and finds the private containerd through
 * CONTAINERD_ADDRESS, which its ctr calls read. Its policy is older than ctre's (no pins, no
 * lineage, no kubelet rule), so what each side leaves is printed beside its time. Target (issue
 * 20): ctre's forced prune at least 3x faster than the original's at 1,000 images, judged
 * without the double check (its wait is the same on both sides); reported PASS/FAIL, never
 * enforced. Exits 1 only when a run fails or ctre leaves other than expected.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { permissionFlags, RUNTIME_FLAGS } from "../../lib/cli/permissions.ts";
import { TestContainerd } from "../../tests/support/containerd.ts";
import {
  containerdVersion,
  counter,
  markdownTable,
  mb,
  measure,
  type Measured,
  median,
  ms,
} from "./measure.ts";
import {
  createContainers,
  expectations,
  listIds,
  plannedContainers,
  prepareImages,
  refreshCreated,
  usageDb,
} from "./scenario.ts";

const args = parseArgs({ args: Deno.args, options: { pairs: { type: "string", default: "3" } } });
const PAIRS = Number(args.values.pairs);
const ROOT = new URL("../../", import.meta.url).pathname;
const ORIGINAL = join(ROOT, "scripts/bench/original/ctre.py");
const ORIGINAL_DB = "/var/spool/ctre/image_starts";

const SIDES = ["ctre", "original", "ctre --double-check 0", "original, window 0 s"] as const;
type Side = typeof SIDES[number];
interface Run {
  side: Side;
  m: Measured;
  imagesLeft: number;
  containersLeft: number;
}

const log = (text: string) => console.error(`[vs-original] ${text}`);

/** The command line of one side, on a node whose state dir is `stateDir`. */
async function command(side: Side, c: TestContainerd, stateDir: string): Promise<string[]> {
  if (side.startsWith("original")) {
    const copy = join(stateDir, "ctre.py");
    let text = await Deno.readTextFile(ORIGINAL);
    const edits: [string, string][] = [[`'${ORIGINAL_DB}'`, `'${join(stateDir, "image_starts")}'`]];
    if (side !== "original") edits.push(["tmax = tnow + 15", "tmax = tnow + 0"]);
    for (const [from, to] of edits) {
      if (!text.includes(from)) throw new Error(`${ORIGINAL} no longer has ${from}`);
      text = text.replace(from, to);
    }
    await Deno.writeTextFile(copy, text);
    return ["python3", copy, "prune", "-f"];
  }
  const check = side === "ctre" ? [] : ["--double-check", "0"];
  return [
    Deno.execPath(),
    "run",
    "--quiet",
    ...RUNTIME_FLAGS,
    ...permissionFlags(stateDir),
    join(ROOT, "main.ts"),
    "prune",
    "--force",
    ...check,
    "--address",
    c.address,
    "--state-dir",
    stateDir,
  ];
}

/** One forced prune of `side` on a freshly restored node. */
async function runOnce(side: Side, version: string): Promise<Run> {
  const c = await TestContainerd.start();
  const stateDir = await Deno.makeTempDir({ prefix: "ctre-vs-original-" });
  const count = await counter("count");
  try {
    const built = await prepareImages(c, version, log);
    const containers = plannedContainers();
    await createContainers(c, containers);
    await Deno.writeTextFile(
      join(stateDir, "image_starts"),
      usageDb(Date.now() / 1000, built.images),
    );
    await refreshCreated(c, containers);
    const [cmd, ...rest] = await command(side, c, stateDir);
    const m = await measure(cmd!, rest, count, { env: { CONTAINERD_ADDRESS: c.address } });
    if (m.code !== 0) throw new Error(`${side} exited ${m.code}: ${m.stderr.slice(-400)}`);
    const exp = expectations(built.images, containers);
    let imagesLeft = 0;
    let containersLeft = 0;
    for (const ns of exp.keptRefs.keys()) {
      const left = await listIds(c, ns, "image");
      imagesLeft += left.length;
      containersLeft += (await listIds(c, ns, "container")).length;
      if (!side.startsWith("original") && left.join(" ") !== exp.keptRefs.get(ns)!.join(" ")) {
        throw new Error(`${side} left other images in ${ns} than expected`);
      }
    }
    log(`${side}: ${ms(m.wallMs)}, ${m.ctrCalls} ctr, ${imagesLeft} refs left`);
    return { side, m, imagesLeft, containersLeft };
  } finally {
    await c.cleanup();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    await Deno.remove(count.dir, { recursive: true }).catch(() => {});
  }
}

async function main(): Promise<number> {
  if (Deno.uid() !== 0) {
    console.error("vs_original: needs root (it starts its own containerd)");
    return 2;
  }
  const version = await containerdVersion();
  const loads = [Deno.loadavg().map((x) => x.toFixed(2)).join(" ")];
  const runs: Run[] = [];
  const sides: Side[] = [...SIDES];
  for (let i = 0; i < PAIRS; i++) {
    // Alternate the order, so a trend on the machine does not favour one side.
    for (const side of i % 2 === 0 ? sides : [...sides].reverse()) {
      runs.push(await runOnce(side, version));
    }
  }
  loads.push(Deno.loadavg().map((x) => x.toFixed(2)).join(" "));
  const of = (side: Side) => runs.filter((r) => r.side === side);
  const wall = (side: Side) => median(of(side).map((r) => r.m.wallMs));
  const rows = sides.map((side) => {
    const rs = of(side);
    return [
      side.startsWith("original") ? `${side}: \`ctre prune -f\`` : `\`${side} prune --force\``,
      `${ms(wall(side))} (${rs.map((r) => ms(r.m.wallMs)).join(", ")})`,
      `${median(rs.map((r) => r.m.ctrCalls))}`,
      ms(median(rs.map((r) => r.m.cpuMs))),
      mb(Math.max(...rs.map((r) => r.m.maxRssKb))),
      `${rs[0]!.imagesLeft} refs, ${rs[0]!.containersLeft} containers`,
    ];
  });
  const ratio = wall("original") / wall("ctre");
  const ratio0 = wall("original, window 0 s") / wall("ctre --double-check 0");
  console.log(
    [
      `containerd ${version}; 1,050 images, 215 containers, usage DB of 5,000 lines; ${PAIRS} ` +
      `runs each, alternating; load average before ${loads[0]}, after ${loads[1]}.`,
      "",
      ...markdownTable(
        [
          "forced prune",
          "wall: median (each run)",
          "ctr processes",
          "CPU of the tree",
          "peak RSS",
          "left",
        ],
        rows,
      ),
      "",
      `${ratio0 >= 3 ? "PASS" : "FAIL"} ctre's forced prune ${ratio0.toFixed(2)}× faster than ` +
      `the original's, both without the double check (≥ 3×)`,
      `(reported) both with their 15 s double check: ${ratio.toFixed(2)}× faster`,
    ].join("\n"),
  );
  return 0;
}

Deno.exit(await main());
