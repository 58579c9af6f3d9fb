/**
 * What a forced prune freed on disk: predicted before removal (lib/policy/disk.ts: the unique
 * blobs and snapshots of the images going, and the layer blobs content prune strips, each
 * shared layer once), and measured after: ctr's own sizes before and after (content store,
 * every snapshot's usage) and, where the build may statfs containerd's root, the filesystem's
 * free space before and after.
 *
 * @module
 */
import type { Containerd } from "../ctr/gateway.ts";
import { errorText } from "../core/errors.ts";
import { formatBytes } from "../core/units.ts";
import type { NamespaceSnapshot } from "../core/containerd.ts";
import { statFilesystem } from "../node/filesystem.ts";
import { type Bytes, type DiskModel, diskTotals, reclaimable } from "../policy/disk.ts";
import type { ImagePlan } from "../policy/plan.ts";
import type { NodeDisk } from "./metric_families.ts";

/** The `disk` part of a forced run's outcome. */
export interface DiskOutcome {
  /** containerd's root, whose filesystem was measured. */
  root: string;
  predicted: Bytes;
  /** Measured by ctr: content store and snapshots before minus after (null: not measured). */
  measured: { contentBytes: number | null; snapshotBytes: number | null };
  /** Free space the filesystem gained (statfs), or null with `filesystemError` saying why. */
  filesystemBytes: number | null;
  filesystemError: string | null;
}

/** What the disk held before removal, to compare with afterwards. */
export interface DiskBefore {
  snapshotBytes: number;
  free: number | null;
  error: string | null;
}

/** Sum of every snapshot's bytes in `usages`. */
function sumUsage(usages: Iterable<Map<string, number>>): number {
  let total = 0;
  for (const u of usages) for (const b of u.values()) total += b;
  return total;
}

/** The snapshots of the latest pass and the filesystem of `root`, right before removal. */
export async function diskBefore(snaps: NamespaceSnapshot[], root: string): Promise<DiskBefore> {
  const fs = await statFilesystem(root);
  return {
    snapshotBytes: sumUsage(snaps.flatMap((s) => [...s.usage?.values() ?? []])),
    free: "error" in fs ? null : fs.freeBytes,
    error: "error" in fs ? fs.error : null,
  };
}

/** Measures again after the clean-up; `contentBytes` is the content store's measured gain. */
export async function diskAfter(
  containerd: Containerd,
  snaps: NamespaceSnapshot[],
  root: string,
  before: DiskBefore,
  predicted: Bytes,
  contentBytes: number | null,
  error: (text: string) => void,
): Promise<DiskOutcome> {
  let snapshotBytes: number | null = null;
  try {
    const after = await Promise.all(
      snaps.flatMap((s) =>
        [...s.usage?.keys() ?? []].map((which) =>
          containerd.snapshotUsage(s.ns, which || undefined)
        )
      ),
    );
    snapshotBytes = Math.max(0, before.snapshotBytes - sumUsage(after));
  } catch (e) {
    error(`Cannot measure the snapshots afterwards: ${errorText(e)}`);
  }
  const fs = before.free === null ? null : await statFilesystem(root);
  const gained = fs === null || "error" in fs ? null : fs.freeBytes - before.free!;
  return {
    root,
    predicted,
    measured: { contentBytes, snapshotBytes },
    filesystemBytes: gained,
    filesystemError: before.error ?? (fs !== null && "error" in fs ? fs.error : null),
  };
}

/** The summary lines, each with the word "disk". */
export function diskLines(d: DiskOutcome): string[] {
  const total = (b: { contentBytes: number | null; snapshotBytes: number | null }) =>
    b.contentBytes === null || b.snapshotBytes === null
      ? "unknown"
      : formatBytes(b.contentBytes + b.snapshotBytes);
  const part = (n: number | null) => (n === null ? "unknown" : formatBytes(n));
  return [
    `Predicted to free on disk: ${total(d.predicted)} (content ${
      part(d.predicted.contentBytes)
    }, ` +
    `snapshots ${part(d.predicted.snapshotBytes)}; shared layers once)`,
    `Freed on disk, by ctr's sizes: ${total(d.measured)} (content ${
      part(d.measured.contentBytes)
    }, ` +
    `snapshots ${part(d.measured.snapshotBytes)})`,
    d.filesystemBytes === null
      ? `Freed on disk, by the filesystem: unknown (${d.filesystemError})`
      : `Freed on disk, by the filesystem of ${d.root}: ${formatBytes(d.filesystemBytes)}`,
  ];
}

/**
 * What each of `namespaces` held at a planning pass (`model`) and what a forced prune of `plan`
 * could free there (`contentPrune`: where content prune runs), for the `ctre_node_*` metrics.
 */
export function nodeDiskOf(
  model: DiskModel,
  plan: ImagePlan[],
  namespaces: string[],
  contentPrune: ((ns: string) => boolean) | null,
): NodeDisk {
  const freed = reclaimable(model, plan.filter((p) => p.decision === "prune"), contentPrune);
  const out: NodeDisk = { namespaces: new Map(), reclaimable: new Map() };
  for (const ns of namespaces) {
    const t = diskTotals(model, new Set([ns]));
    out.namespaces.set(ns, {
      content: t.images.contentBytes,
      snapshot: t.images.snapshotBytes,
      writable: t.containers.writableBytes,
    });
    const b = freed.byNamespace.get(ns);
    out.reclaimable.set(ns, (b?.contentBytes ?? 0) + (b?.snapshotBytes ?? 0));
  }
  return out;
}
