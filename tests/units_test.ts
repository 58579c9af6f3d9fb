import assert from "node:assert/strict";
import { ParseError, UsageError } from "../lib/core/errors.ts";
import { formatBytes, parseAge, parseDuration, parseSize } from "../lib/core/units.ts";

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86400;

Deno.test("parseAge() returns the smallest age go-units HumanDuration prints as the text", async (t) => {
  // [text, lower bound in seconds, why]
  const cases: [string, number, string][] = [
    ["Less than a second", 0, "0 s, also printed for negative durations"],
    ["1 second", 1, "[1 s, 2 s)"],
    ["2 seconds", 2, "[2 s, 3 s)"],
    ["59 seconds", 59, "[59 s, 60 s)"],
    ["About a minute", MINUTE, "[60 s, 120 s)"],
    ["2 minutes", 2 * MINUTE, "[120 s, 180 s)"],
    ["59 minutes", 59 * MINUTE, "[59 min, 60 min)"],
    ["About an hour", HOUR, "[60 min, 90 min): below 60 min it prints minutes"],
    ["2 hours", 2 * HOUR - 1800, "hours are rounded: [1.5 h, 2.5 h)"],
    ["47 hours", 47 * HOUR - 1800, "[46.5 h, 47.5 h)"],
    ["2 days", 2 * DAY - 1800, "rounded hours 48..71"],
    ["13 days", 13 * DAY - 1800, "rounded hours 312..335"],
    ["2 weeks", 14 * DAY - 1800, "rounded hours 336..503"],
    ["3 weeks", 21 * DAY - 1800, "21-27 days"],
    ["8 weeks", 56 * DAY - 1800, "rounded hours 1344..1439"],
    ["2 months", 60 * DAY - 1800, "a month is 30 days"],
    ["24 months", 720 * DAY - 1800, "rounded hours 17280..17519"],
    ["2 years", 730 * DAY, "whole hours truncated, 365-day years"],
    ["3 years", 3 * 365 * DAY, "365-day years, not 365.25"],
    [" 5 days ", 5 * DAY - 1800, "surrounding whitespace of a cell"],
  ];
  for (const [text, seconds, why] of cases) {
    await t.step(`"${text}" → ${seconds} (${why})`, () => {
      assert.equal(parseAge(text), seconds);
    });
  }
});

Deno.test("parseAge() accepts the forms the original ctre crashed on", () => {
  // Regression: the Python from_age() split "Less than a second" into "Less" + "than a second"
  // and raised NotImplementedError; "1 second" (singular) did the same.
  assert.equal(parseAge("Less than a second"), 0);
  assert.equal(parseAge("1 second"), 1);
});

Deno.test("parseAge() never returns more than the real age of a bucket's youngest member", () => {
  // The youngest duration printed as "N days" is 24N hours less half an hour (hours round).
  for (let n = 2; n <= 13; n++) {
    assert.ok(parseAge(`${n} days`) <= n * DAY - 1800, `${n} days`);
    assert.ok(parseAge(`${n} days`) > (n - 1) * DAY, `${n} days is more than ${n - 1} days`);
  }
});

Deno.test("parseAge() throws ParseError for text HumanDuration never prints", async (t) => {
  const bad = [
    "",
    "-",
    "3 days ago",
    "About a second",
    "1 minute ago",
    "about an hour",
    "2 Days",
    "1.5 hours",
    "-2 days",
    "two days",
    "2  days",
    "2 fortnights",
    "seconds",
  ];
  for (const text of bad) {
    await t.step(JSON.stringify(text), () => {
      assert.throws(() => parseAge(text), ParseError);
    });
  }
});

