/**
 * End to end, disk-pressure mode: a private containerd whose root is a small tmpfs, images with
 * recorded uses; exactly the least recently used prunable images go, and an unreachable target
 * is reported, not forced.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { statfs } from "node:fs/promises";
import { type TestContainerd, withContainerd } from "./support/containerd.ts";
import { runCtre, tempStateDir } from "./support/cli.ts";
import { assertKeptImagesRun } from "./support/runnable.ts";

const DAY = 86400;
const img = (name: string) => `docker.io/library/${name}:1`;

/** What --max-store-size measures: the content store plus every snapshot's usage. */
async function storeBytes(c: TestContainerd): Promise<number> {
  const { parseContentLs } = await import("../lib/ctr/listings.ts");
  const { parseSnapshotUsage } = await import("../lib/ctr/snapshot_usage.ts");
  const list = parseContentLs(await c.ctrOk(["-n", "default", "content", "ls"]));
  const usage = parseSnapshotUsage(await c.ctrOk(["-n", "default", "snapshot", "usage", "-b"]));
  return list.reduce((sum, b) => sum + b.size, 0) + [...usage.values()].reduce((a, b) => a + b, 0);
}

/**
 * a: never used; b: used 30 days ago; c: 20 days; d: 15 days (LRU order a, b, c, d);
 * e: used an hour ago (recently used, protected); f: in use by a running container.
 */
async function scenario(c: TestContainerd, stateDir: string): Promise<void> {
  for (const name of ["a", "b", "c", "d", "e", "f"]) {
    await c.importImage("default", img(name), name);
  }
  await c.run("default", img("f"), "c-f");
  const now = Math.floor(Date.now() / 1000);
  await Deno.writeTextFile(
    join(stateDir, "image_starts"),
    [
      `${now - 30 * DAY} ${now - 30 * DAY + 60} default ${img("b")}`,
      `${now - 20 * DAY} ${now - 20 * DAY + 60} default ${img("c")}`,
      `${now - 15 * DAY} ---------- default ${img("d")}`,
      `${now - 3600} ---------- default ${img("e")}`,
      "",
    ].join("\n"),
  );
}

const common = ["prune", "-f", "--min-age", "0", "--double-check", "0", "--no-content-prune"];
const ALL = ["a", "b", "c", "d", "e", "f"].map(img);

Deno.test({
  name: "ctre prune --max-store-size removes least recently used images until under budget",
  async fn(t) {
    await withContainerd(async (c) => {
      const stateDir = await tempStateDir();
      const opts = { address: c.address, stateDir };
      await scenario(c, stateDir);
      const perImage = (await storeBytes(c)) / 6;

      await t.step("within budget: nothing goes", async () => {
        const r = await runCtre([...common, "--max-store-size", "1GB"], opts);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Within budget/);
        assert.deepEqual(await c.imageRefs("default"), ALL);
      });

      await t.step("--dry-run --json ranks LRU and marks what the budget needs", async () => {
        const max = Math.floor((await storeBytes(c)) - 1.5 * perImage);
        const r = await runCtre(
          ["prune", "--dry-run", "--json", "--min-age", "0", "--double-check", "0"].concat([
            "--max-store-size",
            `${max}B`,
          ]),
          opts,
        );
        assert.equal(r.code, 0, r.stderr);
        const doc = JSON.parse(r.stdout);
        const by = (ref: string) => doc.images.find((i: { refs: string[] }) => i.refs[0] === ref);
        assert.deepEqual(
          [1, 2, 3, 4].map((n) =>
            doc.images.find((i: { lruRank: number }) => i.lruRank === n).refs[0]
          ),
          [
            img("a"),
            img("b"),
            img("c"),
            img("d"),
          ],
        );
        assert.equal(by(img("a")).budgetNeeded, true);
        assert.equal(by(img("b")).budgetNeeded, true);
        assert.equal(by(img("c")).budgetNeeded, false);
        assert.equal(by(img("c")).reason, "within-budget");
        assert.equal(by(img("e")).reason, "recently-used");
        assert.equal(by(img("e")).lruRank, null);
        assert.deepEqual(await c.imageRefs("default"), ALL);
      });

      await t.step("asked, over by half an image: lists a, and y removes just a", async () => {
        const max = Math.floor((await storeBytes(c)) - 0.5 * perImage);
        const r = await runCtre(
          ["prune", "--min-age", "0", "--double-check", "0", "--no-content-prune"].concat([
            "--max-store-size",
            `${max}B`,
          ]),
          { ...opts, stdin: "y\n" },
        );
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /NS REF_TO_PRUNE\ndefault docker\.io\/library\/a:1\nPrune/);
        assert.doesNotMatch(r.stdout, /used since the list was made/);
        assert.deepEqual(await c.imageRefs("default"), [
          img("b"),
          img("c"),
          img("d"),
          img("e"),
          img("f"),
        ]);
      });

      await t.step("forced, over budget by 1.5 images: exactly b and c go", async () => {
        const max = Math.floor((await storeBytes(c)) - 1.5 * perImage);
        const r = await runCtre([...common, "--max-store-size", `${max}B`], opts);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /Target met/);
        assert.deepEqual(await c.imageRefs("default"), [img("d"), img("e"), img("f")]);
        assert.ok((await storeBytes(c)) <= max);
      });

      await t.step("an unreachable target is reported, not forced", async () => {
        const r = await runCtre([...common, "--max-store-size", "1kB"], opts);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(
          r.stdout,
          /Target unreachable: .* short of content store and snapshots at most/,
        );
        assert.deepEqual(await c.imageRefs("default"), [img("e"), img("f")]);
        await assertKeptImagesRun(c);
      });
    }, { rootSize: "64m" });
  },
});

Deno.test({
  name: "ctre prune --min-free removes least recently used images until the filesystem has room",
  async fn(t) {
    await withContainerd(async (c) => {
      const stateDir = await tempStateDir();
      const root = join(c.dir, "root");
      const opts = { address: c.address, stateDir, minFreeRoot: root };
      const free = async () => {
        const s = await statfs(root);
        return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
      };
      const before = await free();
      await scenario(c, stateDir);
      const after = await free();
      const perImage = (before.free - after.free) / 6;

      await t.step(
        "without the extra flags it says which it needs and removes nothing",
        async () => {
          const r = await runCtre([...common, "--min-free", "99"], {
            address: c.address,
            stateDir,
          });
          assert.equal(r.code, 1);
          assert.match(r.stderr, /--allow-sys=statfs --allow-read=/);
          assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
          assert.deepEqual(await c.imageRefs("default"), ALL);
        },
      );

      await t.step("short by 1.5 images: exactly a and b go", async () => {
        const now = await free();
        const percent = ((now.free + 1.5 * perImage) / now.total * 100).toFixed(2);
        const r = await runCtre([...common, "--min-free", percent, "--root", root], opts);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /Target met/);
        assert.deepEqual(await c.imageRefs("default"), [img("c"), img("d"), img("e"), img("f")]);
      });

      await t.step("an unreachable target is reported, exit 0", async () => {
        const r = await runCtre([...common, "--min-free", "99", "--root", root], opts);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /Target unreachable/);
        assert.deepEqual(await c.imageRefs("default"), [img("e"), img("f")]);
        await assertKeptImagesRun(c);
      });
    }, { rootSize: "64m" });
  },
});
