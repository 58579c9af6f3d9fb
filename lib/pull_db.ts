/**
 * Pulls as use: `<state-dir>/image_pulls`, one line per (namespace, image ref),
 * `<pull time> <namespace> <ref>` in unix seconds: when the recorder last saw the ref created or
 * updated (`/images/create`, `/images/update`: a pull, also of a tag whose content is already on
 * the node, or a re-tag). kubelet pulls an image and starts the pod seconds later; prune keeps
 * such an image `recently-used` in between.
 *
 * A file of its own beside `image_starts`, so that file stays byte-compatible with the Python
 * ctre (which neither knows nor breaks this one). Same rules: written by the recorder only,
 * atomically (temp file, fsync, rename); corrupt lines are set aside in `image_pulls.rejected`,
 * never silently lost; entries older than the recorder's --keep-window are forgotten.
 *
 * @module
 */
import { permissionHint, writeAtomic } from "./state_files.ts";
import { type RejectedLine, safeToken, usageKey } from "./usage_db.ts";

export const PULLS_FILE = "image_pulls";

export interface PullDb {
  /** Last pull (unix seconds) keyed by {@linkcode usageKey}. */
  entries: Map<string, number>;
  rejected: RejectedLine[];
}

const TIME = /^\d{1,12}$/;
const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Parses the file's text. Corrupt lines are returned in `rejected`, never thrown. */
export function parsePullDb(text: string): PullDb {
  const entries = new Map<string, number>();
  const rejected: RejectedLine[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") return;
    const f = line.split(" ");
    let reason: string | null = null;
    if (f.length !== 3 || f.some((x) => x === "")) reason = "expected 3 fields: time ns ref";
    else if (!TIME.test(f[0]!)) reason = `time "${f[0]}" is not a unix time`;
    else if (!NAMESPACE.test(f[1]!)) reason = `namespace "${f[1]}" is not a containerd namespace`;
    if (reason !== null) {
      rejected.push({ lineNo: i + 1, line, reason });
      return;
    }
    const key = usageKey(f[1]!, f[2]!);
    entries.set(key, Math.max(entries.get(key) ?? 0, Number(f[0])));
  });
  return { entries, rejected };
}

/** The file's text: sorted, one line per entry. */
export function formatPullDb(entries: Map<string, number>): string {
  return [...entries.keys()].sort().map((key) => `${entries.get(key)} ${key}\n`).join("");
}

/** Records a pull of `ref` in `ns` at `time` (the later time wins). False if unsafe to write. */
export function recordPull(
  entries: Map<string, number>,
  ns: string,
  ref: string,
  time: number,
): boolean {
  if (!safeToken(ns) || !safeToken(ref)) return false;
  const key = usageKey(ns, ref);
  entries.set(key, Math.max(entries.get(key) ?? 0, Math.floor(time)));
  return true;
}

/** The latest pull of any of `refs` in `ns`, or null. */
export function lastPullOf(
  entries: Map<string, number>,
  ns: string,
  refs: Iterable<string>,
): number | null {
  let best: number | null = null;
  for (const ref of refs) {
    const t = entries.get(usageKey(ns, ref));
    if (t !== undefined && (best === null || t > best)) best = t;
  }
  return best;
}

/** Drops pulls older than `cutoff`; returns how many. */
export function expirePulls(entries: Map<string, number>, cutoff: number): number {
  let dropped = 0;
  for (const [key, t] of entries) {
    if (t < cutoff) {
      entries.delete(key);
      dropped++;
    }
  }
  return dropped;
}

/** Reads the file at `path`; a missing file is empty. Needs read access to the state dir. */
export async function loadPullDb(path: string): Promise<PullDb> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { entries: new Map(), rejected: [] };
    throw permissionHint(e, path, "read");
  }
  return parsePullDb(text);
}

/** Writes the file atomically (see {@linkcode writeAtomic}). */
export function writePullDb(path: string, entries: Map<string, number>): Promise<void> {
  return writeAtomic(path, formatPullDb(entries));
}
