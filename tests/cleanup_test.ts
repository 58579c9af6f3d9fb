/**
 * cleanupContainers() and pruneContent() with a scripted ctr: which containers are inspected,
 * which go, which stay, and how failures are reported.
 */
import assert from "node:assert/strict";
import {
  cleanupContainers,
  FRESH_CONTAINER_SECONDS,
  pruneContent,
} from "../lib/prune/containers.ts";
import { fail, FakeCtr, ok } from "./support/fake_ctr.ts";

const NOW = Date.parse("2026-11-27T12:00:00Z") / 1000;

function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)) + 4);
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("")).join("\n") + "\n";
}

function containerLs(rows: [string, string][]): string {
  return table(
    ["CONTAINER", "IMAGE", "RUNTIME"],
    rows.map(([id, img]) => [id, img, "io.containerd.runc.v2"]),
  );
}

function info(id: string, labels: Record<string, string> | null, updated: string): string {
  return JSON.stringify(
    { ID: id, Labels: labels, Image: "x:1", CreatedAt: "2026-11-01T00:00:00Z", UpdatedAt: updated },
    null,
    4,
  );
}

const POD = {
  "io.kubernetes.pod.namespace": "web",
  "io.kubernetes.pod.name": "web-1",
  "io.kubernetes.container.name": "nginx",
};

/** A node: a running pod container, a stopped pod container, a stopped plain one, a fresh and an
 * old task-less one, a dockerd one without image, and a stopped one with no labels at all. */
function node(removed: Set<string>, cri: Set<string> = new Set()) {
  const all: [string, string][] = [
    ["k-run", "nginx:1"],
    ["k-stopped", "nginx:1"],
    ["plain-stopped", "x:1"],
    ["fresh", "x:1"],
    ["old", "x:1"],
    ["moby", "-"],
    ["k-nolabels", "x:1"],
  ];
  return new FakeCtr((args) => {
    const cmd = args.slice(2).join(" ");
    if (cmd === "container ls") return ok(containerLs(all.filter(([id]) => !removed.has(id))));
    if (cmd === 'container ls labels."io.kubernetes.pod.name"') {
      return ok(containerLs(all.filter(([id]) => id.startsWith("k-") && !removed.has(id))));
    }
    if (cmd === 'container ls labels."io.cri-containerd.kind"') {
      return ok(containerLs(all.filter(([id]) => cri.has(id) && !removed.has(id))));
    }
    if (cmd === "task ls") {
      return ok(table(["TASK", "PID", "STATUS"], [
        ["k-run", "10", "RUNNING"],
        ["k-stopped", "0", "STOPPED"],
        ["plain-stopped", "0", "STOPPED"],
        ["k-nolabels", "0", "STOPPED"],
        ["moby", "0", "STOPPED"],
      ]));
    }
    if (args[2] === "containers" && args[3] === "info") {
      const id = args[4]!;
      if (id === "k-stopped") return ok(info(id, POD, "2026-11-20T00:00:00Z"));
      if (id === "k-nolabels") return ok(info(id, null, "2026-11-20T00:00:00Z"));
      const fresh = new Date((NOW - FRESH_CONTAINER_SECONDS / 2) * 1000).toISOString();
      if (id === "fresh") return ok(info(id, { a: "b" }, fresh));
      if (id === "old") return ok(info(id, { a: "b" }, "2026-11-20T00:00:00Z"));
      return fail(`ctr: container "${id}" in namespace "default": not found`);
    }
    if (args[2] === "containers" && args[3] === "rm") {
      for (const id of args.slice(4)) removed.add(id);
      return ok();
    }
    return fail(`unexpected ${args.join(" ")}`);
  });
}