Deno.test("parseSize() reads decimal and binary ctr sizes", async (t) => {
  // [text, bytes, where ctr prints it]
  const cases: [string, number, string][] = [
    ["0B", 0, "content ls, empty blob"],
    ["190B", 190, "content ls"],
    ["1kB", 1000, "decimal kB is 1000, not 1024"],
    ["1.234kB", 1234, "%.4g"],
    ["12.35kB", 12350, "%.4g"],
    ["123.5MB", 123_500_000, "%.4g"],
    ["7.5GB", 7_500_000_000, "%.4g"],
    ["1.2TB", 1_200_000_000_000, "TB"],
    ["1000kB", 1_000_000, "%.4g rounding up to 1000"],
    ["0.0 B", 0, "image ls, 0 bytes for this platform"],
    ["512.0 B", 512, "image ls, bytes with a space"],
    ["1.0 KiB", 1024, "binary KiB"],
    ["1007.9 KiB", Math.round(1007.9 * 1024), "binary KiB"],
    ["25.6 MiB", Math.round(25.6 * 2 ** 20), "binary MiB"],
    ["1.2 GiB", Math.round(1.2 * 2 ** 30), "binary GiB"],
    ["2.5 TiB", 2.5 * 2 ** 40, "binary TiB"],
    [" 3.0 MiB ", 3 * 2 ** 20, "surrounding whitespace of a cell"],
  ];
  for (const [text, bytes, why] of cases) {
    await t.step(`"${text}" → ${bytes} (${why})`, () => {
      assert.equal(parseSize(text), bytes);
    });
  }
});

Deno.test("parseSize() fixes the original's unit defects", () => {
  // Regression: the Python SIZE_UNITS had no " B" (crash on "0.0 B"/"512.0 B"), no TB/TiB, and
  // kB/MB/GB as 1024-based.
  assert.equal(parseSize("0.0 B"), 0);
  assert.equal(parseSize("512.0 B"), 512);
  assert.equal(parseSize("1.2TB"), 1.2e12);
  assert.equal(parseSize("2.5 TiB"), 2748779069440);
  assert.equal(parseSize("1kB"), 1000);
  assert.equal(parseSize("1MB"), 1_000_000);
  assert.equal(parseSize("1GB"), 1_000_000_000);
});

Deno.test("parseSize() throws ParseError for anything else", async (t) => {
  const bad = [
    "",
    "-",
    "12",
    "kB",
    "1KB",
    "1 kb",
    "1.2 XB",
    "1iB",
    "-1kB",
    "1,5 MiB",
    "1.0  KiB",
    "1.0 KiB extra",
    "one kB",
  ];
  for (const text of bad) {
    await t.step(JSON.stringify(text), () => {
      assert.throws(() => parseSize(text), ParseError);
    });
  }
});

Deno.test("parseDuration() reads command-line durations in seconds", async (t) => {
  const cases: [string, number][] = [
    ["0", 0],
    ["90s", 90],
    ["30m", 30 * MINUTE],
    ["36h", 36 * HOUR],
    ["14d", 14 * DAY],
    ["2w", 14 * DAY],
    ["1.5h", 5400],
    ["0s", 0],
  ];
  for (const [text, seconds] of cases) {
    await t.step(`"${text}" → ${seconds}`, () => {
      assert.equal(parseDuration(text, "min-age"), seconds);
    });
  }
});

Deno.test("parseDuration() throws UsageError naming the flag for bad input", async (t) => {
  const bad = ["10", "5x", "-1d", "", "d", "1.d", "1 d", "1dd", "1e3s", "1D"];
  for (const text of bad) {
    await t.step(JSON.stringify(text), () => {
      assert.throws(
        () => parseDuration(text, "used-within"),
        (e: unknown) => {
          assert.ok(e instanceof UsageError, `${e}`);
          assert.match(e.message, /--used-within/);
          assert.ok(e.message.includes(`"${text}"`), e.message);
          return true;
        },
      );
    });
  }
});

Deno.test("formatBytes() prints sizes as ctr image ls does", async (t) => {
  const cases: [number, string][] = [
    [0, "0.0 B"],
    [512, "512.0 B"],
    [1023, "1023.0 B"],
    [1024, "1.0 KiB"],
    [1536, "1.5 KiB"],
    [Math.round(25.6 * 2 ** 20), "25.6 MiB"],
    [Math.round(1.2 * 2 ** 30), "1.2 GiB"],
    [2.5 * 2 ** 40, "2.5 TiB"],
    [3 * 2 ** 50, "3.0 PiB"],
    [2 ** 60, "1024.0 PiB"],
  ];
  for (const [bytes, text] of cases) {
    await t.step(`${bytes} → "${text}"`, () => {
      assert.equal(formatBytes(bytes), text);
    });
  }
});

Deno.test("formatBytes() output is read back by parseSize() within the rounding", () => {
  for (const bytes of [0, 1, 999, 4096, 123_456_789, 9_876_543_210]) {
    const back = parseSize(formatBytes(bytes));
    assert.ok(Math.abs(back - bytes) <= bytes * 0.05 + 0.5, `${bytes} → ${back}`);
  }
});
