/**
 * End to end: the controls of `ctre prune` (pins, keep patterns and files, --namespace, the
 * clean-up switches, the lock, removals that race with someone else or fail) and its --json
 * document, under the shipped permissions against a private, real containerd.
 *
 * One containerd per test: the steps of the first each work in their own namespace and pass
 * `-n` (except where --namespace itself is under test), so they do not see each other.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { parseContentLs } from "../lib/ctr/listings.ts";
import { type TestContainerd, withContainerd } from "./support/containerd.ts";
import { runCtre, spawnCtre, tempStateDir } from "./support/cli.ts";
import { ctrWrapper, runCtreWrapped } from "./support/ctr_wrapper.ts";
import { assertKeptImagesRun } from "./support/runnable.ts";

const DAY = 86400;
const now = () => Math.floor(Date.now() / 1000);
const img = (name: string) => `docker.io/library/${name}:1`;
/** A forced prune that does not wait: no age limit, no double check. */
const FORCE_NOW = ["prune", "-f", "--min-age", "0", "--double-check", "0"];
const DRY_NOW = ["prune", "--dry-run", "--min-age", "0", "--double-check", "0"];

interface ImageDoc {
  namespace: string;
  refs: string[];
  digest: string;
  sizeBytes: number;
  ageSeconds: number | null;
  ageText: string | null;
  lastStart: number | null;
  lastStop: number | null;
  decision: "prune" | "keep";
  reason: string;
  containers: string[] | null;
  pattern: string | null;
}

interface NsRef {
  namespace: string;
  ref: string;
}

interface PlanDoc {
  version: number;
  mode: string;
  generatedAt: string;
  policy: {
    minAgeSeconds: number;
    usedWithinSeconds: number;
    doubleCheckSeconds: number;
    keep: string[];
    namespaces: string[];
  };
  images: ImageDoc[];
  removal: {
    removed: NsRef[];
    missing: NsRef[];
    failed: (NsRef & { error: string })[];
    repointed: (NsRef & { digest: string })[];
    containers: { deleted: string[]; kept: string[]; errors: string[] } | null;
    content:
      | {
        namespace: string;
        blobsBefore: number;
        blobsAfter: number;
        protected: string[];
        error: string | null;
      }[]
      | null;
  } | null;
  totals: {
    images: number;
    prune: number;
    keep: number;
    removedImages: number;
    failedRefs: number;
    reclaimedBytes: number;
    removedImageBytes: number;
    contentBytesBefore: number | null;
    contentBytesAfter: number | null;
  };
}

/** stdout of a --json run: exactly one JSON document (JSON.parse rejects anything after it). */
function parseDoc(stdout: string): PlanDoc {
  return JSON.parse(stdout) as PlanDoc;
}

/** The documented totals only (a field added later is not an error here). */
function pick(totals: PlanDoc["totals"]): PlanDoc["totals"] {
  const {
    images,
    prune,
    keep,
    removedImages,
    failedRefs,
    reclaimedBytes,
    removedImageBytes,
    contentBytesBefore,
    contentBytesAfter,
  } = totals;
  return {
    images,
    prune,
    keep,
    removedImages,
    failedRefs,
    reclaimedBytes,
    removedImageBytes,
    contentBytesBefore,
    contentBytesAfter,
  };
}

function byRef(doc: PlanDoc): Map<string, ImageDoc> {
  return new Map(doc.images.flatMap((i) => i.refs.map((r) => [`${i.namespace} ${r}`, i])));
}

const sortRefs = (xs: NsRef[]) => xs.map((x) => `${x.namespace} ${x.ref}`).sort();

