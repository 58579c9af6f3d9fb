/**
 * What one use of an image does to the usage DB, as data: the recorder's decisions without any
 * I/O. {@linkcode applyEvent} merges a start or stop into the entries and says which log line
 * it makes; the recorder's loop writes the DB and the lines.
 *
 * @module
 */
import { safeToken, usageKey } from "../state/line_file.ts";
import { mergeUsage, type Usage } from "../state/usage_db.ts";

/**
 * A use the recorder saw: `C` container created, `T`/`t` task started/exited, `V`/`v` image
 * volume mounted/removed. Upper case is a start, lower case a stop. `ref` is null for a
 * container without an image.
 */
export interface ImageUse {
  mark: "C" | "T" | "t" | "V" | "v";
  /** Unix seconds, with a fraction. */
  time: number;
  ns: string;
  ref: string | null;
}

/** What {@linkcode applyEvent} did. */
export type UseOutcome =
  /** The entry of (ns, ref) was updated; `line` is the log line. */
  | { kind: "recorded"; line: string }
  /** Nothing recorded: no image ref (`line` is null in docker's `moby`, where that is normal). */
  | { kind: "no-ref"; line: string | null }
  /** Nothing recorded: ns or ref would corrupt a DB line. */
  | { kind: "unsafe"; error: string };

/** Whether a use is a start (else a stop). */
export function isStart(use: ImageUse): boolean {
  return use.mark === "C" || use.mark === "T" || use.mark === "V";
}

/** The error text for a namespace or ref that cannot be written to a DB line. */
export function unsafeText(ns: string, ref: string): string {
  return `not recording ${JSON.stringify(ns)} ${
    JSON.stringify(ref)
  }: whitespace or control characters`;
}

/**
 * Merges `use` into `entries` (the original's merge rule, whole seconds). Pure apart from
 * updating `entries`; needs no permissions.
 */
export function applyEvent(entries: Map<string, Usage>, use: ImageUse): UseOutcome {
  const t = Math.floor(use.time);
  const { ns, ref } = use;
  if (ref === null) {
    return { kind: "no-ref", line: ns === "moby" ? null : `${use.mark} ${t} ${ns} NO_IMAGE_REF` };
  }
  if (!safeToken(ns) || !safeToken(ref)) return { kind: "unsafe", error: unsafeText(ns, ref) };
  const key = usageKey(ns, ref);
  const start = isStart(use);
  entries.set(key, mergeUsage(entries.get(key), start ? t : null, start ? null : t));
  return { kind: "recorded", line: `${use.mark} ${t} ${ns} ${ref}` };
}
