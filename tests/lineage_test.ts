/**
 * lib/policy/lineage.ts on real listings (tests/testdata/lineage/: ctr 1.6.20, 1.7.24, 2.1.9 and
 * dockerd 26.1.5 on 1.7.24 / 2.1.9) and on hand-made variations of them.
 */
import assert from "node:assert/strict";
import {
  chainId,
  chainIdOfConfig,
  chainsFromLabels,
  type LineageInput,
  refsOfSnapshot,
  resolveUsers,
  snapshottersOf,
  type User,
} from "../lib/policy/lineage.ts";
import {
  parseContainerInfo,
  parseContainerLs,
  parseContentLs,
  parseImageLs,
  parseLeaseIds,
  parseSnapshotLs,
} from "../lib/ctr/listings.ts";
import type { ContainerInfo, ImageRow } from "../lib/core/containerd.ts";

function fixture(path: string): string {
  return Deno.readTextFileSync(new URL(`./testdata/lineage/${path}`, import.meta.url));
}

/** A namespace as inventory.ts builds it, from one fixture dir. */
function load(dir: string, files = { content: "content_ls.txt", images: "image_ls.txt" }) {
  const content = new Map(
    parseContentLs(fixture(`${dir}/${files.content}`)).map((b) => [b.digest, b]),
  );
  const images = parseImageLs(fixture(`${dir}/${files.images}`));
  const labels = chainsFromLabels(images.map((i) => i.digest), content);
  const input: LineageInput = {
    ns: "moby",
    images,
    containers: parseContainerLs(fixture(`${dir}/container_ls.txt`)),
    snapshots: parseSnapshotLs(fixture(`${dir}/snapshot_ls.txt`)),
    leases: parseLeaseIds(fixture(`${dir}/leases_ls.txt`)),
    chains: labels.chains,
    configs: labels.configs,
  };
  return { input, content, labels };
}

/** ref → users ("id-prefix:how") of its digest, for a compact view. */
function usersByRef(images: ImageRow[], usersOf: Map<string, User[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const i of images) {
    out[i.ref] = (usersOf.get(i.digest) ?? []).map((u) => `${u.id.slice(0, 12)}:${u.how}`).sort();
  }
  return out;
}

Deno.test("chainId: one layer is its diff ID; more are chained as containerd does", () => {
  const a = "sha256:1d1dc4877e84ef01a905bc75d7906f9f710c3b61cdcb9e1f0ee52b0c96951809";
  const b = "sha256:29a73bc3ed004cce7c7473ae1eebf943b7c185334d98e0133072af571cb60b83";
  assert.equal(chainId([a]), a);
  // Seen live: dockerd 26.1.5 `docker commit` on containerd 2.1.9 made this snapshot.
  assert.equal(
    chainId([a, b]),
    "sha256:d383b821ec93f465619a109dd949a624cb368242d8a505c82fec6ca430bef0c2",
  );
  assert.equal(chainIdOfConfig(JSON.stringify({ rootfs: { diff_ids: [a, b] } })), chainId([a, b]));
  assert.throws(() => chainIdOfConfig("{}"), /diff_ids/);
});

Deno.test("parseSnapshotLs and parseLeaseIds read real ctr 1.6, 1.7 and 2.1 output", () => {
  for (const v of ["ctr-1.6", "ctr-1.7", "ctr-2.1"]) {
    const rows = parseSnapshotLs(fixture(`${v}/snapshot_ls.txt`));
    assert.deepEqual(
      rows.map((r) => [r.key.slice(0, 14), r.parent?.slice(0, 14) ?? null, r.kind]),
      [
        ["c1", "sha256:472a2e6", "Active"],
        ["c2", "sha256:0866d89", "Active"],
        ["sha256:0866d89", null, "Committed"],
        ["sha256:472a2e6", null, "Committed"],
      ],
      v,
    );
    assert.deepEqual(parseLeaseIds(fixture(`${v}/leases_ls.txt`)), [], v);
  }
  const leases = parseLeaseIds(fixture("docker-2.1/leases_ls.txt"));
  assert.equal(leases.length, 4);
  assert.ok(leases.every((l) => /^[0-9a-f]{64}$/.test(l)));
});

