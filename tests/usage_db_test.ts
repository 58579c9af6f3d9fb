import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ANY_NAMESPACE,
  expire,
  formatUsageDb,
  lastUse,
  lastUseOf,
  loadUsageDb,
  mergeUsage,
  NULL_TIME,
  parseUsageDb,
  type Usage,
} from "../lib/state/usage_db.ts";
import { safeToken, usageKey } from "../lib/state/line_file.ts";
import { writeAtomic } from "../lib/state/state_files.ts";

const REF_A = "docker.io/library/a:1";
const REF_B = "registry.k8s.io/pause:3.9";

function entries(list: [string, string, number, number | null][]): Map<string, Usage> {
  return new Map(list.map(([ns, ref, start, stop]) => [usageKey(ns, ref), { start, stop }]));
}

Deno.test("usageKey() joins namespace and ref with one space", () => {
  assert.equal(usageKey("k8s.io", REF_A), `k8s.io ${REF_A}`);
  assert.equal(usageKey(ANY_NAMESPACE, REF_B), `* ${REF_B}`);
});

Deno.test("parseUsageDb() reads each line format", async (t) => {
  // [line, key, usage]
  const cases: [string, string, Usage][] = [
    [
      `1700000000 1700000100 k8s.io ${REF_A}`,
      `k8s.io ${REF_A}`,
      { start: 1700000000, stop: 1700000100 },
    ],
    [
      `1700000000 ${NULL_TIME} k8s.io ${REF_A}`,
      `k8s.io ${REF_A}`,
      { start: 1700000000, stop: null },
    ],
    [`1700000000 default ${REF_B}`, `default ${REF_B}`, { start: 1700000000, stop: null }],
    [`1700000000 ${REF_B}`, `* ${REF_B}`, { start: 1700000000, stop: null }],
    [`1700000000 ${NULL_TIME} * ${REF_B}`, `* ${REF_B}`, { start: 1700000000, stop: null }],
    [`0 ${NULL_TIME} k8s.io ${REF_A}\r`, `k8s.io ${REF_A}`, { start: 0, stop: null }],
  ];
  for (const [line, key, usage] of cases) {
    await t.step(JSON.stringify(line), () => {
      const db = parseUsageDb(`${line}\n`);
      assert.deepEqual(db.rejected, []);
      assert.deepEqual([...db.entries], [[key, usage]]);
    });
  }
});

Deno.test("parseUsageDb() reads the three formats mixed in one file, line by line", () => {
  // The original guessed the format from line 1 only; each line is read on its own here.
  const text = [
    `1700000000 k8s.io ${REF_A}`,
    `1700000001 1700000500 default ${REF_A}`,
    `1700000002 ${REF_B}`,
    `1700000003 ${NULL_TIME} moby ${REF_B}`,
    "",
  ].join("\n");
  const db = parseUsageDb(text);
  assert.deepEqual(db.rejected, []);
  assert.deepEqual(
    db.entries,
    entries([
      ["k8s.io", REF_A, 1700000000, null],
      ["default", REF_A, 1700000001, 1700000500],
      [ANY_NAMESPACE, REF_B, 1700000002, null],
      ["moby", REF_B, 1700000003, null],
    ]),
  );
});

Deno.test("parseUsageDb() reports corrupt lines with their numbers and never throws", () => {
  const text = [
    `1700000000 ${NULL_TIME} k8s.io ${REF_A}`, // 1 ok
    "garbage", // 2: one field
    `17000000xx ${NULL_TIME} k8s.io ${REF_B}`, // 3: bad start
    `1700000000 yesterday k8s.io ${REF_B}`, // 4: bad stop
    `1700000000  k8s.io ${REF_B}`, // 5: double space
    `1700000000 ${NULL_TIME} k8s.io ${REF_B} extra`, // 6: five fields
    "", // 7: empty, skipped silently
    `1700000000 1700000001 default ${REF_B}`, // 8 ok
    `1700000000 ${NULL_TIME} k8s.io ${REF_B} `, // 9: trailing space
    `-5 ${REF_B}`, // 10: negative start
  ].join("\n");
  const db = parseUsageDb(text);
  assert.deepEqual(
    db.entries,
    entries([
      ["k8s.io", REF_A, 1700000000, null],
      ["default", REF_B, 1700000000, 1700000001],
    ]),
  );
  assert.deepEqual(db.rejected.map((r) => r.lineNo), [2, 3, 4, 5, 6, 9, 10]);
  assert.deepEqual(db.rejected.map((r) => r.line), [
    "garbage",
    `17000000xx ${NULL_TIME} k8s.io ${REF_B}`,
    `1700000000 yesterday k8s.io ${REF_B}`,
    `1700000000  k8s.io ${REF_B}`,
    `1700000000 ${NULL_TIME} k8s.io ${REF_B} extra`,
    `1700000000 ${NULL_TIME} k8s.io ${REF_B} `,
    `-5 ${REF_B}`,
  ]);
  for (const r of db.rejected) assert.ok(r.reason.length > 0, `line ${r.lineNo} has a reason`);
  assert.match(db.rejected[1]!.reason, /start "17000000xx"/);
  assert.match(db.rejected[2]!.reason, /stop "yesterday"/);
  assert.match(db.rejected[4]!.reason, /got 5/);
});

