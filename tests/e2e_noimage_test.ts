/**
 * End to end: a container made from a host directory (`ctr run --rootfs`: no image, no snapshot
 * key, as classic Docker's containers look in `moby`) uses no image, so it does not stop prune in
 * its namespace. On a real containerd: the old unused image goes, the image-less container keeps
 * running untouched, and the image another container runs from stays and still runs.
 */
import assert from "node:assert/strict";
import { withContainerd } from "./support/containerd.ts";
import { runCtre, tempStateDir } from "./support/cli.ts";
import { assertKeptImagesRun } from "./support/runnable.ts";

const DAY = 86400;
const img = (name: string) => `docker.io/library/${name}:1`;

for (const ns of ["moby", "default"]) {
  Deno.test({
    name: `ctre prune in ${ns}: a container without image or snapshot uses no image`,
    async fn() {
      await withContainerd(async (c) => {
        const stateDir = await tempStateDir();
        try {
          const old = await c.importImage(ns, img("old"), "old");
          const used = await c.importImage(ns, img("used"), "used");
          await c.ageContent(ns, [old, used], 30 * DAY);
          await c.run(ns, img("used"), "c-used");
          const rootfs = await c.runRootfs(ns, "c-noimg");
          // How ctr shows it on this version: no image, no snapshot key, no snapshotter.
          const info = JSON.parse(await c.ctrOk(["-n", ns, "containers", "info", "c-noimg"]));
          assert.deepEqual([info.Image, info.SnapshotKey, info.Snapshotter], ["", "", ""]);
          assert.equal(info.Labels?.["com.docker/engine.bundle.path"], undefined);
          assert.ok(
            !(await c.ctrOk(["-n", ns, "snapshot", "ls"])).includes("c-noimg"),
            "no snapshot of the rootfs container",
          );

          const r = await runCtre(
            ["prune", "-f", "--json", "--min-age", "1d", "--double-check", "0"],
            { address: c.address, stateDir },
          );
          assert.equal(r.code, 0, r.stderr);
          assert.doesNotMatch(r.stderr, /Cannot tell which image/);
          const doc = JSON.parse(r.stdout);
          assert.deepEqual(doc.removal.removed, [{ namespace: ns, ref: img("old") }]);
          const kept = doc.images.find((i: { refs: string[] }) => i.refs.includes(img("used")));
          assert.deepEqual(
            [kept.decision, kept.reason, kept.users.map((u: { id: string }) => u.id)],
            ["keep", "in-use", ["c-used"]],
          );
          assert.deepEqual(await c.imageRefs(ns), [img("used")]);
          assert.deepEqual(await c.containerIds(ns), ["c-noimg", "c-used"]);
          const tasks = await c.taskStatuses(ns);
          assert.equal(tasks.get("c-noimg"), "RUNNING");
          assert.equal(tasks.get("c-used"), "RUNNING");
          assert.ok((await Deno.stat(`${rootfs}/bin/busybox`)).isFile, "its rootfs untouched");
          assert.deepEqual(await assertKeptImagesRun(c, [ns]), [`${ns} ${img("used")}`]);
        } finally {
          await Deno.remove(stateDir, { recursive: true });
        }
      });
    },
  });
}
