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
 * overlayfs, or CONTAINERD_SNAPSHOTTER in ctre's environment, which ctr reads itself). Only the
 * manifests of listed images found runnable lose their layer references, one `ctr content label`
 * per manifest that still carries any, followed by a synchronous GC (a lease created and deleted
 * with `--sync`, as `ctr content prune references` does itself).
 *
 * Never the plain `ctr content prune references`: it strips every manifest it walks, including
 * those of an image imported or pulled after ctre listed the namespace, which it never judged.
 * An image imported with `--no-unpack` in that window lost its layers (the churn soak,
 * scripts/bench/soak.ts; tests/e2e_content_race_test.ts). A blob no listed image reaches (an
 * import in progress, whose image is not created yet, or an orphan) keeps its labels: an orphan
 * is collected anyway, and an import in progress stays whole.
 *
 * This file decides (pure); lib/prune/content_prune.ts runs it against the node.
 *
 * @module
 */
import type { ContentBlob, ImageRow, SnapshotRow } from "../core/containerd.ts";

const LAYER_PREFIX = "containerd.io/gc.ref.content.l.";
const CONTENT_PREFIX = "containerd.io/gc.ref.content.";
const CONFIG_LABEL = "containerd.io/gc.ref.content.config";
const MANIFEST_PREFIX = "containerd.io/gc.ref.content.m.";
const SNAPSHOT_PREFIX = "containerd.io/gc.ref.snapshot.";

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

export interface LayerGuardPlan {
  /** Images whose manifests keep their layer references (only those that still have any). */
  unsafe: UnsafeImage[];
  /**
   * Manifests of runnable listed images whose layer references may go: digest → the label keys
   * to remove. Never a blob no listed image reaches.
   */
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
 * Decides, for one namespace, which layer references may go: those of the manifests of listed
 * images runnable from a committed snapshot, except manifests an image that is not runnable
 * shares. Pure.
 */
export function planContentPrune(
  blobs: ContentBlob[],
  images: ImageRow[],
  snapshots: SnapshotRow[],
): LayerGuardPlan {
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
  const safe = new Set<string>();
  const unsafe: UnsafeImage[] = [];
  for (const [digest, refs] of refsOf) {
    const manifests = manifestsOf(digest, byDigest);
    if (manifests.some(runnable)) {
      manifests.forEach((m) => safe.add(m));
      continue;
    }
    manifests.forEach((m) => guarded.add(m));
    if (manifests.some((m) => layerLabels(m).length > 0)) {
      unsafe.push({ digest, refs: refs.sort() });
    }
  }
  unsafe.sort((a, b) => a.refs[0]! < b.refs[0]! ? -1 : a.refs[0]! > b.refs[0]! ? 1 : 0);
  const strip = blobs
    .filter((b) => safe.has(b.digest) && !guarded.has(b.digest))
    .map((b) => ({ digest: b.digest, labels: layerLabels(b.digest) }))
    .filter((s) => s.labels.length > 0);
  return { unsafe, strip };
}
