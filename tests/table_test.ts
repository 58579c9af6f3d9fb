import assert from "node:assert/strict";
import { ParseError } from "../lib/core/errors.ts";
import { parseLabels, splitAligned, splitTabbed } from "../lib/ctr/table.ts";

function fixture(path: string): string {
  return Deno.readTextFileSync(new URL(`./testdata/${path}`, import.meta.url));
}

const CONTENT = ["DIGEST", "SIZE", "AGE", "LABELS"];
const IMAGE = ["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"];
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** An assert.throws() validator: a ParseError with exactly this message. */
function parseError(message: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof ParseError, `${e}`);
    assert.equal(e.message, message);
    return true;
  };
}

Deno.test("splitTabbed() splits real ctr 1.6 content ls on runs of tabs", () => {
  const rows = splitTabbed("ctr content ls", fixture("ctr-1.6/content_ls.txt"), CONTENT);
  assert.equal(rows.length, 9);
  assert.deepEqual(rows[0], {
    DIGEST: "sha256:01d92a740bca43952a3d1df4594592389b4499c73372009037894ea58ba0c23b",
    SIZE: "319B",
    AGE: "1 second",
    LABELS: "containerd.io/gc.ref.snapshot.overlayfs=" +
      "sha256:f5049318f3184e1f453dca57d8abfc35d535eda0279803b2f47dabc7802e27a8",
  });
  // "3 weeks" is followed by two tabs, "1 second" by one.
  assert.deepEqual(rows[2], {
    DIGEST: "sha256:0c1447e2240bf6585367cf592d2578498cdc9922e90b4881cb06b7d386079e29",
    SIZE: "1.987MB",
    AGE: "3 weeks",
    LABELS: "containerd.io/uncompressed=" +
      "sha256:0c1447e2240bf6585367cf592d2578498cdc9922e90b4881cb06b7d386079e29",
  });
  assert.deepEqual(rows.map((r) => r.AGE), [
    "1 second",
    "3 weeks",
    "3 weeks",
    "1 second",
    "3 weeks",
    "1 second",
    "1 second",
    "1 second",
    "1 second",
  ]);
});

Deno.test("splitTabbed() keeps the spaces inside an AGE cell", () => {
  const rows = splitTabbed("ctr content ls", fixture("ctr-2.x/content_ls.txt"), CONTENT);
  assert.deepEqual(rows.map((r) => r.AGE ?? "").filter((a) => a.includes(" ")).sort(), [
    "1 second",
    "13 days",
    "2 days",
    "2 hours",
    "2 minutes",
    "2 years",
    "3 weeks",
    "3 weeks",
    "3 weeks",
    "3 weeks",
    "5 months",
    "59 seconds",
    "8 weeks",
    "8 weeks",
    "About a minute",
    "About an hour",
    "Less than a second",
  ]);
});

Deno.test("splitTabbed() handles a table's edges", async (t) => {
  await t.step("header only: no rows", () => {
    assert.deepEqual(splitTabbed("x", "A\t\tB\n", ["A", "B"]), []);
  });
  await t.step("no trailing newline", () => {
    assert.deepEqual(splitTabbed("x", "A\tB\n1\t2", ["A", "B"]), [{ A: "1", B: "2" }]);
  });
  await t.step("trailing tabs are not an extra cell", () => {
    assert.deepEqual(splitTabbed("x", "A\tB\t\n1\t2\t\t\n", ["A", "B"]), [{ A: "1", B: "2" }]);
  });
  await t.step("empty output has no header", () => {
    assert.throws(() => splitTabbed("ctr content ls", "", CONTENT), ParseError);
  });
  await t.step("another header", () => {
    assert.throws(
      () => splitTabbed("ctr content ls", "DIGEST\tSIZE\tLABELS\n", CONTENT),
      (e: unknown) => {
        assert.ok(e instanceof ParseError);
        assert.equal(
          e.message,
          // Control characters (a tab here) are shown escaped, never raw.
          'Unexpected header from ctr content ls: "DIGEST\\u0009SIZE\\u0009LABELS" ' +
            '(expected "DIGEST SIZE AGE LABELS")',
        );
        return true;
      },
    );
  });
  await t.step("a row with too few cells names its line", () => {
    assert.throws(
      () => splitTabbed("ctr content ls", "A\tB\n1\t2\n3\n", ["A", "B"]),
      /Cannot parse line 3 of ctr content ls: expected 2 tab-separated cells, got 1: "3"/,
    );
  });
  await t.step("a row with too many cells", () => {
    assert.throws(() => splitTabbed("x", "A\tB\n1\t2\t3\n", ["A", "B"]), ParseError);
  });
});

