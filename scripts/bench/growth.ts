// deno-lint-ignore-file no-console
/**
 * How ctre's cost grows with the node (not a test): bench.ts's scenario at 1, 5 and 10 times its
 * size (1,050, 5,250 and 10,500 images; 215, 1,075 and 2,150 containers; usage DB of 5,000,
 * 25,000 and 50,000 lines), each on a private real containerd, measuring for each size:
 *
 * - a planning pass (`ctre prune --dry-run --double-check 0`, the real CLI under its shipped
 *   flags), twice;
 * - a forced prune (`ctre prune --force --double-check 0`), then exactly the expected images and
 *   containers must remain;
 * - the recorder (`ctre record-image-starts`) for a window of a few seconds in which 10
 *   containers run, each start recorded;
 * - `ctre df --json` before the forced prune (prune's planning pass plus one `ctr snapshot
 *   usage` per namespace): every namespace of the node, something reclaimable.
 *
 * Each row: wall, ctr processes, their CPU, ctre's own CPU (getrusage in its own process,
 * own_cpu.ts), peak RSS, per-image cost, and beside them the **ctr floor** of that size: the
 * wall time during which at least one ctr process of the step was running (the union of their
 * spans, logged by a bash wrapper first on PATH), i.e. what the step would take if ctre's own
 * work cost nothing. Targets at 5,250 images are printed PASS/FAIL (never enforced): planning
 * pass ≤ 1 + 5 ctr per namespace and own CPU < 10 % of its wall; forced prune ≤ 1.2× its ctr
 * floor; per-image wall at 10,500 ≤ at 1,050 (planning pass and forced prune); peak RSS < 150 MB
 * at 10,500. Exits 1 only when a correctness check fails.
 *
 *   deno run -A scripts/bench/growth.ts [--scales 1,5,10] [--plan-runs N] [--profile DIR]
 *
 * `--profile DIR` writes a V8 CPU profile of each planning pass (`--cpu-prof`) into DIR.
 * Image stores are built once per size and cached as bench.ts does (scenario.ts).
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { permissionFlags, RUNTIME_FLAGS } from "../../lib/cli/permissions.ts";
import { TestContainerd } from "../../tests/support/containerd.ts";
import {
  containerdVersion,
  markdownTable,
  mb,
  measure,
  type Measured,
  median,
  ms,
  ownFigures,
  reporter,
} from "./measure.ts";
import { type SpanCounter, spanCounter } from "./spans.ts";
import {
  createContainers,
  expectations,
  listIds,
  namespacesAt,
  plannedContainers,
  prepareImages,
  refreshCreated,
  USAGE_DB_ENTRIES,
  usageDb,
} from "./scenario.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    scales: { type: "string", default: "1,5,10" },
    "plan-runs": { type: "string", default: "2" },
    profile: { type: "string" },
    "record-seconds": { type: "string", default: "12" },
  },
});
const SCALES = args.values.scales.split(",").map(Number);
const PLAN_RUNS = Number(args.values["plan-runs"]);
const RECORD_SECONDS = Number(args.values["record-seconds"]);

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = join(ROOT, "main.ts");
const OWN_CPU = join(ROOT, "scripts/bench/own_cpu.ts");
const DENO = Deno.execPath();

const { log, check, failures } = reporter("growth", 5);

/** The `deno run` argument vector of ctre as shipped, printing its own CPU at exit. */
function ctreArgs(stateDir: string, rest: string[], profile?: string): string[] {
  const prof = profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : [];
  return [
    "run",
    "--quiet",
    ...RUNTIME_FLAGS,
    ...prof,
    "--preload",
    OWN_CPU,
    ...permissionFlags(stateDir),
    MAIN,
    ...rest,
  ];
}

