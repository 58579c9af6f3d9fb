/**
 * End to end: ctre prune under the shipped permissions against a private, real containerd
 * with real images and real containers. Each assertion is on what `ctr image ls` shows after.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type TestContainerd, withContainerd } from "./support/containerd.ts";
import { ctreArgs, runCtre, tempStateDir as makeStateDir } from "./support/cli.ts";
import { ctrWrapper } from "./support/ctr_wrapper.ts";
import { assertKeptImagesRun } from "./support/runnable.ts";

const stateDirs: string[] = [];
/** A temp state dir, removed when the test process ends. */
async function tempStateDir(): Promise<string> {
  const dir = await makeStateDir();
  stateDirs.push(dir);
  return dir;
}

const DAY = 86400;
const now = () => Math.floor(Date.now() / 1000);

/** The refs listed for removal (after the `NS REF_TO_PRUNE` header), as "ns ref". */
function listed(stdout: string): string[] {
  const lines = stdout.split("\n");
  const at = lines.indexOf("NS REF_TO_PRUNE");
  if (at < 0) return [];
  return lines.slice(at + 1).filter((l) => /^\S+ \S+$/.test(l)).sort();
}

const img = (name: string) => `docker.io/library/${name}:1`;

/**
 * The scenario of the prune issue, in three namespaces. Content of everything but `young` is
 * aged 30 days; the usage DB says `recent` was started an hour ago and `stale` 20 days ago.
 */
async function scenario(c: TestContainerd, stateDir: string) {
  const d: Record<string, string> = {};
  for (const name of ["run", "created", "exited", "unused", "recent", "stale", "young"]) {
    d[name] = await c.importImage("default", img(name), name);
  }
  d.dual = await c.importImage("default", img("dual"), "dual", [
    "docker.io/library/dual:2",
    "registry.example/other/dual:1",
  ]);
  d.k8sRun = await c.importImage("k8s.io", img("k8srun"), "k8srun");
  d.k8sUnused = await c.importImage("k8s.io", img("k8sunused"), "k8sunused");
  d.mobyUnused = await c.importImage("moby", img("mobyunused"), "mobyunused");
  await c.ageContent(
    "default",
    Object.entries(d).filter(([k]) =>
      !k.startsWith("k8s") && !k.startsWith("moby") && k !== "young"
    )
      .map(([, v]) => v),
    30 * DAY,
  );
  await c.ageContent("k8s.io", [d.k8sRun!, d.k8sUnused!], 30 * DAY);
  await c.ageContent("moby", [d.mobyUnused!], 30 * DAY);
  // Young, so kept: one imported without unpacking (its layer blobs are its only copy), one of
  // two layers. Every forced prune must leave both runnable.
  d.offline = await c.importImage("default", img("offline"), "offline", [], { unpack: false });
  d.twoLayers = await c.importImage("default", img("two"), "two", [], { layers: 2 });
  await c.run("default", img("run"), "c-run");
  await c.create("default", img("created"), "c-created");
  await c.runToExit("default", img("exited"), "c-exited");
  await c.run("default", "docker.io/library/dual:2", "c-dual");
  await c.run("k8s.io", img("k8srun"), "c-k8srun");
  await Deno.writeTextFile(
    join(stateDir, "image_starts"),
    `${now() - 3600} ---------- default ${img("recent")}\n` +
      `${now() - 20 * DAY} ${now() - 20 * DAY + 60} default ${img("stale")}\n`,
  );
  return d;
}

const EXPECTED_PRUNE = [
  `default ${img("stale")}`,
  `default ${img("unused")}`,
  `k8s.io ${img("k8sunused")}`,
  `moby ${img("mobyunused")}`,
].sort();