Deno.test("parseUsageDb() of an empty text is an empty DB", () => {
  assert.deepEqual(parseUsageDb(""), { entries: new Map(), rejected: [] });
  assert.deepEqual(parseUsageDb("\n\n"), { entries: new Map(), rejected: [] });
});

Deno.test("parseUsageDb() merges repeated keys with the merge rule", () => {
  const db = parseUsageDb(
    [
      `100 200 k8s.io ${REF_A}`,
      `300 ${NULL_TIME} k8s.io ${REF_A}`,
    ].join("\n"),
  );
  assert.deepEqual(db.entries, entries([["k8s.io", REF_A, 300, 200]]));
});

Deno.test("formatUsageDb() writes sorted lines in the current format", () => {
  const text = formatUsageDb(
    entries([
      ["k8s.io", REF_B, 1700000005, 1700000009],
      [ANY_NAMESPACE, REF_A, 1700000001, null],
      ["default", REF_A, 1700000002, null],
    ]),
  );
  assert.equal(
    text,
    `1700000001 ${NULL_TIME} * ${REF_A}\n` +
      `1700000002 ${NULL_TIME} default ${REF_A}\n` +
      `1700000005 1700000009 k8s.io ${REF_B}\n`,
  );
  assert.equal(formatUsageDb(new Map()), "");
});

Deno.test("formatUsageDb() output is read back by parseUsageDb() unchanged", () => {
  const original = parseUsageDb(
    [
      `1700000000 k8s.io ${REF_A}`,
      `1700000002 ${REF_B}`,
      `1700000003 1700000004 moby ${REF_B}`,
    ].join("\n"),
  );
  const text = formatUsageDb(original.entries);
  const again = parseUsageDb(text);
  assert.deepEqual(again.rejected, []);
  assert.deepEqual(again.entries, original.entries);
  assert.equal(formatUsageDb(again.entries), text);
  // Every written line is in the current four-field format.
  for (const line of text.trimEnd().split("\n")) assert.equal(line.split(" ").length, 4);
});

Deno.test("mergeUsage() follows the original's rule", async (t) => {
  // [prev, start, stop, expected]
  const cases: [string, Usage | undefined, number | null, number | null, Usage][] = [
    ["first start", undefined, 100, null, { start: 100, stop: null }],
    ["first stop uses the stop as start", undefined, null, 200, { start: 200, stop: 200 }],
    ["stop keeps the previous start", { start: 100, stop: null }, null, 200, {
      start: 100,
      stop: 200,
    }],
    ["new start keeps the previous stop", { start: 100, stop: 200 }, 300, null, {
      start: 300,
      stop: 200,
    }],
    ["new stop replaces the previous stop", { start: 100, stop: 200 }, null, 400, {
      start: 100,
      stop: 400,
    }],
    ["both given replace both", { start: 100, stop: 200 }, 500, 600, { start: 500, stop: 600 }],
    ["neither given keeps both", { start: 100, stop: 200 }, null, null, { start: 100, stop: 200 }],
  ];
  for (const [name, prev, start, stop, expected] of cases) {
    await t.step(name, () => {
      const before = prev === undefined ? undefined : { ...prev };
      assert.deepEqual(mergeUsage(prev, start, stop), expected);
      assert.deepEqual(prev, before, "the previous usage is not modified");
    });
  }
});

Deno.test("lastUse() is the later of start and stop", () => {
  assert.equal(lastUse({ start: 100, stop: null }), 100);
  assert.equal(lastUse({ start: 100, stop: 250 }), 250);
  assert.equal(lastUse({ start: 300, stop: 250 }), 300);
});

