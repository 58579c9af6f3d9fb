/**
 * End to end, what images hold on disk (issue 20), on a private containerd whose root is its own
 * loop-mounted ext4 (statfs moves only with containerd): images of random, incompressible layers
 * (a and b share an 8 MB base, c is imported --no-unpack, d runs container w1 which writes
 * 2 MiB into its writable layer).
 * - `ctre df --json` agrees with `du` of the blob files and the snapshot dirs (within 5 %);
 * - a forced prune's predicted bytes agree with what statfs gains (within 10 %), and its own
 *   filesystem figure too;
 * - a --max-store-size above the content store but below content plus snapshots removes images,
 *   least recently used first, until the target is met.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { statfs } from "node:fs/promises";
import { type TestContainerd, withContainerd } from "./support/containerd.ts";
import { PRUNE_NOW, runCtre, tempStateDir } from "./support/cli.ts";
import { diskLayout, MiB, randomLayer } from "./support/disk_images.ts";

const img = (name: string) => `docker.io/library/${name}:1`;
const DAY = 86400;

/** Imports a, b (shared base), c (--no-unpack), d; runs w1 from d and writes 2 MiB in it. */
async function scenario(c: TestContainerd): Promise<void> {
  const base = await randomLayer("base", 6 * MiB, true);
  const shared = await diskLayout([
    { ref: img("a"), layers: [base, await randomLayer("a", 4 * MiB)] },
    { ref: img("b"), layers: [base, await randomLayer("b", 3 * MiB)] },
    { ref: img("d"), layers: [await randomLayer("d", 3 * MiB, true)] },
  ]);
  const packed = await diskLayout([{ ref: img("c"), layers: [await randomLayer("c", 5 * MiB)] }]);
  for (
    const [name, layout, flags] of [["s", shared, []], ["p", packed, ["--no-unpack"]]] as const
  ) {
    const tar = join(c.dir, `${name}.tar`);
    await Deno.writeFile(tar, layout.tar);
    await c.ctrOk(["-n", "default", "image", "import", ...flags, tar]);
    await Deno.remove(tar);
  }
  await c.run("default", img("d"), "w1");
  await c.ctrOk([
    "-n",
    "default",
    "task",
    "exec",
    "--exec-id",
    "write",
    "w1",
    "dd",
    "if=/d.bin",
    "of=/written.bin",
    "bs=1048576",
    "count=2",
  ]);
}

/** `du -sB1` of each path, summed. */
async function du(paths: string[]): Promise<number> {
  const out = await new Deno.Command("du", { args: ["-sB1", "-c", ...paths] }).output();
  const total = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
  return Number(total.split(/\s+/)[0]);
}

/** Free bytes of the root's filesystem, after a sync. */
async function freeBytes(root: string): Promise<number> {
  await new Deno.Command("sync").output();
  const s = await statfs(root);
  return s.bavail * s.bsize;
}

function within(actual: number, expected: number, fraction: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= fraction * expected,
    `${what}: ${actual} is not within ${fraction * 100} % of ${expected}`,
  );
}

const ROOT_SIZE = "300M";