Deno.test("ctr containers on 1.6/1.7/2.1: names agree with lineage, each image kept by name", () => {
  for (const v of ["ctr-1.6", "ctr-1.7", "ctr-2.1"]) {
    const { input } = load(v, {
      content: "content_ls_lineage.txt",
      images: "image_ls_lineage.txt",
    });
    assert.deepEqual(snapshottersOf(new Map()), []);
    const r = resolveUsers({ ...input, ns: "default" });
    assert.deepEqual(usersByRef(input.images, r.usersOf), {
      "docker.io/library/a:1": ["c1:name"],
      "docker.io/library/b:1": ["c2:name"],
    }, v);
    assert.deepEqual([r.warnings, r.needInfo, r.unclaimed], [[], [], []], v);
  }
});

for (const v of ["docker-1.7", "docker-2.1"]) {
  Deno.test(`dockerd 26.1.5 on ${v.slice(7)}: running, stopped, committed and dangling kept`, () => {
    const { input, content } = load(v);
    assert.deepEqual(snapshottersOf(content), ["overlayfs"]);
    const r = resolveUsers(input);
    const byRef = usersByRef(input.images, r.usersOf);
    const ps = fixture(`${v}/docker_ps.txt`).split("\n").slice(1).map((l) => l.split(/\s+/));
    const idOf = (image: string) => ps.find((p) => p[1] === image)![0]!.slice(0, 12);
    assert.deepEqual(byRef["docker.io/library/run:1"], [
      `${idOf("docker.io/library/run:1")}:snapshot`,
    ]);
    // The stopped container is no containerd container: its snapshot and lease remain.
    assert.deepEqual(byRef["docker.io/library/stop:1"], [
      `${idOf("docker.io/library/stop:1")}:lease`,
    ]);
    // Committed after a change: two layers, chain ID != either diff ID.
    assert.deepEqual(byRef["docker.io/library/two:1"], [
      `${idOf("docker.io/library/two:1")}:snapshot`,
    ]);
    const dangling = input.images.find((i) => i.ref.startsWith("moby-dangling@"))!;
    assert.deepEqual(byRef[dangling.ref], [
      `${idOf(dangling.digest)}:snapshot`,
      "moby-danglin:moby-dangling",
    ]);
    assert.deepEqual(byRef["docker.io/library/unused:1"], []);
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(r.needInfo, [], "docker containers need no ctr containers info");
  });
}

Deno.test("a moved tag keeps both images; CRI's record narrows the lineage to one image", () => {
  const { input } = load("ctr-1.6", {
    content: "content_ls_lineage.txt",
    images: "image_ls_lineage.txt",
  });
  const a = input.images.find((i) => i.ref === "docker.io/library/a:1")!;
  const b = input.images.find((i) => i.ref === "docker.io/library/b:1")!;
  // a:1 moved to b's digest while c1 still runs the old a:1; the old digest keeps its id ref.
  const images = [
    { ...a, ref: "docker.io/library/a@" + a.digest },
    { ...b, ref: "docker.io/library/a:1" },
    b,
  ];
  const moved = resolveUsers({ ...input, images });
  assert.deepEqual(usersByRef(images, moved.usersOf)[`docker.io/library/a@${a.digest}`], [
    "c1:snapshot",
  ]);
  assert.deepEqual(usersByRef(images, moved.usersOf)["docker.io/library/a:1"], [
    "c1:name",
    "c2:name",
  ]);
  assert.deepEqual(moved.needInfo, ["c1"], "the disagreeing container's CRI record is asked for");

  // Another image shares a's layers: lineage alone keeps it too, CRI's record does not.
  const twin = { ...a, ref: "docker.io/library/twin:1", digest: "sha256:" + "e".repeat(64) };
  const chains = new Map(input.chains!);
  chains.set(twin.digest, chains.get(a.digest)!);
  const all = [...images, twin];
  const lineageOnly = resolveUsers({ ...input, images: all, chains });
  assert.deepEqual(usersByRef(all, lineageOnly.usersOf)["docker.io/library/twin:1"], [
    "c1:snapshot",
  ]);
  const config = [...input.configs!].find(([, ts]) => ts.includes(a.digest))![0];
  const info: ContainerInfo = {
    id: "c1",
    image: "docker.io/library/a:1",
    labels: {},
    createdAt: "",
    updatedAt: "",
    snapshotKey: "c1",
    snapshotter: "overlayfs",
    criImageRef: config,
  };
  const cri = resolveUsers({ ...input, images: all, chains, infos: new Map([["c1", info]]) });
  const byRef = usersByRef(all, cri.usersOf);
  assert.deepEqual(byRef[`docker.io/library/a@${a.digest}`], ["c1:cri-record"]);
  assert.deepEqual(byRef["docker.io/library/twin:1"], []);
  assert.deepEqual(byRef["docker.io/library/a:1"], ["c1:name", "c2:name"]);
  assert.deepEqual(cri.needInfo, []);
});