Deno.test("splitAligned() cuts real ctr 1.6 image ls at the header's offsets", () => {
  const rows = splitAligned("ctr image ls", fixture("ctr-1.6/image_ls.txt"), IMAGE);
  assert.deepEqual(rows, [
    {
      REF: "docker.io/library/ctre-app:1.0",
      TYPE: MANIFEST,
      DIGEST: "sha256:22a9916a9f0fe180acad1fa284f36bc10a47ff6c8d57f8676bdabed80bc9a919",
      SIZE: "1.9 MiB",
      PLATFORMS: "linux/amd64",
      LABELS: "-",
    },
    {
      REF: "docker.io/library/ctre-app:latest",
      TYPE: MANIFEST,
      DIGEST: "sha256:22a9916a9f0fe180acad1fa284f36bc10a47ff6c8d57f8676bdabed80bc9a919",
      SIZE: "1.9 MiB",
      PLATFORMS: "linux/amd64",
      LABELS: "-",
    },
    {
      REF: "docker.io/library/ctre-old:0.1",
      TYPE: MANIFEST,
      DIGEST: "sha256:045ca9bd63574d4800f91eedfedff7b8dd4769ecf2d0e831c97dfceb15685e23",
      SIZE: "1.9 MiB",
      PLATFORMS: "linux/amd64",
      LABELS: "-",
    },
    {
      REF: "registry.example.com/team/ctre-pinned:3.9",
      TYPE: MANIFEST,
      DIGEST: "sha256:92bd6a49d6470d77825211a8ab844fd8f59df12b47cbaabb890e421ef898acc5",
      SIZE: "1.9 MiB",
      PLATFORMS: "linux/amd64",
      LABELS: "io.cri-containerd.pinned=pinned",
    },
    {
      REF: "sha256:738f35303f93ad3e44eed792c9d38c11c5bbfa48eea5136fc4f13289f172e034",
      TYPE: MANIFEST,
      DIGEST: "sha256:045ca9bd63574d4800f91eedfedff7b8dd4769ecf2d0e831c97dfceb15685e23",
      SIZE: "1.9 MiB",
      PLATFORMS: "linux/amd64",
      LABELS: "-",
    },
  ]);
});

Deno.test("splitAligned() keeps SIZE cells with a space whole (a whitespace split would not)", () => {
  const rows = splitAligned("ctr image ls", fixture("ctr-2.x/image_ls.txt"), IMAGE);
  assert.deepEqual([...new Set(rows.map((r) => r.SIZE))].sort(), [
    "0.0 B",
    "1.2 GiB",
    "1007.9 KiB",
    "2.5 TiB",
    "311.6 KiB",
    "512.0 B",
    "67.7 MiB",
  ]);
  for (const r of rows) assert.doesNotMatch(r.PLATFORMS!, /B$/, "no unit spilled over");
});

Deno.test("splitAligned() reads real container ls and task ls", async (t) => {
  await t.step("container ls, 4-space padding and trailing spaces", () => {
    const rows = splitAligned(
      "ctr container ls",
      fixture("ctr-1.6/container_ls.txt"),
      ["CONTAINER", "IMAGE", "RUNTIME"],
    );
    assert.deepEqual(rows, [
      {
        CONTAINER: "ctre-created",
        IMAGE: "registry.example.com/team/ctre-pinned:3.9",
        RUNTIME: "io.containerd.runc.v2",
      },
      {
        CONTAINER: "ctre-exited",
        IMAGE: "docker.io/library/ctre-old:0.1",
        RUNTIME: "io.containerd.runc.v2",
      },
      {
        CONTAINER: "ctre-running",
        IMAGE: "docker.io/library/ctre-app:1.0",
        RUNTIME: "io.containerd.runc.v2",
      },
    ]);
  });
  await t.step("task ls, whose rows are shorter than the header", () => {
    const rows = splitAligned("ctr task ls", fixture("ctr-1.6/task_ls.txt"), [
      "TASK",
      "PID",
      "STATUS",
    ]);
    assert.deepEqual(rows, [
      { TASK: "ctre-running", PID: "16040", STATUS: "RUNNING" },
      { TASK: "ctre-exited", PID: "16095", STATUS: "STOPPED" },
    ]);
  });
});

