/**
 * Model-based tests of prune: thousands of random nodes (tests/support/random_node.ts) built in
 * the in-memory node, pruned by prune() as the CLI runs it (forced, container clean-up and
 * content prune on), and checked against the reference model and the invariants:
 *
 * - exit 0;
 * - a digest any container was created from keeps a ref;
 * - a digest keeps all its refs or none;
 * - pinned, recently used, young and kept-by-pattern digests stay;
 * - an old, unpinned, unused image whose layers no container runs from is removed;
 * - every image left runs (its snapshot is there, or all its layer blobs are).
 *
 * Each run draws new seeds; a failure prints its seed, and `CTRE_SEED=<seed>` replays it
 * (`CTRE_MODEL_CASES` sets how many cases).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { prune, type PruneOptions } from "../lib/prune/prune.ts";
import { FakeIo } from "./support/fake_io.ts";
import { FakeNode } from "./support/fake_node.ts";
import { pruneOptions } from "./support/prune_options.ts";
import {
  DAY,
  generate,
  MIN_AGE_DAYS,
  type Scenario,
  USED_WITHIN_DAYS,
} from "./support/random_node.ts";
import { seeds } from "./support/random.ts";
import { brokenInvariants, writeState } from "./support/model_check.ts";

const NOW = 1_800_000_000;
const CASES = Number(Deno.env.get("CTRE_MODEL_CASES") ?? "1000");

/** A content age as `ctr content ls` prints it (go-units HumanDuration), for whole days. */
function ctrAge(days: number): string {
  if (days === 1) return "24 hours";
  if (days < 14) return `${days} days`;
  if (days < 60) return `${Math.floor(days / 7)} weeks`;
  return `${Math.floor(days / 30)} months`;
}

const CONTAINER_STATUS: Record<string, string | undefined> = {
  running: "RUNNING",
  created: "CREATED",
  stopped: "STOPPED",
  "no-task": undefined,
  cri: "RUNNING",
  "docker-snapshot": "RUNNING",
  "no-image": "RUNNING",
};

/** Builds `s` in a FakeNode; returns it and each image's digest by index. */
export function buildFake(s: Scenario): { node: FakeNode; digests: Map<number, string> } {
  const n = new FakeNode();
  const digests = new Map<number, string>();
  for (const im of s.images) {
    const base = im.base === null ? [] : n.layersOf(im.ns, digests.get(im.base)!);
    const d = n.addImage(im.ns, im.refs[0]!, {
      age: ctrAge(im.ageDays),
      layers: im.layers,
      unpacked: im.unpacked,
      base,
      ...(im.pinned ? { labels: { "io.cri-containerd.pinned": "pinned" } } : {}),
    });
    digests.set(im.index, d);
    for (const ref of im.refs.slice(1)) n.tag(im.ns, ref, d);
  }
  for (const c of s.containers) {
    const labels: Record<string, string> = c.kind === "cri"
      ? { "io.cri-containerd.kind": "container", "io.kubernetes.pod.name": c.id }
      : c.kind === "no-image"
      ? {}
      : { "io.kubernetes.pod.name": c.id };
    n.addContainer(c.ns, c.id, c.ref, CONTAINER_STATUS[c.kind], {
      labels,
      ...(c.image === null ? {} : { snapshotOf: digests.get(c.image)! }),
    });
  }
  for (const c of s.containers) {
    if (c.movedTo !== null && c.ref !== null) n.tag(c.ns, c.ref, digests.get(c.movedTo)!);
  }
  return { node: n, digests };
}

/** The prune options of a generated run. */
export function modelOptions(s: Scenario, stateDir: string): PruneOptions {
  return pruneOptions(stateDir, {
    minAge: MIN_AGE_DAYS * DAY,
    usedWithin: USED_WITHIN_DAYS * DAY,
    keep: s.keep,
    keepLatest: s.keepLatest,
  });
}

/** Runs one generated case against the in-memory node; the broken invariants. */
async function runCase(seed: number, stateDir: string): Promise<string[]> {
  const s = generate(seed);
  const { node, digests } = buildFake(s);
  // A clean state dir: pins remembered in another case must not protect this one's images.
  for await (const e of Deno.readDir(stateDir)) {
    await Deno.remove(join(stateDir, e.name), { recursive: true });
  }
  await writeState(s, stateDir, NOW);
  const io = new FakeIo({ now: NOW });
  const code = await prune(node.containerd, modelOptions(s, stateDir), io);
  node.gc();
  const broken = code === 0 ? [] : [`exit ${code}: ${io.stderr.text.trim()}`];
  const after = new Map(
    [...node.namespaces].map((
      [ns, x],
    ) => [ns, new Map([...x.images].map(([r, i]) => [r, i.digest]))]),
  );
  const runs = (ns: string, digest: string) => {
    const chain = node.chainOf(ns, digest);
    const snapshot = node.ns(ns).snapshots.some((x) => x.key === chain && x.kind === "Committed");
    return snapshot || node.layersOf(ns, digest).every((l) => node.has(ns, l));
  };
  return [...broken, ...brokenInvariants(s, digests, after, runs)];
}

Deno.test(`prune() on ${CASES} random nodes keeps the model's invariants`, async () => {
  const list = Deno.env.get("CTRE_SEED") ? seeds(0) : seeds(1);
  // One seed drawn per run, then consecutive: CTRE_SEED=<printed seed> replays exactly that case.
  const all = list.length > 1 || Deno.env.get("CTRE_SEED")
    ? list
    : Array.from({ length: CASES }, (_, i) => list[0]! + i);
  const stateDir = await Deno.makeTempDir({ prefix: "ctre-model-" });
  const failures: string[] = [];
  try {
    for (const seed of all) {
      const broken = await runCase(seed, stateDir);
      if (broken.length > 0) {
        failures.push(`seed ${seed} (CTRE_SEED=${seed}):\n  ${broken.join("\n  ")}`);
      }
      if (failures.length >= 5) break;
    }
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
  assert.deepEqual(failures, [], `${failures.length} failing cases:\n${failures.join("\n")}`);
});
