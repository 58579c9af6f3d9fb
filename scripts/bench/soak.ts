// deno-lint-ignore-file no-console
/**
 * Churn soak (a benchmark-style run, not a test): a private real containerd (the test harness)
 * under a seeded workload (churn.ts: imports, re-imports, re-tags, containers started, stopped
 * and removed) while `ctre record-image-starts` runs and `ctre prune --force` loops back to back.
 * Before the churn it imports a few images and backdates their content; during it the workload
 * imports images nobody uses (`docker.io/junk/…`): the prunes' intended removals. The workload's
 * own images (`docker.io/soak/…`) are kept by `--keep`, so each must still be there and run.
 * Afterwards it checks the invariants:
 *
 * - every prune exited 0;
 * - nothing the workload made vanished: each ref it imported or tagged still points to the
 *   digest it last gave it (ctre may remove only the backdated images);
 * - every container the workload left running still runs;
 * - every image left runs (`ctr run --rm` of one ref per digest);
 * - the backdated images are gone.
 *
 * Prints the figures (operations by kind, prune runs, removals, lost images) and exits 1 when
 * an invariant fails, naming each broken one with the events containerd logged for it.
 *
 *   deno task soak [--seconds 150] [--seed N] [--old 6] [--version 1.6.20] [--ctr-delay MS] [--no-unpack SHARE]
 *
 * Needs root and what scripts/setup.sh installs (containerd versions, runc, busybox).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { TestContainerd } from "../../tests/support/containerd.ts";
import { ctreArgs, spawnCtre } from "../../tests/support/cli.ts";
import { Churn, rng, SOAK_NS } from "./churn.ts";

const args = parseArgs({
  options: {
    seconds: { type: "string", default: "150" },
    seed: { type: "string" },
    old: { type: "string", default: "6" },
    "ctr-delay": { type: "string", default: "0" },
    "no-unpack": { type: "string", default: "0.4" },
    version: { type: "string" },
    "prune-args": {
      type: "string",
      default: "--force --double-check 2s --min-age 10s --used-within 10s --keep docker.io/soak/*",
    },
  },
});
const SECONDS = Number(args.values.seconds);
const SEED = args.values.seed === undefined
  ? Math.floor(Math.random() * 2 ** 31)
  : Number(args.values.seed);
const OLD = Number(args.values.old);
const VERSION = args.values.version ?? Deno.env.get("CTRE_TEST_CONTAINERD") ?? "1.6.20";
/** Milliseconds prune's own ctr waits before `image rm` and content prune's steps (0: none). */
const CTR_DELAY = Number(args.values["ctr-delay"]);
const PRUNE_ARGS = args.values["prune-args"]!.split(" ").filter((a) => a !== "");