Deno.test("splitAligned() counts offsets in characters, not bytes or UTF-16 units", () => {
  const text = "REF     SIZE     X    \n" +
    "héllo   1.0 B    a    \n" +
    "𝔘x      2.0 KiB  b    \n";
  assert.deepEqual(splitAligned("t", text, ["REF", "SIZE", "X"]), [
    { REF: "héllo", SIZE: "1.0 B", X: "a" },
    { REF: "𝔘x", SIZE: "2.0 KiB", X: "b" },
  ]);
});

Deno.test("splitAligned() counts a character outside the BMP as one column", () => {
  // Go's tabwriter counts runes: "𝔘𝔘𝔘" is 3 columns wide (6 UTF-16 code units).
  assert.deepEqual(splitAligned("t", "A   B   \n𝔘𝔘𝔘 xy  \né   z   \n", ["A", "B"]), [
    { A: "𝔘𝔘𝔘", B: "xy" },
    { A: "é", B: "z" },
  ]);
});

Deno.test("splitAligned() rejects what is not the expected table", async (t) => {
  await t.step("another header", () => {
    assert.throws(
      () => splitAligned("ctr task ls", "TASK    PID    \n", ["TASK", "PID", "STATUS"]),
      parseError('Unexpected header from ctr task ls: "TASK    PID" (expected "TASK PID STATUS")'),
    );
  });
  await t.step("empty output", () => {
    assert.throws(() => splitAligned("ctr task ls", "", ["TASK"]), ParseError);
  });
  await t.step("a cell that runs into the next column", () => {
    const text = "A     B     \nxxxxxxyy    \n";
    assert.throws(
      () => splitAligned("t", text, ["A", "B"]),
      parseError(
        'Cannot parse line 2 of t: column B does not start at character 7: "xxxxxxyy    "',
      ),
    );
  });
  await t.step("an empty first column", () => {
    assert.throws(
      () => splitAligned("t", "A     B     \n      x     \n", ["A", "B"]),
      /Cannot parse line 2 of t: empty A/,
    );
  });
  await t.step("header only: no rows", () => {
    assert.deepEqual(splitAligned("t", "A    B    \n", ["A", "B"]), []);
  });
});

Deno.test("parseLabels() reads a LABELS cell", async (t) => {
  const cases: [string, string, [string, string][]][] = [
    ["none", "-", []],
    ["empty cell", "", []],
    ["one", "io.cri-containerd.image=managed", [["io.cri-containerd.image", "managed"]]],
    [
      "two, order kept",
      "io.cri-containerd.pinned=pinned,io.cri-containerd.image=managed",
      [["io.cri-containerd.pinned", "pinned"], ["io.cri-containerd.image", "managed"]],
    ],
    [
      "a value with a comma",
      "containerd.io/distribution.source.docker.io=library/a,library/b",
      [["containerd.io/distribution.source.docker.io", "library/a,library/b"]],
    ],
    [
      "a value with commas, then another label",
      "containerd.io/distribution.source.docker.io=library/a,library/b,library/c," +
      "containerd.io/uncompressed=sha256:abc",
      [
        ["containerd.io/distribution.source.docker.io", "library/a,library/b,library/c"],
        ["containerd.io/uncompressed", "sha256:abc"],
      ],
    ],
    ["a value with =", "a=b=c,d=e", [["a", "b=c"], ["d", "e"]]],
    ["an empty value", "a=,b=c", [["a", ""], ["b", "c"]]],
  ];
  for (const [name, cell, expected] of cases) {
    await t.step(name, () => assert.deepEqual([...parseLabels(cell)], expected));
  }
});

Deno.test("parseLabels() reads the real comma value of a ctr 1.6 content label", () => {
  // Regression: a split on "," alone loses "library/ctre-app-mirror" or crashes on it.
  const rows = splitTabbed("ctr content ls", fixture("ctr-1.6/content_ls.txt"), CONTENT);
  const labels = parseLabels(rows.at(-1)!.LABELS!);
  assert.deepEqual([...labels], [
    [
      "containerd.io/uncompressed",
      "sha256:f5049318f3184e1f453dca57d8abfc35d535eda0279803b2f47dabc7802e27a8",
    ],
    ["containerd.io/distribution.source.docker.io", "library/ctre-app,library/ctre-app-mirror"],
  ]);
});

Deno.test("parseLabels() throws ParseError when the cell does not start with k=v", () => {
  assert.throws(() => parseLabels("library/a,x=y"), ParseError);
  assert.throws(() => parseLabels("garbage"), /Cannot parse labels "garbage"/);
});
