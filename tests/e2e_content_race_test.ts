/**
 * End to end, on a real containerd: prune's steps while images arrive, with the arrival put
 * exactly where a race puts it. Content prune (lib/prune/content_prune.ts): an import after the
 * layer guard listed the namespace, before it strips layer references. Removal
 * (lib/prune/removal.ts, repoint_watch.ts): a tag moved between the last-second re-read and
 * `ctr image rm`.
 */
import assert from "node:assert/strict";
import { withContainerd } from "./support/containerd.ts";
import { type Ctr, systemCtr } from "../lib/ctr/runner.ts";
import { pruneContentSafely } from "../lib/prune/content_prune.ts";
import { removeImages } from "../lib/prune/removal.ts";
import { assertKeptImagesRun } from "./support/runnable.ts";

const NS = "default";
const img = (name: string) => `docker.io/library/${name}:1`;

/** A ctr that runs `meanwhile` once, right after the first call whose args start with `when`. */
function interleaved(ctr: Ctr, when: string[], meanwhile: () => Promise<void>): Ctr {
  let done = false;
  return {
    ...ctr,
    run: async (args) => {
      const r = await ctr.run(args);
      const hit = when.every((w, i) => args[i] === w) && args.length === when.length;
      if (hit && !done) {
        done = true;
        await meanwhile();
      }
      return r;
    },
  };
}

for (
  const [label, unsafeToo] of [["every listed image unpacked", false], [
    "one listed image not unpacked",
    true,
  ]] as const
) {
  Deno.test({
    name: `content prune keeps the layers of an image imported --no-unpack after its listing ` +
      `(${label})`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await withContainerd(async (c) => {
        await c.importImage(NS, img("kept"), "kept");
        const gone = img("gone");
        await c.importImage(NS, gone, "gone");
        if (unsafeToo) await c.importImage(NS, img("packed"), "packed", [], { unpack: false });
        await c.ctrOk(["-n", NS, "image", "rm", gone]);
        const late = img("late");
        const ctr = interleaved(systemCtr(c.address), ["-n", NS, "image", "ls"], async () => {
          await c.importImage(NS, late, "late", [], { unpack: false });
        });
        const r = await pruneContentSafely(ctr, NS);
        assert.equal(r.error, undefined);
        assert.ok((await c.imageRefs(NS)).includes(late), "the late image is listed");
        const ran = await assertKeptImagesRun(c, [NS]);
        assert.ok(ran.includes(`${NS} ${late}`), `ran: ${ran.join(", ")}`);
      });
    },
  });
}

Deno.test({
  name: "a ref re-pointed between the last-second re-read and ctr image rm is reported lost",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withContainerd(async (c) => {
      const ref = img("moving");
      const old = await c.importImage(NS, ref, "moving-old");
      const steady = img("steady");
      const steadyDigest = await c.importImage(NS, steady, "steady-old");
      // Right after removal.ts's `ctr image ls name==…` re-read, a pull moves the tag.
      const ctr = interleaved(
        systemCtr(c.address),
        [
          "-n",
          NS,
          "image",
          "ls",
          `name==${JSON.stringify(ref)}`,
          `name==${JSON.stringify(steady)}`,
        ],
        async () => {
          await c.importImage(NS, ref, "moving-new");
        },
      );
      const out = await removeImages(ctr, NS, [
        { ref, digest: old },
        { ref: steady, digest: steadyDigest },
      ]);
      // ctr deleted the new record (nothing ctre can do about that with ctr alone), and ctre
      // says so instead of counting it an intended removal.
      assert.deepEqual(out.lost, [ref], JSON.stringify(out));
      assert.deepEqual(out.removed, [steady]);
      assert.ok(out.failed.some((f) => f.ref === ref && /re-pointed/.test(f.reason)));
      assert.deepEqual(await c.imageRefs(NS), []);
    });
  },
});
