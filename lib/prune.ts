/**
 * `ctre prune`: plan, double-check, show, ask, remove, then clean up containers and content.
 * Decisions come from plan.ts; every ctr call goes through the injected Ctr; all output goes
 * to the injected Io. With --json, stdout carries only the JSON document and every other line
 * goes to stderr.
 *
 * @module
 */
import { join } from "node:path";
import { cleanupContainers, type ContainerLine, pruneContent } from "./cleanup.ts";
import { type Ctr, ctrOk } from "./ctr.ts";
import { errorText } from "./errors.ts";
import { contentPrunePlan } from "./content_policy.ts";
import { contentBytes, measureContent, type NamespaceSnapshot, snapshotAll } from "./inventory.ts";
import { type Io, println, type Writer } from "./io.ts";
import { parseImageLs, parseNamespaces } from "./listings.ts";
import { acquireLock } from "./lock.ts";
import {
  confirmAcrossPasses,
  imageKey,
  type ImagePlan,
  planNamespace,
  prunableSet,
} from "./plan.ts";
import { removeImages } from "./removal.ts";
import { type Budget, type Gauge, gaugeOf, lruOrder, takeUntil } from "./budget.ts";
import { writeMetrics } from "./metrics.ts";
import { planDocument, planTable, pruneFamilies, type PruneOutcome } from "./report.ts";
import { formatBytes } from "./units.ts";
import { loadUsageDb } from "./usage_db.ts";

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
  contentPrune: boolean;
  /** Content prune in namespace moby too (lib/content_policy.ts). */
  contentPruneMoby?: boolean;
  json: boolean;
  verbose: boolean;
  /** Write Prometheus metrics to <state-dir>/metrics/ctre.prom. */
  metrics: boolean;
  /** Disk-pressure mode, or null to prune everything the policy allows. */
  budget: Budget | null;
}

/**
 * Ranks the prunable images least recently used first and keeps, as within-budget, those the
 * estimate (image sizes) says need not go to remove `overBytes`.
 */
export function applyBudget(plan: ImagePlan[], overBytes: number): ImagePlan[] {
  const ordered = lruOrder(plan.filter((p) => p.decision === "prune"));
  const needed = new Set(overBytes > 0 ? takeUntil(ordered, overBytes) : []);
  const rank = new Map(ordered.map((p, i) => [p, i + 1]));
  return plan.map((p) => {
    const r = rank.get(p);
    if (r === undefined) return p;
    return needed.has(p)
      ? { ...p, lruRank: r, budgetNeeded: true }
      : { ...p, lruRank: r, budgetNeeded: false, decision: "keep", reason: "within-budget" };
  });
}

export const DOUBLE_CHECK_INTERVAL_MS = 1500;

/** The outcome of a forced run that had nothing to remove: the store is as measured. */
function noRemoval(bytes: number): PruneOutcome {
  return {
    removed: [],
    missing: [],
    failed: [],
    removedImages: 0,
    reclaimedBytes: 0,
    contentBytesBefore: bytes,
    contentBytesAfter: bytes,
    containers: null,
    content: null,
  };
}

interface Pass {
  images: ImagePlan[];
  snaps: NamespaceSnapshot[];
}

class PruneRun {
  readonly warned = new Set<string>();
  /** Where human-readable lines go: stdout, or stderr under --json. */
  readonly human: Writer;

  constructor(
    readonly ctr: Ctr,
    readonly opts: PruneOptions,
    readonly io: Io,
    readonly namespaces: string[],
  ) {
    this.human = opts.json ? io.stderr : io.stdout;
  }

  warn(text: string): void {
    if (!this.warned.has(text)) println(this.io.stderr, `Warning: ${text}`);
    this.warned.add(text);
  }

  /** One planning pass over the selected namespaces. */
  async pass(): Promise<Pass> {
    const dbPath = join(this.opts.stateDir, "image_starts");
    const db = await loadUsageDb(dbPath);
    for (const r of db.rejected) {
      this.warn(`Ignoring line ${r.lineNo} of ${dbPath}: ${r.reason}: "${r.line}"`);
    }
    const policy = {
      now: this.io.now(),
      minAge: this.opts.minAge,
      usedWithin: this.opts.usedWithin,
      keep: this.opts.keep,
    };
    const snaps = await snapshotAll(this.ctr, this.namespaces);
    const images: ImagePlan[] = [];
    for (const snap of snaps) {
      const plan = planNamespace(snap, db.entries, policy);
      plan.warnings.forEach((w) => this.warn(w));
      images.push(...plan.images);
    }
    return { images, snaps };
  }