Deno.test("cleanupContainers() removes stopped and old task-less containers, keeps the rest", async () => {
  const removed = new Set<string>();
  const ctr = node(removed);
  const r = await cleanupContainers(ctr, "default", NOW);
  assert.deepEqual([...removed].sort(), ["k-stopped", "old", "plain-stopped"]);
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
  const ctr = node(new Set());
  await cleanupContainers(ctr, "default", NOW);
  const inspected = ctr.runs.filter((a) => a[3] === "info").map((a) => a[4]).sort();
  assert.deepEqual(inspected, ["fresh", "k-nolabels", "k-stopped", "old"]);
  const rms = ctr.runs.filter((a) => a[3] === "rm");
  assert.equal(rms.length, 1, "one ctr containers rm for three containers");
});

Deno.test("cleanupContainers() reports a container ctr would not remove as kept, with why", async () => {
  const ctr = new FakeCtr((args) => {
    const cmd = args.slice(2).join(" ");
    if (cmd.startsWith("container ls labels")) return ok(containerLs([]));
    if (cmd === "container ls") return ok(containerLs([["a", "x:1"]]));
    if (cmd === "task ls") return ok(table(["TASK", "PID", "STATUS"], [["a", "0", "STOPPED"]]));
    if (args[3] === "rm") return fail('level=error msg="failed to delete container \\"a\\""');
    return fail("unexpected");
  });
  const r = await cleanupContainers(ctr, "default", NOW);
  assert.deepEqual(r.deleted, []);
  assert.equal(r.kept.length, 1);
  assert.match(r.kept[0]!.why!, /failed to delete container/);
});

Deno.test("pruneContent() retries once on the transient not-found error", async (t) => {
  await t.step("succeeds on the second try", async () => {
    let tries = 0;
    let blobs = 5;
    const ctr = new FakeCtr((args) => {
      if (args.includes("prune")) {
        tries++;
        if (tries === 1) return fail("ctr: content digest sha256:ab: not found");
        blobs = 2;
        return ok();
      }
      return ok(Array.from({ length: blobs }, (_, i) => `sha256:${i}`).join("\n") + "\n");
    });
    assert.deepEqual(await pruneContent(ctr, "k8s.io"), { before: 5, after: 2 });
    assert.equal(tries, 2);
  });
  await t.step("another failure is reported, not retried", async () => {
    let tries = 0;
    const ctr = new FakeCtr((args) => {
      if (args.includes("prune")) {
        tries++;
        return fail("ctr: permission denied");
      }
      return ok("sha256:1\n");
    });
    const r = await pruneContent(ctr, "default");
    assert.equal(tries, 1);
    assert.match(r.error!, /permission denied/);
  });
});

Deno.test("cleanupContainers() leaves kubelet's (CRI) containers alone unless asked", async (t) => {
  const cri = new Set(["k-run", "k-stopped", "k-nolabels"]);
  await t.step("default: kept as managed by kubelet, never inspected", async () => {
    const removed = new Set<string>();
    const ctr = node(removed, cri);
    const r = await cleanupContainers(ctr, "default", NOW);
    assert.deepEqual([...removed].sort(), ["old", "plain-stopped"]);
    assert.deepEqual(
      r.kept.map((c) => `${c.id}: ${c.why}`).sort(),
      [
        "fresh: created recently, may be about to start",
        "k-nolabels: managed by kubelet",
        "k-run: managed by kubelet",
        "k-stopped: managed by kubelet",
      ],
    );
    const inspected = ctr.runs.filter((a) => a[3] === "info").map((a) => a[4]).sort();
    assert.deepEqual(inspected, ["fresh", "old"]);
  });
  await t.step("kubelet: true: removed like any other stopped container", async () => {
    const removed = new Set<string>();
    const ctr = node(removed, cri);
    const r = await cleanupContainers(ctr, "default", NOW, { kubelet: true });
    assert.deepEqual([...removed].sort(), ["k-stopped", "old", "plain-stopped"]);
    assert.deepEqual(r.kept.map((c) => `${c.id}: ${c.why}`).sort(), [
      "fresh: created recently, may be about to start",
      "k-run: running",
    ]);
    assert.equal(
      ctr.runs.filter((a) => a.includes('labels."io.cri-containerd.kind"')).length,
      0,
      "no need to list CRI containers",
    );
  });
});
