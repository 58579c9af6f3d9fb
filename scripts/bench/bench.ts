// deno-lint-ignore-file no-console
/**
 * Benchmark of `ctre prune` on a real containerd (not a test): a private containerd (the test
 * harness) holding the scenario of scenario.ts (1,050 images in 3 namespaces, 215 containers of
 * which 50 running, a usage DB of 5,000 entries), then:
 *
 * 1. `ctre --version` start-up time;
 * 2. planning passes (`ctre prune --dry-run --double-check 0`, the real CLI under its shipped
 *    permissions): wall time, ctr processes, ctre's own CPU (measured in the ctre process by a
 *    preloaded own_cpu.ts) against the wall time;
 * 3. a forced prune (`ctre prune --force --double-check 0`), then a check that exactly the
 *    expected images and containers remain;
 * 4. removing 500 images that share one layer: ctre (lib/prune/removal.ts through driver.ts, as prune
 *    runs it) against one `ctr image rm` per image; the same without the last-second re-read;
 *    then 60 two-layer images that share no layer, the same two ways;
 * 5. content prune (lib/policy/layer_guard.ts), plain and guarded;
 * 6. cleaning up 150 stopped containers in 3 namespaces, then the 50 of k8s.io alone (every
 *    container there has kubelet's labels): ctre (lib/prune/containers.ts) against what the original
 *    does: list, then one `ctr containers info` and one `ctr containers rm` for EVERY container
 *    (running ones included: their rm fails; created ones go).
 *
 * Both sides of each comparison are timed the same way, as whole processes from outside
 * (driver.ts's in-process step time is shown beside). Every ctre row shows its ctr floor: its
 * ctr processes × the CPU of one `ctr --version`.
 *
 * Prints a markdown table (stdout) with PASS/FAIL per target; progress goes to stderr. Exits 1
 * only when a correctness check fails: speed targets are reported, never enforced.
 *
 *   deno run -A scripts/bench/bench.ts [--plan-runs N] [--startup-runs N] [--rebuild]
 *
 * Needs root, containerd, runc, ctr and busybox (scripts/setup_demo.sh installs them) and
 * GNU time (installed from Debian when missing).
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { permissionFlags, RUNTIME_FLAGS } from "../../lib/cli/permissions.ts";
import { VERSION } from "../../lib/core/version.ts";
import { TestContainerd } from "../../tests/support/containerd.ts";
import {
  type BenchContainer,
  buildLayeredSet,
  cacheDir,
  createContainers,
  expectations,
  layeredRefs,
  listIds,
  NAMESPACES,
  plannedContainers,
  prepareImages,
  refreshCreated,
  removalSet,
  USAGE_DB_ENTRIES,
  usageDb,
} from "./scenario.ts";
import {
  type Counter,
  counter,
  markdownTable,
  mb,
  measure,
  type Measured,
  median,
  ms,
  ownFigures,
  reporter,
} from "./measure.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    "plan-runs": { type: "string", default: "5" },
    "startup-runs": { type: "string", default: "10" },
    rebuild: { type: "boolean", default: false },
  },
});
const PLAN_RUNS = Number(args.values["plan-runs"]);
const STARTUP_RUNS = Number(args.values["startup-runs"]);

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = join(ROOT, "main.ts");
const DRIVER = join(ROOT, "scripts/bench/driver.ts");
const OWN_CPU = join(ROOT, "scripts/bench/own_cpu.ts");
const DENO = Deno.execPath();

const { log, check, failures } = reporter("bench", 4);

/** Differences of two sorted lists, for messages. */
function diff(got: string[], want: string[]): string {
  const g = new Set(got);
  const w = new Set(want);
  const extra = got.filter((x) => !w.has(x));
  const missing = want.filter((x) => !g.has(x));
  return `${extra.length} unexpected (${extra.slice(0, 3).join(", ")}), ` +
    `${missing.length} missing (${missing.slice(0, 3).join(", ")})`;
}

async function output(cmd: string, cmdArgs: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args: cmdArgs, stdout: "piped", stderr: "piped" })
      .output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "";
  }
}

async function ensureTools(): Promise<void> {
  if (Deno.uid() !== 0) {
    console.error("bench: needs root (it starts its own containerd and containers)");
    Deno.exit(2);
  }
  for (const tool of ["containerd", "ctr", "runc"]) {
    if (!(await output("sh", ["-c", `command -v ${tool}`]))) {
      console.error(`bench: ${tool} is missing; run scripts/setup.sh first`);
      Deno.exit(2);
    }
  }
  try {
    await Deno.stat("/usr/bin/time");
  } catch {
    log("installing GNU time (Debian package time)");
    const env = { DEBIAN_FRONTEND: "noninteractive" };
    await new Deno.Command("apt-get", { args: ["update", "-qq"], env }).output();
    const r = await new Deno.Command("apt-get", { args: ["install", "-y", "-qq", "time"], env })
      .output();
    if (r.code !== 0) throw new Error("cannot install GNU time (apt-get install time)");
  }
}

async function machine(): Promise<Record<string, string>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? Deno.build.arch;
  const memKb = Number(/^MemTotal:\s*(\d+)/m.exec(meminfo)?.[1] ?? 0);
  const os = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(
    await Deno.readTextFile("/etc/os-release").catch(() => ""),
  )?.[1] ?? "Linux";
  return {
    cpu: `${navigator.hardwareConcurrency} × ${model}`,
    memory: `${(memKb / 1024 / 1024).toFixed(0)} GiB`,
    os: `${os}, kernel ${Deno.osRelease()}`,
    containerd: (await output("containerd", ["--version"])).split(" ").slice(2, 3).join(" "),
    deno: Deno.version.deno,
    tmpfs: await output("stat", ["-f", "-c", "%T", "/tmp"]),
  };
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function loadavg(): string {
  return Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
}

