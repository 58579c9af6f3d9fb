/**
 * Lines of `ctr event`: `<time> <namespace> <topic> <json>`, where `<time>` is Go's
 * time.String() (`2026-11-27 17:12:41.976313083 +0000 UTC`, the fraction absent when zero).
 *
 * @module
 */
import { quoteCut } from "../core/text.ts";
import { ParseError } from "../core/errors.ts";

export interface CtrEvent {
  /** Unix seconds, with the fraction. */
  time: number;
  ns: string;
  topic: string;
  payload: Record<string, unknown>;
}

const LINE =
  /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d{1,9})? ([+-])(\d\d)(\d\d) \S+ (\S+) (\/\S*) ?(.*)$/;

/** The last time prefix parsed and its unix ms: events come in order, many in one second. */
let lastStamp = "";
let lastBase = NaN;

/** Unix ms of a time's whole seconds (`2026-11-27T17:12:41+00:00`), remembered for the next. */
function baseOf(stamp: string): number {
  if (stamp !== lastStamp) {
    lastBase = Date.parse(stamp);
    lastStamp = stamp;
  }
  return lastBase;
}

/** Parses one event line; throws ParseError for anything else. */
export function parseEventLine(line: string): CtrEvent {
  return parseEventLineFor(line, () => true);
}

/**
 * {@linkcode parseEventLine}, parsing the payload only when `wantPayload(topic)` (an empty
 * payload otherwise): a reader that ignores a topic skips its JSON.
 */
export function parseEventLineFor(
  line: string,
  wantPayload: (topic: string) => boolean,
): CtrEvent {
  const m = LINE.exec(line.endsWith("\r") ? line.slice(0, -1) : line);
  if (!m) throw new ParseError(`Cannot parse event line ${quoteCut(line)}`);
  const [, date, clock, fraction, sign, oh, om, ns, topic, json] = m as unknown as string[];
  const base = baseOf(`${date}T${clock}${sign}${oh}:${om}`);
  if (Number.isNaN(base)) {
    throw new ParseError(`Cannot parse event time in ${quoteCut(line)}`);
  }
  let payload: Record<string, unknown> = {};
  if (json && wantPayload(topic!) && json.trim() !== "") {
    try {
      const parsed: unknown = JSON.parse(json);
      if (parsed && typeof parsed === "object") payload = parsed as Record<string, unknown>;
    } catch {
      throw new ParseError(
        `Cannot parse event payload of ${
          /^[\w./-]{1,100}$/.test(topic ?? "") ? topic : quoteCut(topic ?? "", 40)
        } in ${quoteCut(line)}`,
      );
    }
  }
  return { time: base / 1000 + Number(`0${fraction ?? ""}`), ns: ns!, topic: topic!, payload };
}

/**
 * A time inside a payload, in unix seconds: 1.6 prints RFC 3339 strings, 1.7+ prints
 * `{"seconds":…,"nanos":…}`. Undefined when absent or unreadable.
 */
export function payloadTime(value: unknown): number | undefined {
  if (typeof value === "string") {
    const frac = /\.(\d+)/.exec(value)?.[1] ?? "";
    const ms = Date.parse(value.replace(/\.\d+/, ""));
    return Number.isNaN(ms) ? undefined : ms / 1000 + Number(`0.${frac || "0"}`);
  }
  if (value && typeof value === "object") {
    const o = value as { seconds?: unknown; nanos?: unknown };
    const seconds = Number(o.seconds ?? NaN);
    if (!Number.isFinite(seconds)) return undefined;
    return seconds + Number(o.nanos ?? 0) / 1e9;
  }
  return undefined;
}

/** A string field of a payload, or undefined. */
export function field(payload: Record<string, unknown>, name: string): string | undefined {
  const v = payload[name];
  return typeof v === "string" ? v : undefined;
}

/**
 * One event line, or the ParseError saying why it is not one; its payload parsed only when
 * `wantPayload(topic)` (as {@linkcode parseEventLineFor}).
 */
export function readEventLine(
  line: string,
  wantPayload: (topic: string) => boolean = () => true,
): CtrEvent | ParseError {
  try {
    return parseEventLineFor(line, wantPayload);
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
}
