/**
 * What images hold on disk (lib/policy/disk.ts) and `ctr snapshot usage -b` (lib/ctr/
 * snapshot_usage.ts): the real captures of 1.6/1.7/2.1 (tests/testdata/ctr-*\/disk_*.txt: images
 * a and b share an 8 MB base layer, c is imported --no-unpack, container w1 runs a and wrote
 * 2 MiB), then small tables.
 */
import assert from "node:assert/strict";
import {
  type DiskInput,
  diskModel,
  diskTotals,
  freedBytes,
  imageDisk,
  imageId,
  reclaimer,
} from "../lib/policy/disk.ts";
import { parseSnapshotUsage } from "../lib/ctr/snapshot_usage.ts";
import { parseContentLs, parseImageLs, parseSnapshotLs } from "../lib/ctr/listings.ts";
import type { ContentBlob, ImageRow, SnapshotRow } from "../lib/core/containerd.ts";

const DATA = new URL("./testdata/", import.meta.url);
const read = (minor: string, name: string) =>
  Deno.readTextFile(new URL(`ctr-${minor}/disk_${name}.txt`, DATA));

Deno.test("parseSnapshotUsage() rejects what is not KEY BYTES INODES", () => {
  assert.deepEqual(parseSnapshotUsage("KEY SIZE INODES\n"), new Map());
  assert.deepEqual(parseSnapshotUsage(""), new Map());
  assert.throws(() => parseSnapshotUsage("KEY SIZE\n"), /Unexpected header/);
  // Without -b, ctr rounds to one decimal of a unit: refused rather than guessed.
  assert.throws(
    () => parseSnapshotUsage("KEY SIZE INODES\nw1 2.0 MiB 6\n"),
    /line 2 of ctr snapshot usage/,
  );
});

/** The capture's namespace as disk input (container w1 runs image a). */
async function captured(
  minor: string,
): Promise<{ input: DiskInput; digest: (r: string) => string }> {
  const images = parseImageLs(await read(minor, "image_ls"));
  const content = new Map(
    parseContentLs(await read(minor, "content_ls")).map((b) => [b.digest, b]),
  );
  const rows = parseSnapshotLs(await read(minor, "snapshot_ls"));
  const usage = parseSnapshotUsage(await read(minor, "snapshot_usage_b"));
  const digest = (ref: string) =>
    images.find((i) => i.ref === `docker.io/library/${ref}:1`)!.digest;
  return {
    digest,
    input: {
      ns: "default",
      images,
      content,
      snapshots: new Map([["overlayfs", rows]]),
      usage: new Map([["overlayfs", usage]]),
      containers: [{ id: "w1", snapshotKey: "w1", snapshotter: "overlayfs" }],
    },
  };
}

for (const minor of ["1.6", "1.7", "2.1"]) {
  Deno.test(`ctr ${minor} capture: per-image bytes, shared base once, writable layer`, async () => {
    const { input, digest } = await captured(minor);
    const usage = input.usage.get("overlayfs")!;
    const w1 = usage.get("w1")!;
    assert.ok(w1 >= 2 * 1024 * 1024 && w1 < 2.1 * 1024 * 1024, `w1 wrote 2 MiB: ${w1}`);
    const m = diskModel([input]);
    const [a, b, c] = ["a", "b", "c"].map((r) => imageDisk(m, "default", digest(r))!);
    const blob = (mb: number) =>
      [...input.content.values()].find((x) => Math.abs(x.size - mb) < 0.01e6)!;
    const small = (ref: string) => {
      const [manifest] = [input.content.get(digest(ref))!];
      const config = input.content.get(
        manifest.labels.get("containerd.io/gc.ref.content.config")!,
      )!;
      return manifest.size + config.size;
    };
    // Layers (ctr content ls, decimal): base 8.278 MB (busybox + 6 MiB), a 4.196, b 3.147, c 7.229.
    const base = blob(8.278e6).size, la = blob(4.196e6).size, lb = blob(3.147e6).size;
    assert.equal(a!.contentBytes, small("a") + base + la);
    assert.equal(b!.contentBytes, small("b") + base + lb);
    assert.equal(c!.contentBytes, small("c") + blob(7.229e6).size);
    assert.equal(c!.snapshotBytes, 0, "--no-unpack: no snapshot");
    assert.equal(c!.uniqueBytes, c!.contentBytes);
    const snaps = [...usage.entries()].filter(([k]) => k !== "w1").map(([, v]) => v).sort((x, y) =>
      y - x
    );
    // Snapshots: base 8275968, a 4195328, b 3146752 (bytes, -b).
    assert.equal(a!.snapshotBytes, snaps[0]! + snaps[1]!);
    assert.equal(b!.snapshotBytes, snaps[0]! + snaps[2]!);
    // a's snapshots are under w1's writable layer: they stay while w1 exists; its layer blob goes.
    assert.equal(a!.uniqueBytes, small("a") + la);
    assert.equal(b!.uniqueBytes, small("b") + lb + snaps[2]!);
    const t = diskTotals(m);
    assert.equal(t.images.count, 3);
    // Each blob once: the shared base is in a's and b's sizes but counts once here.
    assert.equal(t.images.contentBytes, a!.contentBytes + b!.contentBytes - base + c!.contentBytes);
    // What images do not reach is unreferenced: 1.7's import leaves the OCI index blobs it read
    // (under a lease), a few hundred bytes; 1.6 and 2.1 leave none.
    const listed = [...input.content.values()].reduce((s, x) => s + x.size, 0);
    assert.equal(t.unreferenced.contentBytes, listed - t.images.contentBytes);
    assert.ok(t.unreferenced.contentBytes < 2000, `${t.unreferenced.contentBytes}`);
    assert.equal(t.images.snapshotBytes, snaps[0]! + snaps[1]! + snaps[2]!);
    assert.deepEqual(t.containers, { count: 1, writableBytes: w1 });
    assert.equal(t.unreferenced.snapshotBytes, 0);
    // Removing b and c frees their unique bytes; removing a too frees nothing more of a's
    // snapshots (w1), but the base blob (all its holders go).
    const ids = (refs: string[]) => new Set(refs.map((r) => imageId("default", digest(r))));
    assert.deepEqual(freedBytes(m, ids(["b", "c"]), null), {
      contentBytes: b!.uniqueBytes - snaps[2]! + c!.uniqueBytes,
      snapshotBytes: snaps[2]!,
    });
    assert.deepEqual(freedBytes(m, ids(["a", "b", "c"]), null), {
      contentBytes: t.images.contentBytes,
      snapshotBytes: snaps[2]!,
    });
  });
}

