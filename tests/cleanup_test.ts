/**
 * cleanupContainers() against the typed fake containerd: which containers are inspected, which
 * go, which stay, and how failures are reported.
 */
import assert from "node:assert/strict";
import { cleanupContainers, FRESH_CONTAINER_SECONDS } from "../lib/prune/containers.ts";
import { containerInfo, FakeContainerd } from "./support/fake_containerd.ts";

const NOW = Date.parse("2026-11-27T12:00:00Z") / 1000;
const NS = "default";

const POD = {
  "io.kubernetes.pod.namespace": "web",
  "io.kubernetes.pod.name": "web-1",
  "io.kubernetes.container.name": "nginx",
};

/** A node: a running pod container, a stopped pod container, a stopped plain one, a fresh and an
 * old task-less one, a dockerd one without image, and a stopped one with no labels at all. */
function node(cri: Set<string> = new Set()): FakeContainerd {
  const c = new FakeContainerd();
  const s = c.ns(NS);
  const all: [string, string | null][] = [
    ["k-run", "nginx:1"],
    ["k-stopped", "nginx:1"],
    ["plain-stopped", "x:1"],
    ["fresh", "x:1"],
    ["old", "x:1"],
    ["moby", null],
    ["k-nolabels", "x:1"],
  ];
  s.containers = all.map(([id, image]) => ({ id, image, runtime: "io.containerd.runc.v2" }));
  for (const [id] of all) {
    const labels: Record<string, string> = {};
    if (id.startsWith("k-")) labels["io.kubernetes.pod.name"] = id;
    if (cri.has(id)) labels["io.cri-containerd.kind"] = "container";
    s.labels.set(id, labels);
  }
  s.tasks = [
    ["k-run", "RUNNING"],
    ["k-stopped", "STOPPED"],
    ["plain-stopped", "STOPPED"],
    ["k-nolabels", "STOPPED"],
    ["moby", "STOPPED"],
  ].map(([id, status]) => ({ id: id!, pid: 10, status: status! }));
  const fresh = new Date((NOW - FRESH_CONTAINER_SECONDS / 2) * 1000).toISOString();
  s.infos.set("k-stopped", containerInfo("k-stopped", POD));
  s.infos.set("k-nolabels", containerInfo("k-nolabels", {}));
  s.infos.set("fresh", containerInfo("fresh", { a: "b" }, fresh));
  s.infos.set("old", containerInfo("old", { a: "b" }));
  return c;
}

/** The containers `c` removed. */
function removed(c: FakeContainerd): string[] {
  const left = new Set(c.ns(NS).containers.map((x) => x.id));
  return c.callsOf("removeContainers").flatMap((a) => a[1] as string[])
    .filter((id) => !left.has(id)).sort();
}

/** The containers `c` was asked about. */
function inspected(c: FakeContainerd): string[] {
  return c.callsOf("containerInfo").map((a) => a[1] as string).sort();
}

Deno.test("cleanupContainers() removes stopped and old task-less containers, keeps the rest", async () => {
  const c = node();
  const r = await cleanupContainers(c, NS, NOW);
  assert.deepEqual(removed(c), ["k-stopped", "old", "plain-stopped"]);
  assert.deepEqual(r.deleted.map((c) => c.id).sort(), ["k-stopped", "old", "plain-stopped"]);
  const k = r.deleted.find((c) => c.id === "k-stopped")!;
  assert.deepEqual([k.podNamespace, k.pod, k.container], ["web", "web-1", "nginx"]);
  assert.deepEqual(
    r.kept.map((c) => `${c.id}: ${c.why}`).sort(),
    ["fresh: created recently, may be about to start", "k-run: running"],
  );
  assert.deepEqual(r.skipped.sort(), [
    "default k-nolabels: no labels",
    "default moby: no image (managed by dockerd)",
  ]);
  assert.deepEqual(r.errors, []);
});

Deno.test("cleanupContainers() inspects only pod containers and task-less ones", async () => {
  const c = node();
  await cleanupContainers(c, NS, NOW);
  assert.deepEqual(inspected(c), ["fresh", "k-nolabels", "k-stopped", "old"]);
  assert.equal(c.callsOf("removeContainers").length, 1, "one removal for three containers");
});

Deno.test("cleanupContainers() reports a container ctr would not remove as kept, with why", async () => {
  const c = new FakeContainerd();
  c.ns(NS).containers = [{ id: "a", image: "x:1", runtime: "io.containerd.runc.v2" }];
  c.ns(NS).tasks = [{ id: "a", pid: 0, status: "STOPPED" }];
  c.on.removeContainers = () =>
    Promise.resolve(['level=error msg="failed to delete container \\"a\\""', ""]);
  const r = await cleanupContainers(c, NS, NOW);
  assert.deepEqual(r.deleted, []);
  assert.equal(r.kept.length, 1);
  assert.match(r.kept[0]!.why!, /failed to delete container/);
});

Deno.test("cleanupContainers() leaves kubelet's (CRI) containers alone unless asked", async (t) => {
  const cri = new Set(["k-run", "k-stopped", "k-nolabels"]);
  await t.step("default: kept as managed by kubelet, never inspected", async () => {
    const c = node(cri);
    const r = await cleanupContainers(c, NS, NOW);
    assert.deepEqual(removed(c), ["old", "plain-stopped"]);
    assert.deepEqual(
      r.kept.map((c) => `${c.id}: ${c.why}`).sort(),
      [
        "fresh: created recently, may be about to start",
        "k-nolabels: managed by kubelet",
        "k-run: managed by kubelet",
        "k-stopped: managed by kubelet",
      ],
    );
    assert.deepEqual(inspected(c), ["fresh", "old"]);
  });
  await t.step("kubelet: true: removed like any other stopped container", async () => {
    const c = node(cri);
    const r = await cleanupContainers(c, NS, NOW, { kubelet: true });
    assert.deepEqual(removed(c), ["k-stopped", "old", "plain-stopped"]);
    assert.deepEqual(r.kept.map((c) => `${c.id}: ${c.why}`).sort(), [
      "fresh: created recently, may be about to start",
      "k-run: running",
    ]);
    assert.equal(
      c.callsOf("listContainers").filter((a) => a[1] === "io.cri-containerd.kind").length,
      0,
      "no need to list CRI containers",
    );
  });
});
