/**
 * `ctre prune`: plan, double-check, show, ask, remove, then clean up containers and content.
 * Decisions come from plan.ts, budget.ts and recheck.ts (pure); every containerd call goes
 * through the injected gateway (lib/ctr/gateway.ts); all output goes to the injected Io. With
 * --json, stdout carries only the JSON document and every other line goes to stderr.
 *
 * {@linkcode pruneLocked} is the whole run as a list of steps; each step is a function of the
 * run's state ({@linkcode PruneRun}, prune_run.ts) that returns what it did.
 *
 * @module
 */
import type { Containerd } from "../ctr/gateway.ts";
import { errorText } from "../core/errors.ts";
import { contentBytes } from "../node/inventory.ts";
import type { NamespaceSnapshot } from "../core/containerd.ts";
import { type Io, println } from "../core/io.ts";
import { acquireLock } from "../state/lock.ts";
import { DEFAULT_PIN_MEMORY, type ImagePlan } from "../policy/plan.ts";
import { confirmAfterAnswer, keptSince } from "../policy/recheck.ts";
import { budgetCandidates } from "../policy/budget.ts";
import { gaugeOf } from "./gauge.ts";
import { writeMetrics } from "../state/metrics_file.ts";
import { cleanContainers, cleanContent, measureAfter } from "./after_removal.ts";
import { pruneFamilies } from "./metric_families.ts";
import { type Bytes, type DiskInput, reclaimable } from "../policy/disk.ts";
import { contentPruneRuns } from "../policy/content_scope.ts";
import { diskAfter, diskBefore, diskLines, nodeDiskOf } from "./disk_outcome.ts";
import { planDocument, planTable, type PruneOutcome } from "./report.ts";
import { type PruneOptions, PruneRun } from "./prune_run.ts";
import { budgetPlan, removeBatch, removeToBudget } from "./prune_removal.ts";

export { DOUBLE_CHECK_INTERVAL_MS, type PruneOptions } from "./prune_run.ts";

/** containerd's root when --root is not given (the filesystem prune measures). */
const DEFAULT_ROOT = "/var/lib/containerd";

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

/** Prints the prunable refs; asks unless forced. Whether to go on. */
async function showAndAsk(run: PruneRun, shown: ImagePlan[]): Promise<boolean> {
  const { io, opts } = run;
  run.say("NS REF_TO_PRUNE");
  // One write: a line each would be a write syscall each (a thousand refs: ~6 ms of CPU).
  run.out.sayAll(shown.flatMap((p) => p.refs.map((ref) => `${p.ns} ${ref}`)));
  if (opts.mode !== "ask") return true;
  io.stdout.write("Prune (y/n)? ");
  const answer = await io.readLine();
  if (answer === null) println(io.stdout);
  if (!isYes(answer)) {
    println(io.stderr, "Aborted, nothing removed");
    return false;
  }
  return true;
}

/** The answer may have taken a while: one more pass right before removing. */
async function recheckAfterAnswer(run: PruneRun, plan: ImagePlan[]): Promise<ImagePlan[]> {
  const after = confirmAfterAnswer(plan, (await run.pass()).images);
  for (const p of keptSince(plan, after)) {
    run.say(`(keeping) ${p.ns} ${p.refs.join(" ")}: used since the list was made`);
  }
  return after;
}

