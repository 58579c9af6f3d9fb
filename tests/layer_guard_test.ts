/** Which layer references content prune may strip (layer_guard.ts), as tables. */
import assert from "node:assert/strict";
import { isLayerLabel, KEPT_PREFIX, keptKey, planContentPrune } from "../lib/policy/layer_guard.ts";
import { pruneContentSafely } from "../lib/prune/content_prune.ts";
import { parseSnapshotLs } from "../lib/ctr/listings.ts";
import type { ContentBlob, ImageRow, SnapshotRow } from "../lib/core/containerd.ts";
import { fail } from "./support/fake_ctr.ts";
import { FakeNode } from "./support/fake_node.ts";

Deno.test("isLayerLabel() matches what ctr content prune references strips", async (t) => {
  const cases: [string, boolean][] = [
    ["containerd.io/gc.ref.content.l.0", true],
    ["containerd.io/gc.ref.content.l.12", true],
    ["containerd.io/gc.ref.content.1", true],
    ["containerd.io/gc.ref.content.0", false],
    ["containerd.io/gc.ref.content.config", false],
    ["containerd.io/gc.ref.content.m.0", false],
    ["containerd.io/gc.ref.snapshot.overlayfs", false],
    ["containerd.io/uncompressed", false],
    // ctre's copies (layer_guard.ts): ctr's prune leaves them.
    [keptKey("containerd.io/gc.ref.content.l.0"), false],
    [keptKey("containerd.io/gc.ref.content.3"), false],
  ];
  for (const [key, want] of cases) {
    await t.step(`${key}: ${want}`, () => assert.equal(isLayerLabel(key), want));
  }
});

Deno.test("parseSnapshotLs() reads real ctr 1.6 output (empty PARENT for a bottom layer)", () => {
  const a = "sha256:0c1447e2240bf6585367cf592d2578498cdc9922e90b4881cb06b7d386079e29";
  const b = "sha256:be3832bd4f4d932970099476d804a30ca1421c047881b945f2775a87250a6da4";
  const text = `KEY${" ".repeat(69)}PARENT${" ".repeat(66)}KIND      \n` +
    `${a} ${" ".repeat(71)} Committed \n` +
    `${b} ${a} Committed \n` +
    `c-run${" ".repeat(67)}${b} Active    \n`;
  assert.deepEqual(parseSnapshotLs(text), [
    { key: a, parent: null, kind: "Committed" },
    { key: b, parent: a, kind: "Committed" },
    { key: "c-run", parent: b, kind: "Active" },
  ]);
  assert.deepEqual(parseSnapshotLs("KEY PARENT KIND\n"), []);
  assert.throws(() => parseSnapshotLs("NAME KIND\n"), /Unexpected header from ctr snapshot ls/);
});

const D = (name: string) =>
  `sha256:${[...name].map((c) => c.charCodeAt(0).toString(16)).join("").padEnd(64, "0")}`;

function blob(name: string, labels: Record<string, string> = {}): ContentBlob {
  return {
    digest: D(name),
    size: 1,
    ageSeconds: 0,
    ageText: "1 second",
    labels: new Map(Object.entries(labels)),
  };
}

/** An image `name`: manifest → config (+ snapshot label for `snapshotter`) and one layer. */
function imageBlobs(
  name: string,
  opts: { snapshotter?: string; stripped?: boolean; kept?: boolean } = {},
): ContentBlob[] {
  const sn = opts.snapshotter === undefined
    ? {}
    : { [`containerd.io/gc.ref.snapshot.${opts.snapshotter}`]: D(`${name}-chain`) };
  return [
    blob(`${name}-m`, {
      "containerd.io/gc.ref.content.config": D(`${name}-c`),
      ...(opts.stripped ? {} : { "containerd.io/gc.ref.content.l.0": D(`${name}-l`) }),
      ...(opts.kept ? { "containerd.io/gc.ref.content.ctre.l.0": D(`${name}-l`) } : {}),
    }),
    blob(`${name}-c`, sn),
    blob(`${name}-l`),
  ];
}

const row = (ref: string, target: string): ImageRow => ({
  ref,
  digest: D(target),
  type: "",
  size: 0,
  platforms: "",
  labels: new Map(),
});
const committed = (...names: string[]): SnapshotRow[] =>
  names.map((n) => ({ key: D(`${n}-chain`), parent: null, kind: "Committed" }));