/** The refs listed for removal (after the `NS REF_TO_PRUNE` header), as "ns ref", sorted. */
function listed(stdout: string): string[] {
  const lines = stdout.split("\n");
  const at = lines.indexOf("NS REF_TO_PRUNE");
  return at < 0 ? [] : lines.slice(at + 1).filter((l) => /^\S+ \S+$/.test(l)).sort();
}

/** One measured step at one size. */
interface Row {
  step: string;
  wallMs: number;
  ctr: number;
  ctrCpuMs: number;
  ownMs: number;
  /** Peak RSS of ctre or any of its ctr processes (GNU time). */
  rssKb: number;
  /** Peak RSS of the ctre process alone. */
  ownRssKb: number;
  floorMs: number;
  images: number;
  note?: string;
  /** What the ctr processes were, by command: "count × `command` summed wall". */
  byCommand: string;
}

/** A step's figures from one measured run and its wrapper's spans. */
async function rowOf(
  step: string,
  m: Measured,
  w: SpanCounter,
  images: number,
  wallMs = m.wallMs,
): Promise<Row> {
  const spans = await w.spans();
  const kinds = new Map<string, number[]>();
  for (const s of spans) {
    // The command without namespace, address, ids or refs: `image rm`, `containers info`, ….
    const words = s.args.replace(/--address \S+ ?/, "").replace(/^-n \S+ ?/, "").split(" ");
    const kind = words.filter((x) => /^[a-z-]+$/.test(x)).slice(0, 2).join(" ");
    kinds.set(kind, [...(kinds.get(kind) ?? []), s.endMs - s.startMs]);
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const byCommand = [...kinds].sort((a, b) => sum(b[1]) - sum(a[1]))
    .map(([k, xs]) => `${xs.length} × \`${k}\` ${ms(sum(xs))}`).join(", ");
  return {
    byCommand,
    step,
    wallMs,
    ctr: spans.length,
    ctrCpuMs: spans.reduce((a, s) => a + s.cpuMs, 0),
    ownMs: ownFigures(m.stderr).cpuMs,
    rssKb: m.maxRssKb,
    ownRssKb: ownFigures(m.stderr).rssKb,
    floorMs: w.busyMs(spans),
    images,
  };
}

/** Everything measured at one size. */
interface SizeResult {
  scale: number;
  images: number;
  containers: number;
  dbLines: number;
  namespaces: number;
  rows: Row[];
  setup: string;
}

async function planningPasses(
  c: TestContainerd,
  stateDir: string,
  w: SpanCounter,
  want: string[],
  images: number,
  scale: number,
): Promise<Row> {
  const rows: Row[] = [];
  for (let i = 0; i < PLAN_RUNS; i++) {
    const profile = i === 0 && args.values.profile ? join(args.values.profile, `x${scale}`) : "";
    const m = await measure(
      DENO,
      ctreArgs(
        stateDir,
        [
          "prune",
          "--dry-run",
          "--double-check",
          "0",
          "--address",
          c.address,
          "--state-dir",
          stateDir,
        ],
        profile || undefined,
      ),
      w,
    );
    check(m.code === 0, `planning pass exit code at ×${scale}`, m.stderr.slice(-300));
    const got = listed(m.stdout);
    check(
      JSON.stringify(got) === JSON.stringify(want),
      `planning pass at ×${scale} lists exactly the prunable refs`,
      `${got.length} listed, ${want.length} expected`,
    );
    rows.push(await rowOf("planning pass", m, w, images));
    if (profile) rows.at(-1)!.note = "profiled (--cpu-prof)";
    log(`  planning pass ${i + 1}: ${ms(m.wallMs)}, ${rows.at(-1)!.ctr} ctr`);
  }
  // The median run by wall (the profiled one is slower: the other, when there are two).
  const plain = rows.filter((r) => r.note === undefined);
  const pool = plain.length > 0 ? plain : rows;
  const mid = median(pool.map((r) => r.wallMs));
  return pool.reduce((a, b) => Math.abs(a.wallMs - mid) <= Math.abs(b.wallMs - mid) ? a : b);
}

async function forcedPrune(
  c: TestContainerd,
  stateDir: string,
  w: SpanCounter,
  exp: ReturnType<typeof expectations>,
  images: number,
  scale: number,
): Promise<Row> {
  const m = await measure(
    DENO,
    ctreArgs(stateDir, [
      "prune",
      "--force",
      "--double-check",
      "0",
      "--address",
      c.address,
      "--state-dir",
      stateDir,
    ]),
    w,
  );
  log(`  forced prune: ${ms(m.wallMs)}, exit ${m.code}`);
  check(m.code === 0, `forced prune exit code at ×${scale}`, m.stderr.slice(-300));
  for (const [ns, want] of exp.keptRefs) {
    const left = await listIds(c, ns, "image");
    check(
      JSON.stringify(left) === JSON.stringify(want),
      `images left in ${ns} after the forced prune at ×${scale}`,
      `${left.length} left, ${want.length} expected`,
    );
    const ids = await listIds(c, ns, "container");
    const wantIds = exp.keptContainers.get(ns)!;
    check(
      JSON.stringify(ids) === JSON.stringify(wantIds),
      `containers left in ${ns} after the forced prune at ×${scale}`,
      `${ids.length} left, ${wantIds.length} expected`,
    );
  }
  return await rowOf("forced prune", m, w, images);
}

/**
 * `ctre df --json` on the node before the forced prune: it must exit 0 and report every
 * namespace of the scenario and something reclaimable (the prunable images).
 */
async function dfPass(
  c: TestContainerd,
  stateDir: string,
  w: SpanCounter,
  namespaces: string[],
  images: number,
  scale: number,
): Promise<Row> {
  const m = await measure(
    DENO,
    ctreArgs(stateDir, ["df", "--json", "--address", c.address, "--state-dir", stateDir]),
    w,
  );
  log(`  ctre df: ${ms(m.wallMs)}, exit ${m.code}`);
  check(m.code === 0, `ctre df exit code at ×${scale}`, m.stderr.slice(-300));
  let doc: { namespaces?: { namespace: string }[]; total?: { images?: Record<string, number> } };
  try {
    doc = JSON.parse(m.stdout);
  } catch {
    doc = {};
  }
  const seen = (doc.namespaces ?? []).map((n) => n.namespace);
  check(
    namespaces.every((ns) => seen.includes(ns)),
    `ctre df at ×${scale} reports every namespace`,
    seen.join(" "),
  );
  const reclaimable = doc.total?.images?.reclaimableBytes ?? 0;
  check(reclaimable > 0, `ctre df at ×${scale} finds something reclaimable`, `${reclaimable}`);
  return await rowOf("ctre df", m, w, images);
}

/**
 * The recorder for RECORD_SECONDS (then SIGTERM, as systemd stops it), 10 containers run in it
 * once it listens; each start must be in the usage DB afterwards.
 */
async function recorderWindow(
  c: TestContainerd,
  stateDir: string,
  w: SpanCounter,
  ref: string,
  images: number,
): Promise<Row> {
  const run = measure("timeout", [
    "--preserve-status",
    "-s",
    "TERM",
    String(RECORD_SECONDS),
    DENO,
    ...ctreArgs(stateDir, [
      "record-image-starts",
      "--quiet",
      "--address",
      c.address,
      "--state-dir",
      stateDir,
    ]),
  ], w);
  // Started within the window; the recorder has subscribed by then (its first ctr call).
  const deadline = Date.now() + RECORD_SECONDS * 500;
  while ((await w.started()).length === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  for (let i = 0; i < 10; i++) await c.runOnce("default", ref, `growth-rec-${i}`);
  const m = await run;
  log(`  recorder window: exit ${m.code}`);
  check(m.code === 0, "recorder exit code on SIGTERM", m.stderr.slice(-300));
  const db = await Deno.readTextFile(join(stateDir, "image_starts"));
  const start = new RegExp(`^(\\d+) \\S+ default ${ref.replaceAll(".", "\\.")}$`, "m");
  const at = Number(start.exec(db)?.[1] ?? 0);
  check(at >= Date.now() / 1000 - 120, "the recorder recorded the window's starts", `${at}`);
  const row = await rowOf("recorder", m, w, images, m.wallMs);
  row.note = `${RECORD_SECONDS} s window, 10 container runs`;
  return row;
}

async function oneSize(scale: number, version: string): Promise<SizeResult> {
  const namespaces = namespacesAt(scale);
  const c = await TestContainerd.start();
  const stateDir = await Deno.makeTempDir({ prefix: "ctre-growth-state-" });
  const w = await spanCounter();
  try {
    const built = await prepareImages(c, version, log, namespaces);
    const how = built.fresh ? "built and cached" : "restored from the cache";
    log(`×${scale}: ${built.images.length} images ${how} in ${built.buildSeconds.toFixed(0)} s`);
    const containers = plannedContainers(namespaces);
    const t = performance.now();
    await createContainers(c, containers);
    const made = (performance.now() - t) / 1000;
    log(`×${scale}: ${containers.length} containers in ${made.toFixed(0)} s`);
    const dbLines = USAGE_DB_ENTRIES * scale;
    await Deno.writeTextFile(
      join(stateDir, "image_starts"),
      usageDb(Date.now() / 1000, built.images, dbLines),
    );
    const exp = expectations(built.images, containers, namespaces);
    const images = built.images.length;
    const rows: Row[] = [];
    rows.push(await planningPasses(c, stateDir, w, exp.listed, images, scale));
    rows.push(await dfPass(c, stateDir, w, namespaces.map((n) => n.ns), images, scale));
    await refreshCreated(c, containers);
    rows.push(await forcedPrune(c, stateDir, w, exp, images, scale));
    const kept = exp.keptRefs.get("default")![0]!;
    rows.push(await recorderWindow(c, stateDir, w, kept, images));
    return {
      scale,
      images,
      containers: containers.length,
      dbLines,
      namespaces: namespaces.length,
      rows,
      setup: `store ${how} in ${built.buildSeconds.toFixed(0)} s, containers made in ${
        made.toFixed(0)
      } s`,
    };
  } finally {
    await c.cleanup();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    await Deno.remove(w.dir, { recursive: true }).catch(() => {});
  }
}

function report(results: SizeResult[], loads: string[]): void {
  const header = [
    "step",
    "images",
    "wall",
    "ctr floor (ctr running)",
    "wall / floor",
    "ctr processes",
    "their CPU",
    "ctre's own CPU",
    "own / wall",
    "peak RSS, with its ctr",
    "ctre's own peak RSS",
    "wall per image",
    "own CPU per image",
  ];
  const rows: string[][] = [];
  const us = (x: number) => `${(x * 1000).toFixed(0)} µs`;
  for (const step of ["planning pass", "ctre df", "forced prune", "recorder"]) {
    for (const r of results) {
      const row = r.rows.find((x) => x.step === step)!;
      rows.push([
        step + (row.note ? ` (${row.note})` : ""),
        r.images.toLocaleString("en-US"),
        ms(row.wallMs),
        ms(row.floorMs),
        step === "recorder" ? "(a window)" : `${(row.wallMs / row.floorMs).toFixed(2)}×`,
        `${row.ctr}`,
        ms(row.ctrCpuMs),
        ms(row.ownMs),
        `${((row.ownMs / row.wallMs) * 100).toFixed(1)} %`,
        mb(row.rssKb),
        mb(row.ownRssKb),
        step === "recorder" ? "" : us(row.wallMs / r.images),
        us(row.ownMs / r.images),
      ]);
    }
  }
  const verdicts: string[] = [];
  const verdict = (ok: boolean, what: string) => verdicts.push(`${ok ? "PASS" : "FAIL"} ${what}`);
  const at = (scale: number) => results.find((r) => r.scale === scale);
  const five = at(5);
  if (five) {
    const plan = five.rows.find((r) => r.step === "planning pass")!;
    const limit = 1 + 5 * five.namespaces;
    verdict(
      plan.ctr <= limit,
      `×5: planning pass ${plan.ctr} ctr ≤ 1 + 5 per namespace = ${limit}`,
    );
    const own = plan.ownMs / plan.wallMs;
    verdict(own < 0.1, `×5: planning pass own CPU ${(own * 100).toFixed(1)} % of wall < 10 %`);
    const force = five.rows.find((r) => r.step === "forced prune")!;
    const ratio = force.wallMs / force.floorMs;
    verdict(ratio <= 1.2, `×5: forced prune ${ratio.toFixed(2)}× its ctr floor ≤ 1.2×`);
  }
  const one = at(1);
  const ten = at(10);
  if (one && ten) {
    for (const step of ["planning pass", "forced prune"]) {
      const a = one.rows.find((r) => r.step === step)!;
      const b = ten.rows.find((r) => r.step === step)!;
      const pa = a.wallMs / one.images;
      const pb = b.wallMs / ten.images;
      const fa = a.floorMs / one.images;
      const fb = b.floorMs / ten.images;
      verdict(
        pb <= pa,
        `${step}: wall per image at ×10 (${us(pb)}) ≤ at ×1 (${us(pa)}); its ctr floor per ` +
          `image: ${us(fb)} at ×10, ${us(fa)} at ×1`,
      );
      const oa = a.ownMs / one.images;
      const ob = b.ownMs / ten.images;
      verdict(ob <= oa, `${step}: ctre's own CPU per image at ×10 (${us(ob)}) ≤ at ×1 (${us(oa)})`);
    }
  }
  if (ten) {
    // ctre's own memory is the target; the peak of the whole tree (a ctr listing 10,000 images
    // can be the larger) is printed beside it.
    const own = Math.max(...ten.rows.map((r) => r.ownRssKb));
    const tree = Math.max(...ten.rows.map((r) => r.rssKb));
    verdict(
      own < 150 * 1024,
      `×10: ctre's own peak RSS ${mb(own)} < 150 MB (with its ctr processes: ${mb(tree)})`,
    );
  }
  console.log(
    [
      ...results.map((r) =>
        `×${r.scale}: ${r.images} images, ${r.containers} containers, usage DB of ${r.dbLines} ` +
        `lines, ${r.namespaces} namespaces (${r.setup}).`
      ),
      "",
      ...markdownTable(header, rows),
      "",
      `Load average (1, 5, 15 min) before each size and at the end: ${loads.join("; ")}.`,
      "",
      "ctr processes by command (count × command, their summed wall):",
      ...results.flatMap((r) => r.rows.map((x) => `- ×${r.scale} ${x.step}: ${x.byCommand}`)),
      "",
      ...verdicts,
      ...failures.map((f) => `FAIL (correctness) ${f}`),
    ].join("\n"),
  );
}

async function main(): Promise<number> {
  if (Deno.uid() !== 0) {
    console.error("growth: needs root (it starts its own containerd and containers)");
    return 2;
  }
  const version = await containerdVersion();
  const loads: string[] = [];
  const load = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
  const results: SizeResult[] = [];
  for (const scale of SCALES) {
    loads.push(`×${scale}: ${load()}`);
    try {
      results.push(await oneSize(scale, version));
    } catch (e) {
      check(false, `×${scale} aborted`, e instanceof Error ? e.stack ?? e.message : String(e));
    }
  }
  loads.push(`end: ${load()}`);
  report(results, loads);
  return failures.length ? 1 : 0;
}

Deno.exit(await main());
