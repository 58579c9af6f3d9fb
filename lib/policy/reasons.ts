/**
 * What each keep reason of the plan means, in the order prune tries them (the first that applies
 * is the reason): the text the man page prints, checked complete against {@linkcode Reason}.
 *
 * @module
 */
import type { Reason } from "./plan.ts";

/** Why an image is kept, per reason, in the order they apply. */
export const KEEP_REASONS: Readonly<Record<Exclude<Reason, "prune">, string>> = {
  "in-use":
    "A container in its namespace, in any state (running, created, stopped), runs from it, or a docker container, image volume or moby-dangling ref holds it.",
  pinned:
    "A ref of its digest carries io.cri-containerd.pinned=pinned or io.cattle.k3s.pinned, or ctre saw it pinned within --pin-memory and the label is gone since.",
  "kept-by-pattern": "A ref matches a --keep glob, a line of --keep-file, or of <state-dir>/keep.",
  "kept-latest":
    "With --keep-latest N: it is one of the N newest images of a repository in its namespace.",
  "recently-used":
    "The usage DB has a start or stop, or the pulls file a pull, within --used-within for a ref of it in that namespace.",
  "too-young":
    "Its content (the AGE of its target in ctr content ls, taken at its lower bound) is younger than --min-age.",
  "used-during-double-check":
    "It was prunable in one pass of the double check but not in every pass (e.g. kubelet re-created a container from it).",
  "namespace-excluded":
    "Its namespace was not selected with --namespace (listed with --json or --verbose only).",
  "within-budget":
    "Disk-pressure mode (--max-store-size, --min-free): removing the images used least recently before it already brings the store within the budget.",
};