Deno.test("images sharing a chain: a named container keeps only its own", () => {
  const { input } = load("ctr-2.1", {
    content: "content_ls_lineage.txt",
    images: "image_ls_lineage.txt",
  });
  const a = input.images.find((i) => i.ref === "docker.io/library/a:1")!;
  const twin = { ...a, ref: "docker.io/library/twin:1", digest: "sha256:" + "e".repeat(64) };
  const chains = new Map(input.chains!);
  chains.set(twin.digest, chains.get(a.digest)!);
  const images = [...input.images, twin];
  const r = resolveUsers({ ...input, images, chains });
  assert.deepEqual(usersByRef(images, r.usersOf)["docker.io/library/twin:1"], []);
  // Without a name (docker's containers) the lineage keeps both.
  const nameless = input.containers.map((c) => ({ ...c, image: null }));
  const r2 = resolveUsers({ ...input, images, chains, containers: nameless });
  assert.deepEqual(usersByRef(images, r2.usersOf)["docker.io/library/twin:1"], ["c1:snapshot"]);
  assert.deepEqual(usersByRef(images, r2.usersOf)["docker.io/library/a:1"], ["c1:snapshot"]);
});

Deno.test("never prune on a guess: unknown users keep every image and say why", () => {
  const { input } = load("docker-2.1");
  const all = new Set(input.images.map((i) => i.digest));
  // A snapshot whose parent is not listed (another snapshotter, a half-read listing).
  const broken = parseSnapshotLs(fixture("docker-2.1/snapshot_ls.txt")).filter((s) =>
    !s.key.endsWith("-init")
  );
  const r = resolveUsers({ ...input, snapshots: broken });
  assert.equal(r.usersOf.size, all.size);
  assert.ok([...r.usersOf.values()].every((us) => us.some((u) => u.how === "unknown")));
  assert.match(
    r.warnings[0]!,
    /Cannot tell which image .* uses \(snapshot .* has parent .*-init, not listed\)/,
  );
  // Snapshots could not be listed at all.
  const failed = resolveUsers({ ...input, snapshotsError: "ctr snapshot ls failed: boom" });
  assert.equal(failed.usersOf.size, all.size);
  assert.match(failed.warnings[0]!, /boom/);
  // An image whose chain is unknown is kept for a user whose lineage matches no known image.
  const chains = new Map(input.chains!);
  const stop = input.images.find((i) => i.ref === "docker.io/library/stop:1")!;
  chains.delete(stop.digest);
  const unknown = resolveUsers({ ...input, chains });
  const users = unknown.usersOf.get(stop.digest)!;
  assert.equal(users.length, 1);
  assert.equal(users[0]!.how, "unknown");
  assert.match(users[0]!.why!, /no image whose chain ID is known/);
});

