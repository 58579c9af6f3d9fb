/**
 * `ctre df` (lib/ops/df.ts) against a node in memory: the document's shape, and that its
 * reclaimable bytes are what a forced prune with the same flags then predicts and frees.
 */
import assert from "node:assert/strict";
import { dfDocument, dfTable } from "../lib/ops/df.ts";
import { prune, type PruneOptions } from "../lib/prune/prune.ts";
import { FakeIo } from "./support/fake_io.ts";
import { FakeNode, SNAPSHOT_BYTES } from "./support/fake_node.ts";

const DAY = 86400;
const img = (name: string) => `docker.io/library/${name}:1`;

async function options(over: Partial<PruneOptions> = {}): Promise<PruneOptions> {
  return {
    mode: "dry-run",
    minAge: 14 * DAY,
    usedWithin: 14 * DAY,
    doubleCheck: 0,
    stateDir: await Deno.makeTempDir({ prefix: "ctre-df-test-" }),
    namespaces: [],
    keep: [],
    containerCleanup: false,
    contentPrune: true,
    json: true,
    verbose: false,
    metrics: false,
    budget: null,
    ...over,
  };
}

/** default: old (prunable), run (a running container), new (too young); k8s.io: old too. */
function node(): FakeNode {
  const n = new FakeNode();
  n.addImage("default", img("old"));
  // The same image pulled in k8s.io too: its blobs once on the node, its own snapshot there.
  const [d, k] = [n.ns("default"), n.ns("k8s.io")];
  for (const [digest, b] of d.content) k.content.set(digest, { ...b, labels: new Map(b.labels) });
  k.snapshots.push(...d.snapshots.map((x) => ({ ...x })));
  k.images.set(img("old"), { ...d.images.get(img("old"))! });
  n.addImage("default", img("run"));
  n.addContainer("default", "c-run", img("run"), "RUNNING");
  n.addImage("default", img("new"), { age: "2 days" });
  return n;
}

Deno.test("ctre df: per namespace and total; reclaimable is what the forced prune frees", async () => {
  const n = node();
  const prune0 = await options();
  const doc = await dfDocument(
    n.containerd,
    { prune: prune0, root: "/nonexistent-root" },
    new FakeIo(),
  );
  assert.equal(doc.schemaVersion, 1);
  assert.equal(doc.filesystem, null);
  assert.match(doc.filesystemError!, /cannot measure the filesystem of "\/nonexistent-root"/);
  assert.deepEqual(doc.namespaces.map((x) => x.namespace), ["default", "k8s.io"]);
  const [d, k] = doc.namespaces;
  assert.equal(d!.images.count, 3);
  assert.equal(d!.containers.count, 1);
  assert.equal(d!.images.snapshotBytes, 3 * SNAPSHOT_BYTES);
  // The same old:1 in both namespaces: one set of blobs on the node, a snapshot in each.
  assert.equal(doc.total.images.contentBytes, d!.images.contentBytes);
  assert.equal(doc.total.images.snapshotBytes, 4 * SNAPSHOT_BYTES);
  // Pruning one namespace alone frees its snapshot, not the blobs the other still holds.
  assert.equal(k!.images.reclaimableBytes, SNAPSHOT_BYTES);
  assert.ok(doc.total.images.reclaimableBytes > d!.images.reclaimableBytes + SNAPSHOT_BYTES);
  const table = dfTable(doc);
  assert.match(table[0]!, /^NAMESPACE +IMAGES +CONTENT +SNAPSHOTS +RECLAIMABLE/);
  assert.match(table.at(-2)!, /^TOTAL /);
  assert.match(table.at(-1)!, /^Filesystem: unknown \(cannot measure/);

  const before = n.storeBytes();
  const io = new FakeIo();
  const forced = { ...prune0, mode: "force" as const, root: "/nonexistent-root" };
  assert.equal(await prune(n.containerd, forced, io), 0, io.stderr.text);
  const disk = JSON.parse(io.stdout.text).disk;
  const predicted = disk.predicted.contentBytes + disk.predicted.snapshotBytes;
  assert.equal(predicted, doc.total.images.reclaimableBytes);
  assert.equal(disk.measured.contentBytes + disk.measured.snapshotBytes, before - n.storeBytes());
  assert.equal(before - n.storeBytes(), predicted, "the fake's GC frees exactly that");
  assert.equal(disk.filesystemBytes, null);
  assert.match(io.stderr.text, /^Freed on disk, by the filesystem: unknown \(cannot measure/m);
});

Deno.test("ctre df -n: the namespaces left out still hold the blobs they share", async () => {
  const n = node();
  const only = await options({ namespaces: ["k8s.io"] });
  const doc = await dfDocument(
    n.containerd,
    { prune: only, root: "/nonexistent-root" },
    new FakeIo(),
  );
  assert.deepEqual(doc.namespaces.map((x) => x.namespace), ["k8s.io"]);
  // old:1's blobs are default's too: pruning k8s.io frees its snapshot only.
  assert.equal(doc.total.images.reclaimableBytes, SNAPSHOT_BYTES);
  assert.equal(doc.total.images.count, 1);
  assert.deepEqual(doc.total.unreferenced, { contentBytes: 0, snapshotBytes: 0 });
});
