/**
 * The ctr calls lineage adds to a planning pass (lib/node/inventory.ts), on real captured listings
 * behind the scripted fake ctr: one `ctr snapshot ls` and one `ctr snapshot usage -b` per
 * namespace; `leases ls` only where active snapshots no container claims exist; `containers info`
 * only of containers whose name disagrees with their lineage; `content get` only for chains no
 * label gives.
 */
import assert from "node:assert/strict";
import { snapshotNamespace } from "../lib/node/inventory.ts";
import { planNamespace } from "../lib/policy/plan.ts";
import { fail, FakeCtr, ok } from "./support/fake_ctr.ts";
import { ctrGateway } from "../lib/ctr/ctr_gateway.ts";

const text = (path: string) =>
  Deno.readTextFileSync(new URL(`./testdata/lineage/${path}`, import.meta.url));
const POLICY = { now: 2_000_000_000, minAge: 0, usedWithin: 0, keep: [] };

function scripted(ns: string, dir: string, files: Record<string, string>, extra = {}) {
  const answers: Record<string, string> = {
    [`-n ${ns} content ls`]: text(`${dir}/${files.content ?? "content_ls.txt"}`),
    [`-n ${ns} image ls`]: text(`${dir}/${files.images ?? "image_ls.txt"}`),
    [`-n ${ns} container ls`]: text(`${dir}/container_ls.txt`),
    [`-n ${ns} snapshot --snapshotter overlayfs ls`]: text(`${dir}/snapshot_ls.txt`),
    [`-n ${ns} leases ls`]: text(`${dir}/leases_ls.txt`),
    // Bytes per snapshot (another scenario's keys: only the call is checked here).
    [`-n ${ns} snapshot --snapshotter overlayfs usage -b`]: Deno.readTextFileSync(
      new URL("./testdata/ctr-2.1/disk_snapshot_usage_b.txt", import.meta.url),
    ),
    ...extra,
  };
  return new FakeCtr((args) => {
    const a = answers[args.join(" ")];
    return a === undefined ? fail(`ctr: not scripted: ${args.join(" ")}\n`) : ok(a);
  });
}

Deno.test("plain containers whose names agree: two extra ctr calls (snapshot usage, ls)", async () => {
  const ctr = scripted("default", "ctr-2.1", {
    content: "content_ls_lineage.txt",
    images: "image_ls_lineage.txt",
  });
  const snap = await snapshotNamespace(ctrGateway(ctr), "default");
  assert.deepEqual(ctr.calls.map((c) => c.slice(2).join(" ")), [
    "content ls",
    "image ls",
    "container ls",
    "snapshot --snapshotter overlayfs usage -b",
    "snapshot --snapshotter overlayfs ls",
  ]);
  assert.equal(ctr.spawned, 5, "the three listings, the snapshots' usage and one for lineage");
  const plan = planNamespace(snap, new Map(), POLICY);
  assert.deepEqual(plan.images.map((i) => [i.refs[0], i.reason]), [
    ["docker.io/library/a:1", "in-use"],
    ["docker.io/library/b:1", "in-use"],
  ]);
});

Deno.test("docker: stopped containers' snapshots make it list leases (three extra calls)", async () => {
  const ctr = scripted("moby", "docker-2.1", {});
  const snap = await snapshotNamespace(ctrGateway(ctr), "moby");
  assert.deepEqual(ctr.calls.slice(3).map((c) => c.slice(2).join(" ")), [
    "snapshot --snapshotter overlayfs usage -b",
    "snapshot --snapshotter overlayfs ls",
    "leases ls",
  ]);
  const plan = planNamespace(snap, new Map(), POLICY);
  const decided = Object.fromEntries(plan.images.map((i) => [i.refs[0], i.decision]));
  assert.equal(decided["docker.io/library/unused:1"], "prune");
  assert.equal(decided["docker.io/library/stop:1"], "keep");
  assert.equal(decided["docker.io/library/two:1"], "keep");
  assert.equal(decided["docker.io/library/run:1"], "keep");
  assert.deepEqual(plan.warnings, []);
});

Deno.test("a chain no label gives is computed from the config (one content get)", async () => {
  const content = text("ctr-2.1/content_ls_lineage.txt")
    .replace(/containerd\.io\/gc\.ref\.snapshot\.overlayfs=sha256:472a2e[0-9a-f]+/, "-");
  const config = /^(sha256:[0-9a-f]{64})\t[^\n]*\t-$/m.exec(content)![1]!;
  const ctr = scripted("default", "ctr-2.1", {
    content: "content_ls_lineage.txt",
    images: "image_ls_lineage.txt",
  }, {
    "-n default content ls": content,
    [`-n default content get ${config}`]: JSON.stringify({
      rootfs: {
        type: "layers",
        diff_ids: ["sha256:472a2e6e947f1ed34eee4e3e371f6ccb9e43cdb2cc933eefd3a416dc9fe50320"],
      },
    }),
  });
  const snap = await snapshotNamespace(ctrGateway(ctr), "default");
  assert.deepEqual(ctr.calls.slice(3).map((c) => c.slice(2).join(" ")), [
    "snapshot --snapshotter overlayfs usage -b",
    "snapshot --snapshotter overlayfs ls",
    `content get ${config}`,
  ]);
  const a = snap.images.find((i) => i.ref === "docker.io/library/a:1")!;
  assert.deepEqual([...snap.chains!.get(a.digest)!], [
    "sha256:472a2e6e947f1ed34eee4e3e371f6ccb9e43cdb2cc933eefd3a416dc9fe50320",
  ]);
});

Deno.test("a failing snapshot listing keeps every image and says why", async () => {
  const ctr = scripted("moby", "docker-2.1", {});
  const failing = new FakeCtr((args) =>
    args.includes("snapshot") ? fail("ctr: snapshotter not loaded: overlayfs\n") : ctr.run(args)
  );
  const snap = await snapshotNamespace(ctrGateway(failing), "moby");
  const plan = planNamespace(snap, new Map(), POLICY);
  assert.ok(plan.images.every((i) => i.decision === "keep" && i.reason === "in-use"));
  assert.match(plan.warnings.join("\n"), /snapshotter not loaded/);
});