/**
 * The `deno run` argument vector of ctre under its shipped permissions; with `ownCpu`, own_cpu.ts
 * is preloaded so the run prints its own CPU (getrusage of the ctre process) on stderr.
 */
function ctreArgs(stateDir: string, rest: string[], ownCpu = false): string[] {
  const preload = ownCpu ? ["--preload", OWN_CPU] : [];
  return [
    "run",
    "--quiet",
    ...RUNTIME_FLAGS,
    ...preload,
    ...permissionFlags(stateDir),
    MAIN,
    ...rest,
  ];
}

/** The refs listed for removal (after the `NS REF_TO_PRUNE` header), as "ns ref", sorted. */
function listed(stdout: string): string[] {
  const lines = stdout.split("\n");
  const at = lines.indexOf("NS REF_TO_PRUNE");
  if (at < 0) return [];
  return lines.slice(at + 1).filter((l) => /^\S+ \S+$/.test(l)).sort();
}

interface DriverResult {
  wallMs: number;
  spawned: number;
  /** ctre's CPU during the step; processCpuMs: the driver process's in all. */
  cpuMs: number;
  processCpuMs: number;
  maxRssKb: number;
  outcome: Record<string, string[]>;
}

function driverResult(m: Measured): DriverResult {
  if (m.code !== 0) throw new Error(`driver failed (${m.code}): ${m.stderr}`);
  return JSON.parse(m.stdout) as DriverResult;
}

/** What every step works on: the private containerd, ctre's state dir, the ctr wrappers. */
interface Bench {
  c: TestContainerd;
  stateDir: string;
  /** `ctr` first on PATH, counting calls (wall, processes, RSS). */
  counted: Counter;
  /** `ctr` first on PATH, timing each call's CPU. */
  timed: Counter;
  host: Record<string, string>;
}

/** Step 1: the image store (built or restored), the containers and the usage DB. */
async function scenarioStep({ c, stateDir, host }: Bench) {
  const built = await prepareImages(c, host.containerd!, log);
  const prepared = built.fresh
    ? `built in ${built.buildSeconds.toFixed(0)} s and cached`
    : `restored from the cache in ${built.buildSeconds.toFixed(1)} s`;
  log(`image store ${prepared}`);
  const containers = plannedContainers();
  const t = performance.now();
  await createContainers(c, containers);
  log(
    `created ${containers.length} containers in ${((performance.now() - t) / 1000).toFixed(0)} s`,
  );
  const now = Date.now() / 1000;
  await Deno.writeTextFile(join(stateDir, "image_starts"), usageDb(now, built.images));
  const expected = expectations(built.images, containers);
  const byKind = (kind: BenchContainer["kind"]) => containers.filter((k) => k.kind === kind);
  const stopped = byKind("stopped");
  const refCount = built.images.reduce((n, i) => n + i.refs.length, 0);
  const scenarioText = `${built.images.length} images (${refCount} refs) in ` +
    `${NAMESPACES.length} namespaces, ${containers.length} containers ` +
    `(${byKind("running").length} running, ${stopped.length} stopped, ` +
    `${byKind("created").length} created), usage DB of ${USAGE_DB_ENTRIES} entries`;
  log(`scenario: ${scenarioText}`);

  return { built, containers, expected, byKind, stopped, scenarioText, prepared };
}
type Scenario = Awaited<ReturnType<typeof scenarioStep>>;

/** Step 2: what the measuring wrappers and the harness add, to take out of the figures. */
async function wrapperCosts({ timed }: Bench) {
  // They run in the measured process trees: their CPU is subtracted from ctr's or ctre's.
  // Measured with /bin/true in place of ctr, 200 calls: what each wrapper adds per call.
  const calls = 200;
  const loop = ["-c", `for i in $(seq ${calls}); do ctr; done`];
  const noop = await Deno.makeTempDir({ prefix: "ctre-bench-true-" });
  await Deno.symlink("/bin/true", join(noop, "ctr"));
  const cost = async (kind: "count" | "time") => {
    const w = await counter(kind, "/bin/true");
    const direct = await measure("sh", loop, null, { pathFirst: noop });
    const wrapped = await measure("sh", loop, w);
    await Deno.remove(w.dir, { recursive: true });
    return {
      wallMs: Math.max(0, (wrapped.wallMs - direct.wallMs) / calls),
      cpuMs: Math.max(0, (wrapped.cpuMs - direct.cpuMs) / calls),
    };
  };
  const countCost = await cost("count");
  const timeCost = await cost("time");
  await Deno.remove(noop, { recursive: true });
  const countWallMs = countCost.wallMs;
  const countCpuMs = countCost.cpuMs;
  const timeCpuMs = timeCost.cpuMs;
  const version = await measure(
    "sh",
    ["-c", "for i in $(seq 20); do ctr --version >/dev/null; done"],
    timed,
  );
  log(
    `wrappers: count ${countWallMs.toFixed(1)} ms wall and ${countCpuMs.toFixed(1)} ms CPU per ` +
      `call, time ${timeCost.wallMs.toFixed(1)} ms wall and ${timeCpuMs.toFixed(1)} ms CPU; ` +
      `ctr --version: ${(version.ctrCpuMs / 20).toFixed(1)} ms CPU`,
  );
  // What measuring itself adds (bash, GNU time): the same harness around /bin/true.
  const harness: Measured[] = [];
  for (let i = 0; i < 10; i++) harness.push(await measure("/bin/true", [], null));
  const harnessMs = median(harness.map((h) => h.wallMs));
  const harnessCpuMs = median(harness.map((h) => h.cpuMs));
  /** ctre's own CPU, measured in its process (own_cpu.ts, getrusage of that process only). */
  const ownCpu = (m: Measured) => ownFigures(m.stderr).cpuMs;
  /** ctr's CPU in a run under the `count` wrapper: the tree's less the rest's and the wrapper's. */
  const ctrCpu = (m: Measured, restMs: number) =>
    m.cpuMs - harnessCpuMs - restMs - m.ctrCalls * countCpuMs;

  /** The least CPU a ctr process costs: `ctr --version`'s. */
  const ctrStartCpuMs = version.ctrCpuMs / 20;
  return {
    countWallMs,
    countCpuMs,
    timeCpuMs,
    harnessMs,
    harnessCpuMs,
    ownCpu,
    ctrCpu,
    ctrStartCpuMs,
  };
}
type Costs = Awaited<ReturnType<typeof wrapperCosts>>;

