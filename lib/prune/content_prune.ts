/**
 * Content prune of one namespace that keeps every remaining image whole, run against the node:
 * the decision is lib/policy/layer_guard.ts's; this lists, strips and collects.
 *
 * @module
 */
import { mapLimit } from "../core/concurrency.ts";
import { CtrExitError, errorText } from "../core/errors.ts";
import type { Containerd } from "../ctr/gateway.ts";
import { type LayerGuardPlan, planContentPrune } from "../policy/layer_guard.ts";

/** `ctr content label` processes at once. */
const LABEL_CONCURRENCY = 4;

export interface ContentPruneResult {
  before: number;
  after: number;
  /** Refs of the images whose layers were kept (one string per image, refs joined by " "). */
  protected: string[];
  error?: string;
}

/**
 * Strips the layer references of `strip`, then runs a garbage collection (a label change does
 * not start one; deleting a lease with --sync runs one and waits). Returns the first failure.
 */
async function stripAndCollect(
  containerd: Containerd,
  ns: string,
  strip: LayerGuardPlan["strip"],
): Promise<string | undefined> {
  const failures = (await mapLimit(strip, LABEL_CONCURRENCY, async (s) => {
    try {
      await containerd.clearContentLabels(ns, s.digest, s.labels);
      return null;
    } catch (e) {
      if (!(e instanceof CtrExitError)) throw e;
      // Gone since the listing: nothing left to strip.
      if (/not found/i.test(e.stderr)) return null;
      return `ctr content label ${s.digest} exited with code ${e.code}: ${e.stderr.trim()}`;
    }
  })).filter((f) => f !== null);
  let error = failures[0];
  // Also when nothing was stripped now: the images just removed leave blobs to collect.
  try {
    await containerd.deleteLease(ns, await containerd.createLease(ns, "1h"), true);
  } catch (e) {
    error ??= errorText(e);
  }
  return error;
}

/**
 * Content prune of `ns` that leaves every remaining image runnable (see the module doc). Lists
 * content, then snapshots, then images, and strips only manifests of listed images: one that
 * appears meanwhile, listed or not, keeps its references.
 */
export async function pruneContentSafely(
  containerd: Containerd,
  ns: string,
): Promise<ContentPruneResult> {
  const blobs = await containerd.listContent(ns);
  const snapshots = await containerd.listSnapshots(ns);
  const images = await containerd.listImages(ns);
  const plan = planContentPrune(blobs, images, snapshots);
  const error = await stripAndCollect(containerd, ns, plan.strip);
  const after = (await containerd.contentDigests(ns)).length;
  const out: ContentPruneResult = {
    before: blobs.length,
    after,
    protected: plan.unsafe.map((u) => u.refs.join(" ")),
  };
  return error === undefined ? out : { ...out, error };
}