/** Puts the bin dir of containerd `version` first on PATH (scripts/containerd_bin.sh). */
async function useVersion(version: string): Promise<void> {
  const out = await new Deno.Command("bash", {
    args: [new URL("../containerd_bin.sh", import.meta.url).pathname, version],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`No binaries for containerd ${version}`);
  const bin = new TextDecoder().decode(out.stdout).trim();
  Deno.env.set("PATH", `${bin}:${Deno.env.get("PATH")}`);
  Deno.env.set("CTRE_TEST_CONTAINERD", version);
}

/** One prune run, as logged. */
interface PruneRun {
  start: number;
  end: number;
  code: number;
  stdout: string;
  stderr: string;
}

/** `ctr events` of the whole soak, each line with the soak's clock. */
class EventLog {
  readonly lines: string[] = [];
  readonly child: Deno.ChildProcess;
  readonly done: Promise<void>;

  constructor(c: TestContainerd, started: number) {
    this.child = new Deno.Command("ctr", {
      args: ["--address", c.address, "events"],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const stdout = this.child.stdout;
    this.done = (async () => {
      let rest = "";
      for await (const text of stdout.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + text).split("\n");
        rest = parts.pop()!;
        for (const l of parts) this.lines.push(`${Date.now() - started} ${l}`);
      }
    })();
  }

  async stop(): Promise<void> {
    this.child.kill("SIGTERM");
    await this.done;
    await this.child.status;
  }
}

/** Imports `n` images and backdates their content by 30 days: what the prunes should remove. */
async function seedOld(c: TestContainerd, n: number): Promise<string[]> {
  const refs: string[] = [];
  const digests: string[] = [];
  for (let i = 0; i < n; i++) {
    const ref = `docker.io/old/img-${i}:1`;
    digests.push(await c.importImage(SOAK_NS, ref, `old-${i}`));
    refs.push(ref);
  }
  if (n > 0) await c.ageContent(SOAK_NS, digests, 30 * 86400);
  return refs;
}

/** `ctr image ls` of the soak namespace as ref → digest. */
async function imageTable(c: TestContainerd): Promise<Map<string, string>> {
  const out = await c.ctrOk(["-n", SOAK_NS, "image", "ls"]);
  const rows = new Map<string, string>();
  for (const line of out.split("\n").slice(1)) {
    const cells = line.trim().split(/\s+/);
    const digest = cells.find((x) => x.startsWith("sha256:"));
    if (cells[0] && digest) rows.set(cells[0], digest);
  }
  return rows;
}

/** Whether prune run `p` says it deleted `ref`. */
function deletes(p: PruneRun, ref: string): boolean {
  return p.stdout.split("\n").includes(`(deleted) ${SOAK_NS} ${ref}`);
}

/**
 * A dir holding a `ctr` that sleeps CTR_DELAY ms before `image rm`, `content prune` and
 * `content label`, then runs the real ctr: put first on prune's PATH, it widens the windows in
 * which a racing workload step lands (a way to show the soak catches those races).
 */
async function slowCtrDir(): Promise<string | null> {
  if (CTR_DELAY <= 0) return null;
  const real = new TextDecoder().decode(
    (await new Deno.Command("sh", { args: ["-c", "command -v ctr"], stdout: "piped" }).output())
      .stdout,
  ).trim();
  const dir = await Deno.makeTempDir({ prefix: "ctre-soak-ctr-" });
  const script = [
    "#!/bin/sh",
    'case " $* " in',
    `  *" image rm "*|*" content prune "*|*" content label "*) sleep ${CTR_DELAY / 1000} ;;`,
    "esac",
    `exec ${real} "$@"`,
    "",
  ].join("\n");
  await Deno.writeTextFile(`${dir}/ctr`, script, { mode: 0o755 });
  return dir;
}

/** One `ctre prune` with the soak's arguments, its ctr slowed when `slowDir` is given. */
async function runPrune(
  c: TestContainerd,
  stateDir: string,
  slowDir: string | null,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const path = slowDir === null ? Deno.env.get("PATH")! : `${slowDir}:${Deno.env.get("PATH")}`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ctreArgs(["prune", ...PRUNE_ARGS], { address: c.address, stateDir }),
    stdin: "null",
    env: { NO_COLOR: "1", PATH: path },
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** Prunes back to back until `stop()` says so. */
async function pruneLoop(
  c: TestContainerd,
  stateDir: string,
  started: number,
  stop: () => boolean,
): Promise<PruneRun[]> {
  const slowDir = await slowCtrDir();
  const runs: PruneRun[] = [];
  try {
    while (!stop()) {
      const start = Date.now() - started;
      const r = await runPrune(c, stateDir, slowDir);
      runs.push({ ...r, start, end: Date.now() - started });
    }
  } finally {
    if (slowDir !== null) await Deno.remove(slowDir, { recursive: true });
  }
  return runs;
}

/** Runs the workload until `until` (ms since the epoch). */
async function workload(churn: Churn, until: number): Promise<void> {
  while (Date.now() < until) await churn.next();
}

/** The invariants after the soak; one line per broken one. */
async function check(
  c: TestContainerd,
  churn: Churn,
  old: string[],
  prunes: PruneRun[],
): Promise<{ broken: string[]; lost: string[]; ran: number }> {
  const broken: string[] = [];
  for (const p of prunes.filter((p) => p.code !== 0)) {
    broken.push(`prune at ${p.start} ms exited ${p.code}: ${p.stderr.trim().split("\n").at(-1)}`);
  }
  const table = await imageTable(c);
  const lost: string[] = [];
  for (const [ref, digest] of churn.expected) {
    const now = table.get(ref);
    // Gone by the policy: a prune that started after the workload last set the ref removed it.
    const since = churn.setAt.get(ref) ?? 0;
    if (now === undefined && prunes.some((p) => p.start >= since && deletes(p, ref))) continue;
    if (now !== digest) {
      lost.push(ref);
      broken.push(`${ref} (${digest}) vanished${now ? `: now ${now}` : ""}`);
    }
  }
  for (const ref of old.filter((r) => table.has(r))) broken.push(`${ref} (backdated) was kept`);
  const tasks = await c.taskStatuses(SOAK_NS);
  for (const [id, ref] of churn.running) {
    if (tasks.get(id) !== "RUNNING") broken.push(`container ${id} (${ref}) no longer runs`);
  }
  const byDigest = new Map<string, string>();
  for (const [ref, digest] of table) if (!byDigest.has(digest)) byDigest.set(digest, ref);
  let ran = 0;
  for (const ref of byDigest.values()) {
    try {
      await c.runOnce(SOAK_NS, ref, `soak-check-${++ran}`);
    } catch (e) {
      broken.push(`${ref} does not run: ${(e as Error).message.split("\n").at(-1)}`);
    }
  }
  return { broken, lost, ran };
}

/** Prints what containerd and the prunes logged about each lost ref. */
function explain(lost: string[], events: EventLog, prunes: PruneRun[], churn: Churn): void {
  for (const ref of lost) {
    console.log(`\n--- ${ref}`);
    for (const op of churn.ops.filter((o) => o.detail.includes(ref))) {
      console.log(`  op ${op.at} ${op.kind} ${op.detail}${op.error ? ` ERROR ${op.error}` : ""}`);
    }
    for (const l of events.lines.filter((l) => l.includes(ref))) console.log(`  event ${l}`);
    for (const p of prunes.filter((p) => (p.stdout + p.stderr).includes(ref))) {
      console.log(`  prune ${p.start}-${p.end}:\n${p.stdout}${p.stderr}`);
    }
  }
}

/** Figures of the run, as a markdown table. */
function figures(churn: Churn, prunes: PruneRun[], result: { lost: string[]; ran: number }) {
  const kinds = new Map<string, number>();
  for (const op of churn.ops) kinds.set(op.kind, (kinds.get(op.kind) ?? 0) + 1);
  // A step on an image the prunes removed by the policy (a junk ref, `not found`) is expected.
  const pruned = (o: { error?: string }) => /: not found$/.test(o.error ?? "");
  const failedOps = churn.ops.filter((o) => o.error && !pruned(o));
  const removed = prunes.reduce((n, p) => n + (p.stdout.match(/^\(deleted\) /gm)?.length ?? 0), 0);
  const rows: [string, string][] = [
    ["containerd", VERSION],
    ["seed", String(SEED)],
    ["seconds", String(SECONDS)],
    ["prune's ctr delayed (ms)", String(CTR_DELAY)],
    ["operations", `${churn.ops.length} (${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")})`],
    ["failed operations", String(failedOps.length)],
    ["steps on an image pruned meanwhile", String(churn.ops.filter(pruned).length)],
    ["prune runs", `${prunes.length} (${prunes.filter((p) => p.code !== 0).length} non-zero)`],
    ["refs removed by prune", String(removed)],
    ["images checked to run", String(result.ran)],
    [
      "lost images",
      `${result.lost.length}${result.lost.length ? `: ${result.lost.join(" ")}` : ""}`,
    ],
  ];
  console.log("| figure | value |\n|---|---|");
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
  for (const op of failedOps.slice(0, 10)) {
    console.log(`failed op ${op.at} ${op.kind} ${op.detail}: ${op.error}`);
  }
}

async function main(): Promise<number> {
  await useVersion(VERSION);
  console.error(`soak: containerd ${VERSION}, ${SECONDS} s, seed ${SEED}`);
  const c = await TestContainerd.start();
  const stateDir = await Deno.makeTempDir({ prefix: "ctre-soak-" });
  try {
    const old = await seedOld(c, OLD);
    const started = Date.now();
    const events = new EventLog(c, started);
    const recorder = spawnCtre(["record-image-starts"], { address: c.address, stateDir });
    const churn = new Churn(c, rng(SEED), started, Number(args.values["no-unpack"]));
    const until = started + SECONDS * 1000;
    const [, prunes] = await Promise.all([
      workload(churn, until),
      pruneLoop(c, stateDir, started, () => Date.now() >= until),
    ]);
    const result = await check(c, churn, old, prunes);
    recorder.kill("SIGTERM");
    await recorder.output();
    await events.stop();
    figures(churn, prunes, result);
    explain(result.lost, events, prunes, churn);
    for (const b of result.broken) console.log(`BROKEN: ${b}`);
    console.log(result.broken.length ? "soak: FAIL" : "soak: PASS");
    return result.broken.length ? 1 : 0;
  } finally {
    await c.cleanup();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
}

Deno.exit(await main());
