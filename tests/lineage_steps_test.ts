/**
 * The steps of lib/policy/lineage.ts's resolveUsers, each on its own, on a small hand-made
 * namespace: images a:1 (chain A), a@old (chain A too: a rebuild that changed only its config),
 * b:1 (chain B), u:1 (chain unknown); snapshots A, B committed, containers' active ones above.
 */
import assert from "node:assert/strict";
import {
  buildIndex,
  criRecordDigests,
  found,
  keepAll,
  keepLineage,
  type LineageInput,
  lineageOf,
  mergeFound,
  resolveContainer,
  resolveContainers,
  resolveDangling,
  resolveImageless,
  resolveSnapshot,
  resolveUnclaimed,
  resolveUsers,
  usersByDigest,
} from "../lib/policy/lineage.ts";
import type { ContainerInfo, ImageRow, SnapshotRow } from "../lib/core/containerd.ts";

const hex = (c: string) => c.repeat(64);
const A = `sha256:${hex("a")}`; // a:1's target
const OLD = `sha256:${hex("o")}`; // the old digest of repository a
const B = `sha256:${hex("b")}`;
const U = `sha256:${hex("u")}`; // chain unknown
const CHAIN_A = `sha256:${hex("1")}`;
const CHAIN_B = `sha256:${hex("2")}`;
const CONFIG_B = `sha256:${hex("c")}`;

const image = (ref: string, digest: string): ImageRow => ({
  ref,
  type: "application/vnd.oci.image.manifest.v1+json",
  digest,
  size: 1,
  platforms: "linux/amd64",
  labels: new Map(),
});
const snap = (key: string, parent: string | null, kind = "Active"): SnapshotRow => ({
  key,
  parent,
  kind,
});
const info = (id: string, part: Partial<ContainerInfo> = {}): ContainerInfo => ({
  id,
  image: "",
  labels: {},
  createdAt: "",
  updatedAt: "",
  snapshotKey: "",
  snapshotter: "",
  criImageRef: null,
  ...part,
});

function namespace(extra: Partial<LineageInput> = {}): LineageInput {
  return {
    ns: "default",
    images: [
      image("docker.io/library/a:1", A),
      image(`docker.io/library/a@${OLD}`, OLD),
      image("docker.io/library/b:1", B),
      image("docker.io/library/u:1", U),
    ],
    containers: [],
    snapshots: [
      snap(CHAIN_A, null, "Committed"),
      snap(CHAIN_B, null, "Committed"),
      snap("on-a", CHAIN_A),
      snap("on-b", CHAIN_B),
      snap("orphan", "missing"),
      snap("loop1", "loop2"),
      snap("loop2", "loop1"),
      snap("bare", null),
    ],
    chains: new Map([[A, new Set([CHAIN_A])], [OLD, new Set([CHAIN_A])], [
      B,
      new Set([CHAIN_B]),
    ]]),
    configs: new Map([[CONFIG_B, [B]]]),
    ...extra,
  };
}

Deno.test("buildIndex: look-ups by ref, repository and chain; unknown chains; listed or not", () => {
  const idx = buildIndex(namespace());
  assert.equal(idx.digestOfRef.get("docker.io/library/b:1"), B);
  assert.deepEqual([...idx.digestsOfRepo.get("docker.io/library/a")!], [A, OLD]);
  assert.deepEqual(idx.imagesOfChain.get(CHAIN_A), [A, OLD]);
  assert.deepEqual(idx.allDigests, [A, OLD, B, U]);
  assert.deepEqual(idx.unknownChain, [U]);
  assert.equal(idx.snapshotsListed, true);
  const unlisted = buildIndex(
    namespace({ snapshots: undefined as never, chains: undefined as never }),
  );
  assert.equal(unlisted.snapshotsListed, false);
  assert.equal(unlisted.snapshots.size, 0);
  assert.deepEqual(unlisted.unknownChain, [A, OLD, B, U]);
});

Deno.test("lineageOf: a chain, a complete walk to nothing, a missing parent, a loop", () => {
  const idx = buildIndex(namespace());
  assert.deepEqual(lineageOf(idx, "on-b"), { kind: "chain", chain: CHAIN_B });
  assert.deepEqual(lineageOf(idx, "bare"), { kind: "gone" });
  assert.deepEqual(lineageOf(idx, "orphan"), {
    kind: "broken",
    why: "snapshot orphan has parent missing, not listed",
  });
  assert.deepEqual(lineageOf(idx, "loop1"), {
    kind: "broken",
    why: "snapshot loop1 has a parent loop",
  });
});

