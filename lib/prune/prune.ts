/**
 * `ctre prune`: plan, double-check, show, ask, remove, then clean up containers and content.
 * Decisions come from plan.ts, budget.ts and recheck.ts (pure); every ctr call goes through the
 * injected Ctr; all output goes to the injected Io. With --json, stdout carries only the JSON
 * document and every other line goes to stderr.
 *
 * {@linkcode pruneLocked} is the whole run as a list of steps; each step is a method of
 * {@linkcode PruneRun} that returns what it did.
 *
 * @module
 */
import { join } from "node:path";
import { type Ctr, ctrOk } from "../ctr/runner.ts";
import { errorText } from "../core/errors.ts";
import { contentBytes, snapshotAll } from "../node/inventory.ts";
import type { NamespaceSnapshot } from "../core/containerd.ts";
import { type Io, println, type Writer } from "../core/io.ts";
import { parseImageLs, parseNamespaces } from "../ctr/listings.ts";
import { acquireLock } from "../state/lock.ts";
import { DEFAULT_PIN_MEMORY, type ImagePlan, planNamespace, prunableSet } from "../policy/plan.ts";
import {
  confirmAfterAnswer,
  confirmPass,
  keptSince,
  recheckCandidates,
} from "../policy/recheck.ts";
import { removeImages } from "./removal.ts";
import {
  applyBudget,
  type Budget,
  budgetCandidates,
  lruOrder,
  nextBatch,
  updateRatio,
} from "../policy/budget.ts";
import { type Gauge, gaugeOf } from "./gauge.ts";
import { writeMetrics } from "../state/metrics_file.ts";
import { cleanContainers, cleanContent, type Lines, measureAfter } from "./after_removal.ts";
import { pruneFamilies } from "./metric_families.ts";
import { planDocument, planTable, type PruneOutcome } from "./report.ts";
import { formatBytes } from "../core/units.ts";
import { quoteCut } from "../core/text.ts";
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
}

export const DOUBLE_CHECK_INTERVAL_MS = 1500;

/** An outcome before anything was removed: the store is as measured. */
function emptyOutcome(bytes: number): PruneOutcome {
  return {
    removed: [],
    missing: [],
    failed: [],
    repointed: [],
    removedImages: 0,
    reclaimedBytes: 0,
    removedImageBytes: 0,
    contentBytesBefore: bytes,
    contentBytesAfter: bytes,
    containers: null,
    content: null,
  };
}

/** One planning pass: every image's decision, and what containerd held. */
interface Pass {
  images: ImagePlan[];
  snaps: NamespaceSnapshot[];
}

/** The state of one prune run and its steps. */
class PruneRun {
  readonly warned = new Set<string>();
  /** Where human-readable lines go: stdout, or stderr under --json. */
  readonly human: Writer;
  readonly started: number;
  /** The latest pass's snapshots: the content store right before removal. */
  latest: NamespaceSnapshot[] = [];

  constructor(
    readonly ctr: Ctr,
    readonly opts: PruneOptions,
    readonly io: Io,
    /** The selected namespaces that exist. */
    readonly namespaces: string[],
    /** Every namespace. */
    readonly all: string[],
  ) {
    this.human = opts.json ? io.stderr : io.stdout;
    this.started = io.now();
  }

  /** Lists the namespaces, warns about selected ones that do not exist. */
  static async start(ctr: Ctr, opts: PruneOptions, io: Io): Promise<PruneRun> {
    const all = parseNamespaces(await ctrOk(ctr, ["namespace", "ls", "-q"]));
    const selected = opts.namespaces.length
      ? all.filter((ns) => opts.namespaces.includes(ns))
      : all;
    for (const ns of opts.namespaces) {
      if (!all.includes(ns)) println(io.stderr, `Warning: namespace "${ns}" does not exist`);
    }
    return new PruneRun(ctr, opts, io, selected, all);
  }

  say(text: string): void {
    println(this.human, text);
  }

  warn(text: string): void {
    if (!this.warned.has(text)) println(this.io.stderr, `Warning: ${text}`);
    this.warned.add(text);
  }

  /** One planning pass over the selected namespaces. */
  async pass(): Promise<Pass> {
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
    const snaps = await snapshotAll(this.ctr, this.namespaces);
    const images: ImagePlan[] = [];
    for (const snap of snaps) {
      const plan = planNamespace(snap, db.entries, policy, extras);
      plan.warnings.forEach((w) => this.warn(w));
      images.push(...plan.images);
    }
    this.latest = snaps;
    return { images, snaps };
  }

