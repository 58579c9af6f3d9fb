/**
 * Parsers for the human units ctr prints (content AGE, image and content SIZE) and for the
 * durations and sizes operators type on the command line.
 *
 * @module
 */
import { quoteCut } from "../core/text.ts";
import { ParseError, UsageError } from "./errors.ts";

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86400;
const HALF_HOUR = 1800;

/**
 * The smallest age in seconds that go-units' `HumanDuration` could have printed as `text`.
 * ctr rounds hours to the nearest hour and truncates larger buckets, so "3 weeks" means
 * 21-27 days and this returns 21 days less half an hour: a lower bound, so an image is never
 * thought older than it is.
 */
export function parseAge(text: string): number {
  const t = text.trim();
  if (t === "Less than a second") return 0;
  if (t === "1 second") return 1;
  if (t === "About a minute") return MINUTE;
  // Printed for 60 minutes up to 89: below 60 minutes it prints "N minutes".
  if (t === "About an hour") return HOUR;
  const m = /^(\d+) (seconds|minutes|hours|days|weeks|months|years)$/.exec(t);
  if (!m) throw new ParseError(`Cannot parse content age ${quoteCut(text)}`);
  const n = Number(m[1]);
  switch (m[2]) {
    case "seconds":
      return n;
    case "minutes":
      return n * MINUTE;
    case "hours":
      return n * HOUR - HALF_HOUR;
    case "days":
      return n * DAY - HALF_HOUR;
    case "weeks":
      return n * 7 * DAY - HALF_HOUR;
    case "months":
      return n * 30 * DAY - HALF_HOUR;
    default: // years: whole hours truncated, 365-day years
      return n * 365 * DAY;
  }
}

const SIZE_UNITS: Record<string, number> = {
  "B": 1,
  "kB": 1e3,
  "MB": 1e6,
  "GB": 1e9,
  "TB": 1e12,
  "PB": 1e15,
  "EB": 1e18,
  "KiB": 2 ** 10,
  "MiB": 2 ** 20,
  "GiB": 2 ** 30,
  "TiB": 2 ** 40,
  "PiB": 2 ** 50,
  "EiB": 2 ** 60,
};

/**
 * Bytes from a ctr SIZE cell: decimal `12.35kB` (content ls, 1000-based, no space) or binary
 * `25.6 MiB` (image ls, 1024-based, one space). Rounded to whole bytes.
 */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?(?:e[+-]?\d+)?) ?([kKMGTPE]?i?B)$/.exec(text.trim());
  const unit = m?.[2] === undefined ? undefined : SIZE_UNITS[m[2]];
  if (!m || unit === undefined) throw new ParseError(`Cannot parse size ${quoteCut(text)}`);
  return Math.round(Number(m[1]) * unit);
}

/** Bytes as ctr's image ls shows them: `1.2 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${value.toFixed(1)} ${units[i]}`;
}

const DURATION_UNITS: Record<string, number> = {
  "": 1,
  s: 1,
  m: MINUTE,
  h: HOUR,
  d: DAY,
  w: 7 * DAY,
};

/** Seconds from a command-line duration: `0`, `90s`, `30m`, `36h`, `14d`, `2w`, `1.5h`. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhdw]?)$/.exec(text.trim());
  const unit = m?.[2] === undefined ? undefined : DURATION_UNITS[m[2]];
  if (!m || unit === undefined || (m[2] === "" && Number(m[1]) !== 0)) {
    throw new UsageError(
      `Invalid duration ${
        quoteCut(text)
      } for --${flag}: use a number with a unit s, m, h, d or w ` +
        `(e.g. 90s, 30m, 36h, 14d, 2w), or 0`,
    );
  }
  return Number(m[1]) * unit;
}

const BYTE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** Bytes from a command-line size: `20GB` (1000-based), `1.5GiB` (1024-based), `512MB`, `0`. */
export function parseByteSize(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([a-zA-Z]*)$/.exec(text.trim());
  const unit = m ? BYTE_UNITS[(m[2] ?? "").toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(
      `Invalid size ${
        quoteCut(text)
      } for --${flag}: use a number with B, kB, MB, GB, TB (1000-based) ` +
        `or KiB, MiB, GiB, TiB (1024-based), e.g. 20GB`,
    );
  }
  return Math.round(Number(m[1]) * unit);
}