Deno.test("keepLineage: the chain's images; all on a broken walk; unknown chains on none", () => {
  const idx = buildIndex(namespace());
  assert.deepEqual(keepLineage(idx, "s", "lease", lineageOf(idx, "on-a")).uses, [
    { digests: [A, OLD], user: { id: "s", how: "lease" } },
  ]);
  const broken = keepLineage(idx, "s", "snapshot", lineageOf(idx, "orphan"));
  assert.deepEqual(broken.uses[0]!.digests, [A, OLD, B, U]);
  assert.match(broken.warnings[0]!, /^Cannot tell which image s in namespace default uses/);
  const gone = keepLineage(idx, "s", "snapshot", { kind: "gone" });
  assert.deepEqual(gone.uses.map((u) => [u.digests, u.user.how]), [[[U], "unknown"]]);
  assert.deepEqual(gone.warnings, [], "a guess kept quietly");
  const allKnown = buildIndex(namespace({ images: namespace().images.slice(0, 3) }));
  assert.deepEqual(keepLineage(allKnown, "s", "snapshot", { kind: "gone" }), found());
});

Deno.test("keepAll keeps every image with a warning naming the user and why", () => {
  const f = keepAll(buildIndex(namespace()), "c9", "because");
  assert.deepEqual(f.uses, [{
    digests: [A, OLD, B, U],
    user: { id: "c9", how: "unknown", why: "because" },
  }]);
  assert.deepEqual(f.warnings, [
    "Cannot tell which image c9 in namespace default uses (because); keeping every image of " +
    "the namespace",
  ]);
});

Deno.test("criRecordDigests: a ref, a config digest, nothing", () => {
  const idx = buildIndex(namespace());
  assert.deepEqual(criRecordDigests(idx, info("c", { criImageRef: "docker.io/library/a:1" })), [A]);
  assert.deepEqual(criRecordDigests(idx, info("c", { criImageRef: CONFIG_B })), [B]);
  assert.deepEqual(criRecordDigests(idx, info("c")), []);
  assert.deepEqual(criRecordDigests(idx, undefined), []);
});

Deno.test("resolveDangling: each moby-dangling ref keeps its digest", () => {
  const input = namespace();
  input.images.push(image(`moby-dangling@${B}`, B));
  assert.deepEqual(resolveDangling(buildIndex(input)).uses, [
    { digests: [B], user: { id: `moby-dangling@${B}`, how: "moby-dangling" } },
  ]);
  assert.deepEqual(resolveDangling(buildIndex(namespace())), found());
});

Deno.test("resolveContainer: name and lineage agree, disagree, or a moved tag", () => {
  const idx = buildIndex(namespace());
  const on = (id: string, ref: string | null) => ({ id, image: ref, runtime: "runc" });
  // b:1 on its own chain: by name only.
  assert.deepEqual(resolveContainer(idx, on("on-b", "docker.io/library/b:1"), undefined), {
    uses: [{ digests: [B], user: { id: "on-b", how: "name" } }],
    warnings: [],
    needInfo: [],
  });
  // a:1 shares its chain with the old digest of its repository: both, and ask for the info.
  const moved = resolveContainer(idx, on("on-a", "docker.io/library/a:1"), undefined);
  assert.deepEqual(moved.uses.map((u) => [u.digests, u.user.how]), [
    [[A], "name"],
    [[OLD], "snapshot"],
  ]);
  assert.deepEqual(moved.needInfo, ["on-a"]);
  const recorded = resolveContainer(
    idx,
    on("on-a", "docker.io/library/a:1"),
    info("on-a", { criImageRef: "docker.io/library/a:1" }),
  );
  assert.deepEqual(recorded.uses.map((u) => [u.digests, u.user.how]), [
    [[A], "name"],
    [[A], "cri-record"],
  ]);
  // Named b:1 but runs from a's chain: both, and ask.
  const disagree = resolveContainer(idx, on("on-a", "docker.io/library/b:1"), undefined);
  assert.deepEqual(disagree.uses.map((u) => [u.digests, u.user.how]), [
    [[B], "name"],
    [[A, OLD], "snapshot"],
  ]);
  assert.deepEqual(disagree.needInfo, ["on-a"]);
  // No snapshot under its ID: its name, or a warning when that image is not listed.
  assert.deepEqual(
    resolveContainer(idx, on("nosnap", "docker.io/library/b:1"), undefined).uses[0]!.user.how,
    "name",
  );
  assert.match(
    resolveContainer(idx, on("nosnap", "gone:1"), undefined).warnings[0]!,
    /uses image "gone:1", which is not in the image list; skipping it/,
  );
});

