/**
 * The state of one `ctre prune` run and its planning passes: the namespaces it works on, where
 * it prints, and each pass over containerd (lib/node/inventory.ts) decided by the policy
 * (lib/policy/plan.ts). The steps that use it are in prune.ts and prune_removal.ts.
 *
 * @module
 */
import { join } from "node:path";
import type { Containerd } from "../ctr/gateway.ts";
import { errorText } from "../core/errors.ts";
import { quoteCut } from "../core/text.ts";
import { imagesElsewhere, snapshotAll } from "../node/inventory.ts";
import type { NamespaceSnapshot } from "../core/containerd.ts";
import { type Io, println } from "../core/io.ts";
import { type ImagePlan, planNamespace, prunableSet } from "../policy/plan.ts";
import { confirmPass } from "../policy/recheck.ts";
import type { Budget } from "../policy/budget.ts";
import {
  type DiskInput,
  diskInputOf,
  type DiskModel,
  diskModel,
  imageDisk,
} from "../policy/disk.ts";
import type { Lines } from "./after_removal.ts";
import { RunOutput } from "./run_output.ts";
import { loadUsageDb, USAGE_FILE } from "../state/usage_db.ts";
import { loadExtras, rememberPins } from "./plan_inputs.ts";

export interface PruneOptions {
  mode: "ask" | "force" | "dry-run";
  /** Seconds. */
  minAge: number;
  /** Seconds. */
  usedWithin: number;
  /** Seconds; 0 disables. */
  doubleCheck: number;
  stateDir: string;
  /** Only these namespaces; empty for all. */
  namespaces: string[];
  keep: string[];
  containerCleanup: boolean;
  /** Container clean-up also removes kubelet's (CRI) containers; default false. */
  cleanupKubeletContainers?: boolean;
  /** Keep the N newest images of each repository per namespace; 0/absent: off. */
  keepLatest?: number;
  /** Seconds a remembered pin keeps protecting an image (default 30 days). */
  pinMemory?: number;
  contentPrune: boolean;
  /** Content prune in namespace moby too (lib/policy/content_scope.ts). */
  contentPruneMoby?: boolean;
  json: boolean;
  verbose: boolean;
  /** Write Prometheus metrics to <state-dir>/metrics/ctre.prom. */
  metrics: boolean;
  /** Disk-pressure mode, or null to prune everything the policy allows. */
  budget: Budget | null;
  /** containerd's root: statfs of its filesystem says what a forced run freed (if permitted). */
  root?: string;
}

export const DOUBLE_CHECK_INTERVAL_MS = 1500;

/** One planning pass: every image's decision, and what containerd held. */
export interface Pass {
  images: ImagePlan[];
  snaps: NamespaceSnapshot[];
}

/** The state of one prune run, its output and its planning passes. */
export class PruneRun {
  /** Where the run prints (human lines, warnings, errors, progress). */
  readonly out: RunOutput;
  readonly started: number;
  /** The latest pass's snapshots: the content store right before removal. */
  latest: NamespaceSnapshot[] = [];
  /** Namespaces left out by -n: listed once, for the blobs they share (lib/policy/disk.ts). */
  elsewhere: DiskInput[] | undefined;
  /** What the latest measuring pass's images hold on disk. */
  disk: DiskModel = diskModel([]);

  constructor(
    readonly containerd: Containerd,
    readonly opts: PruneOptions,
    readonly io: Io,
    /** The selected namespaces that exist. */
    readonly namespaces: string[],
    /** Every namespace. */
    readonly all: string[],
  ) {
    this.out = new RunOutput(io, opts.json);
    this.started = io.now();
  }

  /** Lists the namespaces, warns about selected ones that do not exist. */
  static async start(containerd: Containerd, opts: PruneOptions, io: Io): Promise<PruneRun> {
    const all = await containerd.namespaces();
    const selected = opts.namespaces.length
      ? all.filter((ns) => opts.namespaces.includes(ns))
      : all;
    for (const ns of opts.namespaces) {
      if (!all.includes(ns)) println(io.stderr, `Warning: namespace "${ns}" does not exist`);
    }
    return new PruneRun(containerd, opts, io, selected, all);
  }

