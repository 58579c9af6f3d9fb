/**
 * `ctre status`: the usage DB as a table, when the recorder last wrote it and whether it runs,
 * so an operator can tell at a glance whether recording is alive.
 *
 * @module
 */
import { join } from "node:path";
import { recorderCheck } from "./doctor.ts";
import { type Io, println } from "../core/io.ts";
import { alignColumns, isoTime, quoteCut } from "../core/text.ts";
import { lastUse, loadUsageDb, type Usage, USAGE_FILE } from "../state/usage_db.ts";
import { permissionHint } from "../state/state_files.ts";
import { loadPullDb, PULLS_FILE } from "../state/pull_db.ts";
import { loadPinMemory, PINS_FILE } from "../state/pin_memory.ts";

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
  const path = join(stateDir, USAGE_FILE);
  const db = await loadUsageDb(path);
  const pullsPath = join(stateDir, PULLS_FILE);
  const pinsPath = join(stateDir, PINS_FILE);
  const [pulls, pins] = await Promise.all([loadPullDb(pullsPath), loadPinMemory(pinsPath)]);
  let written: number | null = null;
  try {
    written = ((await Deno.stat(path)).mtime?.getTime() ?? NaN) / 1000;
    if (Number.isNaN(written)) written = null;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw permissionHint(e, path, "read");
  }
  const recorder = await recorderCheck(stateDir);
  const now = io.now();
  // One row per (namespace, ref) of the usage DB or the pulls file.
  const keys = [...new Set([...db.entries.keys(), ...pulls.entries.keys()])].sort();
  const rows = keys.map((key) => {
    const space = key.indexOf(" ");
    const u: Usage | undefined = db.entries.get(key);
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
  if (json) {
    println(
      io.stdout,
      JSON.stringify(
        {
          db: path,
          lastWritten: written === null ? null : new Date(written * 1000).toISOString(),
          recorderRunning: recorder.status === "ok",
          recorder: recorder.detail,
          entries: rows,
          rejected: db.rejected,
          pulls: pullsPath,
          pullsRejected: pulls.rejected,
          pinnedFile: pinsPath,
          pinned,
          pinnedRejected: pins.rejected,
        },
        null,
        2,
      ),
    );
    return 0;
  }
  const table = [
    ["NAMESPACE", "REF", "LAST START", "LAST STOP", "LAST PULL", "AGE"],
    ...rows.map((r) => [
      r.namespace,
      r.ref,
      isoTime(r.lastStart),
      isoTime(r.lastStop),
      isoTime(r.lastPull),
      shortAge(r.ageSeconds),
    ]),
  ];
  for (const line of alignColumns(table)) println(io.stdout, line);
  println(io.stdout);
  println(
    io.stdout,
    `${path}: ${db.entries.size} entries, ` +
      (written === null
        ? "never written"
        : `last written ${isoTime(written)} (${shortAge(now - written)} ago)`),
  );
  println(io.stdout, `${pullsPath}: ${pulls.entries.size} pulls`);
  println(io.stdout, `Recorder: ${recorder.detail}`);
  if (pinned.length > 0) {
    println(io.stdout);
    println(io.stdout, `Remembered as pinned (${pinsPath}; prune keeps them for --pin-memory):`);
    const pinTable = [
      ["NAMESPACE", "REF", "DIGEST", "FIRST SEEN PINNED", "LAST SEEN PINNED"],
      ...pinned.map((p) => [
        p.namespace,
        p.ref,
        p.digest.slice(0, 19),
        isoTime(p.firstSeen),
        isoTime(p.lastSeen),
      ]),
    ];
    for (const line of alignColumns(pinTable)) println(io.stdout, line);
  }
  for (
    const [file, rejected] of [
      [path, db.rejected],
      [pullsPath, pulls.rejected],
      [pinsPath, pins.rejected],
    ] as const
  ) {
    for (const r of rejected) {
      println(
        io.stderr,
        `Warning: line ${r.lineNo} of ${file} is corrupt (${r.reason}): ${quoteCut(r.line)}`,
      );
    }
  }
  return 0;
}