Deno.test("expire() drops entries whose start and stop are both older than the cutoff", () => {
  const db = entries([
    ["k8s.io", "old-no-stop", 100, null],
    ["k8s.io", "old-both", 100, 199],
    ["k8s.io", "old-start-recent-stop", 100, 200],
    ["k8s.io", "recent-start", 200, null],
    ["k8s.io", "recent-start-old-stop", 250, 150],
  ]);
  assert.equal(expire(db, 200), 2);
  assert.deepEqual([...db.keys()], [
    "k8s.io old-start-recent-stop",
    "k8s.io recent-start",
    "k8s.io recent-start-old-stop",
  ]);
  assert.equal(expire(db, 0), 0);
  assert.equal(db.size, 3);
});

Deno.test("lastUseOf() finds the latest use of any ref", async (t) => {
  const db = entries([
    ["k8s.io", REF_A, 100, 150],
    ["k8s.io", "sha256:abc", 300, null],
    ["default", REF_B, 900, null],
    [ANY_NAMESPACE, REF_B, 400, 450],
    [ANY_NAMESPACE, "docker.io/library/old:1", 50, null],
  ]);
  await t.step("namespace entry", () => {
    assert.deepEqual(lastUseOf(db, "k8s.io", [REF_A]), { start: 100, stop: 150 });
  });
  await t.step("the latest of several refs", () => {
    assert.deepEqual(lastUseOf(db, "k8s.io", [REF_A, "sha256:abc"]), { start: 300, stop: null });
  });
  await t.step("an entry without namespace counts for every namespace", () => {
    assert.deepEqual(lastUseOf(db, "k8s.io", [REF_B]), { start: 400, stop: 450 });
    assert.deepEqual(lastUseOf(db, "moby", ["docker.io/library/old:1"]), {
      start: 50,
      stop: null,
    });
  });
  await t.step("the namespace entry wins when it is later than the * entry", () => {
    assert.deepEqual(lastUseOf(db, "default", [REF_B]), { start: 900, stop: null });
  });
  await t.step("other namespaces do not count", () => {
    assert.equal(lastUseOf(db, "default", [REF_A]), undefined);
    assert.equal(lastUseOf(db, "k8s.io", []), undefined);
  });
});

Deno.test("safeToken() accepts only what fits in one DB field", async (t) => {
  const good = [REF_A, "k8s.io", "localhost:5000/x@sha256:0123", "*", "ünïcödé/ref:1"];
  const bad = [
    "",
    NULL_TIME,
    "a b",
    "a\tb",
    "a\nb",
    "a\rb",
    "a\u0000b",
    "a\u001bb",
    "a\u007fb",
    "a\u0085b",
    "a\u00a0b",
    "a\u2028b",
    "a\u2029b",
    " a",
    "a\n",
  ];
  for (const s of good) {
    await t.step(`accepts ${JSON.stringify(s)}`, () => assert.equal(safeToken(s), true));
  }
  for (const s of bad) {
    await t.step(`rejects ${JSON.stringify(s)}`, () => assert.equal(safeToken(s), false));
  }
});

Deno.test("writeAtomic() and loadUsageDb() round-trip a DB in a temp dir", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "ctre-usage-db-" });
  try {
    const path = join(dir, "spool", "image_starts");
    await t.step("a missing file is an empty DB", async () => {
      assert.deepEqual(await loadUsageDb(path), { entries: new Map(), rejected: [] });
    });
    const db = entries([
      ["k8s.io", REF_A, 1700000000, 1700000100],
      [ANY_NAMESPACE, REF_B, 1700000200, null],
    ]);
    await t.step("writes the file, creating its dir, with no temp file left", async () => {
      await writeAtomic(path, formatUsageDb(db));
      assert.equal(await Deno.readTextFile(path), formatUsageDb(db));
      await assert.rejects(Deno.lstat(`${path}.tmp`), Deno.errors.NotFound);
      assert.deepEqual(await loadUsageDb(path), { entries: db, rejected: [] });
    });
    await t.step("replaces the whole content of an existing file", async () => {
      await writeAtomic(path, `1 ${NULL_TIME} default x\n`);
      assert.equal(await Deno.readTextFile(path), `1 ${NULL_TIME} default x\n`);
      const loaded = await loadUsageDb(path);
      assert.deepEqual(loaded.entries, entries([["default", "x", 1, null]]));
    });
    await t.step("corrupt lines come back in rejected", async () => {
      await Deno.writeTextFile(path, `1 ${NULL_TIME} default x\nnot a line at all\n`);
      const loaded = await loadUsageDb(path);
      assert.equal(loaded.entries.size, 1);
      assert.deepEqual(loaded.rejected.map((r) => [r.lineNo, r.line]), [
        [2, "not a line at all"],
      ]);
    });
    await t.step("an unreadable path is an error that names it", async () => {
      await assert.rejects(loadUsageDb(dir), (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.ok(e.message.includes(`Cannot read "${dir}"`), e.message);
        return true;
      });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