/** Step 3: `ctre --version` start-up. */
async function startupStep({ stateDir }: Bench, { harnessMs, harnessCpuMs }: Costs) {
  const versionArgs = ctreArgs(stateDir, ["--version"]);
  await measure(DENO, versionArgs, null); // warm the module cache
  const startups: Measured[] = [];
  for (let i = 0; i < STARTUP_RUNS; i++) startups.push(await measure(DENO, versionArgs, null));
  check(startups.every((s) => s.stdout.trim() === `ctre ${VERSION}`), "ctre --version output");
  const startupMs = median(startups.map((s) => s.wallMs)) - harnessMs;
  const startupCpuMs = median(startups.map((s) => s.cpuMs)) - harnessCpuMs;
  const startupRss = Math.max(...startups.map((s) => s.maxRssKb));
  log(`start-up: median ${ms(startupMs)} (harness ${ms(harnessMs)} subtracted)`);

  return { startups, startupMs, startupCpuMs, startupRss };
}

/** Step 4: planning passes (dry runs of the real CLI), each checked against the expected list. */
async function planningStep(
  { c, stateDir, counted, timed }: Bench,
  { expected }: Scenario,
  { harnessMs, ownCpu }: Costs,
) {
  const address = ["--address", c.address, "--state-dir", stateDir];
  const planArgs = ctreArgs(
    stateDir,
    ["prune", "--dry-run", "--double-check", "0", ...address],
    true,
  );
  // Each pass twice: under the count wrapper (wall, processes, RSS), and under the time wrapper
  // (CPU: ctr's, and ctre's own as the rest).
  const plans: Measured[] = [];
  const planCpus: Measured[] = [];
  let planCalls: string[] = [];
  let timedPlanCalls: Promise<[number, string][]> = Promise.resolve([]);
  for (let i = 0; i < PLAN_RUNS; i++) {
    const m = await measure(DENO, planArgs, counted);
    planCalls = await counted.calls();
    const t = await measure(DENO, planArgs, timed);
    timedPlanCalls = timed.cpuByCall();
    plans.push(m);
    planCpus.push(t);
    log(
      `planning pass ${i + 1}: ${ms(m.wallMs)}, ${m.ctrCalls} ctr (${ms(t.ctrCpuMs)} CPU), ` +
        `own CPU ${ms(ownCpu(t))}`,
    );
    for (const r of [m, t]) {
      if (!check(r.code === 0, "planning pass exit code", r.stderr)) break;
      const got = listed(r.stdout);
      check(
        JSON.stringify(got) === JSON.stringify(expected.listed),
        "planning pass lists exactly the prunable refs",
        diff(got, expected.listed),
      );
    }
  }
  const planWall = median(plans.map((p) => p.wallMs)) - harnessMs;
  const planOwnMs = median(planCpus.map(ownCpu));
  const planOwn = planOwnMs / planWall;
  const planCtrCpu = median(planCpus.map((p) => p.ctrCpuMs));
  const planCtr = Math.max(...plans.map((p) => p.ctrCalls), ...planCpus.map((p) => p.ctrCalls));
  const planRss = Math.max(...plans.map((p) => p.maxRssKb));
  // namespace ls, then per namespace content, image, container, snapshot ls (lineage) and
  // snapshot usage (the disk figures: one more per namespace and snapshotter, one in practice).
  const planLimit = 1 + 5 * NAMESPACES.length;
  log(`planning pass ctr calls: ${planCalls.join(" | ")}`);

  return {
    address,
    plans,
    planCalls,
    timedPlanCalls,
    planWall,
    planOwnMs,
    planOwn,
    planCtrCpu,
    planCtr,
    planRss,
    planLimit,
  };
}

/** Step 5: a forced prune, then exactly the expected images and containers must remain. */
async function forcedPruneStep(
  { c, stateDir, timed }: Bench,
  { containers, expected }: Scenario,
  address: string[],
) {
  await refreshCreated(c, containers); // a created container older than 5 min may go
  const force = await measure(
    DENO,
    ctreArgs(stateDir, ["prune", "--force", "--double-check", "0", ...address], true),
    timed, // its CPU split matters more than its wall time (~3 ms more per ctr)
  );
  log(`forced prune: ${ms(force.wallMs)}, ${force.ctrCalls} ctr, exit ${force.code}`);
  check(force.code === 0, "forced prune exit code", force.stderr.slice(-500));
  let remainOk = true;
  for (const s of NAMESPACES) {
    const images = await listIds(c, s.ns, "image");
    const want = expected.keptRefs.get(s.ns)!;
    remainOk = check(
      JSON.stringify(images) === JSON.stringify(want),
      `images left in ${s.ns} after the forced prune`,
      diff(images, want),
    ) && remainOk;
    const ids = await listIds(c, s.ns, "container");
    const wantIds = expected.keptContainers.get(s.ns)!;
    remainOk = check(
      JSON.stringify(ids) === JSON.stringify(wantIds),
      `containers left in ${s.ns} after the forced prune`,
      diff(ids, wantIds),
    ) && remainOk;
  }

  return { force, remainOk };
}