Deno.test({
  name: "ctre df and a forced prune agree with du and statfs (root on its own ext4)",
  async fn(t) {
    await withContainerd(async (c) => {
      const root = join(c.dir, "root");
      const stateDir = await tempStateDir();
      const opts = { address: c.address, stateDir, minFreeRoot: root };
      await scenario(c);
      const blobs = join(root, "io.containerd.content.v1.content", "blobs");
      const snaps = join(root, `io.containerd.snapshotter.v1.${c.snapshotter}`, "snapshots");

      await t.step("df --json: content and snapshots within 5 % of du", async () => {
        const r = await runCtre(["df", "--json", "--min-age", "0", "--root", root], opts);
        assert.equal(r.code, 0, r.stderr);
        const doc = JSON.parse(r.stdout);
        assert.equal(doc.schemaVersion, 1);
        const t = doc.total;
        const content = t.images.contentBytes + t.unreferenced.contentBytes;
        const snapshots = t.images.snapshotBytes + t.containers.writableBytes +
          t.unreferenced.snapshotBytes;
        const [duBlobs, duSnaps] = [await du([blobs]), await du([snaps])];
        // deno-lint-ignore no-console
        console.log(
          `df: content ${content} (du ${duBlobs}), snapshots ${snapshots} (du ${duSnaps})`,
        );
        within(content, duBlobs, 0.05, "content");
        within(snapshots, duSnaps, 0.05, "snapshots");
        assert.ok(t.containers.writableBytes >= 2 * MiB, "w1 wrote 2 MiB");
        assert.equal(t.images.count, 4);
        assert.equal(doc.filesystem.path, root);
        assert.ok(
          doc.filesystem.freeBytes > 0 && doc.filesystem.sizeBytes > doc.filesystem.freeBytes,
        );
        const ns = doc.namespaces.find((n: { namespace: string }) => n.namespace === "default");
        assert.ok(
          ns.images.reclaimableBytes > 0 && ns.images.reclaimableBytes <= content + snapshots,
        );
      });

      await t.step(
        "df without statfs permission: says which flags, still ctr's sizes",
        async () => {
          const r = await runCtre(["df", "--json", "--root", root], {
            address: c.address,
            stateDir,
          });
          assert.equal(r.code, 0, r.stderr);
          const doc = JSON.parse(r.stdout);
          assert.equal(doc.filesystem, null);
          assert.match(doc.filesystemError, /--allow-sys=statfs --allow-read=/);
          assert.ok(doc.total.images.contentBytes > 0);
        },
      );

      await t.step("uniqueBytes of b within 10 % of what removing b alone frees", async () => {
        const dry = await runCtre(
          ["prune", "--dry-run", "--json", "-v", ...PRUNE_NOW.slice(3)],
          opts,
        );
        assert.equal(dry.code, 0, dry.stderr);
        assert.match(dry.stderr, /UNIQUE SIZE +CONTENT +SNAPSHOTS/);
        const images = JSON.parse(dry.stdout).images;
        const by = (n: string) => images.find((i: { refs: string[] }) => i.refs[0] === img(n));
        const [a, b, cc] = [by("a"), by("b"), by("c")];
        // c was never unpacked; a and b share the base: each holds it, neither alone frees it.
        assert.equal(cc.snapshotBytes, 0);
        assert.equal(cc.uniqueBytes, cc.contentBytes);
        // Neither's unique bytes include the 8 MB base: not its blob, not its snapshot.
        for (const x of [a, b]) assert.ok(x.contentBytes + x.snapshotBytes - x.uniqueBytes > 16e6);
        const before = await freeBytes(root);
        const keepAllBut = ["--keep", img("a"), "--keep", img("c"), "--no-content-prune"];
        const r = await runCtre([...PRUNE_NOW, ...keepAllBut, "--root", root], opts);
        assert.equal(r.code, 0, r.stderr);
        const gained = (await freeBytes(root)) - before;
        // deno-lint-ignore no-console
        console.log(`b: uniqueBytes ${b.uniqueBytes}, statfs gained ${gained} removing b alone`);
        within(b.uniqueBytes, gained, 0.10, "b's unique bytes vs statfs");
        assert.deepEqual(await c.imageRefs("default"), [img("a"), img("c"), img("d")]);
      });

      await t.step("forced prune: predicted within 10 % of what statfs gains", async () => {
        const df = JSON.parse(
          (await runCtre(["df", "--json", ...PRUNE_NOW.slice(3, 7), "--root", root], opts)).stdout,
        );
        const before = await freeBytes(root);
        const r = await runCtre([...PRUNE_NOW, "--root", root], opts);
        assert.equal(r.code, 0, r.stderr);
        const gained = (await freeBytes(root)) - before;
        const doc = JSON.parse(r.stdout);
        const predicted = doc.disk.predicted.contentBytes + doc.disk.predicted.snapshotBytes;
        // deno-lint-ignore no-console
        console.log(
          `prune: predicted ${predicted}, statfs gained ${gained}, ` +
            `ctre's filesystem figure ${doc.disk.filesystemBytes}, df reclaimable ${df.total.images.reclaimableBytes}`,
        );
        within(predicted, gained, 0.10, "predicted vs statfs");
        within(doc.disk.filesystemBytes, gained, 0.10, "ctre's statfs figure");
        assert.equal(df.total.images.reclaimableBytes, predicted, "df said the same beforehand");
        assert.match(r.stderr, /^Predicted to free on disk: /m);
        assert.match(r.stderr, /^Freed on disk, by the filesystem of /m);
        assert.deepEqual(await c.imageRefs("default"), [img("d")]);
      });
    }, { rootExt4: ROOT_SIZE });
  },
});

