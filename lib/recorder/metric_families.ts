/**
 * The `ctre_recorder_*` Prometheus metric families of the recorder (lib/state/metrics_file.ts
 * writes them). Pure: numbers in, families out.
 *
 * @module
 */
import type { Family } from "../state/metrics_file.ts";

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