/** Step 6: removing 500 images, ctre against one ctr per image, and without the re-read. */
async function removalStep({ c, counted }: Bench, { built, expected }: Scenario) {
  const removal = removalSet(built.images);
  const removalRefs = [...removal].flatMap(([ns, set]) => set.map((i) => `${ns} ${i.refs[0]}`));
  const reimport = async () => {
    const t = performance.now();
    for (const s of NAMESPACES) {
      await c.ctrOk(["-n", s.ns, "image", "import", built.removalTars.get(s.ns)!]);
    }
    log(`re-imported ${removalRefs.length} images in ${ms(performance.now() - t)}`);
  };
  const removedAll = async (who: string) => {
    for (const s of NAMESPACES) {
      const left = new Set(await listIds(c, s.ns, "image"));
      const still = removal.get(s.ns)!.filter((i) => left.has(i.refs[0]!));
      check(
        still.length === 0,
        `${who} removed every image of the set in ${s.ns}`,
        `${still.length} left`,
      );
      const want = expected.keptRefs.get(s.ns)!;
      check(want.every((r) => left.has(r)), `${who} left the other images of ${s.ns}`);
    }
  };
  await reimport();
  const rmJob = JSON.stringify({
    address: c.address,
    sets: [...removal].map(([ns, set]) => ({
      ns,
      refs: set.map((i) => ({ ref: i.refs[0]!, digest: i.digest })),
    })),
  });
  const rmCtreM = await measure(DENO, ["run", "--allow-run=ctr", DRIVER, "remove"], counted, {
    stdin: rmJob,
  });
  const rmCtre = driverResult(rmCtreM);
  log(`ctre removal: ${ms(rmCtre.wallMs)}, ${rmCtre.spawned} ctr`);
  check(
    rmCtre.outcome.removed!.length === removalRefs.length,
    "ctre removal outcome",
    rmCtre.outcome.failed!.slice(0, 3).join("; "),
  );
  await removedAll("ctre");
  await reimport();
  const rmBase = await measure(
    "sh",
    [
      "-c",
      'while read -r ns ref; do ctr --address "$0" -n "$ns" image rm "$ref" </dev/null >/dev/null || exit 1; done',
      c.address,
    ],
    counted,
    { stdin: removalRefs.join("\n") + "\n" },
  );
  log(`one ctr per image: ${ms(rmBase.wallMs)}, ${rmBase.ctrCalls} ctr`);
  check(rmBase.code === 0, "one-ctr-per-image removal exit code", rmBase.stderr.slice(-300));
  await removedAll("one ctr per image");

  // --- The last-second re-read: the same removal without it ---------------------------------
  await reimport();
  const rmNoCheckM = await measure(DENO, ["run", "--allow-run=ctr", DRIVER, "remove"], counted, {
    stdin: JSON.stringify({ ...JSON.parse(rmJob), check: false }),
  });
  const rmNoCheck = driverResult(rmNoCheckM);
  log(`ctre removal without the re-read: ${ms(rmNoCheck.wallMs)}, ${rmNoCheck.spawned} ctr`);
  await removedAll("ctre without the re-read");

  return { removal, removalRefs, reimport, rmCtreM, rmCtre, rmBase, rmNoCheckM, rmNoCheck };
}
type Removal = Awaited<ReturnType<typeof removalStep>>;

/** Step 6b: removing two-layer images that share no layer (each frees two snapshots). */
async function layeredRemovalStep({ c, counted }: Bench) {
  const sets: { ns: string; images: { ref: string; digest: string }[]; tar: string }[] = [];
  for (const s of NAMESPACES) {
    const built = await buildLayeredSet(layeredRefs(s));
    const tar = join(c.dir, `layered-${s.short}.tar`);
    await Deno.writeFile(tar, built.tar);
    sets.push({ ns: s.ns, images: built.images, tar });
  }
  const refs = sets.flatMap((s) => s.images.map((i) => `${s.ns} ${i.ref}`));
  const load = async () => {
    for (const s of sets) await c.ctrOk(["-n", s.ns, "image", "import", s.tar]);
  };
  const gone = async (who: string) => {
    for (const s of sets) {
      const left = new Set(await listIds(c, s.ns, "image"));
      const still = s.images.filter((i) => left.has(i.ref));
      check(still.length === 0, `${who} removed every layered image of ${s.ns}`, `${still.length}`);
    }
  };
  await load();
  const job = JSON.stringify({
    address: c.address,
    sets: sets.map((s) => ({ ns: s.ns, refs: s.images })),
  });
  const layeredCtreM = await measure(DENO, ["run", "--allow-run=ctr", DRIVER, "remove"], counted, {
    stdin: job,
  });
  const layeredCtre = driverResult(layeredCtreM);
  log(`ctre removal, layered: ${ms(layeredCtreM.wallMs)}, ${layeredCtre.spawned} ctr`);
  check(
    layeredCtre.outcome.removed!.length === refs.length,
    "ctre removal of the layered images",
    layeredCtre.outcome.failed!.slice(0, 3).join("; "),
  );
  await gone("ctre");
  await load();
  const layeredBase = await measure(
    "sh",
    [
      "-c",
      'while read -r ns ref; do ctr --address "$0" -n "$ns" image rm "$ref" </dev/null >/dev/null || exit 1; done',
      c.address,
    ],
    counted,
    { stdin: refs.join("\n") + "\n" },
  );
  log(`one ctr per layered image: ${ms(layeredBase.wallMs)}, ${layeredBase.ctrCalls} ctr`);
  check(layeredBase.code === 0, "one ctr per layered image exit code", layeredBase.stderr);
  await gone("one ctr per image");
  for (const s of sets) await Deno.remove(s.tar).catch(() => {});
  return { layeredCount: refs.length, layeredCtreM, layeredCtre, layeredBase };
}

