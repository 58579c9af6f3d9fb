/**
 * The `ctre_prune_*` Prometheus metric families of one prune run (lib/state/metrics_file.ts writes
 * them; the recorder's are lib/recorder/metric_families.ts). Pure: numbers in, families out.
 *
 * @module
 */
import type { Family } from "../state/metrics_file.ts";
import type { ImagePlan, Reason } from "../policy/plan.ts";
import type { PruneOutcome } from "./report.ts";

/** What the namespaces held on disk at the last pass, and what prune could free in each. */
export interface NodeDisk {
  namespaces: Map<string, { content: number; snapshot: number; writable: number }>;
  reclaimable: Map<string, number>;
}

/**
 * `ctre_prune_reclaimed_bytes{kind}`: what the last prune freed, measured: the content store and
 * the snapshots by ctr's sizes, the filesystem by statfs (only where the build may measure it).
 */
function reclaimedFamily(outcome: PruneOutcome | null): Family {
  const disk = outcome?.disk;
  const samples = [
    { labels: { kind: "content" }, value: outcome?.reclaimedBytes ?? 0 },
    { labels: { kind: "snapshot" }, value: disk?.measured.snapshotBytes ?? 0 },
    ...(disk?.filesystemBytes == null
      ? []
      : [{ labels: { kind: "filesystem" }, value: disk.filesystemBytes }]),
  ];
  return {
    name: "ctre_prune_reclaimed_bytes",
    help: "Bytes the last prune freed on disk (measured), by kind: content, snapshot, filesystem.",
    type: "gauge",
    samples,
  };
}

/** `ctre_node_image_bytes{namespace,kind}` and `ctre_node_reclaimable_bytes{namespace}`. */
function nodeFamilies(node: NodeDisk | null): Family[] {
  if (node === null) return [];
  const kinds = ["content", "snapshot", "writable"] as const;
  return [
    {
      name: "ctre_node_image_bytes",
      help: "Bytes on disk per namespace at the last prune's planning pass: images' content " +
        "and snapshots (shared layers once), containers' writable layers.",
      type: "gauge",
      samples: [...node.namespaces].flatMap(([namespace, b]) =>
        kinds.map((kind) => ({ labels: { namespace, kind }, value: b[kind] }))
      ),
    },
    {
      name: "ctre_node_reclaimable_bytes",
      help: "Bytes a forced prune with the same flags could free per namespace (planning pass).",
      type: "gauge",
      samples: [...node.reclaimable].map(([namespace, value]) => ({
        labels: { namespace },
        value,
      })),
    },
  ];
}

const KEEP_REASONS: Reason[] = [
  "in-use",
  "pinned",
  "kept-by-pattern",
  "kept-latest",
  "recently-used",
  "too-young",
  "used-during-double-check",
  "within-budget",
];

/** The `ctre_prune_*` metric families of one run. */
export function pruneFamilies(
  images: ImagePlan[],
  outcome: PruneOutcome | null,
  durationSeconds: number,
  now: number,
  exitCode: number,
  node: NodeDisk | null = null,
): Family[] {
  const gauge = (name: string, help: string, value: number): Family => ({
    name,
    help,
    type: "gauge",
    samples: [{ value }],
  });
  return [
    gauge("ctre_prune_last_run_timestamp_seconds", "When the last prune ended (unix time).", now),
    gauge("ctre_prune_duration_seconds", "Wall time of the last prune.", durationSeconds),
    gauge("ctre_prune_success", "1 if the last prune exited 0, else 0.", exitCode === 0 ? 1 : 0),
    gauge(
      "ctre_prune_images_pruned",
      "Images removed by the last prune.",
      outcome?.removedImages ?? 0,
    ),
    reclaimedFamily(outcome),
    gauge(
      "ctre_prune_removal_failures",
      "Image refs the last prune failed to remove.",
      outcome?.failed.length ?? 0,
    ),
    // Known only when the run measured it (a forced run); absent rather than a false 0.
    ...(outcome?.contentBytesAfter == null ? [] : [
      gauge(
        "ctre_prune_content_store_bytes",
        "Content store size after the last prune (ctr content ls, each digest once).",
        outcome.contentBytesAfter,
      ),
    ]),
    ...nodeFamilies(node),
    {
      name: "ctre_prune_images_kept",
      help: "Images kept by the last prune, by reason.",
      type: "gauge",
      samples: KEEP_REASONS.map((reason) => ({
        labels: { reason },
        value: images.filter((p) => p.decision === "keep" && p.reason === reason).length,
      })),
    },
  ];
}
