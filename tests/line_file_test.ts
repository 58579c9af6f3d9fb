import assert from "node:assert/strict";
import { join } from "node:path";
import {
  expireEntries,
  formatLines,
  loadLines,
  parseLines,
  setAsideRejected,
  UNIX_TIME,
} from "../lib/state/line_file.ts";
import { parsePinMemory } from "../lib/state/pin_memory.ts";
import { parsePullDb } from "../lib/state/pull_db.ts";
import { parseUsageDb } from "../lib/state/usage_db.ts";

/** `<time> <key>` lines: the later time of one key wins. */
function parseTimes(text: string) {
  return parseLines(text, (f) => {
    if (f.length !== 2) return "expected 2 fields";
    if (!UNIX_TIME.test(f[0]!)) return "not a time";
    return [f[1]!, Number(f[0])];
  }, Math.max);
}

Deno.test("parseLines() keeps good lines, merges repeated keys, returns bad ones numbered", () => {
  const { entries, rejected } = parseTimes("5 a\r\n\n7 b\n9 a\nx b\n1  c\n3 a\n");
  assert.deepEqual([...entries], [["a", 9], ["b", 7]]);
  assert.deepEqual(rejected, [
    { lineNo: 5, line: "x b", reason: "not a time" },
    { lineNo: 6, line: "1  c", reason: "unexpected spacing" },
  ]);
});

Deno.test("every line file rejects a doubled space the same way", () => {
  const lines = [
    "100  k8s.io docker.io/library/a:1",
    "100 200  k8s.io docker.io/library/a:1",
    `100 200 k8s.io  sha256:${"a".repeat(64)} docker.io/library/a:1`,
  ];
  for (const parse of [parsePullDb, parseUsageDb, parsePinMemory]) {
    for (const line of lines) {
      const { entries, rejected } = parse(line);
      assert.equal(entries.size, 0);
      assert.deepEqual(rejected.map((r) => r.reason), ["unexpected spacing"]);
    }
  }
});

Deno.test("formatLines() writes one line per entry, sorted by key; parse reads it back", () => {
  const entries = new Map([["b", 2], ["a", 1], ["c", 3]]);
  const text = formatLines(entries, (key, t) => `${t} ${key}`);
  assert.equal(text, "1 a\n2 b\n3 c\n");
  assert.deepEqual(new Map(parseTimes(text).entries), entries);
});

Deno.test("expireEntries() drops exactly the entries last seen before the cutoff", () => {
  const entries = new Map([["a", 9], ["b", 10], ["c", 11]]);
  assert.equal(expireEntries(entries, (t) => t, 10), 1);
  assert.deepEqual([...entries.keys()], ["b", "c"]);
});

Deno.test("loadLines() reads a missing file as empty, and a directory as a one-line error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = await loadLines(join(dir, "nope"), parseTimes);
    assert.equal(missing.entries.size, 0);
    await Deno.writeTextFile(join(dir, "f"), "1 a\nbad\n");
    const f = await loadLines(join(dir, "f"), parseTimes);
    assert.deepEqual([[...f.entries], f.rejected.length], [[["a", 1]], 1]);
    await assert.rejects(loadLines(dir, parseTimes), (e: Error) => {
      assert.match(e.message, new RegExp(`^Cannot read "${dir}"`));
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("setAsideRejected() appends each line under a dated comment, and nothing when none", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "image_pulls");
    await setAsideRejected(path, [], 0);
    await assert.rejects(Deno.stat(`${path}.rejected`), Deno.errors.NotFound);
    await setAsideRejected(path, [{ lineNo: 2, line: "x y", reason: "bad time" }], 0);
    await setAsideRejected(path, [{ lineNo: 7, line: "z", reason: "short" }], 60);
    assert.equal(
      await Deno.readTextFile(`${path}.rejected`),
      "# 1970-01-01T00:00:00.000Z line 2: bad time\nx y\n" +
        "# 1970-01-01T00:01:00.000Z line 7: short\nz\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