/** Step 7: content prune, every image unpacked, then with a never-unpacked image per namespace. */
async function contentStep({ c, counted }: Bench, { removal, reimport }: Removal) {
  // The removal set comes back with fresh layer references on its 500 manifests (the forced
  // prune stripped the others'): the plain path strips them in one process per namespace; with
  // a never-unpacked image in each namespace, ctre protects that image's layers the way
  // lib/prune/content_prune.ts does (this row measures whatever that is).
  const contentJob = JSON.stringify({
    address: c.address,
    namespaces: NAMESPACES.map((s) => s.ns),
  });
  const removeSet = async () => {
    for (const s of NAMESPACES) {
      await c.ctrOk(["-n", s.ns, "image", "rm", ...removal.get(s.ns)!.map((i) => i.refs[0]!)]);
    }
  };
  await reimport();
  const contentPlainM = await measure(
    DENO,
    ["run", "--allow-run=ctr", DRIVER, "content"],
    counted,
    { stdin: contentJob },
  );
  const contentPlain = driverResult(contentPlainM);
  log(`content prune, all unpacked: ${ms(contentPlain.wallMs)}, ${contentPlain.spawned} ctr`);
  check(contentPlain.outcome.protected!.length === 0, "plain content prune protects nothing");
  await removeSet();
  await reimport();
  const offline = new Map<string, string>();
  for (const s of NAMESPACES) {
    const ref = `bench.example/offline-${s.short}:1`;
    await c.importImage(s.ns, ref, `offline-${s.short}`, [], { unpack: false });
    offline.set(s.ns, ref);
  }
  const contentGuardM = await measure(
    DENO,
    ["run", "--allow-run=ctr", DRIVER, "content"],
    counted,
    { stdin: contentJob },
  );
  const contentGuard = driverResult(contentGuardM);
  log(`content prune, guarded: ${ms(contentGuard.wallMs)}, ${contentGuard.spawned} ctr`);
  let guardOk = check(
    JSON.stringify(contentGuard.outcome.protected!.sort()) ===
      JSON.stringify([...offline].map(([ns, ref]) => `${ns} ${ref}`).sort()),
    "guarded content prune protects exactly the never-unpacked images",
    contentGuard.outcome.protected!.join("; "),
  );
  guardOk = check(contentGuard.outcome.errors!.length === 0, "guarded content prune, no errors") &&
    guardOk;
  for (const [ns, ref] of offline) {
    const r = await c.ctr([
      "-n",
      ns,
      "run",
      "--rm",
      "--runc-root",
      c.runcRoot,
      "--fifo-dir",
      c.fifoDir,
      "--cgroup",
      c.cgroupPath(ns, "bench-offline"),
      ref,
      "bench-offline",
      "true",
    ]);
    guardOk = check(r.code === 0, `the never-unpacked image of ${ns} runs`, r.stderr.slice(-300)) &&
      guardOk;
    await c.ctrOk(["-n", ns, "image", "rm", ref]);
  }
  await removeSet();

  return { contentPlainM, contentPlain, contentGuardM, contentGuard, guardOk };
}

/** Step 8: cleaning up the stopped containers, ctre against what the original does. */
async function cleanupStep(
  { c, counted }: Bench,
  { containers, expected, stopped: allStopped, byKind }: Scenario,
  namespaces: string[],
) {
  const stopped = allStopped.filter((k) => namespaces.includes(k.ns));
  const stoppedIds = stopped.map((k) => `${k.ns} ${k.id}`).sort();
  const cleanedAll = async (who: string) => {
    for (const s of NAMESPACES.filter((s) => namespaces.includes(s.ns))) {
      const ids = await listIds(c, s.ns, "container");
      const want = expected.keptContainers.get(s.ns)!;
      check(
        JSON.stringify(ids) === JSON.stringify(want),
        `${who}: containers left in ${s.ns}`,
        diff(ids, want),
      );
    }
  };
  const restock = async () => {
    const t = performance.now();
    await createContainers(c, stopped);
    await refreshCreated(c, containers);
    log(`created ${stopped.length} stopped containers in ${ms(performance.now() - t)}`);
  };
  await restock();
  const cleanJob = JSON.stringify({ address: c.address, namespaces });
  const cleanCtreM = await measure(DENO, ["run", "--allow-run=ctr", DRIVER, "cleanup"], counted, {
    stdin: cleanJob,
  });
  const cleanCtre = driverResult(cleanCtreM);
  log(`ctre clean-up: ${ms(cleanCtre.wallMs)}, ${cleanCtre.spawned} ctr`);
  check(
    JSON.stringify(cleanCtre.outcome.deleted!.sort()) === JSON.stringify(stoppedIds),
    "ctre clean-up deleted exactly the stopped containers",
    diff(cleanCtre.outcome.deleted!, stoppedIds),
  );
  await cleanedAll("ctre clean-up");
  await restock();
  // The original's clean-up: per namespace list every container, inspect each one, then try to
  // remove each one; `ctr containers rm` refuses the running ones (their failures are ignored,
  // as the original does) and removes the created ones too.
  const cleanBase = await measure(
    "sh",
    [
      "-c",
      'for ns in "$@"; do ids=$(ctr --address "$0" -n "$ns" containers ls -q) || exit 1; ' +
      'for id in $ids; do ctr --address "$0" -n "$ns" containers info "$id" >/dev/null || exit 1; done; ' +
      'for id in $ids; do ctr --address "$0" -n "$ns" containers rm "$id" >/dev/null 2>&1; done; done',
      c.address,
      ...namespaces,
    ],
    counted,
  );
  log(`the original's clean-up: ${ms(cleanBase.wallMs)}, ${cleanBase.ctrCalls} ctr`);
  check(cleanBase.code === 0, "the original's clean-up exit code", cleanBase.stderr.slice(-300));
  for (const s of NAMESPACES.filter((s) => namespaces.includes(s.ns))) {
    const ids = await listIds(c, s.ns, "container");
    const want = byKind("running").filter((k) => k.ns === s.ns).map((k) => k.id).sort();
    check(
      JSON.stringify(ids) === JSON.stringify(want),
      `the original's clean-up: only the running containers left in ${s.ns}`,
      diff(ids, want),
    );
  }

  return {
    cleanCtreM,
    cleanCtre,
    cleanBase,
    cleanContainers: containers.filter((k) => namespaces.includes(k.ns)).length,
    cleanStopped: stopped.length,
  };
}

