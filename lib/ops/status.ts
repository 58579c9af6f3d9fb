/**
 * `ctre status`: the usage DB as a table, when the recorder last wrote it and whether it runs,
 * so an operator can tell at a glance whether recording is alive.
 *
 * @module
 */
import { join } from "node:path";
import { type Check, recorderCheck } from "./doctor.ts";
import { type Io, println } from "../core/io.ts";
import { alignColumns, isoTime, quoteCut } from "../core/text.ts";
import { lastUse, loadUsageDb, USAGE_FILE, type UsageDb } from "../state/usage_db.ts";
import { permissionHint } from "../state/state_files.ts";
import { loadPullDb, type PullDb, PULLS_FILE } from "../state/pull_db.ts";
import { loadPinMemory, type PinMemory, PINS_FILE } from "../state/pin_memory.ts";

/** The version of the status --json document's shape (schemas/status.schema.json). */
export const STATUS_SCHEMA_VERSION = 1;

/** A duration in the largest whole unit: `3d`, `5h`, `12m`, `40s`. */
export function shortAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s >= 86400) return `${Math.floor(s / 86400)}d`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h`;
  if (s >= 60) return `${Math.floor(s / 60)}m`;
  return `${s}s`;
}

/** Prints the status; returns the exit code (1 when the DB cannot be read). Needs read on the state dir. */
export async function status(stateDir: string, json: boolean, io: Io): Promise<number> {
  const loaded = await loadStatus(stateDir);
  const report = computeStatus(loaded, io.now());
  if (json) {
    println(io.stdout, JSON.stringify(statusJson(report), null, 2));
    return 0;
  }
  for (const line of statusText(report)) println(io.stdout, line);
  for (const line of rejectedWarnings(report)) println(io.stderr, line);
  return 0;
}

/** What `ctre status` reads: the three state files, the DB's last write, the recorder's lock. */
export interface StatusInputs {
  /** Paths of the usage DB, the pulls file and the pin memory. */
  paths: { db: string; pulls: string; pins: string };
  db: UsageDb;
  pulls: PullDb;
  pins: PinMemory;
  /** When the usage DB was last written (unix seconds), or null when it does not exist. */
  written: number | null;
  recorder: Check;
}

/** Step 1: reads the state dir (and whether a recorder holds its lock). */
export async function loadStatus(stateDir: string): Promise<StatusInputs> {
  const paths = {
    db: join(stateDir, USAGE_FILE),
    pulls: join(stateDir, PULLS_FILE),
    pins: join(stateDir, PINS_FILE),
  };
  const db = await loadUsageDb(paths.db);
  const [pulls, pins] = await Promise.all([loadPullDb(paths.pulls), loadPinMemory(paths.pins)]);
  let written: number | null = null;
  try {
    written = ((await Deno.stat(paths.db)).mtime?.getTime() ?? NaN) / 1000;
    if (Number.isNaN(written)) written = null;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw permissionHint(e, paths.db, "read");
  }
  return { paths, db, pulls, pins, written, recorder: await recorderCheck(stateDir) };
}

/** One row of the status table: a (namespace, ref) of the usage DB or the pulls file. */
export interface StatusRow {
  namespace: string;
  ref: string;
  lastStart: number | null;
  lastStop: number | null;
  lastPull: number | null;
  /** Seconds since its last start, stop or pull. */
  ageSeconds: number;
}

/** One image remembered as pinned. */
export interface PinnedRow {
  namespace: string;
  ref: string;
  digest: string;
  firstSeen: number;
  lastSeen: number;
}

/** What `ctre status` shows, computed at `now`. */
export interface StatusReport extends StatusInputs {
  now: number;
  rows: StatusRow[];
  pinned: PinnedRow[];
}

/** Step 2: the rows (sorted by namespace and ref) and the pinned images, at `now`. */
export function computeStatus(loaded: StatusInputs, now: number): StatusReport {
  const { db, pulls, pins } = loaded;
  const keys = [...new Set([...db.entries.keys(), ...pulls.entries.keys()])].sort();
  const rows = keys.map((key) => {
    const space = key.indexOf(" ");
    const u = db.entries.get(key);
    const pull = pulls.entries.get(key) ?? null;
    return {
      namespace: key.slice(0, space),
      ref: key.slice(space + 1),
      lastStart: u?.start ?? null,
      lastStop: u?.stop ?? null,
      lastPull: pull,
      ageSeconds: Math.max(0, Math.round(now - Math.max(u ? lastUse(u) : 0, pull ?? 0))),
    };
  });
  const pinned = [...pins.entries.values()]
    .sort((a, b) => a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : a.ref < b.ref ? -1 : 1)
    .map((e) => ({
      namespace: e.ns,
      ref: e.ref,
      digest: e.digest,
      firstSeen: e.firstSeen,
      lastSeen: e.lastSeen,
    }));
  return { ...loaded, now, rows, pinned };
}

/** Step 3a: the `--json` document. */
export function statusJson(r: StatusReport): Record<string, unknown> {
  return {
    schemaVersion: STATUS_SCHEMA_VERSION,
    db: r.paths.db,
    lastWritten: r.written === null ? null : new Date(r.written * 1000).toISOString(),
    recorderRunning: r.recorder.status === "ok",
    recorder: r.recorder.detail,
    entries: r.rows,
    rejected: r.db.rejected,
    pulls: r.paths.pulls,
    pullsRejected: r.pulls.rejected,
    pinnedFile: r.paths.pins,
    pinned: r.pinned,
    pinnedRejected: r.pins.rejected,
  };
}

/** Step 3b: the table, the files' summary and the pinned images, as stdout lines. */
export function statusText(r: StatusReport): string[] {
  const table = [
    ["NAMESPACE", "REF", "LAST START", "LAST STOP", "LAST PULL", "AGE"],
    ...r.rows.map((row) => [
      row.namespace,
      row.ref,
      isoTime(row.lastStart),
      isoTime(row.lastStop),
      isoTime(row.lastPull),
      shortAge(row.ageSeconds),
    ]),
  ];
  const written = r.written === null
    ? "never written"
    : `last written ${isoTime(r.written)} (${shortAge(r.now - r.written)} ago)`;
  const lines = [
    ...alignColumns(table),
    "",
    `${r.paths.db}: ${r.db.entries.size} entries, ${written}`,
    `${r.paths.pulls}: ${r.pulls.entries.size} pulls`,
    `Recorder: ${r.recorder.detail}`,
  ];
  if (r.pinned.length === 0) return lines;
  const pinTable = [
    ["NAMESPACE", "REF", "DIGEST", "FIRST SEEN PINNED", "LAST SEEN PINNED"],
    ...r.pinned.map((p) => [
      p.namespace,
      p.ref,
      p.digest.slice(0, 19),
      isoTime(p.firstSeen),
      isoTime(p.lastSeen),
    ]),
  ];
  return [
    ...lines,
    "",
    `Remembered as pinned (${r.paths.pins}; prune keeps them for --pin-memory):`,
    ...alignColumns(pinTable),
  ];
}

/** Step 3c: one stderr warning per corrupt line of the three files (text mode only). */
export function rejectedWarnings(r: StatusReport): string[] {
  const files = [
    [r.paths.db, r.db.rejected],
    [r.paths.pulls, r.pulls.rejected],
    [r.paths.pins, r.pins.rejected],
  ] as const;
  return files.flatMap(([file, rejected]) =>
    rejected.map((x) =>
      `Warning: line ${x.lineNo} of ${file} is corrupt (${x.reason}): ${quoteCut(x.line)}`
    )
  );
}
