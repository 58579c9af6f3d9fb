/**
 * Proves the end-to-end harness (tests/support/containerd.ts) against the real containerd: a
 * private daemon, offline images, running/created/exited containers, aged content, restarts,
 * and a cleanup that leaves no mounts, processes, cgroups or files behind.
 */
import assert from "node:assert/strict";
import {
  cgroupDirsOf,
  mountsUnder,
  processesReferencing,
  TestContainerd,
  withContainerd,
} from "./support/containerd.ts";
import { buildOciImage } from "./support/oci_image.ts";

const REF_A = "docker.io/library/ctre-a:1";
const REF_B = "docker.io/library/ctre-b:1";

/** Content ls rows by digest: [digest, size, age, labels] (cells are tab-separated). */
function contentRows(out: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of out.split("\n").slice(1)) {
    const cells = line.split(/\t+/);
    if (cells[0]) rows.set(cells[0], cells);
  }
  return rows;
}

async function assertNothingLeft(c: TestContainerd): Promise<void> {
  assert.deepEqual(await mountsUnder(c.dir), [], "mounts left under the temp dir");
  assert.deepEqual(await processesReferencing(c.dir), [], "processes left referencing the dir");
  await assert.rejects(Deno.lstat(c.dir), Deno.errors.NotFound, "temp dir still exists");
  assert.deepEqual(await cgroupDirsOf(c.dir), [], "cgroups left");
}

Deno.test("oci_image: deterministic, one digest per variant", async () => {
  const a1 = await buildOciImage(REF_A, "one");
  const a2 = await buildOciImage(REF_A, "one");
  const b = await buildOciImage(REF_A, "two");
  assert.equal(a1.manifest.digest, a2.manifest.digest);
  assert.deepEqual(a1.tar, a2.tar);
  assert.notEqual(a1.manifest.digest, b.manifest.digest);
  assert.notEqual(a1.layer.digest, b.layer.digest);
  assert.match(a1.manifest.digest, /^sha256:[0-9a-f]{64}$/);
});

Deno.test("harness: a private containerd with images, containers, aged content", async (t) => {
  const c = await TestContainerd.start();
  let digestA = "";
  let digestB = "";
  try {
    await t.step("starts on its own socket", async () => {
      assert.ok(c.dir.includes("/ctre-e2e-"), c.dir);
      assert.equal(c.address, `${c.dir}/containerd.sock`);
      const version = await c.ctrOk(["version"]);
      assert.match(version, /Server:\n\s+Version:/);
      assert.ok(["overlayfs", "native"].includes(c.snapshotter), c.snapshotter);
      const config = await Deno.readTextFile(c.configPath);
      assert.match(config, /"io\.containerd\.grpc\.v1\.cri"/);
    });

    await t.step("imports two variants with different digests", async () => {
      digestA = await c.importImage("default", REF_A, "a", [`${REF_A}-alias`]);
      digestB = await c.importImage("default", REF_B, "b");
      assert.match(digestA, /^sha256:[0-9a-f]{64}$/);
      assert.notEqual(digestA, digestB);
      const refs = (await c.ctrOk(["-n", "default", "image", "ls", "-q"])).trim().split("\n");
      assert.deepEqual(refs.sort(), [REF_A, `${REF_A}-alias`, REF_B].sort());
      const images = await c.ctrOk(["-n", "default", "image", "ls"]);
      assert.equal(images.split(digestA).length - 1, 2, "both refs of A show A's digest");
    });

    await t.step("labels an image", async () => {
      await c.label("default", REF_B, "io.cri-containerd.pinned=pinned");
      const images = await c.ctrOk(["-n", "default", "image", "ls"]);
      const line = images.split("\n").find((l) => l.startsWith(REF_B + " "));
      assert.ok(line?.includes("io.cri-containerd.pinned=pinned"), images);
    });

    await t.step("runs, creates, and runs-to-exit containers", async () => {
      await c.run("default", REF_A, "running");
      await c.create("default", REF_A, "created");
      await c.runToExit("default", REF_B, "exited");
      const tasks = await c.taskStatuses("default");
      assert.equal(tasks.get("running"), "RUNNING");
      assert.equal(tasks.get("exited"), "STOPPED");
      assert.equal(tasks.has("created"), false);
      const containers = await c.ctrOk(["-n", "default", "container", "ls", "-q"]);
      assert.deepEqual(containers.trim().split("\n").sort(), ["created", "exited", "running"]);
      // The running container uses the private runc root and cgroup, never the system ones.
      const runcState = await Array.fromAsync(Deno.readDir(`${c.runcRoot}/default`));
      assert.deepEqual(runcState.map((e) => e.name).sort(), ["exited", "running"]);
      const info = JSON.parse(await c.ctrOk(["-n", "default", "container", "info", "running"]));
      assert.equal(info.Snapshotter, c.snapshotter);
      assert.equal(info.Spec.linux.cgroupsPath, c.cgroupPath("default", "running"));
      assert.ok((await mountsUnder(c.dir)).length >= 1, "rootfs of the running task is mounted");
    });

    await t.step("ages content (AGE shows weeks)", async () => {
      const manifestA = digestA;
      await c.ageContent("default", [manifestA], 22 * 24 * 3600);
      const rows = contentRows(await c.ctrOk(["-n", "default", "content", "ls"]));
      assert.equal(rows.get(manifestA)?.[2], "3 weeks");
      assert.notEqual(rows.get(digestB)?.[2], "3 weeks");
      // containerd restarted: the running task survived (its shim kept it).
      assert.equal((await c.taskStatuses("default")).get("running"), "RUNNING");
    });

    await t.step("stops and starts the daemon on the same dir", async () => {
      await c.stopDaemon();
      assert.equal(c.running, false);
      assert.equal((await c.ctr(["--connect-timeout", "1s", "version"])).code, 1);
      await c.startDaemon();
      const refs = await c.ctrOk(["-n", "default", "image", "ls", "-q"]);
      assert.ok(refs.includes(REF_B));
      assert.equal((await c.taskStatuses("default")).get("running"), "RUNNING");
    });
  } finally {
    await c.cleanup();
    await c.cleanup(); // twice is fine
  }
  await assertNothingLeft(c);
});

Deno.test("harness: instances run concurrently with the same container ids", async () => {
  let seen: TestContainerd[] = [];
  await Promise.all([1, 2].map(() =>
    withContainerd(async (c) => {
      seen.push(c);
      await c.importImage("default", REF_A, "a");
      await c.run("default", REF_A, "c1");
      assert.equal((await c.taskStatuses("default")).get("c1"), "RUNNING");
    })
  ));
  assert.equal(seen.length, 2);
  assert.notEqual(seen[0]?.dir, seen[1]?.dir);
  for (const c of seen) await assertNothingLeft(c);
  seen = [];
});

Deno.test("harness: cleanup after the daemon died still removes shims and mounts", async () => {
  const c = await TestContainerd.start();
  try {
    await c.importImage("default", REF_A, "a");
    await c.run("default", REF_A, "c1");
    await c.stopDaemon(); // shim and container keep running without containerd
    const procs = await processesReferencing(c.dir);
    assert.ok(procs.some((p) => p.args.includes("containerd-shim")), JSON.stringify(procs));
  } finally {
    await c.cleanup();
  }
  await assertNothingLeft(c);
});
