/** Which layer references content prune may strip (layer_guard.ts), as tables. */
import assert from "node:assert/strict";
import { isLayerLabel, planContentPrune } from "../lib/policy/layer_guard.ts";
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
  opts: { snapshotter?: string; stripped?: boolean } = {},
): ContentBlob[] {
  const sn = opts.snapshotter === undefined
    ? {}
    : { [`containerd.io/gc.ref.snapshot.${opts.snapshotter}`]: D(`${name}-chain`) };
  return [
    blob(`${name}-m`, {
      "containerd.io/gc.ref.content.config": D(`${name}-c`),
      ...(opts.stripped ? {} : { "containerd.io/gc.ref.content.l.0": D(`${name}-l`) }),
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
    strip: string[];
  }[] = [
    {
      name: "unpacked: its references may go",
      blobs: imageBlobs("a", { snapshotter: "overlayfs" }),
      images: [row("a:1", "a-m")],
      snapshots: committed("a"),
      unsafe: [],
      strip: ["a-m"],
    },
    {
      name: "never unpacked (no snapshot label): protected",
      blobs: [...imageBlobs("a", { snapshotter: "overlayfs" }), ...imageBlobs("b")],
      images: [row("a:1", "a-m"), row("b:1", "b-m"), row("b:2", "b-m")],
      snapshots: committed("a"),
      unsafe: ["b:1 b:2"],
      strip: ["a-m"],
    },
    {
      name: "labelled, but the snapshot is gone: protected",
      blobs: imageBlobs("a", { snapshotter: "overlayfs" }),
      images: [row("a:1", "a-m")],
      snapshots: [],
      unsafe: ["a:1"],
      strip: [],
    },
    {
      name: "an active snapshot of that key does not count",
      blobs: imageBlobs("a", { snapshotter: "overlayfs" }),
      images: [row("a:1", "a-m")],
      snapshots: [{ key: D("a-chain"), parent: null, kind: "Active" }],
      unsafe: ["a:1"],
      strip: [],
    },
    {
      name: "unpacked for another snapshotter only (not in ctr's list): protected",
      blobs: imageBlobs("a", { snapshotter: "native" }),
      images: [row("a:1", "a-m")],
      snapshots: committed("other"),
      unsafe: ["a:1"],
      strip: [],
    },
    {
      name: "references already stripped: nothing to protect, nothing to say",
      blobs: imageBlobs("a", { stripped: true }),
      images: [row("a:1", "a-m")],
      snapshots: [],
      unsafe: [],
      strip: [],
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
      strip: ["a-m", "arm-m"],
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
      strip: ["a-m"],
    },
    {
      // The soak's race: an import whose image is not created yet when images are listed.
      name: "a manifest no image names (being imported, or left over): untouched",
      blobs: [...imageBlobs("orphan"), ...imageBlobs("b", { snapshotter: "overlayfs" })],
      images: [row("b:1", "b-m")],
      snapshots: committed("b"),
      unsafe: [],
      strip: ["b-m"],
    },
    {
      name: "an image whose target is not in the content list: nothing of it touched",
      blobs: imageBlobs("a", { snapshotter: "overlayfs" }),
      images: [row("a:1", "a-m"), row("new:1", "new-m")],
      snapshots: committed("a"),
      unsafe: [],
      strip: ["a-m"],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const plan = planContentPrune(c.blobs, c.images, c.snapshots);
      assert.deepEqual(plan.unsafe.map((u) => u.refs.join(" ")), c.unsafe);
      assert.deepEqual(plan.strip.map((s) => s.digest).sort(), c.strip.map(D).sort());
      for (const s of plan.strip) assert.ok(s.labels.every(isLayerLabel));
    });
  }
});

Deno.test("pruneContentSafely() strips each runnable image's references, then runs a GC", async () => {
  const n = new FakeNode();
  n.addImage("default", "a:1");
  const r = await pruneContentSafely(n.containerd, "default");
  assert.deepEqual(r.protected, []);
  assert.equal(r.before - r.after, 1, "the layer blob went");
  // Never `ctr content prune references`: it would strip images listed after ctre looked.
  assert.deepEqual(n.ctr.calls.map((a) => a.slice(2, 4).join(" ")), [
    "content ls",
    "snapshot ls",
    "image ls",
    "content label",
    "leases create",
    "leases delete",
    "content ls",
  ]);
});

Deno.test("pruneContentSafely() strips the others' references, then runs a GC", async () => {
  const n = new FakeNode();
  n.addImage("default", "a:1");
  n.addImage("default", "b:1");
  n.addImage("default", "offline:1", { unpacked: false });
  const r = await pruneContentSafely(n.containerd, "default");
  assert.deepEqual(r.protected, ["offline:1"]);
  assert.equal(r.before - r.after, 2, "the two unpacked images' layers went");
  const steps = n.ctr.calls.map((a) => a.slice(2, 4).join(" "));
  assert.deepEqual(steps.filter((s) => s === "content label").length, 2);
  assert.ok(!steps.includes("content prune"));
  assert.deepEqual(n.ctr.calls.at(-2)!.slice(2, 5), ["leases", "delete", "--sync"]);
});

Deno.test("pruneContentSafely() reports a failed label, and still runs the GC", async () => {
  const n = new FakeNode();
  n.addImage("default", "a:1");
  n.addImage("default", "offline:1", { unpacked: false });
  n.hook = (args) => args[3] === "label" ? fail("ctr: permission denied\n") : undefined;
  const r = await pruneContentSafely(n.containerd, "default");
  assert.match(
    r.error ?? "",
    /^ctr content label sha256:\S+ exited with code 1: ctr: permission denied$/,
  );
  assert.ok(n.ctr.calls.some((a) => a[2] === "leases" && a[3] === "delete"));
});
