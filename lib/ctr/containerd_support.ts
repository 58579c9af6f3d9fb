/**
 * Which containerd release lines upstream still supports: the end-of-life date of each
 * `<major>.<minor>` line, and a check of one version against a given date.
 *
 * Source: containerd's RELEASES.md, table "Current State of containerd Releases"
 * (https://github.com/containerd/containerd/blob/main/RELEASES.md), as read at commit 007244d86cab.
 * To update: copy the "End of Life" column for every line into RELEASE_LINES below (ISO dates;
 * `tentative: true` where the table says _tentative_; `null` where it says TBD or `-`), update the
 * commit above, and adjust tests/containerd_support_test.ts. Lines older than the first entry are
 * all past their end of life.
 *
 * @module
 */

export interface ReleaseLine {
  /** `<major>.<minor>`. */
  line: string;
  /** Last day of upstream support (YYYY-MM-DD), or null when upstream has not set one. */
  endOfLife: string | null;
  /** The date is marked _tentative_ upstream. */
  tentative?: boolean;
}

export const RELEASE_LINES: readonly ReleaseLine[] = [
  { line: "1.5", endOfLife: "2023-02-28" },
  { line: "1.6", endOfLife: "2025-07-23" }, // LTS
  { line: "1.7", endOfLife: "2026-03-10" }, // LTS
  { line: "2.0", endOfLife: "2025-11-07" },
  { line: "2.1", endOfLife: "2026-05-05", tentative: true },
  { line: "2.2", endOfLife: "2026-11-06", tentative: true },
  { line: "2.3", endOfLife: null },
];

export interface SupportVerdict {
  /** "ok": supported on that date; "warn": past end of life, or not in the table. */
  status: "ok" | "warn";
  detail: string;
}

/** Compares `<major>.<minor>` strings numerically. */
function compareLines(a: [number, number], b: [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}

/**
 * Whether containerd `version` (`1.6.20~ds1`, `v1.7.24`, `2.1.9+unknown`) is still supported
 * upstream on `nowSeconds` (Unix seconds: pass io.now(), never a fixed date).
 */
export function containerdSupport(version: string, nowSeconds: number): SupportVerdict {
  const m = /^v?(\d+)\.(\d+)/.exec(version.trim());
  if (!m) {
    return { status: "warn", detail: `cannot tell the release line of version "${version}"` };
  }
  const line = `${m[1]}.${m[2]}`;
  const today = new Date(nowSeconds * 1000).toISOString().slice(0, 10);
  const entry = RELEASE_LINES.find((r) => r.line === line);
  if (entry === undefined) {
    const first = RELEASE_LINES[0]!.line.split(".").map(Number) as [number, number];
    const older = compareLines([Number(m[1]), Number(m[2])], first) < 0;
    return older
      ? {
        status: "warn",
        detail: `containerd ${line} is no longer supported upstream (end of life before ` +
          `${RELEASE_LINES[0]!.endOfLife}): upgrade`,
      }
      : {
        status: "warn",
        detail:
          `containerd ${line} is not in ctre's support table (lib/ctr/containerd_support.ts); ` +
          "see containerd's RELEASES.md",
      };
  }
  if (entry.endOfLife === null) {
    return {
      status: "ok",
      detail: `containerd ${line} is supported upstream (no end of life set)`,
    };
  }
  const tentative = entry.tentative ? " (tentative)" : "";
  if (today > entry.endOfLife) {
    return {
      status: "warn",
      detail: `containerd ${line} is no longer supported upstream: end of life ` +
        `${entry.endOfLife}${tentative}; upgrade to a supported release`,
    };
  }
  return {
    status: "ok",
    detail: `containerd ${line} is supported upstream until ${entry.endOfLife}${tentative}`,
  };
}