Deno.test("planContentPrune() protects the manifests of images with no other copy", async (t) => {
  const cases: {
    name: string;
    blobs: ContentBlob[];
    images: ImageRow[];
    snapshots: SnapshotRow[];
    unsafe: string[];
    /** Manifests that get copies of their layer references before the prune. */
    keep: string[];
    /** Manifests whose copies go. */
    release?: string[];
  }[] = [
    {
      name: "unpacked: its references may go",
      blobs: imageBlobs("a", { snapshotter: "overlayfs" }),
      images: [row("a:1", "a-m")],
      snapshots: committed("a"),
      unsafe: [],
      keep: [],
    },
    {
      name: "never unpacked (no snapshot label): protected",
      blobs: [...imageBlobs("a", { snapshotter: "overlayfs" }), ...imageBlobs("b")],
      images: [row("a:1", "a-m"), row("b:1", "b-m"), row("b:2", "b-m")],
      snapshots: committed("a"),
      unsafe: ["b:1 b:2"],
      keep: ["b-m"],
    },
    {
      name: "labelled, but the snapshot is gone: protected",
      blobs: imageBlobs("a", { snapshotter: "overlayfs" }),
      images: [row("a:1", "a-m")],
      snapshots: [],
      unsafe: ["a:1"],
      keep: ["a-m"],
    },
    {
      name: "an active snapshot of that key does not count",
      blobs: imageBlobs("a", { snapshotter: "overlayfs" }),
      images: [row("a:1", "a-m")],
      snapshots: [{ key: D("a-chain"), parent: null, kind: "Active" }],
      unsafe: ["a:1"],
      keep: ["a-m"],
    },
    {
      name: "unpacked for another snapshotter only (not in ctr's list): protected",
      blobs: imageBlobs("a", { snapshotter: "native" }),
      images: [row("a:1", "a-m")],
      snapshots: committed("other"),
      unsafe: ["a:1"],
      keep: ["a-m"],
    },
    {
      name: "references already stripped: nothing to protect, nothing to say",
      blobs: imageBlobs("a", { stripped: true }),
      images: [row("a:1", "a-m")],
      snapshots: [],
      unsafe: [],
      keep: [],
    },
    {
      name: "an index: runnable if one of its manifests is",
      blobs: [
        blob("idx", {
          "containerd.io/gc.ref.content.m.0": D("a-m"),
          "containerd.io/gc.ref.content.m.1": D("arm-m"),
        }),
        ...imageBlobs("a", { snapshotter: "overlayfs" }),
        ...imageBlobs("arm"),
      ],
      images: [row("multi:1", "idx")],
      snapshots: committed("a"),
      unsafe: [],
      keep: [],
    },
    {
      name: "an index none of whose manifests is unpacked: all protected",
      blobs: [
        blob("idx", { "containerd.io/gc.ref.content.m.0": D("b-m") }),
        ...imageBlobs("b"),
        ...imageBlobs("a", { snapshotter: "overlayfs" }),
      ],
      images: [row("multi:1", "idx"), row("a:1", "a-m")],
      snapshots: committed("a"),
      unsafe: ["multi:1"],
      keep: ["b-m"],
    },
    {
      name: "a manifest no image names (being pulled or left over): stripped, as ctr does",
      blobs: [...imageBlobs("orphan"), ...imageBlobs("b")],
      images: [row("b:1", "b-m")],
      snapshots: [],
      unsafe: ["b:1"],
      keep: ["b-m"],
    },
    {
      name: "an image whose target is not in the content list: nothing of it touched",
      blobs: imageBlobs("a", { snapshotter: "overlayfs" }),
      images: [row("a:1", "a-m"), row("new:1", "new-m")],
      snapshots: committed("a"),
      unsafe: [],
      keep: [],
    },
    {
      name: "copies made by an earlier prune, references since stripped: still protected",
      blobs: imageBlobs("a", { stripped: true, kept: true }),
      images: [row("a:1", "a-m")],
      snapshots: [],
      unsafe: ["a:1"],
      keep: [],
    },
    {
      name: "copies on an image unpacked since: they go",
      blobs: imageBlobs("a", { snapshotter: "overlayfs", stripped: true, kept: true }),
      images: [row("a:1", "a-m")],
      snapshots: committed("a"),
      unsafe: [],
      keep: [],
      release: ["a-m"],
    },
    {
      name: "copies on a manifest no image names: they go",
      blobs: imageBlobs("orphan", { kept: true }),
      images: [],
      snapshots: [],
      unsafe: [],
      keep: [],
      release: ["orphan-m"],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const plan = planContentPrune(c.blobs, c.images, c.snapshots);
      assert.deepEqual(plan.unsafe.map((u) => u.refs.join(" ")), c.unsafe);
      assert.deepEqual(plan.keep.map((s) => s.digest).sort(), c.keep.map(D).sort());
      assert.deepEqual(plan.release.map((s) => s.digest).sort(), (c.release ?? []).map(D).sort());
      for (const k of plan.keep) {
        const layers = c.blobs.find((b) => b.digest === k.digest)!.labels;
        // A copy of each layer reference, under a key the prune leaves alone.
        assert.deepEqual(
          k.labels,
          [...layers].filter(([l]) => isLayerLabel(l)).map(([l, v]) => [keptKey(l), v]),
        );
        for (const [key] of k.labels) assert.ok(!isLayerLabel(key), key);
      }
      for (const r of plan.release) {
        assert.ok(r.labels.every(([k, v]) => k.startsWith(KEPT_PREFIX) && v === ""));
      }
    });
  }
});

