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
import { type LabelChange, planContentPrune } from "../policy/layer_guard.ts";

/** `ctr content label` processes at once. */
const LABEL_CONCURRENCY = 4;

export interface ContentPruneResult {
  before: number;
  after: number;
  /** Refs of the images whose layers were kept (one string per image, refs joined by " "). */
  protected: string[];
  error?: string;
}

const TRANSIENT = /content digest .* not found|not found/i;

/** Runs `args`, once more if it fails with the transient "content digest … not found". */
async function withRetry(ctr: Ctr, args: string[]): Promise<string | undefined> {
  let error: string | undefined;
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      await ctrOk(ctr, args);
      return undefined;
    } catch (e) {
      error = errorText(e);
      if (!TRANSIENT.test(error)) break;
    }
  }
  return error;
}

/** Applies `changes`, one `ctr content label` each; the first failure, if any. */
async function applyLabels(
  ctr: Ctr,
  ns: string,
  changes: LabelChange[],
): Promise<string | undefined> {
  const failures = await mapLimit(changes, LABEL_CONCURRENCY, async (c) => {
    const r = await ctr.run([
      "-n",
      ns,
      "content",
      "label",
      c.digest,
      ...c.labels.map(([k, v]) => `${k}=${v}`),
    ]);
    // Gone since the listing (its image was removed): nothing left to label.
    if (r.code === 0 || /not found/i.test(r.stderr)) return null;
    return `ctr content label ${c.digest} exited with code ${r.code}: ${r.stderr.trim()}`;
  });
  return failures.find((f) => f !== null) ?? undefined;
}

/**
 * Content prune of `ns` that leaves every remaining image runnable (see layer_guard.ts): copies
 * the layer references of the manifests of images not runnable from a snapshot under keys the
 * prune leaves alone, drops the copies no longer needed, then runs the plain `ctr content prune
 * references`. Lists content, then snapshots, then images, then prunes: an image imported
 * without unpacking between the listing and the prune is not protected (as with the plain prune
 * alone); the window is the time of the few `ctr content label` calls.
 */
export async function pruneContentSafely(ctr: Ctr, ns: string): Promise<ContentPruneResult> {
  const blobs = parseContentLs(await ctrOk(ctr, ["-n", ns, "content", "ls"]));
  const snapshots = parseSnapshotLs(await ctrOk(ctr, ["-n", ns, "snapshot", "ls"]));
  const images = parseImageLs(await ctrOk(ctr, ["-n", ns, "image", "ls"]));
  const plan = planContentPrune(blobs, images, snapshots);
  const [keepError, releaseError] = await Promise.all([
    applyLabels(ctr, ns, plan.keep),
    applyLabels(ctr, ns, plan.release),
  ]);
  // Without the copies, the prune would delete the only copy of a layer: it does not run.
  const error = keepError ??
    await withRetry(ctr, ["-n", ns, "content", "prune", "references"]) ?? releaseError;
  const after = parseDigests(await ctrOk(ctr, ["-n", ns, "content", "ls", "-q"])).length;
  const out: ContentPruneResult = {
    before: blobs.length,
    after,
    protected: plan.unsafe.map((u) => u.refs.join(" ")),
  };
  return error === undefined ? out : { ...out, error };
}
