/**
 * The `ctre_prune_*` Prometheus metric families of one prune run (lib/state/metrics_file.ts writes
 * them; the recorder's are lib/recorder/metric_families.ts). Pure: numbers in, families out.
 *
 * @module
 */
import type { Family } from "../state/metrics_file.ts";
import type { ImagePlan, Reason } from "../policy/plan.ts";
import type { PruneOutcome } from "./report.ts";

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
    gauge(
      "ctre_prune_reclaimed_bytes",
      "Bytes the content store shrank by in the last prune (measured).",
      outcome?.reclaimedBytes ?? 0,
    ),
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