  /** Re-plans every 1.5 s for the double-check time; prunable only if every pass agrees. */
  async doubleCheck(first: Pass): Promise<ImagePlan[]> {
    let plan = first.images;
    const deadline = this.io.now() + this.opts.doubleCheck;
    while (this.io.now() < deadline && plan.some((p) => p.decision === "prune")) {
      if (this.io.stderrIsTerminal) {
        const left = Math.max(0, Math.round(deadline - this.io.now()));
        this.io.stderr.write(
          `\x1b[1K\r(double check to avoid cleaning mid-restart... ${left} secs)`,
        );
      }
      await this.io.sleep(DOUBLE_CHECK_INTERVAL_MS);
      plan = confirmAcrossPasses((await this.pass()).images, prunableSet(plan));
    }
    if (this.io.stderrIsTerminal) this.io.stderr.write("\x1b[1K\r");
    return plan;
  }
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

async function pruneLocked(ctr: Ctr, opts: PruneOptions, io: Io): Promise<number> {
  const started = io.now();
  const all = parseNamespaces(await ctrOk(ctr, ["namespace", "ls", "-q"]));
  const namespaces = opts.namespaces.length
    ? all.filter((ns) => opts.namespaces.includes(ns))
    : all;
  for (const ns of opts.namespaces) {
    if (!all.includes(ns)) println(io.stderr, `Warning: namespace "${ns}" does not exist`);
  }
  const run = new PruneRun(ctr, opts, io, namespaces);
  const first = await run.pass();
  let plan = await run.doubleCheck(first);
  const gauge = opts.budget === null ? null : gaugeOf(opts.budget, ctr);
  if (gauge) {
    const over = await gauge.over();
    plan = applyBudget(plan, over);
    println(
      run.human,
      over > 0
        ? `Over budget by ${formatBytes(over)} (${gauge.target}): least recently used go first`
        : `Within budget (${gauge.target}): nothing needs to go`,
    );
  }
  const shown = plan.filter((p) => p.decision === "prune");
  const excluded = opts.verbose || opts.json
    ? await excludedImages(ctr, all.filter((ns) => !namespaces.includes(ns)))
    : [];
  if (opts.verbose) {
    for (const line of planTable([...plan, ...excluded])) {
      println(run.human, line);
    }
  }
  const report = async (outcome: PruneOutcome | null, code: number) => {
    if (opts.metrics && opts.mode !== "dry-run") {
      const families = pruneFamilies(plan, outcome, io.now() - started, io.now(), code);
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
        },
        images: [...plan, ...excluded],
        outcome,
      });
      println(io.stdout, JSON.stringify(doc, null, 2));
    }
    return code;
  };
  if (shown.length === 0) {
    println(
      run.human,
      `Nothing to prune (${plan.length} images in ${namespaces.length} namespaces kept)`,
    );
    // A forced run always reports a removal (empty here), as the README documents.
    return await report(opts.mode === "force" ? noRemoval(contentBytes(first.snaps)) : null, 0);
  }
  println(run.human, "NS REF_TO_PRUNE");
  // One write: a line each would be a write syscall each (a thousand refs: ~6 ms of CPU).
  run.human.write(shown.flatMap((p) => p.refs.map((ref) => `${p.ns} ${ref}\n`)).join(""));
  if (opts.mode === "dry-run") return await report(null, 0);
  if (opts.mode === "ask") {
    io.stdout.write("Prune (y/n)? ");
    const answer = await io.readLine();
    if (answer === null) println(io.stdout);
    if (!isYes(answer)) {
      println(io.stderr, "Aborted, nothing removed");
      return 1;
    }
    // The answer may have taken a while: check once more right before removing.
    const withinBudget = new Set(
      plan.filter((p) => p.reason === "within-budget").map((p) => imageKey(p)),
    );
    plan = confirmAcrossPasses((await run.pass()).images, prunableSet(plan)).map((p) =>
      // Not shown because the budget did not need them: still so, not "used" since.
      p.reason === "used-during-double-check" && withinBudget.has(imageKey(p))
        ? { ...p, reason: "within-budget" as const }
        : p
    );
    for (const p of shown) {
      if (!plan.some((q) => q.decision === "prune" && q.ns === p.ns && q.digest === p.digest)) {
        println(run.human, `(keeping) ${p.ns} ${p.refs.join(" ")}: used since the list was made`);
      }
    }
  }
  const outcome = await removeAndClean(
    run,
    plan.filter((p) => p.decision === "prune"),
    contentBytes(first.snaps),
    gauge === null ? null : {
      gauge,
      // Forced: every image the policy allows may go, LRU first; asked: only what was shown.
      candidates: plan.filter((p) =>
        p.decision === "prune" || (opts.mode === "force" && p.reason === "within-budget")
      ),
    },
  );
  const failed = outcome.failed.length + (outcome.containers?.errors.length ?? 0) +
    (outcome.content?.filter((c) => c.error !== null).length ?? 0);
  return await report(outcome, failed ? 1 : 0);
}

