/**
 * End to end, on a real containerd: content prune (lib/prune/content_prune.ts) while images
 * arrive. The churn soak (scripts/bench/soak.ts) showed images imported while a prune ran
 * losing their layers; these tests put the import exactly where the race puts it: after the
 * layer guard listed the namespace, before it strips layer references.
 */
import assert from "node:assert/strict";
import { withContainerd } from "./support/containerd.ts";
import { type Ctr, systemCtr } from "../lib/ctr/runner.ts";
import { pruneContentSafely } from "../lib/prune/content_prune.ts";
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