  /**
   * The first pass, then one every 1.5 s for the double-check time: prunable only if every pass
   * agrees.
   */
  async settle(): Promise<ImagePlan[]> {
    const firstPass = await this.pass();
    await this.rememberPins(firstPass.snaps);
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
      plan = confirmPass((await this.pass()).images, prunableSet(plan), first);
    }
    if (this.io.stderrIsTerminal) this.io.stderr.write("\x1b[1K\r");
    return plan;
  }

  /** Pins seen now protect for --pin-memory after their label is gone (not in a dry run). */
  async rememberPins(snaps: NamespaceSnapshot[]): Promise<void> {
    if (this.opts.mode === "dry-run") return;
    try {
      await rememberPins(this.opts.stateDir, snaps, this.io.now(), this.opts.pinMemory);
    } catch (e) {
      this.warn(`Cannot remember pinned images: ${errorText(e)}`);
    }
  }

  /** Disk-pressure mode: how far over the target, and which images the budget needs. */
  async budget(plan: ImagePlan[], gauge: Gauge): Promise<ImagePlan[]> {
    const over = await gauge.over();
    this.say(
      over > 0
        ? `Over budget by ${formatBytes(over)} (${gauge.target}): least recently used go first`
        : `Within budget (${gauge.target}): nothing needs to go`,
    );
    return applyBudget(plan, over);
  }

  /** Images of namespaces left out by --namespace, for the report only. */
  async excluded(): Promise<ImagePlan[]> {
    if (!this.opts.verbose && !this.opts.json) return [];
    return await excludedImages(this.ctr, this.all.filter((ns) => !this.namespaces.includes(ns)));
  }

  /** Prints the prunable refs; asks unless forced. Whether to go on. */
  async showAndAsk(shown: ImagePlan[]): Promise<boolean> {
    this.say("NS REF_TO_PRUNE");
    // One write: a line each would be a write syscall each (a thousand refs: ~6 ms of CPU).
    this.human.write(shown.flatMap((p) => p.refs.map((ref) => `${p.ns} ${ref}\n`)).join(""));
    if (this.opts.mode !== "ask") return true;
    this.io.stdout.write("Prune (y/n)? ");
    const answer = await this.io.readLine();
    if (answer === null) println(this.io.stdout);
    if (!isYes(answer)) {
      println(this.io.stderr, "Aborted, nothing removed");
      return false;
    }
    return true;
  }

  /** The answer may have taken a while: one more pass right before removing. */
  async recheckAfterAnswer(plan: ImagePlan[]): Promise<ImagePlan[]> {
    const after = confirmAfterAnswer(plan, (await this.pass()).images);
    for (const p of keptSince(plan, after)) {
      this.say(`(keeping) ${p.ns} ${p.refs.join(" ")}: used since the list was made`);
    }
    return after;
  }

  /** Removes `images` (namespaces at once, ≤ 100 refs per ctr), recording each ref's outcome. */
  async removeBatch(images: ImagePlan[], outcome: PruneOutcome, sync: boolean): Promise<void> {
    const namespaces = [...new Set(images.map((p) => p.ns))];
    // All namespaces at once: containerd commits each removal on its own, and one namespace's
    // ctr overlaps another's wait (500 images in 3 namespaces: ~15 % less wall time).
    const results = await Promise.all(
      namespaces.map((ns) =>
        removeImages(
          this.ctr,
          ns,
          images.filter((p) => p.ns === ns).flatMap((p) =>
            p.refs.map((ref) => ({ ref, digest: p.digest }))
          ),
          { sync },
        )
      ),
    );
    for (const [i, ns] of namespaces.entries()) {
      const r = results[i]!;
      for (const ref of r.removed) {
        this.say(`(deleted) ${ns} ${ref}`);
        outcome.removed.push({ namespace: ns, ref });
      }
      for (const ref of r.missing) {
        this.say(`(already gone) ${ns} ${ref}`);
        outcome.missing.push({ namespace: ns, ref });
      }
      for (const m of r.moved) {
        this.say(`(kept: now points to ${m.now}) ${ns} ${m.ref}`);
        outcome.repointed.push({ namespace: ns, ref: m.ref, digest: m.now });
      }
      if (r.unwatched > 0) {
        this.warn(
          `Could not follow the image events of namespace ${ns} while removing: a ref ` +
            `re-pointed (pulled, imported, tagged) during the removal would not be noticed`,
        );
      }
      for (const f of r.failed) {
        println(
          this.io.stderr,
          r.lost.includes(f.ref)
            ? `Removed the wrong image as "${f.ref}" in namespace ${ns}: ${f.reason}`
            : `Cannot remove image "${f.ref}" in namespace ${ns}: ${f.reason}`,
        );
        outcome.failed.push({ namespace: ns, ref: f.ref, error: f.reason });
      }
      const settled = new Set([...r.removed, ...r.missing, ...r.moved.map((m) => m.ref)]);
      const ours = new Set(r.removed);
      for (const p of images.filter((p) => p.ns === ns)) {
        // Counted only if none of its refs is left and this run removed one of them.
        if (p.refs.every((ref) => settled.has(ref)) && p.refs.some((ref) => ours.has(ref))) {
          outcome.removedImages++;
          outcome.removedImageBytes += p.size;
        }
      }
    }
  }

  /**
   * Disk-pressure removal: batches in LRU order, re-measuring after each, until the gauge says
   * the target is met or no candidate is left. Before every batch but the first, a fresh pass
   * re-checks that the candidates left are still prunable. Returns the images it tried and the
   * plan with the candidates dropped meanwhile kept.
   */
  async removeToBudget(
    gauge: Gauge,
    candidates: ImagePlan[],
    plan: ImagePlan[],
    outcome: PruneOutcome,
  ): Promise<{ tried: number; plan: ImagePlan[] }> {
    let left = lruOrder(candidates);
    let tried = 0;
    let over = await gauge.over();
    let ratio: number | null = gauge.sizesPredict ? 1 : null;
    let dropped: ImagePlan[] = [];
    while (over > 0 && left.length > 0) {
      if (tried > 0) {
        const check = recheckCandidates(left, (await this.pass()).images);
        for (const p of check.dropped) {
          this.say(`(keeping) ${p.ns} ${p.refs.join(" ")}: used since the list was made`);
        }
        dropped = [...dropped, ...check.dropped];
        left = check.still;
        if (left.length === 0) break;
      }
      const batch = nextBatch(left, over, ratio);
      left = left.slice(batch.length);
      tried += batch.length;
      await this.removeBatch(batch, outcome, true);
      const before = over;
      over = await gauge.over();
      ratio = updateRatio(batch, before - over, ratio);
    }
    this.say(
      over > 0
        ? `Target unreachable: ${formatBytes(over)} short of ${gauge.target} after removing ` +
          `every prunable image; the rest is in use, pinned, kept, too young or recently used`
        : `Target met: ${gauge.target}`,
    );
    return { tried, plan: keepDropped(plan, dropped) };
  }

  /** Where the clean-up steps print: human lines, errors. */
  get lines(): Lines {
    return { say: (t) => this.say(t), error: (t) => println(this.io.stderr, t) };
  }

  /** Writes metrics and the JSON document, as asked. Returns the exit code. */
  async report(
    plan: ImagePlan[],
    excluded: ImagePlan[],
    outcome: PruneOutcome | null,
    code: number,
  ): Promise<number> {
    const { opts, io } = this;
    if (opts.metrics && opts.mode !== "dry-run") {
      const families = pruneFamilies(plan, outcome, io.now() - this.started, io.now(), code);
      try {
        await writeMetrics(opts.stateDir, "ctre_prune_", families);
      } catch (e) {
        println(io.stderr, `Cannot write metrics: ${errorText(e)}`);
        code = 1;
      }
    }
    if (opts.json) {
      const doc = planDocument({
        mode: opts.mode,
        generatedAt: io.now(),
        policy: {
          minAgeSeconds: opts.minAge,
          usedWithinSeconds: opts.usedWithin,
          doubleCheckSeconds: opts.doubleCheck,
          keep: opts.keep,
          namespaces: opts.namespaces,
          budget: opts.budget,
          keepLatest: opts.keepLatest ?? 0,
          pinMemorySeconds: opts.pinMemory ?? DEFAULT_PIN_MEMORY,
        },
        images: [...plan, ...excluded],
        outcome,
      });
      println(io.stdout, JSON.stringify(doc, null, 2));
    }
    return code;
  }
}

