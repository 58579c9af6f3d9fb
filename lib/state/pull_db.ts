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
import {
  expireEntries,
  formatLines,
  type LineFile,
  loadLines,
  NAMESPACE,
  parseLines,
  safeToken,
  UNIX_TIME,
  usageKey,
} from "./line_file.ts";
import { writeAtomic } from "./state_files.ts";

export const PULLS_FILE = "image_pulls";

/** Last pull (unix seconds) keyed by {@linkcode usageKey}, and the corrupt lines. */
export type PullDb = LineFile<number>;

/** Parses the file's text. Corrupt lines are returned in `rejected`, never thrown. */
export function parsePullDb(text: string): PullDb {
  return parseLines(text, (f) => {
    if (f.length !== 3) return "expected 3 fields: time ns ref";
    if (!UNIX_TIME.test(f[0]!)) return `time "${f[0]}" is not a unix time`;
    if (!NAMESPACE.test(f[1]!)) return `namespace "${f[1]}" is not a containerd namespace`;
    return [usageKey(f[1]!, f[2]!), Number(f[0])];
  }, Math.max);
}

/** The file's text: sorted, one line per entry. */
export function formatPullDb(entries: Map<string, number>): string {
  return formatLines(entries, (key, time) => `${time} ${key}`);
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
  return expireEntries(entries, (t) => t, cutoff);
}

/** Reads the file at `path`; a missing file is empty. Needs read access to the state dir. */
export function loadPullDb(path: string): Promise<PullDb> {
  return loadLines(path, parsePullDb);
}

/** Writes the file atomically (see {@linkcode writeAtomic}). */
export function writePullDb(path: string, entries: Map<string, number>): Promise<void> {
  return writeAtomic(path, formatPullDb(entries));
}