Deno.test("pruneContentSafely() runs the plain prune when nothing needs protecting", async () => {
  const n = new FakeNode();
  n.addImage("default", "a:1");
  const r = await pruneContentSafely(n.ctr, "default");
  assert.deepEqual(r.protected, []);
  assert.equal(r.before - r.after, 1, "the layer blob went");
  assert.deepEqual(n.ctr.calls.map((a) => a.slice(2, 4).join(" ")), [
    "content ls",
    "snapshot ls",
    "image ls",
    "content prune",
    "content ls",
  ]);
});

Deno.test("pruneContentSafely() retries the transient not-found once", async () => {
  const n = new FakeNode();
  n.addImage("default", "a:1");
  let prunes = 0;
  n.hook = (args) =>
    args[3] === "prune" && ++prunes === 1
      ? fail("ctr: content digest sha256:1111: not found\n")
      : undefined;
  const r = await pruneContentSafely(n.ctr, "default");
  assert.equal(r.error, undefined);
  assert.equal(prunes, 2);
});

Deno.test("pruneContentSafely() copies the unsafe image's references, then prunes plainly", async () => {
  const n = new FakeNode();
  for (let i = 0; i < 20; i++) n.addImage("default", `a${i}:1`);
  const offline = n.addImage("default", "offline:1", { unpacked: false, layers: 2 });
  const layers = [...n.ns("default").content.get(offline)!.labels]
    .filter(([k]) => isLayerLabel(k)).map(([, v]) => v);
  const r = await pruneContentSafely(n.ctr, "default");
  assert.deepEqual(r.protected, ["offline:1"]);
  assert.equal(r.error, undefined);
  assert.equal(r.before - r.after, 20, "the unpacked images' layers went");
  for (const l of layers) assert.ok(n.has("default", l), "the only copy stays");
  // As many processes as the plain prune, plus one label for the one unsafe manifest.
  assert.deepEqual(n.ctr.calls.map((a) => a.slice(2, 4).join(" ")), [
    "content ls",
    "snapshot ls",
    "image ls",
    "content label",
    "content prune",
    "content ls",
  ]);

  // A second prune: nothing to label again, and the layers survive it too.
  const seen = n.ctr.calls.length;
  const again = await pruneContentSafely(n.ctr, "default");
  assert.deepEqual(again.protected, ["offline:1"]);
  assert.equal(n.ctr.calls.slice(seen).filter((a) => a[3] === "label").length, 0);
  for (const l of layers) assert.ok(n.has("default", l), "still kept by the copies");
  // The image removed: its manifest, the copies and the layers go in the same GC.
  n.ns("default").images.delete("offline:1");
  n.gc();
  for (const l of layers) assert.ok(!n.has("default", l), "nothing outlives the image");
});

Deno.test("pruneContentSafely() does not prune when a copy cannot be made", async () => {
  const n = new FakeNode();
  n.addImage("default", "a:1");
  n.addImage("default", "offline:1", { unpacked: false });
  n.hook = (args) => args[3] === "label" ? fail("ctr: permission denied\n") : undefined;
  const before = n.storeBytes();
  const r = await pruneContentSafely(n.ctr, "default");
  assert.match(
    r.error ?? "",
    /^ctr content label sha256:\S+ exited with code 1: ctr: permission denied$/,
  );
  assert.ok(!n.ctr.calls.some((a) => a[3] === "prune"), "the prune would delete the only copy");
  assert.equal(n.storeBytes(), before);
});
