/**
 * The usage DB the recorder writes and prune reads: `<state-dir>/image_starts`, one line per
 * (namespace, image ref), `<start> <stop|----------> <namespace> <ref>` in unix seconds, the
 * format of the original Python ctre. Its two older forms are still read: `<start> <ns> <ref>`
 * and `<start> <ref>` (no namespace: it then counts for every namespace).
 *
 * @module
 */
import { permissionHint } from "./state_files.ts";

export const NULL_TIME = "----------";
/** The namespace of an entry in the oldest format, which recorded none: any namespace. */
export const ANY_NAMESPACE = "*";

export interface Usage {
  /** Last start (unix seconds). */
  start: number;
  /** Last stop (unix seconds), null when none was seen. */
  stop: number | null;
}

export interface RejectedLine {
  lineNo: number;
  line: string;
  reason: string;
}

export interface UsageDb {
  /** Keyed by {@linkcode usageKey}. */
  entries: Map<string, Usage>;
  rejected: RejectedLine[];
}

/** The map key of (namespace, ref). Neither can contain a space (see {@linkcode safeToken}). */
export function usageKey(ns: string, ref: string): string {
  return `${ns} ${ref}`;
}

/** Whether a namespace or ref can be written to a DB line without corrupting it. */
export function safeToken(s: string): boolean {
  // deno-lint-ignore no-control-regex
  return s !== "" && s !== NULL_TIME && !/[\s\u0000-\u001f\u007f\u0085\u2028\u2029]/.test(s);
}

const TIME = /^\d{1,12}$/;
/** containerd's namespace names, plus ANY_NAMESPACE which the recorder may write back. */
const NAMESPACE = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*|\*)$/;

function parseLine(line: string): [string, Usage] | string {
  const f = line.split(" ");
  if (f.some((x) => x === "")) return "unexpected spacing";
  if (!TIME.test(f[0] ?? "")) return `start "${f[0]}" is not a unix time`;
  const start = Number(f[0]);
  if (f.length === 4) {
    const [, stop, ns, ref] = f as [string, string, string, string];
    if (stop !== NULL_TIME && !TIME.test(stop)) return `stop "${stop}" is not a unix time`;
    if (!NAMESPACE.test(ns)) return `namespace "${ns}" is not a containerd namespace`;
    return [usageKey(ns, ref), { start, stop: stop === NULL_TIME ? null : Number(stop) }];
  }
  if (f.length === 3) {
    const [, ns, ref] = f as [string, string, string];
    if (!NAMESPACE.test(ns)) return `namespace "${ns}" is not a containerd namespace`;
    return [usageKey(ns, ref), { start, stop: null }];
  }
  if (f.length === 2) return [usageKey(ANY_NAMESPACE, f[1] ?? ""), { start, stop: null }];
  return `expected 2 to 4 fields, got ${f.length}`;
}

/** Parses the DB text. Corrupt lines are returned in `rejected`, never thrown. */
export function parseUsageDb(text: string): UsageDb {
  const entries = new Map<string, Usage>();
  const rejected: RejectedLine[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") return;
    const parsed = parseLine(line);
    if (typeof parsed === "string") {
      rejected.push({ lineNo: i + 1, line, reason: parsed });
    } else {
      const [key, usage] = parsed;
      const prev = entries.get(key);
      entries.set(key, prev ? mergeUsage(prev, usage.start, usage.stop) : usage);
    }
  });
  return { entries, rejected };
}

/** The DB text: sorted, one line per entry, in the current format. */
export function formatUsageDb(entries: Map<string, Usage>): string {
  return [...entries.keys()].sort().map((key) => {
    const u = entries.get(key) as Usage;
    return `${u.start} ${u.stop ?? NULL_TIME} ${key}\n`;
  }).join("");
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
  let dropped = 0;
  for (const [key, u] of entries) {
    if (lastUse(u) < cutoff) {
      entries.delete(key);
      dropped++;
    }
  }
  return dropped;
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
export async function loadUsageDb(path: string): Promise<UsageDb> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { entries: new Map(), rejected: [] };
    throw permissionHint(e, path, "read");
  }
  return parseUsageDb(text);
}