/** Writes metrics and the JSON document, as asked. Returns the exit code. */
async function report(
  run: PruneRun,
  plan: ImagePlan[],
  excluded: ImagePlan[],
  outcome: PruneOutcome | null,
  code: number,
): Promise<number> {
  const { opts, io } = run;
  if (opts.metrics && opts.mode !== "dry-run") {
    const contentPrune = contentPruneRuns(run.namespaces, opts);
    const node = nodeDiskOf(run.disk, plan, run.namespaces, contentPrune);
    const families = pruneFamilies(plan, outcome, io.now() - run.started, io.now(), code, node);
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

/** Whether an answer to the prompt means yes. Only a clear y or yes does. */
export function isYes(answer: string | null): boolean {
  return answer !== null && /^(y|yes)$/i.test(answer.trim());
}

/** Runs `ctre prune`. Returns the exit code: 0 done, 1 aborted or something failed. */
export async function prune(
  containerd: Containerd,
  opts: PruneOptions,
  io: Io,
): Promise<number> {
  const lock = opts.mode === "dry-run" ? null : await acquireLock(opts.stateDir, "prune");
  try {
    return await pruneLocked(containerd, opts, io);
  } finally {
    lock?.release();
  }
}

/** One planning pass now, as `ctre prune` with `opts` makes it (no double check, no lock). */
export interface PlanNow {
  images: ImagePlan[];
  snaps: NamespaceSnapshot[];
  /** The selected namespaces that exist. */
  namespaces: string[];
  /** The images and blobs of the namespaces left out (they hold shared blobs). */
  elsewhere: DiskInput[];
}

/** One planning pass of `ctre prune` with `opts`, without removing anything: for `ctre df`. */
export async function planNow(
  containerd: Containerd,
  opts: PruneOptions,
  io: Io,
): Promise<PlanNow> {
  const run = await PruneRun.start(containerd, { ...opts, json: true }, io);
  const { images, snaps } = await run.pass();
  return { images, snaps, namespaces: run.namespaces, elsewhere: run.elsewhere ?? [] };
}

/** Images of namespaces left out by --namespace, for the report only. */
function excludedImages(run: PruneRun): ImagePlan[] {
  if (!run.opts.verbose && !run.opts.json) return [];
  // The pass listed them already, for the blobs they share.
  const out: ImagePlan[] = [];
  for (const { ns, images: rows } of run.elsewhere ?? []) {
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
async function pruneLocked(containerd: Containerd, opts: PruneOptions, io: Io): Promise<number> {
  const run = await PruneRun.start(containerd, opts, io);
  let plan = await run.settle();
  const gauge = opts.budget === null ? null : gaugeOf(opts.budget, containerd);
  if (gauge) plan = await budgetPlan(run, plan, gauge);
  const excluded = excludedImages(run);
  if (opts.verbose) planTable([...plan, ...excluded]).forEach((line) => run.say(line));
  const shown = plan.filter((p) => p.decision === "prune");
  if (shown.length === 0) {
    run.say(`Nothing to prune (${plan.length} images in ${run.namespaces.length} namespaces kept)`);
    // A forced run always reports a removal (empty here), as docs/formats.md documents.
    const outcome = opts.mode === "force" ? emptyOutcome(contentBytes(run.latest)) : null;
    return await report(run, plan, excluded, outcome, 0);
  }
  if (!await showAndAsk(run, shown)) return 1;
  if (opts.mode === "dry-run") return await report(run, plan, excluded, null, 0);
  if (opts.mode === "ask") plan = await recheckAfterAnswer(run, plan);
  const outcome = emptyOutcome(contentBytes(run.latest));
  outcome.contentBytesAfter = null;
  const root = opts.root ?? DEFAULT_ROOT;
  const predicted = predict(run, plan.filter((p) => p.decision === "prune"));
  const before = await diskBefore(run.latest, root);
  let tried = plan.filter((p) => p.decision === "prune").length;
  if (gauge) {
    const candidates = budgetCandidates(plan, opts.mode);
    ({ tried, plan } = await removeToBudget(run, gauge, candidates, plan, outcome));
  } else {
    // Content prune ends with a synchronous GC; without it, --sync makes each removal wait for
    // one, so what the run freed is gone before it is measured.
    const gcLater = contentPruneRuns(run.namespaces, opts);
    const sync = gcLater === null || !run.namespaces.some(gcLater);
    await removeBatch(run, plan.filter((p) => p.decision === "prune"), outcome, sync);
  }
  const failedText = outcome.failed.length ? `, ${outcome.failed.length} refs failed` : "";
  run.say(`Removed ${outcome.removedImages} of ${tried} images${failedText}`);
  await cleanUp(run, outcome);
  const reclaimed = outcome.contentBytesAfter === null ? null : outcome.reclaimedBytes;
  outcome.disk = await diskAfter(
    containerd,
    run.latest,
    root,
    before,
    predicted,
    reclaimed,
    run.lines.error,
  );
  diskLines(outcome.disk).forEach((l) => run.say(l));
  const failed = outcome.failed.length + (outcome.containers?.errors.length ?? 0) +
    (outcome.content?.filter((c) => c.error !== null).length ?? 0);
  return await report(run, plan, excluded, outcome, failed ? 1 : 0);
}

/** What removing `images` frees on disk, as the latest measuring pass saw it. */
function predict(run: PruneRun, images: ImagePlan[]): Bytes {
  return reclaimable(run.disk, images, contentPruneRuns(run.namespaces, run.opts)).total;
}

/** After a removal: containers, content, and the measurement of what the run freed. */
async function cleanUp(run: PruneRun, outcome: PruneOutcome): Promise<void> {
  const { containerd, opts, namespaces } = run;
  if (outcome.removedImages > 0 && opts.containerCleanup) {
    outcome.containers = await cleanContainers(containerd, namespaces, run.io.now(), run.lines, {
      kubelet: opts.cleanupKubeletContainers ?? false,
    });
  }
  if (outcome.removedImages > 0 && opts.contentPrune) {
    outcome.content = await cleanContent(containerd, namespaces, {
      contentPruneMoby: opts.contentPruneMoby ?? false,
    }, run.lines);
  }
  await measureAfter(containerd, namespaces, outcome, run.lines);
}
