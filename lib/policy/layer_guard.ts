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
 * overlayfs, or CONTAINERD_SNAPSHOTTER in ctre's environment, which ctr reads itself). Every
 * namespace gets the plain `ctr content prune references` (one process). Before it, each
 * manifest of an image that is not runnable gets a copy of its layer references under keys the
 * prune leaves alone, `containerd.io/gc.ref.content.ctre.<suffix>` (the `gc.ref.content.l.0`
 * suffix `l.0` becomes `ctre.l.0`). containerd's GC follows every `containerd.io/gc.ref.content.*`
 * label of a reachable blob, so these layers stay as long as the manifest does: through this
 * prune and every later one, and no longer than the image (remove it, and its manifest, the
 * copies and then the layers go in the same GC). One `ctr content label` per such manifest, once;
 * a manifest that becomes runnable (unpacked since) gets its copies removed, once, so its layers
 * go as every other image's do.
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
/** Where ctre keeps its copies of a manifest's layer references. */
export const KEPT_PREFIX = "containerd.io/gc.ref.content.ctre.";

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

/** One `ctr content label` call: set each key to its value ("" removes the key). */
export interface LabelChange {
  digest: string;
  labels: [string, string][];
}

export interface LayerGuardPlan {
  /** Images whose layers are kept (those whose manifests reference any, or ctre's copies do). */
  unsafe: UnsafeImage[];
  /**
   * Copies of layer references to add before the prune, on the manifests of `unsafe` images
   * that lack them. If one fails, the prune must not run: it would delete the only copy.
   */
  keep: LabelChange[];
  /** ctre's copies to remove from manifests that no longer need them (safe either way). */
  release: LabelChange[];
}

/** The key ctre copies layer label `key` to. */
export function keptKey(key: string): string {
  return KEPT_PREFIX + key.slice(CONTENT_PREFIX.length);
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

/** The labels `blob` lacks to carry a copy of each of its layer references. */
function missingCopies(blob: ContentBlob): [string, string][] {
  return [...blob.labels]
    .filter(([k, v]) => isLayerLabel(k) && blob.labels.get(keptKey(k)) !== v)
    .map(([k, v]): [string, string] => [keptKey(k), v])
    .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
}

/** ctre's copies on `blob`, as removals. */
function copiesOf(blob: ContentBlob): [string, string][] {
  return [...blob.labels.keys()].filter((k) => k.startsWith(KEPT_PREFIX)).sort()
    .map((k): [string, string] => [k, ""]);
}

/**
 * Decides, for one namespace, which manifests keep their layers through the plain prune: those
 * of images that are not runnable from a committed snapshot. Pure.
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
  const holdsLayers = (d: string) =>
    [...byDigest.get(d)?.labels.keys() ?? []].some((k) =>
      isLayerLabel(k) || k.startsWith(KEPT_PREFIX)
    );
  const guarded = new Set<string>();
  const unsafe: UnsafeImage[] = [];
  for (const [digest, refs] of refsOf) {
    const manifests = manifestsOf(digest, byDigest);
    if (manifests.some(runnable)) continue;
    manifests.forEach((m) => guarded.add(m));
    if (manifests.some(holdsLayers)) unsafe.push({ digest, refs: refs.sort() });
  }
  unsafe.sort((a, b) => a.refs[0]! < b.refs[0]! ? -1 : a.refs[0]! > b.refs[0]! ? 1 : 0);
  const changes = (pick: (b: ContentBlob) => [string, string][], inGuard: boolean) =>
    blobs.filter((b) => guarded.has(b.digest) === inGuard)
      .map((b) => ({ digest: b.digest, labels: pick(b) }))
      .filter((c) => c.labels.length > 0);
  return { unsafe, keep: changes(missingCopies, true), release: changes(copiesOf, false) };
}
