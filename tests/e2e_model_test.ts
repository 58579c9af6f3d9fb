/**
 * Model-based tests of prune on a real containerd: a few random nodes (tests/support/
 * random_node.ts, the generator of the unit suite's thousands of in-memory cases) built in a
 * private containerd, pruned by the real CLI, and checked against the same reference model. Five
 * seeds per run, different each run and printed; `CTRE_SEED=<seed>` replays one.
 *
 * What the real node cannot take from the generator is mapped: a task "created" and a container
 * without a task are both `ctr container create`; a docker-like container is a snapshot prepared
 * under its ID on the image's chain plus a container made with `--rootfs` (no image); an
 * image-less one is `--rootfs` alone; images share no base layer (the harness builds none).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type TestContainerd, withContainerd } from "./support/containerd.ts";
import { runCtre, tempStateDir } from "./support/cli.ts";
import { brokenInvariants, writeState } from "./support/model_check.ts";
import { DAY, generate, MIN_AGE_DAYS, type Scenario } from "./support/random_node.ts";
import { ociChainId } from "./support/fake_node.ts";
import { seeds } from "./support/random.ts";

/** The generated scenario, trimmed to what the harness builds: no shared base, 1-2 layers. */
function realistic(seed: number): Scenario {
  const s = generate(seed);
  for (const im of s.images) {
    im.base = null;
    im.layers = Math.min(im.layers, 2);
  }
  return s;
}

/** The chain ID image `digest` of `ns` unpacks to (its config's diff IDs). */
async function chainOf(c: TestContainerd, ns: string, digest: string): Promise<string> {
  const manifest = JSON.parse(await c.ctrOk(["-n", ns, "content", "get", digest]));
  const config = JSON.parse(await c.ctrOk(["-n", ns, "content", "get", manifest.config.digest]));
  return ociChainId(config.rootfs.diff_ids);
}

/** Imports the images, backdates their content, then makes the containers and moves tags. */
async function build(c: TestContainerd, s: Scenario): Promise<Map<number, string>> {
  const digests = new Map<number, string>();
  for (const im of s.images) {
    const [first, ...more] = im.refs;
    const layers = im.layers === 2 ? 2 : 1;
    digests.set(
      im.index,
      await c.importImage(im.ns, first!, `model-${s.seed}-${im.index}`, more, {
        unpack: im.unpacked,
        layers,
      }),
    );
    if (im.pinned) await c.label(im.ns, first!, "io.cri-containerd.pinned=pinned");
  }
  const groups = new Map<string, string[]>();
  for (const im of s.images.filter((im) => im.ageDays >= MIN_AGE_DAYS)) {
    const key = `${im.ns} ${im.ageDays}`;
    groups.set(key, [...groups.get(key) ?? [], digests.get(im.index)!]);
  }
  for (const [key, list] of groups) {
    const [ns, days] = key.split(" ");
    await c.ageContent(ns!, list, Number(days) * DAY);
  }
  const rootfs = join(c.dir, "rootfs");
  await Deno.mkdir(rootfs, { recursive: true });
  for (const k of s.containers) {
    const ref = k.ref!;
    const cri = [
      "--label",
      "io.cri-containerd.kind=container",
      "--label",
      `io.kubernetes.pod.name=${k.id}`,
    ];
    if (k.kind === "running" || k.kind === "cri") {
      if (k.kind === "cri") {
        await c.ctrOk(["-n", k.ns, "container", "create", ...cri, ref, k.id, "sleep", "1"]);
      } else await c.run(k.ns, ref, k.id);
    } else if (k.kind === "stopped") await c.runToExit(k.ns, ref, k.id);
    else if (k.kind === "created" || k.kind === "no-task") await c.create(k.ns, ref, k.id);
    else {
      if (k.kind === "docker-snapshot") {
        const chain = await chainOf(c, k.ns, digests.get(k.image!)!);
        await c.ctrOk(["-n", k.ns, "snapshot", "prepare", k.id, chain]);
      }
      await c.ctrOk(["-n", k.ns, "container", "create", "--rootfs", rootfs, k.id, "sh"]);
    }
  }
  // Moves run in order, as refsAfterMoves models them: an earlier move may take a target's
  // original refs away, so each target is first pinned by a scratch ref, dropped afterwards.
  const moves = s.containers.filter((k) => k.movedTo !== null && k.ref !== null);
  const pin = (i: number) => `ctre.test/move-target:${i}`;
  const targets = [...new Set(moves.map((k) => k.movedTo!))];
  for (const i of targets) {
    const im = s.images[i]!;
    await c.ctrOk(["-n", im.ns, "image", "tag", im.refs[0]!, pin(i)]);
  }
  for (const k of moves) {
    await c.ctrOk(["-n", k.ns, "image", "tag", "--force", pin(k.movedTo!), k.ref!]);
  }
  for (const i of targets) await c.ctrOk(["-n", s.images[i]!.ns, "image", "rm", pin(i)]);
  return digests;
}

/** ref → digest of every namespace. */
async function refsNow(c: TestContainerd): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  for (const ns of (await c.ctrOk(["namespace", "ls", "-q"])).split("\n").filter((l) => l)) {
    const rows = (await c.ctrOk(["-n", ns, "image", "ls"])).split("\n").slice(1);
    const refs = new Map<string, string>();
    for (const row of rows) {
      const cells = row.trim().split(/\s+/);
      const digest = cells.find((x) => x.startsWith("sha256:"));
      if (cells[0] && digest) refs.set(cells[0], digest);
    }
    out.set(ns, refs);
  }
  return out;
}

for (const seed of seeds(5)) {
  Deno.test({
    name: `prune on a random real node keeps the model's invariants (CTRE_SEED=${seed})`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const s = realistic(seed);
      const stateDir = await tempStateDir();
      try {
        await withContainerd(async (c) => {
          const digests = await build(c, s);
          await writeState(s, stateDir, Math.floor(Date.now() / 1000));
          const args = ["prune", "--force", "--double-check", "0", "--min-age", "14d"];
          args.push("--used-within", "14d", "--keep-latest", String(s.keepLatest));
          for (const k of s.keep) args.push("--keep", k);
          const r = await runCtre(args, { address: c.address, stateDir });
          const after = await refsNow(c);
          let runs = 0;
          const ran = new Map<string, boolean>();
          for (const [ns, refs] of after) {
            for (const [ref, digest] of refs) {
              if (ran.has(`${ns} ${digest}`)) continue;
              const ok = await c.runOnce(ns, ref, `model-check-${++runs}`).then(
                () => true,
                () => false,
              );
              ran.set(`${ns} ${digest}`, ok);
            }
          }
          const broken = [
            ...(r.code === 0 ? [] : [`exit ${r.code}: ${r.stderr.trim()}`]),
            ...brokenInvariants(s, digests, after, (ns, d) => ran.get(`${ns} ${d}`) ?? false),
          ];
          assert.deepEqual(broken, [], `seed ${seed}:\n${r.stdout}\n${r.stderr}`);
        });
      } finally {
        await Deno.remove(stateDir, { recursive: true }).catch(() => {});
      }
    },
  });
}