Deno.test("a container with no image and no snapshot: its info decides", () => {
  const { input: loaded } = load("ctr-2.1", {
    content: "content_ls_lineage.txt",
    images: "image_ls_lineage.txt",
  });
  const input = { ...loaded, ns: "default" };
  const rootfs = { id: "rootfs-only", image: null, runtime: "io.containerd.runc.v2" };
  const asked = resolveUsers({ ...input, containers: [...input.containers, rootfs] });
  assert.deepEqual(asked.needInfo, ["rootfs-only"]);
  assert.ok(asked.warnings.some((w) => w.includes("rootfs-only")), "kept everything meanwhile");
  const info = (snapshotKey: string, snapshotter: string): ContainerInfo => ({
    id: "rootfs-only",
    image: "",
    labels: {},
    createdAt: "",
    updatedAt: "",
    snapshotKey,
    snapshotter,
    criImageRef: null,
  });
  const none = resolveUsers({
    ...input,
    containers: [...input.containers, rootfs],
    infos: new Map([["rootfs-only", info("", "")]]),
  });
  assert.deepEqual(none.warnings, [], "made from a host path: it uses no image");
  assert.deepEqual(usersByRef(input.images, none.usersOf), {
    "docker.io/library/a:1": ["c1:name"],
    "docker.io/library/b:1": ["c2:name"],
  });
  const elsewhere = resolveUsers({
    ...input,
    containers: [...input.containers, rootfs],
    infos: new Map([["rootfs-only", info("k", "zfs")]]),
  });
  assert.match(elsewhere.warnings[0]!, /snapshot k \(snapshotter zfs\) is not listed/);
});

Deno.test("refsOfSnapshot maps a docker container's snapshot to its image's refs", () => {
  const { input } = load("docker-2.1");
  const ps = fixture("docker-2.1/docker_ps.txt").split("\n").slice(1).map((l) => l.split(/\s+/));
  const stopped = ps.find((p) => p[1] === "docker.io/library/stop:1")![0]!;
  assert.deepEqual(refsOfSnapshot(stopped, input.snapshots!, input.images, input.chains!), [
    "docker.io/library/stop:1",
  ]);
  assert.deepEqual(refsOfSnapshot("nope", input.snapshots!, input.images, input.chains!), []);
});

Deno.test("containerd 2.1.9 CRI image volume: its snapshot and the pod's lease keep the image", () => {
  const { input } = load("cri-2.1-image-volume");
  const r = resolveUsers({ ...input, ns: "k8s.io" });
  const vol = input.images.find((i) => i.ref.endsWith("/library/vol:1"))!;
  const users = r.usersOf.get(vol.digest)!;
  assert.equal(users.length, 1);
  assert.equal(users[0]!.how, "lease");
  assert.match(
    users[0]!.id,
    /\/io\.containerd\.grpc\.v1\.cri\/image-volumes\/[0-9a-f]{64}\/[0-9a-f]{64}$/,
  );
  assert.ok(users[0]!.id.endsWith(vol.digest.slice(7)));
  const app = input.images.find((i) => i.ref.endsWith("/library/app:1"))!;
  assert.deepEqual(r.usersOf.get(app.digest)!.map((u) => u.how), ["name"]);
  assert.deepEqual(r.warnings, []);
});

Deno.test("parseContainerInfo reads CRI's ImageRef from a real 2.1.9 CRI container", () => {
  const info = parseContainerInfo(fixture("cri-2.1-image-volume/containers_info.txt"));
  const { input } = load("cri-2.1-image-volume");
  const app = input.images.find((i) => i.ref.endsWith("/library/app:1"))!;
  assert.match(info.criImageRef!, /^sha256:[0-9a-f]{64}$/);
  // CRI's image id is the config digest, also a ref CRI creates for the same target.
  assert.equal(input.images.find((i) => i.ref === info.criImageRef)?.digest, app.digest);
  assert.equal(info.snapshotKey, info.id);
});

