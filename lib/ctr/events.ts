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

/** Parses one event line; throws ParseError for anything else. */
export function parseEventLine(line: string): CtrEvent {
  const m = LINE.exec(line.replace(/\r$/, ""));
  if (!m) throw new ParseError(`Cannot parse event line ${quoteCut(line)}`);
  const [, date, clock, fraction, sign, oh, om, ns, topic, json] = m as unknown as string[];
  const base = Date.parse(`${date}T${clock}${sign}${oh}:${om}`);
  if (Number.isNaN(base)) {
    throw new ParseError(`Cannot parse event time in ${quoteCut(line)}`);
  }
  let payload: Record<string, unknown> = {};
  if (json && json.trim() !== "") {
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