Deno.test("resolveImageless: no info asks and keeps all; docker's or a set key keeps all", () => {
  const idx = buildIndex(namespace());
  const ask = resolveImageless(idx, "x", undefined);
  assert.deepEqual(ask.needInfo, ["x"]);
  assert.equal(ask.uses[0]!.user.how, "unknown");
  const docker = resolveImageless(
    idx,
    "x",
    info("x", { labels: { "com.docker/engine.bundle.path": "/b" } }),
  );
  assert.match(docker.warnings[0]!, /a docker container whose snapshot is not listed/);
  assert.match(
    resolveImageless(idx, "x", info("x", { snapshotKey: "k" })).warnings[0]!,
    /\(its snapshot k is not listed\)/,
  );
  assert.match(
    resolveImageless(idx, "x", info("x", { snapshotKey: "k", snapshotter: "zfs" })).warnings[0]!,
    /\(its snapshot k \(snapshotter zfs\) is not listed\)/,
  );
  // ctr run --rootfs: neither an image nor a snapshot key.
  assert.deepEqual(resolveImageless(idx, "x", info("x")), found());
  // Without a snapshot listing the container is not judged by its info at all.
  const unlisted = buildIndex(namespace({ snapshots: undefined as never }));
  assert.deepEqual(
    resolveContainer(unlisted, { id: "x", image: null, runtime: "runc" }, undefined),
    found(),
  );
});

Deno.test("resolveContainers claims the snapshot key of the info, else the container ID", () => {
  const input = namespace({
    containers: [
      { id: "on-b", image: "docker.io/library/b:1", runtime: "runc" },
      { id: "c2", image: "docker.io/library/b:1", runtime: "runc" },
    ],
    infos: new Map([["c2", info("c2", { image: "docker.io/library/b:1", snapshotKey: "on-a" })]]),
  });
  const r = resolveContainers(input, buildIndex(input));
  assert.deepEqual([...r.claimed], ["on-b", "on-a"]);
  assert.deepEqual(r.uses.map((u) => [u.user.id, u.digests, u.user.how]), [
    ["on-b", [B], "name"],
    ["c2", [B], "name"],
    ["c2", [A, OLD], "snapshot"],
  ]);
});

Deno.test("resolveUnclaimed: active snapshots no container claims, by lease or snapshot", () => {
  const input = namespace({ leases: ["on-b"] });
  const idx = buildIndex(input);
  const r = resolveUnclaimed(input, idx, new Set(["on-a", "orphan", "loop1", "loop2"]));
  assert.deepEqual(r.unclaimed, ["on-b", "bare"]);
  assert.deepEqual(r.uses.map((u) => [u.user.id, u.digests, u.user.how]), [
    ["on-b", [B], "lease"],
    ["bare", [U], "unknown"],
  ]);
  assert.deepEqual(r.warnings, []);
});

Deno.test("resolveSnapshot: an image volume keeps only its image, by the pod's lease", () => {
  const pod = hex("9");
  const key = `/state/io.containerd.grpc.v1.cri/image-volumes/${pod}/${hex("a")}`;
  const input = namespace();
  input.snapshots!.push(snap(key, CHAIN_A));
  const idx = buildIndex(input);
  assert.deepEqual(resolveSnapshot(idx, key, new Set([pod])).uses, [
    { digests: [A], user: { id: key, how: "lease" } },
  ]);
  assert.deepEqual(resolveSnapshot(idx, key, new Set()).uses[0]!.user.how, "snapshot");
  // Any other key: every image of its chain.
  assert.deepEqual(resolveSnapshot(idx, "on-a", new Set()).uses[0]!.digests, [A, OLD]);
});

Deno.test("usersByDigest: each user once per digest by id and how, in order found", () => {
  const m = usersByDigest([
    { digests: [A, B], user: { id: "x", how: "name" } },
    { digests: [B], user: { id: "x", how: "name", why: "again" } },
    { digests: [B], user: { id: "x", how: "snapshot" } },
    { digests: [], user: { id: "y", how: "lease" } },
  ]);
  assert.deepEqual([...m.keys()], [A, B]);
  assert.deepEqual(m.get(B), [{ id: "x", how: "name" }, { id: "x", how: "snapshot" }]);
  const merged = mergeFound([
    found({ warnings: ["1"] }),
    found({ warnings: ["2"], needInfo: ["c"] }),
  ]);
  assert.deepEqual(merged, { uses: [], warnings: ["1", "2"], needInfo: ["c"] });
});

Deno.test("resolveUsers: the steps in order, warnings in the order found", () => {
  const input = namespace({
    snapshotsError: "ctr snapshot ls of snapshotter zfs failed: boom",
    containers: [{ id: "nosnap", image: "gone:1", runtime: "runc" }],
  });
  const r = resolveUsers(input);
  // The failed listing, then the containers, then the unclaimed snapshots' broken walks.
  assert.deepEqual(r.warnings.map((w) => w.split(" ").slice(0, 5).join(" ")), [
    "Cannot tell which image (snapshots)",
    'Container "nosnap" in namespace default',
    "Cannot tell which image orphan",
    "Cannot tell which image loop1",
    "Cannot tell which image loop2",
  ]);
  assert.match(r.warnings[0]!, /boom/);
  assert.deepEqual(r.unclaimed, ["on-a", "on-b", "orphan", "loop1", "loop2", "bare"]);
  assert.deepEqual(r.usersOf.get(A)!.map((u) => u.id), [
    "(snapshots)",
    "on-a",
    "orphan",
    "loop1",
    "loop2",
  ]);
});
