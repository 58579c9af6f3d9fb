/**
 * `ctre status`: the usage DB as a table, when the recorder last wrote it and whether it runs,
 * so an operator can tell at a glance whether recording is alive.
 *
 * @module
 */
import { join } from "node:path";
import { recorderCheck } from "./doctor.ts";
import { type Io, println } from "./io.ts";
import { alignColumns, isoTime } from "./text.ts";
import { lastUse, loadUsageDb } from "./usage_db.ts";
import { permissionHint } from "./usage_db.ts";

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
  const path = join(stateDir, "image_starts");
  const db = await loadUsageDb(path);
  let written: number | null = null;
  try {
    written = ((await Deno.stat(path)).mtime?.getTime() ?? NaN) / 1000;
    if (Number.isNaN(written)) written = null;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw permissionHint(e, path, "read");
  }
  const recorder = await recorderCheck(stateDir);
  const now = io.now();
  const rows = [...db.entries].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([key, u]) => {
    const space = key.indexOf(" ");
    return {
      namespace: key.slice(0, space),
      ref: key.slice(space + 1),
      lastStart: u.start,
      lastStop: u.stop,
      ageSeconds: Math.max(0, Math.round(now - lastUse(u))),
    };
  });
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
        },
        null,
        2,
      ),
    );
    return 0;
  }
  const table = [
    ["NAMESPACE", "REF", "LAST START", "LAST STOP", "AGE"],
    ...rows.map((
      r,
    ) => [r.namespace, r.ref, isoTime(r.lastStart), isoTime(r.lastStop), shortAge(r.ageSeconds)]),
  ];
  for (const line of alignColumns(table)) println(io.stdout, line);
  println(io.stdout);
  println(
    io.stdout,
    `${path}: ${rows.length} entries, ` +
      (written === null
        ? "never written"
        : `last written ${isoTime(written)} (${shortAge(now - written)} ago)`),
  );
  println(io.stdout, `Recorder: ${recorder.detail}`);
  for (const r of db.rejected) {
    println(
      io.stderr,
      `Warning: line ${r.lineNo} of ${path} is corrupt (${r.reason}): "${r.line}"`,
    );
  }
  return 0;
}
