/**
 * Content prune of one namespace that keeps every remaining image whole, run against the node:
 * the decision is lib/policy/layer_guard.ts's; this lists, strips and collects.
 *
 * @module
 */
import { mapLimit } from "../core/concurrency.ts";
import { errorText } from "../core/errors.ts";
import { type Ctr, ctrOk } from "../ctr/runner.ts";
import { parseContentLs, parseDigests, parseImageLs, parseSnapshotLs } from "../ctr/listings.ts";
import { planContentPrune } from "../policy/layer_guard.ts";

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
 * Content prune of `ns` that leaves every remaining image runnable (see the module doc). Lists
 * content, then snapshots, then images, and strips only manifests of listed images: one that
 * appears meanwhile, listed or not, keeps its references.
 */
export async function pruneContentSafely(ctr: Ctr, ns: string): Promise<ContentPruneResult> {
  const blobs = parseContentLs(await ctrOk(ctr, ["-n", ns, "content", "ls"]));
  const snapshots = parseSnapshotLs(await ctrOk(ctr, ["-n", ns, "snapshot", "ls"]));
  const images = parseImageLs(await ctrOk(ctr, ["-n", ns, "image", "ls"]));
  const plan = planContentPrune(blobs, images, snapshots);
  const failures = (await mapLimit(plan.strip, LABEL_CONCURRENCY, async (s) => {
    const r = await ctr.run([
      "-n",
      ns,
      "content",
      "label",
      s.digest,
      ...s.labels.map((l) => `${l}=`),
    ]);
    // Gone since the listing: nothing left to strip.
    if (r.code === 0 || /not found/i.test(r.stderr)) return null;
    return `ctr content label ${s.digest} exited with code ${r.code}: ${r.stderr.trim()}`;
  })).filter((f) => f !== null);
  let error = failures[0];
  // A label change does not start a GC; deleting a lease with --sync runs one and waits. Also
  // when nothing was stripped now: the images just removed leave blobs to collect.
  try {
    const lease = (await ctrOk(ctr, ["-n", ns, "leases", "create", "--expires", "1h"])).trim();
    await ctrOk(ctr, ["-n", ns, "leases", "delete", "--sync", lease]);
  } catch (e) {
    error ??= errorText(e);
  }
  const after = parseDigests(await ctrOk(ctr, ["-n", ns, "content", "ls", "-q"])).length;
  const out: ContentPruneResult = {
    before: blobs.length,
    after,
    protected: plan.unsafe.map((u) => u.refs.join(" ")),
  };
  return error === undefined ? out : { ...out, error };
}