Deno.test({
  name: "ctre prune removes exactly the unused, old, not recently used images",
  async fn(t) {
    await withContainerd(async (c) => {
      const stateDir = await tempStateDir();
      const opts = { address: c.address, stateDir };
      await scenario(c, stateDir);
      const before = {
        default: await c.imageRefs("default"),
        k8s: await c.imageRefs("k8s.io"),
        moby: await c.imageRefs("moby"),
      };

      await t.step("--dry-run lists the prunable set and removes nothing", async () => {
        const r = await runCtre(["prune", "--dry-run", "--double-check", "0"], opts);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(listed(r.stdout), EXPECTED_PRUNE);
        assert.deepEqual(await c.imageRefs("default"), before.default);
        assert.deepEqual(await c.imageRefs("k8s.io"), before.k8s);
      });

      await t.step("an answer of n removes nothing and exits 1", async () => {
        const r = await runCtre(["prune", "--double-check", "0"], { ...opts, stdin: "n\n" });
        assert.equal(r.code, 1);
        assert.match(r.stdout, /Prune \(y\/n\)\? /);
        assert.deepEqual(await c.imageRefs("default"), before.default);
      });

      await t.step("EOF on stdin aborts and removes nothing", async () => {
        const r = await runCtre(["prune", "--double-check", "0"], opts);
        assert.equal(r.code, 1);
        assert.deepEqual(await c.imageRefs("moby"), before.moby);
      });

      await t.step("an unclear answer (' y ' with extra words) aborts", async () => {
        const r = await runCtre(["prune", "--double-check", "0"], {
          ...opts,
          stdin: "yes please\n",
        });
        assert.equal(r.code, 1);
        assert.deepEqual(await c.imageRefs("default"), before.default);
      });

      await t.step("y removes exactly the listed images, then cleans up", async () => {
        const r = await runCtre(["prune", "--double-check", "2s"], { ...opts, stdin: "y\n" });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const gone = (ns: string, all: string[], left: string[]) =>
          all.filter((x) => !left.includes(x)).map((x) => `${ns} ${x}`);
        const removed = [
          ...gone("default", before.default, await c.imageRefs("default")),
          ...gone("k8s.io", before.k8s, await c.imageRefs("k8s.io")),
          ...gone("moby", before.moby, await c.imageRefs("moby")),
        ].sort();
        assert.deepEqual(removed, EXPECTED_PRUNE);
        // All three refs of the digest one container uses are kept.
        const left = await c.imageRefs("default");
        for (
          const r of [img("dual"), "docker.io/library/dual:2", "registry.example/other/dual:1"]
        ) {
          assert.ok(left.includes(r), `${r} kept`);
        }
        assert.match(
          r.stderr,
          /Dupe refs found for ns default image sha256:[0-9a-f]{64}, keeping all/,
        );
        // Stopped container removed, running and just-created ones kept.
        const ids = await c.containerIds("default");
        assert.ok(!ids.includes("c-exited"), `stopped container removed: ${ids}`);
        assert.ok(ids.includes("c-run") && ids.includes("c-dual") && ids.includes("c-created"));
        assert.deepEqual(await c.containerIds("k8s.io"), ["c-k8srun"]);
        assert.match(r.stdout, /^\(deleted container\) default /m);
        assert.match(r.stdout, /^\(pruned content\) default \d+$/m);
        assert.match(r.stdout, /^\(pruned content\) k8s.io \d+$/m);
      });

      await t.step(
        "a second forced run finds the exited container's image unused but keeps the rest",
        async () => {
          const r = await runCtre(["prune", "-f", "--double-check", "0"], opts);
          assert.equal(r.code, 0, r.stderr);
          assert.deepEqual(listed(r.stdout), [`default ${img("exited")}`]);
          const left = await c.imageRefs("default");
          for (const name of ["run", "created", "recent", "young", "offline", "two"]) {
            assert.ok(left.includes(img(name)), `${name} kept: ${left}`);
          }
          assert.match(
            r.stdout,
            /^\(protected content\) default docker.io\/library\/offline:1: /m,
          );
          await assertKeptImagesRun(c);
        },
      );
    });
  },
});

/** The layer digests manifest `digest` references in `ns` under label `prefix` + n. */
async function layerLabels(
  c: TestContainerd,
  ns: string,
  digest: string,
  prefix = "containerd.io/gc.ref.content.l.",
): Promise<string[]> {
  const line = (await c.ctrOk(["-n", ns, "content", "ls"])).split("\n")
    .find((l) => l.startsWith(digest)) ?? "";
  const key = prefix.replaceAll(".", "\\.");
  return [...line.matchAll(new RegExp(`${key}\\d+=(sha256:[0-9a-f]{64})`, "g"))]
    .map((m) => m[1]!).sort();
}

/** ctre's copies of a manifest's layer references (lib/policy/layer_guard.ts). */
const KEPT = "containerd.io/gc.ref.content.ctre.l.";

