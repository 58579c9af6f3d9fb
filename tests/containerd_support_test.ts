import assert from "node:assert/strict";
import { containerdSupport, RELEASE_LINES } from "../lib/ctr/containerd_support.ts";

const day = (iso: string) => Date.parse(`${iso}T12:00:00Z`) / 1000;

Deno.test("containerdSupport() compares the release line's end of life with the given date", async (t) => {
  const table: [version: string, date: string, status: "ok" | "warn", detail: RegExp][] = [
    ["1.6.20~ds1", "2025-07-23", "ok", /1\.6 is supported upstream until 2025-07-23/],
    [
      "1.6.20~ds1",
      "2025-07-24",
      "warn",
      /1\.6 is no longer supported upstream: end of life 2025-07-23/,
    ],
    ["v1.7.24", "2026-03-09", "ok", /until 2026-03-10$/],
    ["1.7.24~ds1", "2026-12-02", "warn", /end of life 2026-03-10;/],
    ["2.0.0", "2025-11-08", "warn", /2\.0 is no longer supported/],
    ["2.1.9+unknown", "2026-05-01", "ok", /until 2026-05-05 \(tentative\)/],
    ["2.1.9+unknown", "2026-12-02", "warn", /end of life 2026-05-05 \(tentative\)/],
    ["2.3.0", "2026-12-02", "ok", /no end of life set/],
    [
      "1.4.13",
      "2021-01-01",
      "warn",
      /no longer supported upstream \(end of life before 2023-02-28\)/,
    ],
    ["3.0.0", "2026-12-02", "warn", /not in ctre's support table/],
    ["devel", "2026-12-02", "warn", /cannot tell the release line of version "devel"/],
  ];
  for (const [version, date, status, detail] of table) {
    await t.step(`${version} on ${date}: ${status}`, () => {
      const v = containerdSupport(version, day(date));
      assert.equal(v.status, status, v.detail);
      assert.match(v.detail, detail);
    });
  }
});

Deno.test("RELEASE_LINES: one entry per line, ISO dates", () => {
  const lines = RELEASE_LINES.map((r) => r.line);
  assert.equal(new Set(lines).size, lines.length);
  for (const r of RELEASE_LINES) {
    assert.match(r.line, /^\d+\.\d+$/);
    if (r.endOfLife !== null) assert.ok(!Number.isNaN(Date.parse(r.endOfLife)), r.endOfLife);
  }
});