/** Removes `images` (one ctr process per namespace and chunk), recording each ref's outcome. */
async function removeBatch(
  run: PruneRun,
  images: ImagePlan[],
  outcome: PruneOutcome,
  sync: boolean,
) {
  const { ctr, human, io } = run;
  const namespaces = [...new Set(images.map((p) => p.ns))];
  // All namespaces at once: containerd commits each removal on its own, and one namespace's
  // ctr overlaps another's wait (500 images in 3 namespaces: ~15 % less wall time).
  const results = await Promise.all(
    namespaces.map((ns) =>
      removeImages(ctr, ns, images.filter((p) => p.ns === ns).flatMap((p) => p.refs), { sync })
    ),
  );
  for (const [i, ns] of namespaces.entries()) {
    const mine = images.filter((p) => p.ns === ns);
    const r = results[i]!;
    for (const ref of r.removed) {
      println(human, `(deleted) ${ns} ${ref}`);
      outcome.removed.push({ namespace: ns, ref });
    }
    for (const ref of r.missing) {
      println(human, `(already gone) ${ns} ${ref}`);
      outcome.missing.push({ namespace: ns, ref });
    }
    for (const f of r.failed) {
      println(io.stderr, `Cannot remove image "${f.ref}" in namespace ${ns}: ${f.reason}`);
      outcome.failed.push({ namespace: ns, ref: f.ref, error: f.reason });
    }
    const gone = new Set([...r.removed, ...r.missing]);
    const ours = new Set(r.removed);
    for (const p of mine) {
      // Counted (and its space claimed) only if it is gone and this run removed a ref of it.
      if (p.refs.every((ref) => gone.has(ref)) && p.refs.some((ref) => ours.has(ref))) {
        outcome.removedImages++;
        outcome.reclaimedBytes += p.size;
      }
    }
  }
}

/**
 * Disk-pressure removal: batches in LRU order, re-measuring after each, until the gauge says
 * the target is met or no candidate is left. Returns the images it tried.
 */
async function removeToBudget(
  run: PruneRun,
  gauge: Gauge,
  candidates: ImagePlan[],
  outcome: PruneOutcome,
): Promise<number> {
  let left = lruOrder(candidates);
  let tried = 0;
  let over = await gauge.over();
  // Bytes freed per byte of image size; unknown until one image went, unless sizes predict.
  let ratio: number | null = gauge.sizesPredict ? 1 : null;
  while (over > 0 && left.length > 0) {
    const batch = ratio === null ? left.slice(0, 1) : takeUntil(left, over / ratio);
    left = left.slice(batch.length);
    tried += batch.length;
    await removeBatch(run, batch, outcome, true);
    const before = over;
    over = await gauge.over();
    const estimated = batch.reduce((sum, p) => sum + p.size, 0);
    // Never below 1: shared layers make removals free less, and then more batches follow.
    if (estimated > 0) ratio = Math.max(1, (before - over) / estimated);
  }
  if (over > 0) {
    println(
      run.human,
      `Target unreachable: ${formatBytes(over)} short of ${gauge.target} after removing every ` +
        `prunable image; the rest is in use, pinned, kept, too young or recently used`,
    );
  } else {
    println(run.human, `Target met: ${gauge.target}`);
  }
  return tried;
}