Deno.test({
  name: "ctre prune -f keeps the layers of a kept image that was never unpacked",
  async fn(t) {
    await withContainerd(async (c) => {
      const stateDir = await tempStateDir();
      let olds = 0;
      /** A forced prune; an old image to remove first, as content is pruned after a removal. */
      const prune = async () => {
        const old = await c.importImage("default", img(`old${++olds}`), `old${olds}`);
        await c.ageContent("default", [old], 30 * DAY);
        const r = await runCtre(["prune", "-f", "--double-check", "0", "--json"], {
          address: c.address,
          stateDir,
        });
        assert.equal(r.code, 0, r.stderr);
        return { r, doc: JSON.parse(r.stdout) };
      };
      const blobs = async () => await c.ctrOk(["-n", "default", "content", "ls", "-q"]);
      const offline = await c.importImage("default", img("offline"), "offline", [], {
        unpack: false,
        layers: 2,
      });
      const gone = await c.importImage("default", img("gone"), "gone", [], { unpack: false });
      const unpacked = await c.importImage("default", img("unpacked"), "unpacked", [], {
        layers: 2,
      });
      const offlineLayers = await layerLabels(c, "default", offline);
      const goneLayers = await layerLabels(c, "default", gone);
      const unpackedLayers = await layerLabels(c, "default", unpacked);
      assert.equal(offlineLayers.length, 2);
      assert.equal(goneLayers.length, 1);
      assert.equal(unpackedLayers.length, 2);

      await t.step("the first prune keeps the only copies, and drops the others", async () => {
        const { r, doc } = await prune();
        assert.deepEqual(doc.removal.removed, [{ namespace: "default", ref: img("old1") }]);
        assert.deepEqual(doc.removal.content[0].protected, [img("gone"), img("offline")]);
        assert.match(r.stderr, /^\(protected content\) default docker.io\/library\/offline:1: /m);
        const left = await blobs();
        for (const l of offlineLayers) assert.ok(left.includes(l), `offline layer ${l} kept`);
        for (const l of unpackedLayers) assert.ok(!left.includes(l), `unpacked layer ${l} went`);
        // The plain prune stripped every layer reference; ctre's copies hold the layers.
        assert.deepEqual(await layerLabels(c, "default", offline), []);
        assert.deepEqual(await layerLabels(c, "default", offline, KEPT), offlineLayers);
        // What the store shrank by is measured, not the removed image's size.
        const t = doc.totals;
        assert.equal(t.reclaimedBytes, t.contentBytesBefore - t.contentBytesAfter);
        assert.ok(t.reclaimedBytes > t.removedImageBytes, JSON.stringify(t));
      });

      await t.step("a second prune keeps them too", async () => {
        const { doc } = await prune();
        assert.deepEqual(doc.removal.content[0].protected, [img("gone"), img("offline")]);
        const left = await blobs();
        for (const l of [...offlineLayers, ...goneLayers]) assert.ok(left.includes(l), l);
      });

      await t.step("nothing kept outlives its image", async () => {
        await c.ctrOk(["-n", "default", "image", "rm", img("gone")]);
        const { doc } = await prune();
        assert.deepEqual(doc.removal.content[0].protected, [img("offline")]);
        const left = await blobs();
        for (const d of [gone, ...goneLayers]) assert.ok(!left.includes(d), `${d} went`);
        for (const l of offlineLayers) assert.ok(left.includes(l), l);
      });

      await t.step("the kept image runs; once unpacked, its layers go as any other's", async () => {
        await assertKeptImagesRun(c);
        const { doc } = await prune();
        assert.deepEqual(doc.removal.content[0].protected, []);
        assert.deepEqual(await layerLabels(c, "default", offline, KEPT), []);
        const left = await blobs();
        for (const l of offlineLayers) assert.ok(!left.includes(l), `${l} went`);
        await assertKeptImagesRun(c);
      });
    });
  },
});

Deno.test({
  name: "ctre prune keeps an image that becomes used during the double check",
  async fn() {
    await withContainerd(async (c) => {
      const stateDir = await tempStateDir();
      await c.importImage("default", img("late"), "late");
      await c.importImage("default", img("never"), "never");
      // A pass-through ctr wrapper logs every call: the container is created once the second
      // pass has started (so the first pass is over), long before the double check ends.
      const wrapper = await ctrWrapper({ address: c.address });
      const child = new Deno.Command(Deno.execPath(), {
        args: ctreArgs(
          ["prune", "-f", "--json", "--min-age", "0", "--double-check", "8s"],
          { address: c.address, stateDir },
        ),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1", PATH: `${wrapper.dir}:${Deno.env.get("PATH") ?? ""}` },
      }).spawn();
      try {
        const deadline = Date.now() + 30_000;
        while ((await wrapper.calls()).filter((l) => / content ls$/.test(l)).length < 2) {
          assert.ok(Date.now() < deadline, "the second pass started within 30 s");
          await new Promise((r) => setTimeout(r, 50));
        }
        await c.create("default", img("late"), "c-late");
      } catch (e) {
        child.kill("SIGKILL");
        await child.output();
        await wrapper.cleanup();
        throw e;
      }
      const out = await child.output();
      await wrapper.cleanup();
      const doc = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const late = doc.images.find((i: { refs: string[] }) => i.refs.includes(img("late")));
      // Only a pass that found it prunable before the container appeared gives this reason: if
      // the first pass had already seen the container, the reason would be in-use.
      assert.equal(late.decision, "keep");
      assert.equal(late.reason, "used-during-double-check");
      assert.deepEqual(doc.removal.removed, [{ namespace: "default", ref: img("never") }]);
      assert.deepEqual(await c.imageRefs("default"), [img("late")]);
    });
  },
});

Deno.test({
  name: "ctre prune with containerd stopped fails with one clear line and removes nothing",
  async fn() {
    await withContainerd(async (c) => {
      const stateDir = await tempStateDir();
      await c.importImage("default", img("keepme"), "keepme");
      await c.stopDaemon();
      const r = await runCtre(["prune", "-f", "--min-age", "0", "--double-check", "0"], {
        address: c.address,
        stateDir,
      });
      assert.equal(r.code, 1);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0]!,
        /^ctre: ctr namespace ls -q exited with code 1: .*containerd running/,
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      await c.startDaemon();
      assert.deepEqual(await c.imageRefs("default"), [img("keepme")]);
    });
  },
});

globalThis.addEventListener("unload", () => {
  for (const dir of stateDirs) Deno.removeSync(dir, { recursive: true });
});
