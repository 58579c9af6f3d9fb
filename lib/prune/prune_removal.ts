/**
 * The removal steps of a prune run: one batch of images (namespaces at once, each ref's outcome
 * recorded), and disk-pressure mode (batches in LRU order, re-measured after each).
 *
 * @module
 */
import { println } from "../core/io.ts";
import type { ImagePlan } from "../policy/plan.ts";
import { recheckCandidates } from "../policy/recheck.ts";
import { applyBudget, type Estimate, lruOrder, nextBatch, updateRatio } from "../policy/budget.ts";
import { reclaimer } from "../policy/disk.ts";
import { formatBytes } from "../core/units.ts";
import type { Gauge } from "./gauge.ts";
import { type RemovalOutcome, removeImages } from "./removal.ts";
import type { PruneOutcome } from "./report.ts";
import type { PruneRun } from "./prune_run.ts";

/** What each image frees on disk, taken one by one in LRU order (the latest measuring pass). */
function estimate(run: PruneRun): Estimate {
  const take = reclaimer(run.disk);
  return (p) => take(p.ns, p.digest);
}

/** Disk-pressure mode: how far over the target, and which images the budget needs. */
export async function budgetPlan(
  run: PruneRun,
  plan: ImagePlan[],
  gauge: Gauge,
): Promise<ImagePlan[]> {
  const over = await gauge.over();
  run.say(
    over > 0
      ? `Over budget by ${formatBytes(over)} (${gauge.target}): least recently used go first`
      : `Within budget (${gauge.target}): nothing needs to go`,
  );
  return applyBudget(plan, over, estimate(run));
}

/** Prints and records what one namespace's removal did to `images` (its planned images). */
function recordRemoval(
  run: PruneRun,
  ns: string,
  r: RemovalOutcome,
  images: ImagePlan[],
  outcome: PruneOutcome,
): void {
  for (const ref of r.removed) {
    run.say(`(deleted) ${ns} ${ref}`);
    outcome.removed.push({ namespace: ns, ref });
  }
  for (const ref of r.missing) {
    run.say(`(already gone) ${ns} ${ref}`);
    outcome.missing.push({ namespace: ns, ref });
  }
  for (const m of r.moved) {
    run.say(`(kept: now points to ${m.now ?? "a newer image"}) ${ns} ${m.ref}`);
    outcome.repointed.push({ namespace: ns, ref: m.ref, digest: m.now });
  }
  if (r.unwatched > 0) {
    run.warn(
      `Could not follow the image events of namespace ${ns} while removing: a ref ` +
        `re-pointed (pulled, imported, tagged) during the removal would not be noticed`,
    );
  }
  for (const f of r.failed) {
    println(
      run.io.stderr,
      r.lost.includes(f.ref)
        ? `Removed the wrong image as "${f.ref}" in namespace ${ns}: ${f.reason}`
        : `Cannot remove image "${f.ref}" in namespace ${ns}: ${f.reason}`,
    );
    outcome.failed.push({ namespace: ns, ref: f.ref, error: f.reason });
  }
  const settled = new Set([...r.removed, ...r.missing, ...r.moved.map((m) => m.ref)]);
  const ours = new Set(r.removed);
  for (const p of images) {
    // Counted only if none of its refs is left and this run removed one of them.
    if (p.refs.every((ref) => settled.has(ref)) && p.refs.some((ref) => ours.has(ref))) {
      outcome.removedImages++;
      outcome.removedImageBytes += p.size;
    }
  }
}

/** Removes `images` (namespaces at once, ≤ 100 refs per ctr), recording each ref's outcome. */
/**
 * Counts removed images as chunks of refs are done, per namespace (an image counts once all its
 * refs are handled; they are removed in order), and reports the total to `report`.
 */
export function imagesDone(
  images: ImagePlan[],
  report: (done: number) => void,
): (ns: string, refs: number) => void {
  const ends = new Map<string, number[]>();
  for (const p of images) {
    const list = ends.get(p.ns) ?? [];
    list.push((list.at(-1) ?? 0) + p.refs.length);
    ends.set(p.ns, list);
  }
  const refsDone = new Map<string, number>();
  report(0);
  return (ns, refs) => {
    refsDone.set(ns, (refsDone.get(ns) ?? 0) + refs);
    let done = 0;
    for (const [n, list] of ends) {
      done += list.filter((end) => end <= (refsDone.get(n) ?? 0)).length;
    }
    report(done);
  };
}

export async function removeBatch(
  run: PruneRun,
  images: ImagePlan[],
  outcome: PruneOutcome,
  sync: boolean,
): Promise<void> {
  const namespaces = [...new Set(images.map((p) => p.ns))];
  const planned = (ns: string) => images.filter((p) => p.ns === ns);
  const progress = run.out.progress;
  const counter = imagesDone(
    images,
    (done) => progress.update("removing images", done, images.length),
  );
  // All namespaces at once: containerd commits each removal on its own, and one namespace's
  // ctr overlaps another's wait (500 images in 3 namespaces: ~15 % less wall time).
  const results = await Promise.all(
    namespaces.map((ns) =>
      removeImages(
        run.containerd,
        ns,
        planned(ns).flatMap((p) => p.refs.map((ref) => ({ ref, digest: p.digest }))),
        { sync, onChunk: (refs) => counter(ns, refs) },
      )
    ),
  );
  progress.clear();
  for (const [i, ns] of namespaces.entries()) {
    recordRemoval(run, ns, results[i]!, planned(ns), outcome);
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

/**
 * Disk-pressure removal: batches in LRU order, re-measuring after each, until the gauge says
 * the target is met or no candidate is left. Before every batch but the first, a fresh pass
 * re-checks that the candidates left are still prunable. Returns the images it tried and the
 * plan with the candidates dropped meanwhile kept.
 */
export async function removeToBudget(
  run: PruneRun,
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
      const check = recheckCandidates(left, (await run.pass()).images);
      for (const p of check.dropped) {
        run.say(`(keeping) ${p.ns} ${p.refs.join(" ")}: used since the list was made`);
      }
      dropped = [...dropped, ...check.dropped];
      left = check.still;
      if (left.length === 0) break;
    }
    const batch = nextBatch(left, over, ratio, estimate(run));
    left = left.slice(batch.length);
    tried += batch.length;
    await removeBatch(run, batch, outcome, true);
    const before = over;
    over = await gauge.over();
    ratio = updateRatio(batch, before - over, ratio);
  }
  run.say(
    over > 0
      ? `Target unreachable: ${formatBytes(over)} short of ${gauge.target} after removing ` +
        `every prunable image; the rest is in use, pinned, kept, too young or recently used`
      : `Target met: ${gauge.target}`,
  );
  return { tried, plan: keepDropped(plan, dropped) };
}
