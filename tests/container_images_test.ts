/** The recorder's image cache against the typed fake containerd: what it asks, and when. */
import assert from "node:assert/strict";
import { ContainerdImageCache } from "../lib/recorder/container_images.ts";
import type { CtrEvent } from "../lib/ctr/events.ts";
import { containerInfo, FakeContainerd } from "./support/fake_containerd.ts";

const NS = "k8s.io";
const REF = "docker.io/library/nginx:1.25";

function event(topic: string, payload: Record<string, unknown>, ns = NS): CtrEvent {
  return { time: 1_800_000_000, ns, topic, payload };
}

function setup() {
  const errors: string[] = [];
  const containerd = new FakeContainerd();
  return {
    cache: new ContainerdImageCache(containerd, (text) => errors.push(text)),
    containerd,
    errors,
  };
}

Deno.test("ContainerdImageCache.refsOf() answers from events without asking containerd", async (t) => {
  await t.step("a container with an image", async () => {
    const { cache, containerd } = setup();
    cache.observe(event("/containers/create", { id: "c1", image: REF }));
    assert.deepEqual(await cache.refsOf(NS, "c1", true), [REF]);
    assert.deepEqual(containerd.calls, []);
  });
  await t.step("a container the update gave another image", async () => {
    const { cache, containerd } = setup();
    cache.observe(event("/containers/create", { id: "c1", image: REF }));
    cache.observe(event("/containers/update", { id: "c1", image: "x:2" }));
    assert.deepEqual(await cache.refsOf(NS, "c1", false), ["x:2"]);
    assert.deepEqual(containerd.calls, []);
  });
});

Deno.test("ContainerdImageCache.refsOf() asks once for a container it never saw", async () => {
  const { cache, containerd, errors } = setup();
  containerd.ns(NS).infos.set("c9", containerInfo("c9", {}, undefined, REF));
  assert.deepEqual(await cache.refsOf(NS, "c9", true), [REF]);
  assert.deepEqual(await cache.refsOf(NS, "c9", false), [REF]);
  assert.deepEqual(containerd.calls, [["containerInfo", NS, "c9"]], "remembered");
  assert.deepEqual(errors, []);
});

Deno.test("ContainerdImageCache.refsOf() is undefined for a vanished container, and says so", async () => {
  const { cache, errors } = setup();
  assert.equal(await cache.refsOf(NS, "c9", true), undefined);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /^container k8s\.io c9 is already gone, skipping \(ctr: container/);
});

Deno.test("ContainerdImageCache forgets a deleted container", async () => {
  const { cache, containerd } = setup();
  cache.observe(event("/containers/create", { id: "c1", image: REF }));
  cache.observe(event("/containers/delete", { id: "c1" }));
  assert.equal(await cache.refsOf(NS, "c1", true), undefined);
  assert.equal(containerd.calls.length, 1, "asked again");
});

Deno.test("ContainerdImageCache.resync() replaces what it knew with the containers listed", async () => {
  const { cache, containerd } = setup();
  containerd.ns(NS).containers = [{ id: "c1", image: REF, runtime: "io.containerd.runc.v2" }];
  cache.observe(event("/containers/create", { id: "old", image: "x:1" }));
  assert.deepEqual(await cache.resync(), [{ ns: NS, id: "c1" }]);
  assert.deepEqual([...cache.images], [[`${NS} c1`, REF]]);
});

Deno.test("ContainerdImageCache.volumeMounted() is empty for a snapshot that is no image volume", async () => {
  const { cache, containerd } = setup();
  assert.deepEqual(await cache.volumeMounted(NS, "k8s.io/12/abc"), []);
  assert.deepEqual(cache.volumeRemoved(NS, "k8s.io/12/abc"), []);
  assert.deepEqual(containerd.calls, []);
});

Deno.test("SnapshotParents follows prepare and commit to a container's chain", () => {
  const { cache } = setup();
  const e = (topic: string, payload: Record<string, unknown>) =>
    cache.observe(event(topic, payload));
  e("/snapshot/prepare", { key: "extract-1 sha256:l1", parent: "" });
  e("/snapshot/commit", { key: "extract-1 sha256:l1", name: "sha256:l1" });
  e("/snapshot/prepare", { key: "extract-2 sha256:l2", parent: "sha256:l1" });
  e("/snapshot/commit", { key: "extract-2 sha256:l2", name: "sha256:l2" });
  e("/snapshot/prepare", { key: "c1", parent: "sha256:l2" });
  assert.deepEqual(cache.snapshots.chain(NS, "c1"), [
    { key: "c1", parent: "sha256:l2", kind: "Active" },
    { key: "sha256:l2", parent: "sha256:l1", kind: "Committed" },
    { key: "sha256:l1", parent: null, kind: "Committed" },
  ]);
  e("/snapshot/remove", { key: "c1" });
  assert.deepEqual(cache.snapshots.chain(NS, "c1"), []);
});