/** `plan` with the images of `dropped` kept as used since the list was made. */
function keepDropped(plan: ImagePlan[], dropped: ImagePlan[]): ImagePlan[] {
  if (dropped.length === 0) return plan;
  const gone = new Set(dropped);
  return plan.map((p) =>
    gone.has(p)
      ? { ...p, decision: "keep" as const, reason: "used-during-double-check" as const }
      : p
  );
}

/** Whether an answer to the prompt means yes. Only a clear y or yes does. */
export function isYes(answer: string | null): boolean {
  return answer !== null && /^(y|yes)$/i.test(answer.trim());
}

/** Runs `ctre prune`. Returns the exit code: 0 done, 1 aborted or something failed. */
export async function prune(ctr: Ctr, opts: PruneOptions, io: Io): Promise<number> {
  const lock = opts.mode === "dry-run" ? null : await acquireLock(opts.stateDir, "prune");
  try {
    return await pruneLocked(ctr, opts, io);
  } finally {
    lock?.release();
  }
}

/** Images of namespaces left out by --namespace, for the report only. */
async function excludedImages(ctr: Ctr, namespaces: string[]): Promise<ImagePlan[]> {
  const lists = await Promise.all(
    namespaces.map(async (ns) => ({
      ns,
      rows: parseImageLs(await ctrOk(ctr, ["-n", ns, "image", "ls"])),
    })),
  );
  const out: ImagePlan[] = [];
  for (const { ns, rows } of lists) {
    const byDigest = new Map<string, typeof rows>();
    for (const r of rows) byDigest.set(r.digest, [...(byDigest.get(r.digest) ?? []), r]);
    for (const [digest, group] of byDigest) {
      out.push({
        ns,
        digest,
        refs: group.map((r) => r.ref).sort(),
        size: group[0]?.size ?? 0,
        ageSeconds: null,
        ageText: null,
        lastStart: null,
        lastStop: null,
        decision: "keep",
        reason: "namespace-excluded",
      });
    }
  }
  return out;
}

