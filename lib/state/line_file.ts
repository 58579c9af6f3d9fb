/**
 * ctre's line files under the state dir — `image_starts` (usage_db.ts), `image_pulls`
 * (pull_db.ts) and `pinned` (pin_memory.ts): one entry per line, space-separated, keyed by
 * (namespace, image ref). What they share lives here: the key, which tokens may be written,
 * parsing that never throws (a corrupt line is returned with its number and the reason, for
 * `<file>.rejected`, never silently dropped), sorted output, expiry and the missing-file rule.
 * Each file's own module says what a line holds.
 *
 * @module
 */
import { permissionHint } from "./state_files.ts";

/** `image_starts`' "no stop seen" time, so never a namespace or ref of its own. */
export const NULL_TIME = "----------";

/** A unix time in seconds, as every line file writes it. */
export const UNIX_TIME = /^\d{1,12}$/;
/** A containerd namespace name. */
export const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface RejectedLine {
  lineNo: number;
  line: string;
  reason: string;
}

/** The entries of one line file, and its corrupt lines. */
export interface LineFile<V> {
  /** Keyed by {@linkcode usageKey} (namespace, ref). */
  entries: Map<string, V>;
  rejected: RejectedLine[];
}

/** The map key of (namespace, ref). Neither can contain a space (see {@linkcode safeToken}). */
export function usageKey(ns: string, ref: string): string {
  return `${ns} ${ref}`;
}

/** Whether a namespace or ref can be written to a line without corrupting it. */
export function safeToken(s: string): boolean {
  // deno-lint-ignore no-control-regex
  return s !== "" && s !== NULL_TIME && !/[\s\u0000-\u001f\u007f\u0085\u2028\u2029]/.test(s);
}

/**
 * Parses a line file's text with `parseLine` (an entry `[key, value]`, or why the line is
 * corrupt). Two lines of one key are combined with `merge(previous, next)`. Blank lines are
 * skipped, a trailing CR is ignored; nothing is thrown.
 */
export function parseLines<V>(
  text: string,
  parseLine: (fields: string[]) => [string, V] | string,
  merge: (prev: V, next: V) => V,
): LineFile<V> {
  const entries = new Map<string, V>();
  const rejected: RejectedLine[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") return;
    const fields = line.split(" ");
    const parsed = fields.some((f) => f === "") ? "unexpected spacing" : parseLine(fields);
    if (typeof parsed === "string") {
      rejected.push({ lineNo: i + 1, line, reason: parsed });
      return;
    }
    const [key, value] = parsed;
    const prev = entries.get(key);
    entries.set(key, prev === undefined ? value : merge(prev, value));
  });
  return { entries, rejected };
}

/** A line file's text: one `line(key, value)` per entry, sorted by key. */
export function formatLines<V>(entries: Map<string, V>, line: (key: string, value: V) => string) {
  return [...entries.keys()].sort().map((key) => `${line(key, entries.get(key)!)}\n`).join("");
}

/** Drops the entries whose `lastSeen` is before `cutoff`; returns how many. */
export function expireEntries<V>(
  entries: Map<string, V>,
  lastSeen: (value: V) => number,
  cutoff: number,
): number {
  let dropped = 0;
  for (const [key, value] of entries) {
    if (lastSeen(value) < cutoff) {
      entries.delete(key);
      dropped++;
    }
  }
  return dropped;
}

/** Reads and parses the file at `path`; a missing file has no entries. Needs read access. */
export async function loadLines<V>(
  path: string,
  parse: (text: string) => LineFile<V>,
): Promise<LineFile<V>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { entries: new Map(), rejected: [] };
    throw permissionHint(e, path, "read");
  }
  return parse(text);
}

/**
 * Appends `rejected` lines of the file at `path` to `<path>.rejected`, each under a comment with
 * the time (`now`, unix seconds), its line number and the reason, so no line is ever lost.
 */
export async function setAsideRejected(
  path: string,
  rejected: readonly RejectedLine[],
  now: number,
): Promise<void> {
  if (rejected.length === 0) return;
  const stamp = new Date(now * 1000).toISOString();
  const text = rejected.map((r) => `# ${stamp} line ${r.lineNo}: ${r.reason}\n${r.line}\n`);
  try {
    await Deno.writeTextFile(`${path}.rejected`, text.join(""), { append: true, create: true });
  } catch (e) {
    throw permissionHint(e, `${path}.rejected`, "write");
  }
}