async function removeAndClean(
  run: PruneRun,
  images: ImagePlan[],
  bytesBefore: number,
  budget: { gauge: Gauge; candidates: ImagePlan[] } | null,
): Promise<PruneOutcome> {
  const { ctr, opts, human, io } = run;
  const outcome: PruneOutcome = {
    removed: [],
    missing: [],
    failed: [],
    removedImages: 0,
    reclaimedBytes: 0,
    contentBytesBefore: bytesBefore,
    contentBytesAfter: null,
    containers: null,
    content: null,
  };
  let tried = images.length;
  if (budget) {
    tried = await removeToBudget(run, budget.gauge, budget.candidates, outcome);
  } else {
    await removeBatch(run, images, outcome, false);
  }
  const failedText = outcome.failed.length ? `, ${outcome.failed.length} refs failed` : "";
  println(human, `Removed ${outcome.removedImages} of ${tried} images${failedText}`);
  if (outcome.removedImages > 0) {
    if (opts.containerCleanup) outcome.containers = await cleanContainers(run);
    if (opts.contentPrune) outcome.content = await cleanContent(run);
  }
  try {
    outcome.contentBytesAfter = await measureContent(ctr, run.namespaces);
  } catch (e) {
    println(io.stderr, `Cannot measure the content store afterwards: ${errorText(e)}`);
  }
  const after = outcome.contentBytesAfter === null
    ? "unknown"
    : formatBytes(outcome.contentBytesAfter);
  println(
    human,
    `Total reclaimed space: ${formatBytes(outcome.reclaimedBytes)} of images ` +
      `(content store ${formatBytes(bytesBefore)} before, ${after} after)`,
  );
  return outcome;
}

async function cleanContainers(run: PruneRun): Promise<NonNullable<PruneOutcome["containers"]>> {
  const out = { deleted: [] as string[], kept: [] as string[], errors: [] as string[] };
  for (const ns of run.namespaces) {
    try {
      const r = await cleanupContainers(run.ctr, ns, run.io.now());
      for (const s of r.skipped) println(run.human, `(skipping container) ${s}`);
      // Inspected containers show their pod labels and creation time, as the original did.
      const who = (c: ContainerLine) =>
        c.created ? `${c.podNamespace} ${c.pod} ${c.container} ${c.created}` : c.id;
      for (const c of r.deleted) {
        println(run.human, `(deleted container) ${ns} ${who(c)}`);
        out.deleted.push(`${ns} ${c.id}`);
      }
      for (const c of r.kept) {
        println(run.human, `(keeping container) ${ns} ${who(c)} (${c.why ?? "kept"})`);
        out.kept.push(`${ns} ${c.id}`);
      }
      for (const e of r.errors) println(run.io.stderr, e);
      out.errors.push(...r.errors);
    } catch (e) {
      const text = `Container clean-up of namespace ${ns} failed: ${errorText(e)}`;
      println(run.io.stderr, text);
      out.errors.push(text);
    }
  }
  return out;
}

async function cleanContent(run: PruneRun): Promise<NonNullable<PruneOutcome["content"]>> {
  const out: NonNullable<PruneOutcome["content"]> = [];
  const plan = contentPrunePlan(run.namespaces, {
    contentPruneMoby: run.opts.contentPruneMoby ?? false,
  });
  for (const s of plan.skipped) {
    println(run.human, `(content prune) ${s.namespace} ${s.why}`);
    out.push({
      namespace: s.namespace,
      blobsBefore: 0,
      blobsAfter: 0,
      error: null,
      skipped: s.why,
    });
  }
  for (const ns of plan.prune) {
    try {
      const r = await pruneContent(run.ctr, ns);
      if (r.error !== undefined) {
        println(run.io.stderr, `Content prune of namespace ${ns} failed: ${r.error}`);
      }
      println(run.human, `(pruned content) ${ns} ${r.before - r.after}`);
      out.push({
        namespace: ns,
        blobsBefore: r.before,
        blobsAfter: r.after,
        error: r.error ?? null,
      });
    } catch (e) {
      const text = errorText(e);
      println(run.io.stderr, `Content prune of namespace ${ns} failed: ${text}`);
      out.push({ namespace: ns, blobsBefore: 0, blobsAfter: 0, error: text });
    }
  }
  return out;
}