  say(text: string): void {
    this.out.say(text);
  }

  warn(text: string): void {
    this.out.warn(text);
  }

  /** Where the clean-up steps print: human lines, errors, progress. */
  get lines(): Lines {
    return this.out.lines;
  }

  /**
   * One planning pass over the selected namespaces; with `measure` false, without measuring the
   * snapshots again (the images keep the disk figures of the last pass that did).
   */
  async pass(measure = true): Promise<Pass> {
    const dbPath = join(this.opts.stateDir, USAGE_FILE);
    const db = await loadUsageDb(dbPath);
    for (const r of db.rejected) {
      this.warn(`Ignoring line ${r.lineNo} of ${dbPath}: ${r.reason}: ${quoteCut(r.line)}`);
    }
    const policy = {
      now: this.io.now(),
      minAge: this.opts.minAge,
      usedWithin: this.opts.usedWithin,
      keep: this.opts.keep,
    };
    const { extras, warnings } = await loadExtras(this.opts.stateDir, this.opts);
    warnings.forEach((w) => this.warn(w));
    const snaps = await snapshotAll(this.containerd, this.namespaces, { usage: measure });
    const images: ImagePlan[] = [];
    for (const snap of snaps) {
      const plan = planNamespace(snap, db.entries, policy, extras);
      plan.warnings.forEach((w) => this.warn(w));
      if (snap.usageError !== undefined) this.warn(snap.usageError);
      images.push(...plan.images);
    }
    if (!measure) return { images: withDisk(images, this.disk), snaps };
    this.latest = snaps;
    this.elsewhere ??= await imagesElsewhere(
      this.containerd,
      this.all.filter((ns) => !this.namespaces.includes(ns)),
    );
    this.disk = diskModel([...snaps.map(diskInputOf), ...this.elsewhere]);
    return { images: withDisk(images, this.disk), snaps };
  }

  /**
   * The first pass, then one every 1.5 s for the double-check time: prunable only if every pass
   * agrees.
   */
  async settle(): Promise<ImagePlan[]> {
    const firstPass = await this.pass();
    await rememberSeenPins(this, firstPass.snaps);
    let plan = firstPass.images;
    const first = new Set(prunableSet(plan).keys());
    const deadline = this.io.now() + this.opts.doubleCheck;
    while (this.io.now() < deadline && plan.some((p) => p.decision === "prune")) {
      if (this.io.stderrIsTerminal) {
        const left = Math.max(0, Math.round(deadline - this.io.now()));
        this.io.stderr.write(
          `\x1b[1K\r(double check to avoid cleaning mid-restart... ${left} secs)`,
        );
      }
      await this.io.sleep(DOUBLE_CHECK_INTERVAL_MS);
      // Only the last pass measures the snapshots again (ctr walks every active one).
      const last = this.io.now() + DOUBLE_CHECK_INTERVAL_MS / 1000 > deadline;
      plan = confirmPass((await this.pass(last)).images, prunableSet(plan), first);
    }
    if (this.io.stderrIsTerminal) this.io.stderr.write("\x1b[1K\r");
    return plan;
  }
}

/** Pins seen now protect for --pin-memory after their label is gone (not in a dry run). */
async function rememberSeenPins(run: PruneRun, snaps: NamespaceSnapshot[]): Promise<void> {
  if (run.opts.mode === "dry-run") return;
  try {
    await rememberPins(run.opts.stateDir, snaps, run.io.now(), run.opts.pinMemory);
  } catch (e) {
    run.warn(`Cannot remember pinned images: ${errorText(e)}`);
  }
}

/** `images` with their bytes on disk, as `model` measured them. */
function withDisk(images: ImagePlan[], model: DiskModel): ImagePlan[] {
  return images.map((p) => {
    const disk = imageDisk(model, p.ns, p.digest);
    return disk === undefined ? p : { ...p, disk };
  });
}