/** Sum of `ctr content ls` sizes over all namespaces, each digest once (as ctre counts). */
async function contentBytes(c: TestContainerd): Promise<number> {
  const sizes = new Map<string, number>();
  const namespaces = (await c.ctrOk(["namespace", "ls", "-q"])).split("\n").filter((s) => s);
  for (const ns of namespaces) {
    for (const b of parseContentLs(await c.ctrOk(["-n", ns, "content", "ls"]))) {
      sizes.set(b.digest, b.size);
    }
  }
  return [...sizes.values()].reduce((a, b) => a + b, 0);
}

/** The refs listed for removal (after the `NS REF_TO_PRUNE` header), as "ns ref". */
function listed(out: string): string[] {
  const lines = out.split("\n");
  const at = lines.indexOf("NS REF_TO_PRUNE");
  if (at < 0) return [];
  return lines.slice(at + 1).filter((l) => /^\S+ \S+$/.test(l)).sort();
}

async function withStateDir(fn: (stateDir: string) => Promise<void>): Promise<void> {
  const stateDir = await tempStateDir();
  try {
    await fn(stateDir);
  } finally {
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name: "ctre prune controls: pins, keep patterns, namespaces, clean-up switches, lock, races",
  async fn(t) {
    await withContainerd(async (c) => {
      const address = c.address;

      await t.step("a pinned digest is kept with all its refs; k3s's pin too", async () => {
        await withStateDir(async (stateDir) => {
          const ns = "pin";
          const pinnedRefs = [img("pinned"), "docker.io/library/pinned:2", "registry.example/p:1"];
          await c.importImage(ns, pinnedRefs[0]!, "pinned", pinnedRefs.slice(1));
          await c.label(ns, img("pinned"), "io.cri-containerd.pinned=pinned");
          await c.importImage(ns, img("k3s"), "k3s");
          await c.label(ns, img("k3s"), "io.cattle.k3s.pinned=true");
          // Only the value "pinned" pins for CRI.
          await c.importImage(ns, img("notpinned"), "notpinned");
          await c.label(ns, img("notpinned"), "io.cri-containerd.pinned=false");
          await c.importImage(ns, img("sibling"), "sibling");

          const r = await runCtre([...FORCE_NOW, "-n", ns], { address, stateDir });
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.deepEqual(listed(r.stdout), [
            `${ns} ${img("notpinned")}`,
            `${ns} ${img("sibling")}`,
          ]);
          assert.deepEqual(await c.imageRefs(ns), [...pinnedRefs, img("k3s")].sort());
          await assertKeptImagesRun(c, [ns]);
        });
      });

      await t.step("--keep, --keep-file and <state-dir>/keep protect matching refs", async () => {
        await withStateDir(async (stateDir) => {
          const ns = "keep";
          const opts = { address, stateDir };
          await c.importImage(ns, "docker.io/library/pause:3.9", "pause");
          await c.importImage(ns, img("byfile"), "byfile");
          await c.importImage(ns, img("bystatefile"), "bystatefile");
          await c.importImage(ns, img("other"), "other");
          const all = await c.imageRefs(ns);

          // A keep file outside the state dir is outside the CLI's read permission.
          const elsewhere = await Deno.makeTempDir({ prefix: "ctre-keep-elsewhere-" });
          try {
            const outside = join(elsewhere, "keep.txt");
            await Deno.writeTextFile(outside, "docker.io/library/*\n");
            const r = await runCtre([...FORCE_NOW, "-n", ns, "--keep-file", outside], opts);
            assert.equal(r.code, 1, r.stdout + r.stderr);
            const lines = r.stderr.trim().split("\n");
            assert.equal(lines.length, 1, r.stderr);
            assert.ok(lines[0]!.startsWith(`ctre: Cannot read "${outside}"`), lines[0]);
            assert.ok(lines[0]!.includes(`--allow-read=${dirname(outside)}`), lines[0]);
            assert.equal(r.stdout, "");
            assert.deepEqual(await c.imageRefs(ns), all);
          } finally {
            await Deno.remove(elsewhere, { recursive: true });
          }

          // A missing keep file is an error too, not an empty list.
          const missing = join(stateDir, "no-such-keep-file");
          const m = await runCtre([...FORCE_NOW, "-n", ns, "--keep-file", missing], opts);
          assert.equal(m.code, 1);
          assert.equal(m.stderr, `ctre: Cannot read keep file "${missing}": not found\n`);
          assert.deepEqual(await c.imageRefs(ns), all);

          const keepFile = join(stateDir, "extra-keep");
          await Deno.writeTextFile(keepFile, `${img("byfile")}\n`);
          await Deno.writeTextFile(
            join(stateDir, "keep"),
            "# images the node must keep\n\n  docker.io/library/bystate*  # by prefix\n\n#x\n",
          );
          const args = ["--keep", "docker.io/library/pause:*", "--keep-file", keepFile, "-n", ns];
          const dry = await runCtre([...DRY_NOW, "--json", ...args], opts);
          assert.equal(dry.code, 0, dry.stderr);
          const doc = parseDoc(dry.stdout);
          const images = byRef(doc);
          const patternOf = (ref: string) => {
            const i = images.get(`${ns} ${ref}`);
            assert.ok(i, `${ref} in the document`);
            return i.reason === "kept-by-pattern" ? i.pattern : i.reason;
          };
          assert.equal(patternOf("docker.io/library/pause:3.9"), "docker.io/library/pause:*");
          assert.equal(patternOf(img("byfile")), img("byfile"));
          assert.equal(patternOf(img("bystatefile")), "docker.io/library/bystate*");
          assert.equal(patternOf(img("other")), "prune");
          assert.deepEqual(doc.policy.keep, [
            "docker.io/library/pause:*",
            "docker.io/library/bystate*",
            img("byfile"),
          ]);

          const r = await runCtre([...FORCE_NOW, ...args], opts);
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.deepEqual(listed(r.stdout), [`${ns} ${img("other")}`]);
          assert.deepEqual(await c.imageRefs(ns), all.filter((x) => x !== img("other")));
          await assertKeptImagesRun(c, [ns]);
        });
      });

      await t.step("--namespace touches only the namespaces given", async () => {
        await withStateDir(async (stateDir) => {
          const opts = { address, stateDir };
          for (const ns of ["ns-a", "ns-b", "ns-c"]) await c.importImage(ns, img(ns), ns);
          await c.importImage("ns-c", img("exited"), "exited");
          await c.runToExit("ns-c", img("exited"), "c-exited");
          const args = ["-n", "ns-a", "--namespace", "ns-b", "-n", "nope"];

          const dry = await runCtre([...DRY_NOW, "--json", ...args], opts);
          assert.equal(dry.code, 0, dry.stderr);
          assert.match(dry.stderr, /^Warning: namespace "nope" does not exist$/m);
          const doc = parseDoc(dry.stdout);
          assert.deepEqual(doc.policy.namespaces, ["ns-a", "ns-b", "nope"]);
          const prune = doc.images.filter((i) => i.decision === "prune");
          assert.deepEqual(
            prune.map((i) => `${i.namespace} ${i.refs.join(",")}`).sort(),
            [`ns-a ${img("ns-a")}`, `ns-b ${img("ns-b")}`],
          );
          const others = doc.images.filter((i) => !["ns-a", "ns-b"].includes(i.namespace));
          for (const i of others) {
            assert.equal(i.reason, "namespace-excluded", JSON.stringify(i));
            assert.equal(i.decision, "keep");
          }
          assert.deepEqual(
            others.filter((i) => i.namespace === "ns-c").flatMap((i) => i.refs).sort(),
            [img("exited"), img("ns-c")],
          );
          // Images of earlier steps' namespaces are listed as excluded too.
          assert.ok(others.some((i) => i.namespace === "pin"), "pin namespace listed");

          const r = await runCtre([...FORCE_NOW, ...args], opts);
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.deepEqual(listed(r.stdout), [`ns-a ${img("ns-a")}`, `ns-b ${img("ns-b")}`]);
          assert.deepEqual(await c.imageRefs("ns-a"), []);
          assert.deepEqual(await c.imageRefs("ns-b"), []);
          assert.deepEqual(await c.imageRefs("ns-c"), [img("exited"), img("ns-c")]);
          await assertKeptImagesRun(c, ["ns-c"]);
          // Clean-up ran only in the namespaces given: ns-c's stopped container is still there.
          assert.deepEqual(await c.containerIds("ns-c"), ["c-exited"]);
          assert.doesNotMatch(r.stdout, /^\(pruned content\) (?!ns-a |ns-b )/m);
          assert.match(r.stdout, /^\(pruned content\) ns-a \d+$/m);
          assert.deepEqual(await c.imageRefs("pin"), [
            img("k3s"),
            img("pinned"),
            "docker.io/library/pinned:2",
            "registry.example/p:1",
          ]);
        });
      });

      await t.step("--no-container-cleanup and --no-content-prune skip those steps", async () => {
        await withStateDir(async (stateDir) => {
          const ns = "clean";
          const opts = { address, stateDir };
          await c.importImage(ns, img("exited"), "exited");
          await c.runToExit(ns, img("exited"), "c-exited");
          await c.importImage(ns, img("victim"), "victim");

          const off = await runCtre(
            [...FORCE_NOW, "-n", ns, "--no-container-cleanup", "--no-content-prune", "--json"],
            opts,
          );
          assert.equal(off.code, 0, off.stderr);
          const doc = parseDoc(off.stdout);
          assert.deepEqual(sortRefs(doc.removal?.removed ?? []), [`${ns} ${img("victim")}`]);
          assert.equal(doc.removal?.containers, null);
          assert.equal(doc.removal?.content, null);
          assert.match(off.stderr, /^\(deleted\) clean docker.io\/library\/victim:1$/m);
          assert.doesNotMatch(off.stderr, /\(deleted container\)|\(pruned content\)/);
          assert.deepEqual(await c.containerIds(ns), ["c-exited"]);
          assert.deepEqual(await c.imageRefs(ns), [img("exited")]);

          // The same with both steps on: the stopped container goes, content is pruned.
          await c.importImage(ns, img("victim2"), "victim2");
          const on = await runCtre([...FORCE_NOW, "-n", ns], opts);
          assert.equal(on.code, 0, on.stdout + on.stderr);
          assert.deepEqual(listed(on.stdout), [`${ns} ${img("victim2")}`]);
          assert.match(on.stdout, /^\(deleted container\) clean c-exited$/m);
          assert.match(on.stdout, /^\(pruned content\) clean \d+$/m);
          assert.deepEqual(await c.containerIds(ns), []);
          await assertKeptImagesRun(c, [ns]);
        });
      });

      await t.step(
        "a second prune on the same state dir is refused; --dry-run is not",
        async () => {
          await withStateDir(async (stateDir) => {
            const ns = "lock";
            const opts = { address, stateDir };
            const lockPath = join(stateDir, "prune.lock");
            await c.importImage(ns, img("locked"), "locked");
            const first = spawnCtre(
              ["prune", "-f", "--min-age", "0", "--double-check", "10s", "-n", ns],
              opts,
            );
            let firstDone = false;
            const firstOut = first.output().finally(() => firstDone = true);
            try {
              await waitFor("the first prune to take the lock", async () => {
                const text = await Deno.readTextFile(lockPath).catch(() => "");
                return text.startsWith(`pid ${first.pid} since `);
              });
              const second = await runCtre([...FORCE_NOW, "-n", ns], opts);
              assert.equal(second.code, 1, second.stdout + second.stderr);
              assert.equal(second.stdout, "");
              const lines = second.stderr.trim().split("\n");
              assert.equal(lines.length, 1, second.stderr);
              assert.match(lines[0]!, /^ctre: Another ctre prune is running on /);
              assert.ok(lines[0]!.includes(`(pid ${first.pid} since `), lines[0]);
              assert.ok(lines[0]!.includes(`lock ${lockPath})`), lines[0]);
              assert.ok(!firstDone, "the first prune was still running");

              const dry = await runCtre([...DRY_NOW, "-n", ns], opts);
              assert.equal(dry.code, 0, dry.stderr);
              assert.deepEqual(listed(dry.stdout), [`${ns} ${img("locked")}`]);
              assert.ok(!firstDone, "the first prune was still running after the dry run");
            } finally {
              if (!firstDone) {
                // Let it finish; on an early failure above, stop it instead.
                const timer = setTimeout(() => first.kill("SIGKILL"), 20_000);
                await firstOut.catch(() => {});
                clearTimeout(timer);
              }
            }
            const out = await firstOut;
            const stdout = new TextDecoder().decode(out.stdout);
            assert.equal(out.code, 0, stdout + new TextDecoder().decode(out.stderr));
            assert.deepEqual(listed(stdout), [`${ns} ${img("locked")}`]);
            assert.match(stdout, /^\(deleted\) lock docker.io\/library\/locked:1$/m);
            assert.deepEqual(await c.imageRefs(ns), []);
            // The lock went with the process; the file it left does not block the next run.
            const next = await runCtre([...FORCE_NOW, "-n", ns], opts);
            assert.equal(next.code, 0, next.stderr);
            assert.match(next.stdout, /^Nothing to prune/);
          });
        },
      );

      await t.step("a ref removed by someone else mid-run is reported (already gone)", async () => {
        const ns = "steal";
        const stolen = "docker.io/library/stolen:2";
        const wrapper = await ctrWrapper({ address, steal: { ns, ref: stolen } });
        try {
          await withStateDir(async (stateDir) => {
            await c.importImage(ns, img("s1"), "s1");
            await c.importImage(ns, img("stolen"), "stolen", [stolen]);
            await c.importImage(ns, img("s3"), "s3");
            const r = await runCtreWrapped(
              [...FORCE_NOW, "-n", ns, "--json"],
              { address, stateDir },
              wrapper.dir,
            );
            assert.equal(r.code, 0, r.stderr);
            assert.ok((await wrapper.calls()).some((l) => / image rm /.test(l)), "wrapper used");
            const doc = parseDoc(r.stdout);
            assert.deepEqual(sortRefs(doc.removal?.removed ?? []), [
              `${ns} ${img("s1")}`,
              `${ns} ${img("s3")}`,
              `${ns} ${img("stolen")}`,
            ]);
            assert.deepEqual(doc.removal?.missing, [{ namespace: ns, ref: stolen }]);
            assert.deepEqual(doc.removal?.failed, []);
            assert.equal(doc.totals.removedImages, 3);
            assert.equal(doc.totals.failedRefs, 0);
            assert.match(r.stderr, new RegExp(`^\\(already gone\\) ${ns} ${stolen}$`, "m"));
            assert.match(r.stderr, /^Removed 3 of 3 images$/m);
            assert.doesNotMatch(r.stderr, /Cannot remove/);
            assert.deepEqual(await c.imageRefs(ns), []);
          });
        } finally {
          await wrapper.cleanup();
        }
      });

      await t.step(
        "a ref re-pointed right before removal is kept (kept: now points to)",
        async () => {
          const ns = "repoint";
          const moving = "docker.io/library/moving:latest";
          const wrapper = await ctrWrapper({
            address,
            repoint: { ns, ref: moving, to: img("fresh") },
          });
          try {
            await withStateDir(async (stateDir) => {
              const movingOld = await c.importImage(ns, moving, "moving-old");
              const other = await c.importImage(ns, img("other"), "other");
              await c.ageContent(ns, [movingOld, other], 30 * DAY);
              // Too young to go: only the re-point makes the ref point to it.
              const fresh = await c.importImage(ns, img("fresh"), "fresh");
              const r = await runCtreWrapped(
                ["prune", "-f", "--min-age", "1d", "--double-check", "0", "-n", ns, "--json"],
                { address, stateDir },
                wrapper.dir,
              );
              assert.equal(r.code, 0, r.stderr);
              assert.ok(
                (await wrapper.calls()).some((l) => l.includes(`image ls name=="${moving}"`)),
                "the batch was re-read by name",
              );
              const doc = parseDoc(r.stdout);
              const planned = doc.images.find((i) => i.refs.includes(moving));
              assert.equal(planned?.decision, "prune", "the plan had the old target");
              assert.deepEqual(doc.removal?.repointed, [{
                namespace: ns,
                ref: moving,
                digest: fresh,
              }]);
              assert.match(
                r.stderr,
                new RegExp(`^\\(kept: now points to ${fresh}\\) ${ns} ${moving}$`, "m"),
              );
              // other:1, in the same batch, went; the re-pointed ref and its new image stay.
              assert.deepEqual(doc.removal?.removed, [{ namespace: ns, ref: img("other") }]);
              assert.deepEqual(await c.imageRefs(ns), [img("fresh"), moving].sort());
              const now = await c.ctrOk(["-n", ns, "image", "ls", `name==${moving}`]);
              assert.ok(now.includes(fresh), now);
              await assertKeptImagesRun(c, [ns]);
            });
          } finally {
            await wrapper.cleanup();
          }
        },
      );

      await t.step("a ref ctr fails to remove is reported with ctr's message; exit 1", async () => {
        const ns = "fail";
        const error = "failed precondition: injected by the test's ctr wrapper";
        const wrapper = await ctrWrapper({ address, fail: { ref: img("f2"), error } });
        try {
          await withStateDir(async (stateDir) => {
            for (const name of ["f1", "f2", "f3"]) await c.importImage(ns, img(name), name);
            const r = await runCtreWrapped(
              [...FORCE_NOW, "-n", ns, "--json"],
              { address, stateDir },
              wrapper.dir,
            );
            assert.equal(r.code, 1, r.stderr);
            const doc = parseDoc(r.stdout);
            assert.deepEqual(sortRefs(doc.removal?.removed ?? []), [
              `${ns} ${img("f1")}`,
              `${ns} ${img("f3")}`,
            ]);
            assert.deepEqual(doc.removal?.missing, []);
            const failed = doc.removal?.failed ?? [];
            assert.equal(failed.length, 1, JSON.stringify(failed));
            assert.equal(failed[0]!.namespace, ns);
            assert.equal(failed[0]!.ref, img("f2"));
            assert.ok(
              failed[0]!.error.endsWith(`ctr: unable to delete ${img("f2")}: ${error}`),
              failed[0]!.error,
            );
            assert.equal(doc.totals.failedRefs, 1);
            assert.equal(doc.totals.removedImages, 2);
            const f2 = doc.images.find((i) => i.refs.includes(img("f2")));
            assert.ok(f2, "f2 in the document");
            const sizes = doc.images.filter((i) => i.decision === "prune" && i !== f2).reduce(
              (a, i) => a + i.sizeBytes,
              0,
            );
            assert.equal(doc.totals.removedImageBytes, sizes);
            const line = r.stderr.split("\n").find((l) => l.startsWith("Cannot remove image"));
            assert.equal(
              line,
              `Cannot remove image "${img("f2")}" in namespace ${ns}: ${failed[0]!.error}`,
            );
            assert.match(r.stderr, /^Removed 2 of 3 images, 1 refs failed$/m);
            assert.doesNotMatch(r.stderr, /\(deleted\) fail docker.io\/library\/f2:1/);
            assert.deepEqual(await c.imageRefs(ns), [img("f2")]);
          });
        } finally {
          await wrapper.cleanup();
        }
      });
    });
  },
});