// ---- small tables ------------------------------------------------------------------------------

const L = "containerd.io/gc.ref.content.l.";
function blob(digest: string, size: number, labels: [string, string][] = []): ContentBlob {
  return { digest, size, ageSeconds: 0, ageText: "", labels: new Map(labels) };
}
function image(ref: string, digest: string): ImageRow {
  return { ref, type: "", digest, size: 0, platforms: "", labels: new Map() };
}
/** Manifest `m` → config `c` (snapshot label per snapshotter) and layers. */
function imageBlobs(
  m: string,
  c: string,
  layers: string[],
  chain: string | null,
  snapshotters = ["overlayfs"],
): ContentBlob[] {
  return [
    blob(m, 10, [
      ["containerd.io/gc.ref.content.config", c],
      ...layers.map((l, i): [string, string] => [`${L}${i}`, l]),
    ]),
    blob(
      c,
      10,
      chain === null
        ? []
        : snapshotters.map((s): [string, string] => [`containerd.io/gc.ref.snapshot.${s}`, chain]),
    ),
  ];
}
const row = (key: string, parent: string | null, kind = "Committed"): SnapshotRow => ({
  key,
  parent,
  kind,
});

/** Two images x and y on a shared base layer B (1000 bytes blob, 2000 unpacked). */
function twoOnBase(extra: Partial<DiskInput> = {}): DiskInput {
  const blobs = [
    ...imageBlobs("mx", "cx", ["B", "X"], "chX"),
    ...imageBlobs("my", "cy", ["B", "Y"], "chY"),
    blob("B", 1000),
    blob("X", 100),
    blob("Y", 300),
  ];
  return {
    ns: "n",
    images: [image("x:1", "mx"), image("y:1", "my"), image("y:latest", "my")],
    content: new Map(blobs.map((b) => [b.digest, b])),
    snapshots: new Map([["overlayfs", [row("B", null), row("chX", "B"), row("chY", "B")]]]),
    usage: new Map([["overlayfs", new Map([["B", 2000], ["chX", 200], ["chY", 600]])]]),
    containers: [],
    ...extra,
  };
}

Deno.test("diskModel: a shared layer counts for each image, once in totals, unique for none", () => {
  const m = diskModel([twoOnBase()]);
  assert.deepEqual(imageDisk(m, "n", "mx"), {
    contentBytes: 1120,
    snapshotBytes: 2200,
    uniqueBytes: 320,
  });
  assert.deepEqual(imageDisk(m, "n", "my"), {
    contentBytes: 1320,
    snapshotBytes: 2600,
    uniqueBytes: 920,
  });
  const t = diskTotals(m);
  assert.deepEqual(t.images, { count: 2, contentBytes: 1440, snapshotBytes: 2800 });
  // Both going frees the base too; either alone only its own.
  assert.deepEqual(freedBytes(m, new Set([imageId("n", "mx")]), null), {
    contentBytes: 120,
    snapshotBytes: 200,
  });
  assert.deepEqual(freedBytes(m, new Set([imageId("n", "mx"), imageId("n", "my")]), null), {
    contentBytes: 1440,
    snapshotBytes: 2800,
  });
});

