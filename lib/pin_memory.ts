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
import { permissionHint, writeAtomic } from "./state_files.ts";
import { type RejectedLine, safeToken, usageKey } from "./usage_db.ts";

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

export interface PinMemory {
  /** Keyed by {@linkcode usageKey}(ns, ref). */
  entries: Map<string, PinEntry>;
  rejected: RejectedLine[];
}

const TIME = /^\d{1,12}$/;
const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Parses the file's text. Corrupt lines are returned in `rejected`, never thrown. */
export function parsePinMemory(text: string): PinMemory {
  const entries = new Map<string, PinEntry>();
  const rejected: RejectedLine[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") return;
    const f = line.split(" ");
    let reason: string | null = null;
    if (f.length !== 5 || f.some((x) => x === "")) {
      reason = "expected 5 fields: first last ns digest ref";
    } else if (!TIME.test(f[0]!) || !TIME.test(f[1]!)) reason = "times are not unix times";
    else if (!NAMESPACE.test(f[2]!)) reason = `namespace "${f[2]}" is not a containerd namespace`;
    else if (!DIGEST.test(f[3]!)) reason = `digest "${f[3]}" is not a sha256 digest`;
    if (reason !== null) {
      rejected.push({ lineNo: i + 1, line, reason });
      return;
    }
    const [first, last, ns, digest, ref] = f as [string, string, string, string, string];
    const key = usageKey(ns, ref);
    const prev = entries.get(key);
    entries.set(key, {
      ns,
      ref,
      digest,
      firstSeen: Math.min(prev?.firstSeen ?? Infinity, Number(first)),
      lastSeen: Math.max(prev?.lastSeen ?? 0, Number(last)),
    });
  });
  return { entries, rejected };
}

/** The file's text: sorted, one line per entry. */
export function formatPinMemory(entries: Map<string, PinEntry>): string {
  return [...entries.keys()].sort().map((key) => {
    const e = entries.get(key)!;
    return `${e.firstSeen} ${e.lastSeen} ${e.ns} ${e.digest} ${e.ref}\n`;
  }).join("");
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
  let dropped = 0;
  for (const [key, e] of entries) {
    if (e.lastSeen < cutoff) {
      entries.delete(key);
      dropped++;
    }
  }
  return dropped;
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
export async function loadPinMemory(path: string): Promise<PinMemory> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { entries: new Map(), rejected: [] };
    throw permissionHint(e, path, "read");
  }
  return parsePinMemory(text);
}

/** Writes the file atomically (see {@linkcode writeAtomic}). */
export function writePinMemory(path: string, entries: Map<string, PinEntry>): Promise<void> {
  return writeAtomic(path, formatPinMemory(entries));
}
