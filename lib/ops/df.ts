/**
 * `ctre df`: what containerd holds on disk per namespace and in total (images' blobs and
 * snapshots, containers' writable layers, what nothing refers to), what `ctre prune --force`
 * with the same flags would free right now (prune's own planning pass, lib/prune/prune.ts), and
 * the filesystem of containerd's root where the build may measure it. Arithmetic:
 * lib/policy/disk.ts.
 *
 * @module
 */
import type { Containerd } from "../ctr/gateway.ts";
import { type Io, println } from "../core/io.ts";
import { alignColumns } from "../core/text.ts";
import { formatBytes } from "../core/units.ts";
import { addDiskUsage } from "../node/inventory.ts";
import { type Filesystem, statFilesystem } from "../node/filesystem.ts";
import {
  type Bytes,
  diskInputOf,
  diskModel,
  type DiskTotals,
  diskTotals,
  reclaimable,
} from "../policy/disk.ts";
import { contentPruneRuns } from "../policy/content_scope.ts";
import { planNow, type PruneOptions } from "../prune/prune.ts";

export interface DfOptions {
  /** prune's selection: what "reclaimable" means (mode and budget are ignored). */
  prune: PruneOptions;
  /** containerd's root, whose filesystem is measured. */
  root: string;
}

/** One namespace's (or the total's) row of the document. */
export type DfRow = Omit<DiskTotals, "images"> & {
  images: DiskTotals["images"] & { reclaimableBytes: number };
};

/** The `ctre df --json` document (schemas/df.schema.json). */
export interface DfDocument {
  schemaVersion: 1;
  generatedAt: string;
  filesystem: Filesystem | null;
  /** Why `filesystem` is null. */
  filesystemError?: string;
  namespaces: (DfRow & { namespace: string })[];
  total: DfRow;
}

function row(t: DiskTotals, freed: Bytes | undefined): DfRow {
  const reclaimableBytes = (freed?.contentBytes ?? 0) + (freed?.snapshotBytes ?? 0);
  return { ...t, images: { ...t.images, reclaimableBytes } };
}

/** Measures the node and builds the document. */
export async function dfDocument(
  containerd: Containerd,
  opts: DfOptions,
  io: Io,
): Promise<DfDocument> {
  const plan = await planNow(containerd, opts.prune, io);
  // Namespaces without images were not listed for lineage: their containers count too.
  await Promise.all(plan.snaps.map((s) => addDiskUsage(containerd, s)));
  for (const s of plan.snaps) {
    if (s.usageError !== undefined) println(io.stderr, `Warning: ${s.usageError}`);
  }
  const m = diskModel([...plan.snaps.map(diskInputOf), ...plan.elsewhere]);
  const prunable = plan.images.filter((p) => p.decision === "prune");
  const freed = reclaimable(m, prunable, contentPruneRuns(plan.namespaces, opts.prune));
  const fs = await statFilesystem(opts.root);
  return {
    schemaVersion: 1,
    generatedAt: new Date(io.now() * 1000).toISOString(),
    filesystem: "error" in fs ? null : fs,
    ...("error" in fs ? { filesystemError: fs.error } : {}),
    namespaces: plan.namespaces.map((ns) => ({
      namespace: ns,
      ...row(diskTotals(m, new Set([ns])), freed.byNamespace.get(ns)),
    })),
    total: row(diskTotals(m, new Set(plan.namespaces)), freed.total),
  };
}

/** The human-readable table of `doc`. */
export function dfTable(doc: DfDocument): string[] {
  const cells = (name: string, r: DfRow) => [
    name,
    String(r.images.count),
    formatBytes(r.images.contentBytes),
    formatBytes(r.images.snapshotBytes),
    formatBytes(r.images.reclaimableBytes),
    String(r.containers.count),
    formatBytes(r.containers.writableBytes),
    formatBytes(r.unreferenced.contentBytes + r.unreferenced.snapshotBytes),
  ];
  const lines = alignColumns([
    [
      "NAMESPACE",
      "IMAGES",
      "CONTENT",
      "SNAPSHOTS",
      "RECLAIMABLE",
      "CONTAINERS",
      "WRITABLE",
      "UNREFERENCED",
    ],
    ...doc.namespaces.map((n) => cells(n.namespace, n)),
    cells("TOTAL", doc.total),
  ]);
  const fs = doc.filesystem;
  lines.push(
    fs === null
      ? `Filesystem: unknown (${doc.filesystemError})`
      : `Filesystem of ${fs.path}: ${formatBytes(fs.freeBytes)} free of ${
        formatBytes(fs.sizeBytes)
      }`,
  );
  return lines;
}

/** Runs `ctre df`. Returns the exit code. */
export async function df(
  containerd: Containerd,
  opts: DfOptions,
  json: boolean,
  io: Io,
): Promise<number> {
  const doc = await dfDocument(containerd, opts, io);
  if (json) println(io.stdout, JSON.stringify(doc, null, 2));
  else dfTable(doc).forEach((l) => println(io.stdout, l));
  return 0;
}
