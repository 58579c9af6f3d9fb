/**
 * The checks between the plan and the removal, as pure functions: the re-check after the answer,
 * the re-check of later disk-pressure batches, and the last-second re-read of each batch's refs.
 *
 * @module
 */
import type { ImageRow } from "../core/containerd.ts";
import { imageKey, type ImagePlan, prunableSet } from "./plan.ts";

/**
 * One more pass of the double check (or the re-check after the answer). An image is prunable
 * only if `latest` and every earlier pass (`agreed`, key → refs of the previous result) allow
 * it with the same refs. An image prunable in the first pass (`first`) that is not any more is
 * kept as `used-during-double-check`, whatever keeps it now (a container, a new tag, a recorded
 * start): the reason says the double check caught it. Other images keep the latest decision.
 */
export function confirmPass(
  latest: ImagePlan[],
  agreed: Map<string, string>,
  first: ReadonlySet<string>,
): ImagePlan[] {
  return latest.map((p) => {
    const key = imageKey(p);
    if (p.decision === "prune" && agreed.get(key) === p.refs.join(" ")) return p;
    if (p.decision === "prune" || first.has(key)) {
      return { ...p, decision: "keep", reason: "used-during-double-check" };
    }
    return p;
  });
}

/**
 * The plan after the answer: prunable only what the plan shown allowed and a pass made after the
 * answer (`latest`) still allows. Images the budget did not need (not shown) stay
 * `within-budget`, not "used" since.
 */
export function confirmAfterAnswer(shown: ImagePlan[], latest: ImagePlan[]): ImagePlan[] {
  const withinBudget = new Set(
    shown.filter((p) => p.reason === "within-budget").map((p) => imageKey(p)),
  );
  const budgetOf = new Map(shown.map((p) => [imageKey(p), p]));
  const agreed = prunableSet(shown);
  return confirmPass(latest, agreed, new Set(agreed.keys())).map((p) => {
    const before = budgetOf.get(imageKey(p));
    const budget = before?.lruRank === undefined
      ? {}
      : { lruRank: before.lruRank, budgetNeeded: before.budgetNeeded ?? false };
    return p.reason === "used-during-double-check" && withinBudget.has(imageKey(p))
      ? { ...p, ...budget, reason: "within-budget" as const }
      : p.decision === "prune"
      ? { ...p, ...budget }
      : p;
  });
}

/** The images of `before` that were prunable and are not in `after`: kept since. */
export function keptSince(before: ImagePlan[], after: ImagePlan[]): ImagePlan[] {
  const still = new Set(after.filter((p) => p.decision === "prune").map((p) => imageKey(p)));
  return before.filter((p) => p.decision === "prune" && !still.has(imageKey(p)));
}

/**
 * Later disk-pressure batches: the candidates a fresh pass (`latest`) still finds prunable with
 * the same refs, and those it does not (used, tagged, or gone since), which are kept.
 */
export function recheckCandidates(
  candidates: ImagePlan[],
  latest: ImagePlan[],
): { still: ImagePlan[]; dropped: ImagePlan[] } {
  const now = prunableSet(latest);
  const still: ImagePlan[] = [];
  const dropped: ImagePlan[] = [];
  for (const c of candidates) {
    (now.get(imageKey(c)) === c.refs.join(" ") ? still : dropped).push(c);
  }
  return { still, dropped };
}

/** A ref of a batch and the digest the plan saw it point to. */
export interface PlannedRef {
  ref: string;
  digest: string;
}

/**
 * The last second: what `ctr image ls name==…` shows now decides. A ref still pointing to its
 * planned digest goes; one pointing elsewhere is kept (`now` is its new target); one not listed
 * is already gone.
 */
export function splitByTarget(
  planned: PlannedRef[],
  current: ImageRow[],
): { go: string[]; moved: { ref: string; now: string }[]; gone: string[] } {
  const target = new Map(current.map((r) => [r.ref, r.digest]));
  const out = {
    go: [] as string[],
    moved: [] as { ref: string; now: string }[],
    gone: [] as string[],
  };
  for (const { ref, digest } of planned) {
    const now = target.get(ref);
    if (now === undefined) out.gone.push(ref);
    else if (now === digest) out.go.push(ref);
    else out.moved.push({ ref, now });
  }
  return out;
}
