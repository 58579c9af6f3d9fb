import assert from "node:assert/strict";
import { CtrImageCache } from "../lib/recorder/container_images.ts";
import type { CtrEvent } from "../lib/ctr/events.ts";
import { fail, FakeCtr, ok } from "./support/fake_ctr.ts";

const NS = "k8s.io";
const REF = "docker.io/library/nginx:1.25";

function event(topic: string, payload: Record<string, unknown>, ns = NS): CtrEvent {
  return { time: 1_800_000_000, ns, topic, payload };
}

function setup(script: (args: string[]) => ReturnType<typeof ok> = () => fail("unexpected\n")) {
  const errors: string[] = [];
  const ctr = new FakeCtr(script);
  return { cache: new CtrImageCache(ctr, (text) => errors.push(text)), ctr, errors };
}

Deno.test("CtrImageCache.refsOf() answers from events without calling ctr", async (t) => {
  await t.step("a container with an image", async () => {
    const { cache, ctr } = setup();
    cache.observe(event("/containers/create", { id: "c1", image: REF }));
    assert.deepEqual(await cache.refsOf(NS, "c1", true), [REF]);
    assert.deepEqual(ctr.calls, []);
  });
  await t.step("a container the update gave another image", async () => {
    const { cache, ctr } = setup();
    cache.observe(event("/containers/create", { id: "c1", image: REF }));
    cache.observe(event("/containers/update", { id: "c1", image: "x:2" }));
    assert.deepEqual(await cache.refsOf(NS, "c1", false), ["x:2"]);
    assert.deepEqual(ctr.calls, []);
  });
});

Deno.test("CtrImageCache.refsOf() asks ctr once for a container it never saw", async () => {
  const info = JSON.stringify({ ID: "c9", Image: REF, SnapshotKey: "c9", Labels: {} });
  const { cache, ctr, errors } = setup((args) =>
    args.join(" ") === `-n ${NS} containers info c9` ? ok(info) : fail("unexpected\n")
  );
  assert.deepEqual(await cache.refsOf(NS, "c9", true), [REF]);
  assert.deepEqual(await cache.refsOf(NS, "c9", false), [REF]);
  assert.equal(ctr.calls.length, 1, "remembered");
  assert.deepEqual(errors, []);
});

Deno.test("CtrImageCache.refsOf() is undefined for a vanished container, and says so", async () => {
  const { cache, errors } = setup(() =>
    fail('ctr: container "c9" in namespace "k8s.io": not found\n')
  );
  assert.equal(await cache.refsOf(NS, "c9", true), undefined);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /^container k8s\.io c9 is already gone, skipping \(ctr: container/);
});

Deno.test("CtrImageCache forgets a deleted container", async () => {
  const { cache, ctr } = setup(() => fail("not found\n"));
  cache.observe(event("/containers/create", { id: "c1", image: REF }));
  cache.observe(event("/containers/delete", { id: "c1" }));
  assert.equal(await cache.refsOf(NS, "c1", true), undefined);
  assert.equal(ctr.calls.length, 1, "asked ctr again");
});

Deno.test("CtrImageCache.resync() replaces what it knew with ctr container ls", async () => {
  const row = (a: string, b: string, c: string) => `${a.padEnd(13)}${b.padEnd(36)}${c}\n`;
  const ls = row("CONTAINER", "IMAGE", "RUNTIME") + row("c1", REF, "io.containerd.runc.v2");
  const { cache } = setup((args) => {
    const cmd = args.join(" ");
    if (cmd === "namespace ls -q") return ok(`${NS}\n`);
    if (cmd === `-n ${NS} container ls`) return ok(ls);
    return fail("unexpected\n");
  });
  cache.observe(event("/containers/create", { id: "old", image: "x:1" }));
  await cache.resync();
  assert.deepEqual([...cache.images], [[`${NS} c1`, REF]]);
});

Deno.test("CtrImageCache.volumeMounted() is empty for a snapshot that is no image volume", async () => {
  const { cache, ctr } = setup();
  assert.deepEqual(await cache.volumeMounted(NS, "k8s.io/12/abc"), []);
  assert.deepEqual(cache.volumeRemoved(NS, "k8s.io/12/abc"), []);
  assert.deepEqual(ctr.calls, []);
});
