/**
 * Pin memory: `<state-dir>/pinned`, every image ctre has seen pinned (`io.cri-containerd.pinned`,
 * `io.cattle.k3s.pinned`), so it stays protected for `--pin-memory` after the label is lost (k3s
 * loses its air-gap pins on some restarts). One line per (namespace, ref):
 * `<first seen> <last seen> <namespace> <digest> <ref>` in unix seconds. An image is remembered
 * pinned when an entry of its namespace names its digest or any of its refs and was last seen
 * within --pin-memory. Written by prune (under its lock) atomically; corrupt lines are set aside
 * in `pinned.rejected`.
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

export const PINS_FILE = "pinned";

export interface PinEntry {
  ns: string;
  ref: string;
  digest: string;
  /** When ctre first saw it pinned (unix seconds). */
  firstSeen: number;
  /** When ctre last saw it pinned. */
  lastSeen: number;
}

/** Keyed by {@linkcode usageKey}(ns, ref), and the corrupt lines. */
export type PinMemory = LineFile<PinEntry>;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Parses the file's text. Corrupt lines are returned in `rejected`, never thrown. */
export function parsePinMemory(text: string): PinMemory {
  return parseLines(text, (f) => {
    if (f.length !== 5) return "expected 5 fields: first last ns digest ref";
    const [first, last, ns, digest, ref] = f as [string, string, string, string, string];
    if (!UNIX_TIME.test(first) || !UNIX_TIME.test(last)) return "times are not unix times";
    if (!NAMESPACE.test(ns)) return `namespace "${ns}" is not a containerd namespace`;
    if (!DIGEST.test(digest)) return `digest "${digest}" is not a sha256 digest`;
    return [
      usageKey(ns, ref),
      { ns, ref, digest, firstSeen: Number(first), lastSeen: Number(last) },
    ];
  }, (prev, next) => ({
    ...next,
    firstSeen: Math.min(prev.firstSeen, next.firstSeen),
    lastSeen: Math.max(prev.lastSeen, next.lastSeen),
  }));
}

/** The file's text: sorted, one line per entry. */
export function formatPinMemory(entries: Map<string, PinEntry>): string {
  return formatLines(
    entries,
    (_, e) => `${e.firstSeen} ${e.lastSeen} ${e.ns} ${e.digest} ${e.ref}`,
  );
}

/**
 * Remembers every ref of images seen pinned now (`pinned`: namespace, digest, refs). Returns
 * whether anything changed (a new entry, a moved digest, or a later last-seen time).
 */
export function observePins(
  entries: Map<string, PinEntry>,
  pinned: { ns: string; digest: string; refs: string[] }[],
  now: number,
): boolean {
  const t = Math.floor(now);
  let changed = false;
  for (const image of pinned) {
    for (const ref of image.refs) {
      if (!safeToken(image.ns) || !safeToken(ref)) continue;
      const key = usageKey(image.ns, ref);
      const prev = entries.get(key);
      if (prev && prev.digest === image.digest && prev.lastSeen >= t) continue;
      entries.set(key, {
        ns: image.ns,
        ref,
        digest: image.digest,
        firstSeen: prev?.firstSeen ?? t,
        lastSeen: t,
      });
      changed = true;
    }
  }
  return changed;
}

/** Forgets entries last seen before `cutoff`; returns how many. */
export function expirePins(entries: Map<string, PinEntry>, cutoff: number): number {
  return expireEntries(entries, (e) => e.lastSeen, cutoff);
}

/**
 * When the image (`ns`, `digest`, `refs`) was first seen pinned, if an entry of its namespace
 * names its digest or one of its refs and was last seen at or after `cutoff`; else null.
 */
export function rememberedSince(
  entries: Map<string, PinEntry>,
  ns: string,
  digest: string,
  refs: readonly string[],
  cutoff: number,
): number | null {
  let since: number | null = null;
  for (const e of entries.values()) {
    if (e.ns !== ns || e.lastSeen < cutoff) continue;
    if (e.digest !== digest && !refs.includes(e.ref)) continue;
    if (since === null || e.firstSeen < since) since = e.firstSeen;
  }
  return since;
}

/** Reads the file at `path`; a missing file is empty. Needs read access to the state dir. */
export function loadPinMemory(path: string): Promise<PinMemory> {
  return loadLines(path, parsePinMemory);
}

/** Writes the file atomically (see {@linkcode writeAtomic}). */
export function writePinMemory(path: string, entries: Map<string, PinEntry>): Promise<void> {
  return writeAtomic(path, formatPinMemory(entries));
}
