/**
 * Disk-pressure mode: when content and snapshots are over a size budget (--max-store-size) or the
 * filesystem holding containerd's root has too little free space (--min-free), remove prunable
 * images least recently used first until the target is met. Only images the plan already
 * allows to go are candidates: no safety rule is given up. The arithmetic, pure; what measures the
 * budget on a node is lib/prune/gauge.ts.
 *
 * @module
 */
import type { ImagePlan } from "./plan.ts";

export type Budget =
  | { kind: "max-store-size"; maxBytes: number }
  | { kind: "min-free"; percent: number; root: string };

/**
 * Least recently used first: never-used images before used ones, older use (start, stop or
 * pull) before newer; among equals, older content first, then by namespace and ref for a stable
 * order.
 */
export function lruOrder(images: ImagePlan[]): ImagePlan[] {
  const lastUse = (p: ImagePlan) =>
    p.lastStart === null && p.lastStop === null && (p.lastPull ?? null) === null
      ? -Infinity
      : Math.max(p.lastStart ?? 0, p.lastStop ?? 0, p.lastPull ?? 0);
  return [...images].sort((a, b) =>
    lastUse(a) - lastUse(b) ||
    (b.ageSeconds ?? 0) - (a.ageSeconds ?? 0) ||
    (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0) ||
    (a.refs[0]! < b.refs[0]! ? -1 : a.refs[0]! > b.refs[0]! ? 1 : 0)
  );
}

/**
 * What removing an image frees, called once per image in LRU order (lib/policy/disk.ts
 * `reclaimer`: a layer shared by several candidates counts with the last of them to go).
 */
export type Estimate = (p: ImagePlan) => number;

/** Without a disk measurement: what the image holds alone, else its `ctr image ls` size. */
export const uniqueOrSize: Estimate = (p) => p.disk?.uniqueBytes ?? p.size;

/** The shortest LRU prefix of `ordered` whose estimates add up to at least `overBytes`. */
export function takeUntil(
  ordered: ImagePlan[],
  overBytes: number,
  estimate: Estimate = uniqueOrSize,
): ImagePlan[] {
  const out: ImagePlan[] = [];
  let sum = 0;
  for (const p of ordered) {
    if (sum >= overBytes) break;
    out.push(p);
    sum += estimate(p);
  }
  return out;
}

/**
 * Ranks the prunable images least recently used first and keeps, as within-budget, those the
 * estimate (what each frees on disk) says need not go to remove `overBytes`.
 */
export function applyBudget(
  plan: ImagePlan[],
  overBytes: number,
  estimate: Estimate = uniqueOrSize,
): ImagePlan[] {
  const ordered = lruOrder(plan.filter((p) => p.decision === "prune"));
  const needed = new Set(overBytes > 0 ? takeUntil(ordered, overBytes, estimate) : []);
  const rank = new Map(ordered.map((p, i) => [p, i + 1]));
  return plan.map((p) => {
    const r = rank.get(p);
    if (r === undefined) return p;
    return needed.has(p)
      ? { ...p, lruRank: r, budgetNeeded: true }
      : { ...p, lruRank: r, budgetNeeded: false, decision: "keep", reason: "within-budget" };
  });
}

/**
 * The images disk-pressure removal may take, in plan order: forced, every image the policy
 * allows (the budget's estimate may fall short, so later batches go further down the LRU
 * order); asked, only those listed (prunable).
 */
export function budgetCandidates(
  plan: ImagePlan[],
  mode: "ask" | "force" | "dry-run",
): ImagePlan[] {
  return plan.filter((p) =>
    p.decision === "prune" || (mode === "force" && p.reason === "within-budget")
  );
}

/**
 * The next batch of `left` (LRU order) for `overBytes` still to free: one image while the ratio
 * of freed bytes to image sizes is unknown, else the shortest prefix whose sizes, scaled by the
 * ratio, cover it.
 */
export function nextBatch(
  left: ImagePlan[],
  overBytes: number,
  ratio: number | null,
  estimate: Estimate = uniqueOrSize,
): ImagePlan[] {
  return ratio === null ? left.slice(0, 1) : takeUntil(left, overBytes / ratio, estimate);
}

/**
 * Bytes freed per byte of image size after a batch (`freed` measured), never below 1: shared
 * layers make removals free less, and then more batches follow. Unchanged when the batch had
 * no size.
 */
export function updateRatio(
  batch: ImagePlan[],
  freed: number,
  ratio: number | null,
): number | null {
  const estimated = batch.reduce((sum, p) => sum + uniqueOrSize(p), 0);
  return estimated > 0 ? Math.max(1, freed / estimated) : ratio;
}
