/**
 * What lib/node/inventory.ts asks the gateway for the disk figures, on the typed fake
 * (tests/support/fake_containerd.ts): `snapshotUsage` once per namespace and snapshotter named by
 * the content labels (ctr's default when none is), its bytes added up with the content store's
 * (each digest once) for --max-store-size, and a failing usage reported instead of thrown.
 */
import assert from "node:assert/strict";
import { FakeContainerd, imageRow } from "./support/fake_containerd.ts";
import { measureStore, snapshotNamespace } from "../lib/node/inventory.ts";
import type { ContentBlob } from "../lib/core/containerd.ts";

function blob(digest: string, size: number, labels: [string, string][] = []): ContentBlob {
  return { digest, size, ageSeconds: 0, ageText: "now", labels: new Map(labels) };
}

/** Two namespaces sharing a blob; k8s.io's config names the overlayfs snapshotter. */
function node(): FakeContainerd {
  const c = new FakeContainerd();
  const k8s = c.ns("k8s.io");
  k8s.content = [
    blob("sha256:shared", 1000),
    blob("sha256:cfg", 10, [["containerd.io/gc.ref.snapshot.overlayfs", "sha256:top"]]),
  ];
  k8s.snapshots = [
    { key: "sha256:top", parent: null, kind: "Committed" },
    { key: "w1", parent: "sha256:top", kind: "Active" },
  ];
  k8s.usage = new Map([["sha256:top", 4096], ["w1", 8192]]);
  const def = c.ns("default");
  def.content = [blob("sha256:shared", 1000), blob("sha256:own", 5)];
  def.snapshots = [{ key: "sha256:x", parent: null, kind: "Committed" }];
  def.usage = new Map([["sha256:x", 100]]);
  return c;
}

Deno.test("measureStore(): the content store (each digest once) plus every snapshot's bytes", async () => {
  const c = node();
  assert.equal(await measureStore(c, ["default", "k8s.io"]), 1000 + 10 + 5 + 4096 + 8192 + 100);
  assert.deepEqual(c.callsOf("snapshotUsage").sort(), [["default"], ["k8s.io", "overlayfs"]]);
});

Deno.test("a planning pass measures each snapshotter once; the double check's passes do not", async () => {
  const c = node();
  c.ns("k8s.io").images = [imageRow("a:1", "sha256:idx")];
  const snap = await snapshotNamespace(c, "k8s.io");
  assert.deepEqual(
    snap.usage,
    new Map([["overlayfs", new Map([["sha256:top", 4096], ["w1", 8192]])]]),
  );
  assert.deepEqual(c.callsOf("snapshotUsage"), [["k8s.io", "overlayfs"]]);
  const quiet = await snapshotNamespace(c, "k8s.io", { usage: false });
  assert.equal(quiet.usage?.size, 0);
  assert.equal(c.callsOf("snapshotUsage").length, 1, "no usage without `usage`");
});

Deno.test("a failing snapshot usage is reported on the snapshot, the listing goes on", async () => {
  const c = node();
  c.ns("k8s.io").images = [imageRow("a:1", "sha256:idx")];
  c.fault = (method) => {
    if (method === "snapshotUsage") throw new Error("walk failed");
  };
  const snap = await snapshotNamespace(c, "k8s.io");
  assert.match(snap.usageError ?? "", /ctr snapshot usage of overlayfs failed: walk failed/);
  assert.equal(snap.snapshots?.length, 2);
  assert.equal(snap.snapshotsError, undefined);
});
