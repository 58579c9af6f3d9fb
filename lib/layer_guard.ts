/**
 * Content prune that keeps every remaining image whole. `ctr content prune references` strips the
 * layer references (`containerd.io/gc.ref.content.l.*`) of every manifest in a namespace, so GC
 * deletes every layer blob no lease holds. An image unpacked into the snapshotter still runs from
 * its snapshot; one that is not (imported with `--no-unpack`, fetched with `ctr content fetch`,
 * unpacked only for another snapshotter, or whose snapshot was removed) loses its only copy.
 *
 * So: an image is runnable without its layer blobs when the config of one of its manifests
 * carries `containerd.io/gc.ref.snapshot.<snapshotter>=<chain id>` and that chain id is a
 * committed snapshot of the snapshotter ctr uses (`ctr snapshot ls`: containerd's default,
 * overlayfs, or CONTAINERD_SNAPSHOTTER in ctre's environment, which ctr reads itself). When every
 * image of a namespace is, the namespace gets the plain `ctr content prune references` (one
 * process). When one is not, its manifests keep their references and only the others lose
 * theirs, one `ctr content label` per manifest that still carries any, followed by a
 * synchronous GC (a lease created and deleted with `--sync`, as `ctr content prune references`
 * does itself).
 *
 * @module
 */
import { mapLimit } from "./concurrency.ts";
import { type Ctr, ctrOk } from "./ctr.ts";
import { errorText } from "./errors.ts";
import {
  type ContentBlob,
  type ImageRow,
  parseContentLs,
  parseDigests,
  parseImageLs,
  parseSnapshotLs,
  type SnapshotRow,
} from "./listings.ts";

const LAYER_PREFIX = "containerd.io/gc.ref.content.l.";
const CONTENT_PREFIX = "containerd.io/gc.ref.content.";
const CONFIG_LABEL = "containerd.io/gc.ref.content.config";
const MANIFEST_PREFIX = "containerd.io/gc.ref.content.m.";
const SNAPSHOT_PREFIX = "containerd.io/gc.ref.snapshot.";
/** `ctr content label` processes at once. */
const LABEL_CONCURRENCY = 4;

/**
 * Whether `key` is a label `ctr content prune references` removes: `…content.l.<n>`, or the
 * legacy `…content.<n>` with n ≠ 0 (0 was the config).
 */
export function isLayerLabel(key: string): boolean {
  if (key.startsWith(LAYER_PREFIX)) return true;
  if (!key.startsWith(CONTENT_PREFIX)) return false;
  const rest = key.slice(CONTENT_PREFIX.length);
  return /^[0-9]+$/.test(rest) && rest !== "0";
}

/** An image (all refs of one digest) whose layers have no other copy than their blobs. */
export interface UnsafeImage {
  digest: string;
  refs: string[];
}

export interface ContentPrunePlan {
  /** Images whose manifests keep their layer references (only those that still have any). */
  unsafe: UnsafeImage[];
  /** Blobs whose layer references may go: digest → the label keys to remove. */
  strip: { digest: string; labels: string[] }[];
}

/** Every blob reachable from `target` through index (`…content.m.*`) references. */
function manifestsOf(target: string, blobs: Map<string, ContentBlob>): string[] {
  const out: string[] = [];
  const todo = [target];
  const seen = new Set<string>();
  while (todo.length > 0) {
    const d = todo.pop()!;
    if (seen.has(d)) continue;
    seen.add(d);
    out.push(d);
    for (const [k, v] of blobs.get(d)?.labels ?? []) {
      if (k.startsWith(MANIFEST_PREFIX)) todo.push(v);
    }
  }
  return out;
}

/**
 * Decides, for one namespace, which layer references may go: every blob's, except those of the
 * manifests of images that are not runnable from a committed snapshot. Pure.
 */
export function planContentPrune(
  blobs: ContentBlob[],
  images: ImageRow[],
  snapshots: SnapshotRow[],
): ContentPrunePlan {
  const byDigest = new Map(blobs.map((b) => [b.digest, b]));
  const committed = new Set(snapshots.filter((s) => s.kind === "Committed").map((s) => s.key));
  const refsOf = new Map<string, string[]>();
  for (const i of images) refsOf.set(i.digest, [...(refsOf.get(i.digest) ?? []), i.ref]);
  const runnable = (manifest: string) => {
    const config = byDigest.get(manifest)?.labels.get(CONFIG_LABEL);
    const labels = config === undefined ? undefined : byDigest.get(config)?.labels;
    return [...labels ?? []].some(([k, v]) => k.startsWith(SNAPSHOT_PREFIX) && committed.has(v));
  };
  const layerLabels = (d: string) =>
    [...byDigest.get(d)?.labels.keys() ?? []].filter(isLayerLabel).sort();
  const guarded = new Set<string>();
  const unsafe: UnsafeImage[] = [];
  for (const [digest, refs] of refsOf) {
    const manifests = manifestsOf(digest, byDigest);
    if (manifests.some(runnable)) continue;
    manifests.forEach((m) => guarded.add(m));
    if (manifests.some((m) => layerLabels(m).length > 0)) {
      unsafe.push({ digest, refs: refs.sort() });
    }
  }
  unsafe.sort((a, b) => a.refs[0]! < b.refs[0]! ? -1 : a.refs[0]! > b.refs[0]! ? 1 : 0);
  const strip = blobs
    .filter((b) => !guarded.has(b.digest))
    .map((b) => ({ digest: b.digest, labels: layerLabels(b.digest) }))
    .filter((s) => s.labels.length > 0);
  return { unsafe, strip };
}

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

/**
 * Content prune of `ns` that leaves every remaining image runnable (see the module doc). Lists
 * content, then snapshots, then images: an image that appears meanwhile is either listed (and
 * judged) or has no manifest in the content list (so none of its references is touched).
 */
export async function pruneContentSafely(ctr: Ctr, ns: string): Promise<ContentPruneResult> {
  const blobs = parseContentLs(await ctrOk(ctr, ["-n", ns, "content", "ls"]));
  const snapshots = parseSnapshotLs(await ctrOk(ctr, ["-n", ns, "snapshot", "ls"]));
  const images = parseImageLs(await ctrOk(ctr, ["-n", ns, "image", "ls"]));
  const plan = planContentPrune(blobs, images, snapshots);
  let error: string | undefined;
  if (plan.unsafe.length === 0) {
    error = await withRetry(ctr, ["-n", ns, "content", "prune", "references"]);
  } else {
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
    error = failures[0];
    if (plan.strip.length > 0) {
      // A label change does not start a GC; deleting a lease with --sync runs one and waits.
      try {
        const lease = (await ctrOk(ctr, ["-n", ns, "leases", "create", "--expires", "1h"]))
          .trim();
        await ctrOk(ctr, ["-n", ns, "leases", "delete", "--sync", lease]);
      } catch (e) {
        error ??= errorText(e);
      }
    }
  }
  const after = parseDigests(await ctrOk(ctr, ["-n", ns, "content", "ls", "-q"])).length;
  const out: ContentPruneResult = {
    before: blobs.length,
    after,
    protected: plan.unsafe.map((u) => u.refs.join(" ")),
  };
  return error === undefined ? out : { ...out, error };
}