Deno.test({
  name: "ctre prune --json: every decision with its reason, then removal totals that add up",
  async fn(t) {
    await withContainerd(async (c) => {
      await withStateDir(async (stateDir) => {
        const opts = { address: c.address, stateDir };
        const ns = "default";
        const pause = "docker.io/library/pause:3.9";
        const d: Record<string, string> = {};
        for (const name of ["inuse", "recent", "pinned", "old", "old2"]) {
          d[name] = await c.importImage(ns, img(name), name);
        }
        d.pause = await c.importImage(ns, pause, "pause");
        d.young = await c.importImage(ns, img("young"), "young");
        await c.label(ns, img("pinned"), "io.cri-containerd.pinned=pinned");
        await c.ageContent(
          ns,
          Object.entries(d).filter(([k]) => k !== "young").map(([, v]) => v),
          30 * DAY,
        );
        await c.run(ns, img("inuse"), "c-inuse");
        const start = now() - 3600;
        await Deno.writeTextFile(
          join(stateDir, "image_starts"),
          `${start} ---------- ${ns} ${img("recent")}\n`,
        );
        const keep = ["--keep", "docker.io/library/pause:*"];
        const all = await c.imageRefs(ns);
        let planned: PlanDoc | undefined;

        await t.step("--dry-run --json: one document with every decision", async () => {
          const r = await runCtre(
            ["prune", "--dry-run", "--json", "--double-check", "0", ...keep],
            opts,
          );
          assert.equal(r.code, 0, r.stderr);
          const doc = parseDoc(r.stdout);
          planned = doc;
          assert.ok(r.stdout.startsWith("{") && r.stdout.endsWith("}\n"), "only the document");
          assert.match(r.stderr, /^NS REF_TO_PRUNE$/m);
          assert.equal(doc.version, 1);
          assert.equal(doc.mode, "dry-run");
          assert.ok(Math.abs(Date.parse(doc.generatedAt) / 1000 - now()) < 60, doc.generatedAt);
          // Field by field: a field added later (the golden test pins the names) is not an error.
          assert.equal(doc.policy.minAgeSeconds, 14 * DAY);
          assert.equal(doc.policy.usedWithinSeconds, 14 * DAY);
          assert.equal(doc.policy.doubleCheckSeconds, 0);
          assert.deepEqual(doc.policy.keep, ["docker.io/library/pause:*"]);
          assert.deepEqual(doc.policy.namespaces, []);
          assert.equal(doc.removal, null);
          assert.deepEqual(pick(doc.totals), {
            images: 7,
            prune: 2,
            keep: 5,
            removedImages: 0,
            failedRefs: 0,
            reclaimedBytes: 0,
            removedImageBytes: 0,
            contentBytesBefore: null,
            contentBytesAfter: null,
          });
          const images = byRef(doc);
          const get = (ref: string) => {
            const i = images.get(`${ns} ${ref}`);
            assert.ok(i, `${ref} in the document`);
            return i;
          };
          const expect: [string, string, string][] = [
            [img("inuse"), "keep", "in-use"],
            [img("recent"), "keep", "recently-used"],
            [img("young"), "keep", "too-young"],
            [img("pinned"), "keep", "pinned"],
            [pause, "keep", "kept-by-pattern"],
            [img("old"), "prune", "prune"],
            [img("old2"), "prune", "prune"],
          ];
          for (const [ref, decision, reason] of expect) {
            const i = get(ref);
            assert.deepEqual([i.decision, i.reason], [decision, reason], ref);
            assert.equal(i.namespace, ns);
            assert.deepEqual(i.refs, [ref]);
            assert.ok(i.sizeBytes > 0, `${ref} size`);
            assert.deepEqual(i.containers, reason === "in-use" ? ["c-inuse"] : null, ref);
            assert.equal(
              i.pattern,
              reason === "kept-by-pattern" ? "docker.io/library/pause:*" : null,
            );
            assert.equal(i.lastStart, reason === "recently-used" ? start : null, ref);
            assert.equal(i.lastStop, null);
            assert.equal(typeof i.ageText, "string");
            if (reason === "too-young") assert.ok(i.ageSeconds! < DAY, `${ref} ${i.ageText}`);
            else assert.ok(i.ageSeconds! >= 14 * DAY, `${ref} ${i.ageText}`);
          }
          assert.equal(get(img("old")).digest, d.old);
          assert.equal(get(img("inuse")).digest, d.inuse);
          assert.deepEqual(await c.imageRefs(ns), all);
        });

        await t.step("--force --json: removed refs and totals that add up", async () => {
          const before = await contentBytes(c);
          const r = await runCtre(
            ["prune", "--force", "--json", "--double-check", "0", ...keep],
            opts,
          );
          assert.equal(r.code, 0, r.stderr);
          const doc = parseDoc(r.stdout);
          const after = await contentBytes(c);
          assert.equal(doc.mode, "force");
          assert.deepEqual(
            doc.images.map((i) => [i.refs.join(","), i.reason]),
            planned?.images.map((i) => [i.refs.join(","), i.reason]),
          );
          assert.deepEqual(
            sortRefs(doc.removal?.removed ?? []),
            [`${ns} ${img("old")}`, `${ns} ${img("old2")}`].sort(),
          );
          assert.deepEqual(doc.removal?.missing, []);
          assert.deepEqual(doc.removal?.failed, []);
          assert.deepEqual(doc.removal?.containers?.kept, [`${ns} c-inuse`]);
          assert.deepEqual(doc.removal?.containers?.errors, []);
          assert.deepEqual(doc.removal?.content?.map((x) => [x.namespace, x.error]), [[ns, null]]);
          const removedSizes = doc.images.filter((i) => i.decision === "prune")
            .reduce((a, i) => a + i.sizeBytes, 0);
          assert.equal(doc.totals.removedImages, 2);
          assert.equal(doc.totals.removedImageBytes, removedSizes);
          // What the store shrank by, measured: the removed images and the kept images' layers
          // that content prune let go (they run from their snapshots).
          assert.equal(doc.totals.reclaimedBytes, before - after);
          assert.equal(doc.totals.contentBytesBefore, before);
          assert.equal(doc.totals.contentBytesAfter, after);
          assert.ok(after < before, `content store shrank: ${before} -> ${after}`);
          assert.deepEqual(
            await c.imageRefs(ns),
            [img("inuse"), img("pinned"), img("recent"), img("young"), pause].sort(),
          );
          await assertKeptImagesRun(c, [ns]);
        });

        await t.step("--force --json with nothing to prune still reports a removal", async () => {
          const bytes = await contentBytes(c);
          const r = await runCtre(
            ["prune", "--force", "--json", "--double-check", "0", ...keep],
            opts,
          );
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stderr, /^Nothing to prune \(5 images in 1 namespaces kept\)$/m);
          const doc = parseDoc(r.stdout);
          assert.equal(doc.mode, "force");
          assert.ok(doc.removal !== null, "a forced run reports a removal");
          assert.deepEqual(doc.removal.removed, []);
          assert.deepEqual(doc.removal.missing, []);
          assert.deepEqual(doc.removal.failed, []);
          assert.equal(doc.removal.containers, null);
          assert.equal(doc.removal.content, null);
          assert.deepEqual(pick(doc.totals), {
            images: 5,
            prune: 0,
            keep: 5,
            removedImages: 0,
            failedRefs: 0,
            reclaimedBytes: 0,
            removedImageBytes: 0,
            contentBytesBefore: bytes,
            contentBytesAfter: bytes,
          });
        });
      });
    });
  },
});