Deno.test("freedBytes: content prune takes the layer blobs of kept unpacked images, not of others", () => {
  const input = twoOnBase();
  const m = diskModel([input]);
  const x = new Set([imageId("n", "mx")]);
  // y is unpacked: its layers B and Y go with content prune.
  assert.deepEqual(freedBytes(m, x, () => true), {
    contentBytes: 120 + 1000 + 300,
    snapshotBytes: 200,
  });
  // Content prune not run in that namespace: only x's own.
  assert.deepEqual(freedBytes(m, x, () => false), { contentBytes: 120, snapshotBytes: 200 });
  // Nothing removed: prune does not run content prune at all.
  assert.deepEqual(freedBytes(m, new Set(), () => true), { contentBytes: 0, snapshotBytes: 0 });
  // y not unpacked (no snapshot label): its layers are its only copy and stay.
  const packed = twoOnBase();
  packed.content = new Map(
    [...packed.content].map(([d, b]) => [d, d === "cy" ? blob("cy", 10) : b]),
  );
  // (and with no chain of its own, y no longer holds the base snapshot: it goes with x's)
  assert.deepEqual(freedBytes(diskModel([packed]), x, () => true), {
    contentBytes: 120,
    snapshotBytes: 2200,
  });
});

Deno.test("diskModel: a container's writable layer, what it pins, and what nothing holds", () => {
  const input = twoOnBase({
    containers: [{ id: "c1", snapshotKey: "", snapshotter: "" }],
  });
  input.snapshots = new Map([["overlayfs", [
    row("B", null),
    row("chX", "B"),
    row("chY", "B"),
    row("c1", "chX", "Active"),
    row("pull-123", "B", "Active"),
    row("old", null),
  ]]]);
  input.usage = new Map([[
    "overlayfs",
    new Map([["B", 2000], ["chX", 200], ["chY", 600], ["c1", 50], ["pull-123", 7], ["old", 90]]),
  ]]);
  input.content = new Map([...input.content, ["leftover", blob("leftover", 5)]]);
  const m = diskModel([input]);
  const t = diskTotals(m);
  assert.deepEqual(t.containers, { count: 1, writableBytes: 50 });
  assert.deepEqual(t.unreferenced, { contentBytes: 5, snapshotBytes: 7 + 90 });
  // x's snapshot chain is under c1: removing x frees its blobs only.
  assert.deepEqual(imageDisk(m, "n", "mx"), {
    contentBytes: 1120,
    snapshotBytes: 2200,
    uniqueBytes: 120,
  });
  assert.deepEqual(freedBytes(m, new Set([imageId("n", "mx"), imageId("n", "my")]), null), {
    contentBytes: 1440,
    snapshotBytes: 600,
  });
});

Deno.test("diskModel: an image unpacked in two snapshotters is measured in each", () => {
  const blobs = [...imageBlobs("m", "c", ["L"], "ch", ["overlayfs", "native"]), blob("L", 100)];
  const m = diskModel([{
    ns: "n",
    images: [image("a:1", "m")],
    content: new Map(blobs.map((b) => [b.digest, b])),
    snapshots: new Map([["overlayfs", [row("ch", null)]], ["native", [row("ch", null)]]]),
    usage: new Map([["overlayfs", new Map([["ch", 100]])], ["native", new Map([["ch", 150]])]]),
    containers: [],
  }]);
  assert.deepEqual(imageDisk(m, "n", "m"), {
    contentBytes: 120,
    snapshotBytes: 250,
    uniqueBytes: 370,
  });
});

Deno.test("diskModel: a blob two namespaces hold goes only when both images go", () => {
  const other = twoOnBase({ ns: "k8s.io", images: [image("x:1", "mx")] });
  const m = diskModel([twoOnBase(), other]);
  assert.equal(
    imageDisk(m, "n", "mx")!.uniqueBytes,
    200,
    "its snapshot only: k8s.io has its blobs",
  );
  assert.equal(diskTotals(m).images.contentBytes, 1440, "each digest once on the node");
  assert.equal(diskTotals(m, new Set(["k8s.io"])).images.contentBytes, 1120);
});

Deno.test("reclaimer: LRU one by one, a shared layer counted with its last holder", () => {
  const m = diskModel([twoOnBase()]);
  const take = reclaimer(m);
  assert.equal(take("n", "my"), 920);
  assert.equal(take("n", "mx"), 320 + 1000 + 2000);
  assert.equal(take("n", "unknown"), 0);
});