/** The run as a sequence of steps. */
async function pruneLocked(ctr: Ctr, opts: PruneOptions, io: Io): Promise<number> {
  const run = await PruneRun.start(ctr, opts, io);
  let plan = await run.settle();
  const gauge = opts.budget === null ? null : gaugeOf(opts.budget, ctr);
  if (gauge) plan = await run.budget(plan, gauge);
  const excluded = await run.excluded();
  if (opts.verbose) planTable([...plan, ...excluded]).forEach((line) => run.say(line));
  const shown = plan.filter((p) => p.decision === "prune");
  if (shown.length === 0) {
    run.say(`Nothing to prune (${plan.length} images in ${run.namespaces.length} namespaces kept)`);
    // A forced run always reports a removal (empty here), as the README documents.
    const outcome = opts.mode === "force" ? emptyOutcome(contentBytes(run.latest)) : null;
    return await run.report(plan, excluded, outcome, 0);
  }
  if (!await run.showAndAsk(shown)) return 1;
  if (opts.mode === "dry-run") return await run.report(plan, excluded, null, 0);
  if (opts.mode === "ask") plan = await run.recheckAfterAnswer(plan);
  const outcome = emptyOutcome(contentBytes(run.latest));
  outcome.contentBytesAfter = null;
  let tried = plan.filter((p) => p.decision === "prune").length;
  if (gauge) {
    const candidates = budgetCandidates(plan, opts.mode);
    ({ tried, plan } = await run.removeToBudget(gauge, candidates, plan, outcome));
  } else {
    await run.removeBatch(plan.filter((p) => p.decision === "prune"), outcome, false);
  }
  const failedText = outcome.failed.length ? `, ${outcome.failed.length} refs failed` : "";
  run.say(`Removed ${outcome.removedImages} of ${tried} images${failedText}`);
  if (outcome.removedImages > 0 && opts.containerCleanup) {
    outcome.containers = await cleanContainers(ctr, run.namespaces, io.now(), run.lines, {
      kubelet: opts.cleanupKubeletContainers ?? false,
    });
  }
  if (outcome.removedImages > 0 && opts.contentPrune) {
    outcome.content = await cleanContent(ctr, run.namespaces, {
      contentPruneMoby: opts.contentPruneMoby ?? false,
    }, run.lines);
  }
  await measureAfter(ctr, run.namespaces, outcome, run.lines);
  const failed = outcome.failed.length + (outcome.containers?.errors.length ?? 0) +
    (outcome.content?.filter((c) => c.error !== null).length ?? 0);
  return await run.report(plan, excluded, outcome, failed ? 1 : 0);
}