/** Every step's figures, for the table. */
type Figures =
  & Scenario
  & Costs
  & Awaited<ReturnType<typeof startupStep>>
  & Awaited<ReturnType<typeof planningStep>>
  & Awaited<ReturnType<typeof forcedPruneStep>>
  & Removal
  & Awaited<ReturnType<typeof contentStep>>
  & Awaited<ReturnType<typeof cleanupStep>>;

/** The comparisons beside the main ones: layered images, all-Kubernetes containers. */
interface Extra {
  layered: Awaited<ReturnType<typeof layeredRemovalStep>>;
  k8sCleanup: Awaited<ReturnType<typeof cleanupStep>>;
}

/** Step 9: the markdown table, each figure beside its target, and the PASS/FAIL lines. */
async function report(
  host: Record<string, string>,
  loadBefore: string,
  { layered, k8sCleanup }: Extra,
  f: Figures,
) {
  const {
    scenarioText,
    prepared,
    containers,
    stopped,
    countWallMs,
    timeCpuMs,
    harnessMs,
    ownCpu,
    ctrCpu,
    ctrStartCpuMs,
    startups,
    startupMs,
    startupCpuMs,
    startupRss,
    plans,
    planCalls,
    timedPlanCalls,
    planWall,
    planOwnMs,
    planOwn,
    planCtrCpu,
    planCtr,
    planRss,
    planLimit,
    force,
    remainOk,
    removalRefs,
    rmCtreM,
    rmCtre,
    rmBase,
    rmNoCheckM,
    rmNoCheck,
    contentPlainM,
    contentPlain,
    contentGuardM,
    contentGuard,
    guardOk,
    cleanCtreM,
    cleanCtre,
    cleanBase,
  } = f;
  const rows: string[][] = [];
  const verdicts: { target: string; pass: boolean }[] = [];
  const verdict = (target: string, pass: boolean) => {
    verdicts.push({ target, pass });
    return pass ? "PASS" : "FAIL";
  };
  // Both sides timed the same way: as whole processes from outside (the driver's Deno start-up
  // counts against ctre, as the shell's does against the baseline).
  const perCtr = (cpu: number, calls: number) => `${ms(cpu)} (${ms(cpu / calls)} each)`;
  /** CPU of every process on the machine during a step, and how many cores that kept busy. */
  const machine = (cpu: number, wall: number) =>
    `${ms(cpu)} (${(cpu / wall).toFixed(1)} of ${navigator.hardwareConcurrency} cores)`;
  // What the planning pass's ctr time goes to, by command (the last timed pass).
  const callKinds = new Map<string, number[]>();
  for (const [cpu, args] of await timedPlanCalls) {
    const kind = args.replace(/--address \S+ /, "").replace(/^-n \S+ /, "");
    callKinds.set(kind, [...(callKinds.get(kind) ?? []), cpu]);
  }
  const planKinds = [...callKinds].sort((a, b) => sum(b[1]) - sum(a[1])).map(([kind, cpus]) =>
    `${cpus.length} × \`${kind}\` ${ms(sum(cpus))}`
  );
  /** The ctr floor of a step: its ctr processes, each at least a \`ctr --version\`'s CPU. */
  const floor = (calls: number) =>
    `ctr floor: ${calls} × ${ms(ctrStartCpuMs)} = ${ms(calls * ctrStartCpuMs)} CPU`;
  /** Three rows: ctre (the driver, a whole process), the baseline (a whole process), ratio. */
  const comparison = (
    ctreLabel: string,
    ctreM: Measured,
    ctre: DriverResult,
    baseLabel: string,
    base: Measured,
    target: { min: number; what: string } | null,
  ): string[][] => {
    const ctreCtr = ctrCpu(ctreM, ctre.processCpuMs);
    const baseCtr = ctrCpu(base, 0);
    const ratio = base.wallMs / ctreM.wallMs;
    return [
      [
        ctreLabel,
        `${ms(ctreM.wallMs)} (step ${ms(ctre.wallMs)})`,
        `${ctre.spawned}`,
        perCtr(ctreCtr, ctre.spawned),
        ms(ctre.cpuMs),
        machine(ctreM.machineCpuMs, ctreM.wallMs),
        mb(ctreM.maxRssKb),
        floor(ctre.spawned),
      ],
      [
        baseLabel,
        ms(base.wallMs),
        `${base.ctrCalls}`,
        perCtr(baseCtr, base.ctrCalls),
        "",
        machine(base.machineCpuMs, base.wallMs),
        mb(base.maxRssKb),
        floor(base.ctrCalls),
      ],
      [
        "… ratio",
        `**${ratio.toFixed(2)}× faster**`,
        `${(base.ctrCalls / Math.max(1, ctre.spawned)).toFixed(1)}× fewer`,
        `${(baseCtr / Math.max(1, ctreCtr)).toFixed(1)}× less`,
        "",
        "",
        "",
        target === null
          ? "(reported)"
          : `≥ ${target.min}×: ${verdict(target.what, ratio >= target.min)}`,
      ],
    ];
  };
  rows.push(
    [
      `planning pass, \`prune --dry-run --double-check 0\` (median of ${plans.length})`,
      ms(planWall),
      `${planCtr}`,
      `${ms(planCtrCpu)}`,
      `${ms(planOwnMs)} = **${(planOwn * 100).toFixed(2)} %** of wall`,
      machine(median(plans.map((p) => p.machineCpuMs)), planWall),
      mb(planRss),
      `${floor(planCtr)}; ≤ ${planLimit} ctr: ${
        verdict(
          `planning pass spawns ≤ 1 + 5 per namespace = ${planLimit} ctr`,
          planCtr <= planLimit,
        )
      }; own < 10 %: ${
        verdict("planning pass: ctre's own CPU < 10 % of its wall time", planOwn < 0.1)
      }`,
    ],
    [
      "forced prune, `prune --force --double-check 0` (whole run)",
      ms(force.wallMs),
      `${force.ctrCalls}`,
      perCtr(force.ctrCpuMs, force.ctrCalls),
      ms(ownCpu(force)),
      machine(force.machineCpuMs, force.wallMs),
      mb(force.maxRssKb),
      `${floor(force.ctrCalls)}; exactly the expected images and containers remain: ${
        verdict(
          "forced prune leaves exactly the expected images and containers",
          remainOk && force.code === 0,
        )
      }`,
    ],
    ...comparison(
      `remove ${removalRefs.length} images sharing one layer: ctre (\`removeImages\`, ≤ 100 refs per ctr)`,
      rmCtreM,
      rmCtre,
      `remove ${removalRefs.length} images: one \`ctr image rm\` per image`,
      rmBase,
      { min: 10, what: "removing 500 images ≥ 10× faster than one ctr per image" },
    ),
    [
      `remove ${removalRefs.length} images: ctre without the last-second re-read`,
      `${ms(rmNoCheckM.wallMs)} (step ${ms(rmNoCheck.wallMs)})`,
      `${rmNoCheck.spawned}`,
      perCtr(ctrCpu(rmNoCheckM, rmNoCheck.processCpuMs), rmNoCheck.spawned),
      ms(rmNoCheck.cpuMs),
      machine(rmNoCheckM.machineCpuMs, rmNoCheckM.wallMs),
      mb(rmNoCheckM.maxRssKb),
      `re-read costs ${ms(rmCtre.wallMs - rmNoCheck.wallMs)}; ${floor(rmNoCheck.spawned)}`,
    ],
    [
      `content prune, 3 namespaces, every image unpacked (\`pruneContentSafely\`)`,
      `${ms(contentPlainM.wallMs)} (step ${ms(contentPlain.wallMs)})`,
      `${contentPlain.spawned}`,
      perCtr(ctrCpu(contentPlainM, contentPlain.processCpuMs), contentPlain.spawned),
      ms(contentPlain.cpuMs),
      machine(contentPlainM.machineCpuMs, contentPlainM.wallMs),
      mb(contentPlainM.maxRssKb),
      floor(contentPlain.spawned),
    ],
    [
      `content prune, a never-unpacked image in each namespace (${removalRefs.length} manifests ` +
      "to strip; that image's layers kept)",
      `${ms(contentGuardM.wallMs)} (step ${ms(contentGuard.wallMs)})`,
      `${contentGuard.spawned}`,
      perCtr(ctrCpu(contentGuardM, contentGuard.processCpuMs), contentGuard.spawned),
      ms(contentGuard.cpuMs),
      machine(contentGuardM.machineCpuMs, contentGuardM.wallMs),
      mb(contentGuardM.maxRssKb),
      `${floor(contentGuard.spawned)}; the never-unpacked images still run: ` +
      verdict("guarded content prune keeps never-unpacked images runnable", guardOk) +
      `; ≤ 1.5× the plain one: ${(contentGuardM.wallMs / contentPlainM.wallMs).toFixed(2)}× ` +
      verdict(
        "guarded content prune within 1.5× of the plain one (wall)",
        contentGuardM.wallMs <= 1.5 * contentPlainM.wallMs,
      ),
    ],
    ...comparison(
      `clean up ${stopped.length} stopped containers, 3 namespaces: ctre (\`cleanupContainers\`)`,
      cleanCtreM,
      cleanCtre,
      `clean up: as the original, \`info\` + \`rm\` of all ${containers.length} containers`,
      cleanBase,
      {
        min: 2,
        what:
          "cleaning up 150 stopped containers ≥ 2× faster than the original's info + rm of every container",
      },
    ),
    ...comparison(
      `remove ${layered.layeredCount} two-layer images sharing no layer: ctre`,
      layered.layeredCtreM,
      layered.layeredCtre,
      `remove ${layered.layeredCount} two-layer images: one \`ctr image rm\` per image`,
      layered.layeredBase,
      null,
    ),
    ...comparison(
      `clean up ${k8sCleanup.cleanStopped} stopped containers, all Kubernetes (k8s.io): ctre`,
      k8sCleanup.cleanCtreM,
      k8sCleanup.cleanCtre,
      `clean up k8s.io as the original: \`info\` + \`rm\` of all ${k8sCleanup.cleanContainers}`,
      k8sCleanup.cleanBase,
      null,
    ),
    [
      `\`ctre --version\` start-up (median of ${startups.length})`,
      ms(startupMs),
      "0",
      "",
      ms(startupCpuMs),
      "",
      mb(startupRss),
      `< 100 ms: ${verdict("ctre --version starts in < 100 ms", startupMs < 100)}`,
    ],
  );
  const teardown = (m: Measured) => (m.machineCpuMs - m.cpuMs) / stopped.length;
  const rmTeardown = (m: Measured) => (m.machineCpuMs - m.cpuMs) / removalRefs.length;
  const loadAfter = loadavg();
  const out = [
    `Scenario: ${scenarioText}; image store ${prepared}.`,
    "",
    ...markdownTable(
      [
        "step",
        "wall",
        "ctr processes",
        "their CPU",
        "ctre's own CPU",
        "machine CPU",
        "peak RSS",
        "target",
      ],
      rows,
    ),
    "",
    `Machine: ${host.cpu}, ${host.memory} RAM, ${host.os}; containerd ${host.containerd} ` +
    `(root on ${host.tmpfs}); Deno ${host.deno}. Load average before ${loadBefore}, after ` +
    `${loadAfter}.`,
    `ctr processes are counted by a sh wrapper first on PATH (${countWallMs.toFixed(1)} ms ` +
    `wall per call, in the ctre and the one-per-item figures alike). CPU of each step's ` +
    `process tree: bash's \`time\` (getrusage, ms); ctr's share in the planning passes and ` +
    `the forced prune from a bash wrapper timing each ctr (runs of their own, ` +
    `${timeCpuMs.toFixed(1)} ms CPU per call); ctre's own CPU measured in its own process ` +
    `(getrusage of that process only: preloaded own_cpu.ts in the CLI runs, the driver's ` +
    `in the library steps); in the other rows ctr's is the tree's less ctre's. ` +
    `Machine CPU: /proc/stat, every process (containerd, shims and runc included, and anything ` +
    `else running). Walls of the CLI runs are less the harness's (${ms(harnessMs)}: bash and ` +
    `GNU time). Peak RSS: the largest process of the step (GNU time). Planning pass ctr ` +
    `calls: ${planCalls.map((l) => l.replace(/--address \S+ /, "")).join("; ")}; their CPU: ` +
    `${planKinds.join(", ")}.`,
    `Clean-up outside the measured processes (machine CPU less their tree's: containerd, the ` +
    `shims, runc, the kernel): ${ms(teardown(cleanCtreM))} per container with ctre, ` +
    `${ms(teardown(cleanBase))} as the original (every container); removal: ` +
    `${ms(rmTeardown(rmCtreM))} per image with ctre, ${ms(rmTeardown(rmBase))} one by one.`,
    "",
    ...verdicts.map((v) => `${v.pass ? "PASS" : "FAIL"} ${v.target}`),
    ...failures.map((f) => `FAIL (correctness) ${f}`),
  ];
  console.log(out.join("\n"));
}