Deno.test({
  name: "--max-store-size above the content store, below content plus snapshots: LRU goes",
  async fn() {
    await withContainerd(async (c) => {
      const stateDir = await tempStateDir();
      await scenario(c);
      const now = Math.floor(Date.now() / 1000);
      // LRU order: c (never used), a (30 days), b (20 days); d runs.
      await Deno.writeTextFile(
        join(stateDir, "image_starts"),
        `${now - 30 * DAY} ${now - 30 * DAY + 60} default ${img("a")}\n` +
          `${now - 20 * DAY} ${now - 20 * DAY + 60} default ${img("b")}\n`,
      );
      const df = JSON.parse(
        (await runCtre(["df", "--json", "--min-age", "0"], { address: c.address, stateDir }))
          .stdout,
      );
      const t = df.total;
      const content = t.images.contentBytes + t.unreferenced.contentBytes;
      const all = content + t.images.snapshotBytes + t.containers.writableBytes +
        t.unreferenced.snapshotBytes;
      // Over by less than c and a free together, more than c alone.
      const budget = Math.floor(all - 9 * MiB);
      assert.ok(budget > content, `budget ${budget} is above the content store ${content}`);
      const r = await runCtre(
        [
          "prune",
          "-f",
          "--json",
          "--min-age",
          "0",
          "--double-check",
          "0",
          "--max-store-size",
          `${budget}B`,
        ],
        { address: c.address, stateDir },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /Over budget by/);
      assert.match(r.stderr, /^Target met/m);
      assert.deepEqual(await c.imageRefs("default"), [img("b"), img("d")]);
      const doc = JSON.parse(r.stdout);
      const b = doc.images.find((i: { refs: string[] }) => i.refs[0] === img("b"));
      assert.equal(b.reason, "within-budget");
    }, { rootExt4: ROOT_SIZE });
  },
});

Deno.test({
  name: "an image unpacked for two snapshotters is measured in each, and both copies go",
  async fn() {
    await withContainerd(async (c) => {
      const root = join(c.dir, "root");
      const stateDir = await tempStateDir();
      const opts = { address: c.address, stateDir, minFreeRoot: root };
      const layout = await diskLayout([{
        ref: img("e"),
        layers: [await randomLayer("e", 6 * MiB, true)],
      }]);
      const tar = join(c.dir, "e.tar");
      await Deno.writeFile(tar, layout.tar);
      await c.ctrOk(["-n", "default", "image", "import", tar]);
      const other = c.snapshotter === "native" ? "overlayfs" : "native";
      // 2.x's transfer service unpacks only for the snapshotters of its config: import locally.
      const local = (await c.ctrOk(["image", "import", "--help"])).includes("--local")
        ? ["--local"]
        : [];
      await c.ctrOk(["-n", "default", "image", "import", ...local, "--snapshotter", other, tar]);
      const dirs = [c.snapshotter, other].map((s) =>
        join(root, `io.containerd.snapshotter.v1.${s}`, "snapshots")
      );
      const dry = await runCtre(["prune", "--dry-run", "--json", ...PRUNE_NOW.slice(3)], opts);
      assert.equal(dry.code, 0, dry.stderr);
      const e = JSON.parse(dry.stdout).images.find((i: { refs: string[] }) =>
        i.refs[0] === img("e")
      );
      const duBoth = await du(dirs);
      // deno-lint-ignore no-console
      console.log(
        `e: snapshotBytes ${e.snapshotBytes} in ${c.snapshotter} and ${other}, du ${duBoth}`,
      );
      within(e.snapshotBytes, duBoth, 0.05, "both snapshotters' copies");
      assert.ok(e.snapshotBytes > 2 * 6 * MiB, "two copies of 6 MiB");
      const before = await freeBytes(root);
      const r = await runCtre([...PRUNE_NOW, "--root", root], opts);
      assert.equal(r.code, 0, r.stderr);
      const gained = (await freeBytes(root)) - before;
      const d = JSON.parse(r.stdout).disk;
      const predicted = d.predicted.contentBytes + d.predicted.snapshotBytes;
      // deno-lint-ignore no-console
      console.log(`e: predicted ${predicted}, statfs gained ${gained}`);
      within(predicted, gained, 0.10, "predicted vs statfs");
      assert.ok(d.predicted.snapshotBytes > 2 * 6 * MiB);
    }, { rootExt4: ROOT_SIZE });
  },
});
