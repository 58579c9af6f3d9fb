/**
 * The usage DB the recorder writes and prune reads: `<state-dir>/image_starts`, one line per
 * (namespace, image ref), `<start> <stop|----------> <namespace> <ref>` in unix seconds, the
 * format of the original Python ctre. Its two older forms are still read: `<start> <ns> <ref>`
 * and `<start> <ref>` (no namespace: it then counts for every namespace).
 *
 * @module
 */
import {
  expireEntries,
  formatLines,
  type LineFile,
  loadLines,
  NAMESPACE as CONTAINERD_NAMESPACE,
  NULL_TIME,
  parseLines,
  UNIX_TIME,
  usageKey,
} from "./line_file.ts";

export { NULL_TIME };
export const USAGE_FILE = "image_starts";
/** The namespace of an entry in the oldest format, which recorded none: any namespace. */
export const ANY_NAMESPACE = "*";

export interface Usage {
  /** Last start (unix seconds). */
  start: number;
  /** Last stop (unix seconds), null when none was seen. */
  stop: number | null;
}

/** Keyed by {@linkcode usageKey}, and the corrupt lines. */
export type UsageDb = LineFile<Usage>;

/** A containerd namespace, or ANY_NAMESPACE, which the recorder may write back. */
function isNamespace(ns: string): boolean {
  return ns === ANY_NAMESPACE || CONTAINERD_NAMESPACE.test(ns);
}

function parseLine(f: string[]): [string, Usage] | string {
  if (!UNIX_TIME.test(f[0] ?? "")) return `start "${f[0]}" is not a unix time`;
  const start = Number(f[0]);
  if (f.length === 4) {
    const [, stop, ns, ref] = f as [string, string, string, string];
    if (stop !== NULL_TIME && !UNIX_TIME.test(stop)) return `stop "${stop}" is not a unix time`;
    if (!isNamespace(ns)) return `namespace "${ns}" is not a containerd namespace`;
    return [usageKey(ns, ref), { start, stop: stop === NULL_TIME ? null : Number(stop) }];
  }
  if (f.length === 3) {
    const [, ns, ref] = f as [string, string, string];
    if (!isNamespace(ns)) return `namespace "${ns}" is not a containerd namespace`;
    return [usageKey(ns, ref), { start, stop: null }];
  }
  if (f.length === 2) return [usageKey(ANY_NAMESPACE, f[1] ?? ""), { start, stop: null }];
  return `expected 2 to 4 fields, got ${f.length}`;
}

/** Parses the DB text. Corrupt lines are returned in `rejected`, never thrown. */
export function parseUsageDb(text: string): UsageDb {
  return parseLines(text, parseLine, (prev, next) => mergeUsage(prev, next.start, next.stop));
}

/** The DB text: sorted, one line per entry, in the current format. */
export function formatUsageDb(entries: Map<string, Usage>): string {
  return formatLines(entries, (key, u) => `${u.start} ${u.stop ?? NULL_TIME} ${key}`);
}

/**
 * The original's merge rule: start = new start, else previous start; stop = new stop, else
 * previous stop. (A first stop with no start recorded uses the stop as start.)
 */
export function mergeUsage(
  prev: Usage | undefined,
  start: number | null,
  stop: number | null,
): Usage {
  return {
    start: start ?? prev?.start ?? stop ?? 0,
    stop: stop ?? prev?.stop ?? null,
  };
}

/** The latest of start and stop. */
export function lastUse(u: Usage): number {
  return Math.max(u.start, u.stop ?? 0);
}

/** Drops entries whose start and stop are both older than `cutoff` (unix seconds). */
export function expire(entries: Map<string, Usage>, cutoff: number): number {
  return expireEntries(entries, lastUse, cutoff);
}

/** The most recent use of any of `refs` in namespace `ns` (or in an entry with no namespace). */
export function lastUseOf(
  entries: Map<string, Usage>,
  ns: string,
  refs: Iterable<string>,
): Usage | undefined {
  let best: Usage | undefined;
  for (const ref of refs) {
    for (const key of [usageKey(ns, ref), usageKey(ANY_NAMESPACE, ref)]) {
      const u = entries.get(key);
      if (u && (!best || lastUse(u) > lastUse(best))) best = u;
    }
  }
  return best;
}

/** Reads the DB at `path`; a missing file is an empty DB. Needs read access to the file. */
export function loadUsageDb(path: string): Promise<UsageDb> {
  return loadLines(path, parseUsageDb);
}