Deno.test("a tag moved to an image with the same layers: CRI's record decides, else both stay", () => {
  const { input } = load("ctr-2.1", {
    content: "content_ls_lineage.txt",
    images: "image_ls_lineage.txt",
  });
  const a = input.images.find((i) => i.ref === "docker.io/library/a:1")!;
  // The old digest of the same repository, same layers (only its config differed).
  const old = {
    ...a,
    ref: "docker.io/library/a@sha256:" + "e".repeat(64),
    digest: "sha256:" + "e".repeat(64),
  };
  const chains = new Map(input.chains!);
  chains.set(old.digest, chains.get(a.digest)!);
  const images = [...input.images, old];
  const guess = resolveUsers({ ...input, images, chains });
  assert.deepEqual(usersByRef(images, guess.usersOf)[old.ref], ["c1:snapshot"]);
  assert.deepEqual(usersByRef(images, guess.usersOf)["docker.io/library/a:1"], ["c1:name"]);
  assert.deepEqual(guess.needInfo, ["c1"]);
  const info = (criImageRef: string): ContainerInfo => ({
    id: "c1",
    image: "docker.io/library/a:1",
    labels: {},
    createdAt: "",
    updatedAt: "",
    snapshotKey: "c1",
    snapshotter: "overlayfs",
    criImageRef,
  });
  // CRI says it runs the old one: both stay (the name's image too).
  const configs = new Map(input.configs!);
  configs.set("sha256:" + "c".repeat(64), [old.digest]);
  const runsOld = resolveUsers({
    ...input,
    images,
    chains,
    configs,
    infos: new Map([["c1", info("sha256:" + "c".repeat(64))]]),
  });
  assert.deepEqual(usersByRef(images, runsOld.usersOf)[old.ref], ["c1:cri-record"]);
  assert.deepEqual(usersByRef(images, runsOld.usersOf)["docker.io/library/a:1"], ["c1:name"]);
  // CRI says it runs the named one: the old digest may go.
  const aConfig = [...input.configs!].find(([, ts]) => ts.includes(a.digest))![0];
  const runsNamed = resolveUsers({
    ...input,
    images,
    chains,
    infos: new Map([["c1", info(aConfig)]]),
  });
  assert.deepEqual(usersByRef(images, runsNamed.usersOf)[old.ref], []);
  assert.deepEqual(usersByRef(images, runsNamed.usersOf)["docker.io/library/a:1"], [
    "c1:cri-record",
    "c1:name",
  ]);
});

Deno.test("a docker container whose snapshot is not listed keeps everything", () => {
  const { input } = load("docker-2.1");
  const running = input.containers[0]!;
  const info: ContainerInfo = {
    id: running.id,
    image: "",
    labels: { "com.docker/engine.bundle.path": "/x" },
    createdAt: "",
    updatedAt: "",
    snapshotKey: "",
    snapshotter: "",
    criImageRef: null,
  };
  const r = resolveUsers({
    ...input,
    snapshots: input.snapshots!.filter((s) => !s.key.startsWith(running.id)),
    infos: new Map([[running.id, info]]),
  });
  assert.match(r.warnings.join("\n"), /a docker container whose snapshot is not listed/);
  assert.equal(r.usersOf.size, new Set(input.images.map((i) => i.digest)).size);
});

Deno.test("a container with neither image nor snapshot key uses no image, in moby too", () => {
  const { input } = load("docker-2.1");
  const rootfs = { id: "c-noimg", image: null, runtime: "io.containerd.runc.v2" };
  const info = (snapshotKey: string, labels: Record<string, string> = {}): ContainerInfo => ({
    id: "c-noimg",
    image: "",
    labels,
    createdAt: "",
    updatedAt: "",
    snapshotKey,
    snapshotter: snapshotKey === "" ? "" : "overlayfs",
    criImageRef: null,
  });
  const resolve = (i: ContainerInfo) =>
    resolveUsers({
      ...input,
      containers: [...input.containers, rootfs],
      infos: new Map([["c-noimg", i]]),
    });
  const without = resolveUsers(input);
  const none = resolve(info(""));
  assert.deepEqual(none.warnings, without.warnings, "made from a host path: it uses no image");
  assert.deepEqual(
    usersByRef(input.images, none.usersOf),
    usersByRef(input.images, without.usersOf),
  );
  // Unknown stays unknown: a snapshot key that is set but not listed, or dockerd's label (its
  // snapshot is keyed by the container ID).
  for (const i of [info("gone"), info("", { "com.docker/engine.bundle.path": "/x" })]) {
    const r = resolve(i);
    assert.match(r.warnings.join("\n"), /Cannot tell which image c-noimg in namespace moby/);
    assert.equal(r.usersOf.size, new Set(input.images.map((i) => i.digest)).size);
  }
});
