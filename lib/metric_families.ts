/**
 * The Prometheus metric families ctre writes (lib/metrics.ts writes them): `ctre_prune_*` of
 * one prune run and `ctre_recorder_*` of the recorder. Pure: numbers in, families out.
 *
 * @module
 */
import type { Family } from "./metrics.ts";
import type { ImagePlan, Reason } from "./plan.ts";
import type { PruneOutcome } from "./report.ts";

/** The recorder's counters, as {@linkcode recorderFamilies} reports them. */
export interface RecorderStats {
  events: number;
  recorded: number;
  writes: number;
  reconnects: number;
  lastEventTime: number | null;
  /** Whether it follows containerd's events now (false while it reconnects). */
  connected: boolean;
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

/** The `ctre_recorder_*` metric families. */
export function recorderFamilies(s: RecorderStats, now: number): Family[] {
  const one = (name: string, type: Family["type"], help: string, value: number): Family => ({
    name,
    help,
    type,
    samples: [{ value }],
  });
  return [
    one(
      "ctre_recorder_events_total",
      "counter",
      "ctr events read since the recorder started.",
      s.events,
    ),
    one(
      "ctre_recorder_events_recorded_total",
      "counter",
      "Container starts and stops recorded since the recorder started.",
      s.recorded,
    ),
    one(
      "ctre_recorder_reconnects_total",
      "counter",
      "Times ctr event ended and the recorder reconnected.",
      s.reconnects,
    ),
    one(
      "ctre_recorder_connected",
      "gauge",
      "1 while the recorder follows containerd's events, 0 while it cannot reach containerd.",
      s.connected ? 1 : 0,
    ),
    one("ctre_recorder_db_writes_total", "counter", "Writes of the usage DB.", s.writes),
    one(
      "ctre_recorder_last_event_timestamp_seconds",
      "gauge",
      "Time of the last event seen (unix time; 0 when none yet).",
      s.lastEventTime ?? 0,
    ),
    one(
      "ctre_recorder_last_update_timestamp_seconds",
      "gauge",
      "When these metrics were written.",
      now,
    ),
  ];
}