async function main(): Promise<number> {
  await ensureTools();
  const host = await machine();
  const loadBefore = loadavg();
  log(`machine: ${Object.values(host).join("; ")}; load ${loadBefore}`);
  if (args.values.rebuild) {
    await Deno.remove(await cacheDir(host.containerd!), { recursive: true })
      .catch(() => {});
  }
  const b: Bench = {
    c: await TestContainerd.start(),
    stateDir: await Deno.makeTempDir({ prefix: "ctre-bench-state-" }),
    counted: await counter("count"),
    timed: await counter("time"),
    host,
  };
  try {
    const scenario = await scenarioStep(b);
    const costs = await wrapperCosts(b);
    const startup = await startupStep(b, costs);
    const planning = await planningStep(b, scenario, costs);
    const forced = await forcedPruneStep(b, scenario, planning.address);
    const removal = await removalStep(b, scenario);
    const layered = await layeredRemovalStep(b);
    const content = await contentStep(b, removal);
    const cleanup = await cleanupStep(b, scenario, NAMESPACES.map((s) => s.ns));
    // All-Kubernetes containers: every container of k8s.io carries kubelet's labels.
    const k8sCleanup = await cleanupStep(b, scenario, ["k8s.io"]);
    await report(host, loadBefore, { layered, k8sCleanup }, {
      ...scenario,
      ...costs,
      ...startup,
      ...planning,
      ...forced,
      ...removal,
      ...content,
      ...cleanup,
    });
  } catch (e) {
    failures.push(`bench aborted: ${e instanceof Error ? e.stack : e}`);
    console.error(e);
  } finally {
    log("cleaning up");
    await b.c.cleanup();
    await Deno.remove(b.stateDir, { recursive: true }).catch(() => {});
    for (const w of [b.counted, b.timed]) {
      await Deno.remove(w.dir, { recursive: true }).catch(() => {});
    }
  }
  log(failures.length ? `${failures.length} correctness failure(s)` : "done");
  return failures.length ? 1 : 0;
}

Deno.exit(await main());
