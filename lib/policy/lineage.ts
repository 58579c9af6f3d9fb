/**
 * What containers really run from, as pure functions: users (containers, active snapshots,
 * leases, docker's `moby-dangling` refs) → the images they keep, each with how it was found.
 * Images' chain IDs come from lib/policy/chains.ts (re-exported here for existing importers).
 *
 * Precedence per container: CRI's own record of its image (`ImageRef`), then its `Image` name
 * when that image's chain ID matches the container's snapshot lineage, and only then the lineage
 * (every image of that chain). A name whose chain differs from the lineage is a moved tag: both
 * are kept. A user whose image cannot be determined keeps every image of its namespace.
 *
 * @module
 */
import type {
  ContainerInfo,
  ContainerRow,
  ImageRow,
  LineageInput,
  SnapshotRow,
} from "../core/containerd.ts";

/** How a user of an image was found. */
export type How = "cri-record" | "name" | "snapshot" | "lease" | "moby-dangling" | "unknown";

/** Something that keeps an image: a container, an active snapshot, a lease or a ref. */
export interface User {
  /** Container ID, snapshot key, lease ID or ref. */
  id: string;
  how: How;
  /** For `unknown`: why its image could not be determined. */
  why?: string;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const MOBY_DANGLING = "moby-dangling@";
/** The label dockerd puts on its containers. */
const DOCKER_LABEL = "com.docker/engine.bundle.path";

/** The repository part of a ref: without `@digest` and without `:tag`; null for `sha256:…`. */
export function repositoryOf(ref: string): string | null {
  if (DIGEST.test(ref)) return null;
  const at = ref.indexOf("@");
  if (at >= 0) return ref.slice(0, at);
  const colon = ref.lastIndexOf(":");
  return colon > ref.lastIndexOf("/") ? ref.slice(0, colon) : ref;
}

export {
  chainId,
  chainIdOfConfig,
  chainsFromLabels,
  configOfManifest,
  type LabelChains,
  snapshottersOf,
} from "./chains.ts";

export type { LineageInput };

/** Who uses which image of one namespace, as {@linkcode resolveUsers} decides it. */
export interface Resolution {
  /** Image target digest → its users. */
  usersOf: Map<string, User[]>;
  warnings: string[];
  /** Containers whose `ctr containers info` would decide more precisely (not in infos). */
  needInfo: string[];
  /** Active snapshots no container claims (for deciding whether leases are worth listing). */
  unclaimed: string[];
}

/**
 * Decides who uses which image of one namespace, in steps that each return what they found:
 * build the look-ups, docker's dangling refs, a failed snapshot listing, the containers, then
 * the active snapshots no container claims.
 */
export function resolveUsers(input: LineageInput): Resolution {
  const idx = buildIndex(input);
  const containers = resolveContainers(input, idx);
  const snapshots = resolveUnclaimed(input, idx, containers.claimed);
  const all = mergeFound([
    resolveDangling(idx),
    input.snapshotsError === undefined
      ? found()
      : keepAll(idx, "(snapshots)", input.snapshotsError),
    containers,
    snapshots,
  ]);
  return {
    usersOf: usersByDigest(all.uses),
    warnings: all.warnings,
    needInfo: all.needInfo,
    unclaimed: snapshots.unclaimed,
  };
}

/** The look-ups of one namespace, built once (a node may have thousands of images). */
export interface LineageIndex {
  ns: string;
  /** Ref → image target digest. */
  digestOfRef: Map<string, string>;
  /** Repository ({@linkcode repositoryOf}) → the digests its refs name. */
  digestsOfRepo: Map<string | null, Set<string>>;
  /** Every image target digest, once, in listing order. */
  allDigests: string[];
  /** Image target digest → chain IDs. */
  chains: Map<string, Set<string>>;
  /** Chain ID → the image target digests that have it. */
  imagesOfChain: Map<string, string[]>;
  /** Image target digests whose chain is unknown. */
  unknownChain: string[];
  /** Snapshot key → its row (empty when not listed). */
  snapshots: Map<string, SnapshotRow>;
  /** Whether the snapshots were listed. */
  snapshotsListed: boolean;
  /** Config digest → image target digests. */
  configs: Map<string, string[]>;
}

/** Step 1: the look-ups every later step reads. */
export function buildIndex(input: LineageInput): LineageIndex {
  const digestsOfRepo = new Map<string | null, Set<string>>();
  for (const i of input.images) {
    const repo = repositoryOf(i.ref);
    const set = digestsOfRepo.get(repo) ?? new Set<string>();
    digestsOfRepo.set(repo, set.add(i.digest));
  }
  const chains = input.chains ?? new Map<string, Set<string>>();
  const imagesOfChain = new Map<string, string[]>();
  for (const [digest, set] of chains) {
    for (const c of set) {
      const list = imagesOfChain.get(c);
      if (list === undefined) imagesOfChain.set(c, [digest]);
      else list.push(digest);
    }
  }
  const allDigests = [...new Set(input.images.map((i) => i.digest))];
  return {
    ns: input.ns,
    digestOfRef: new Map(input.images.map((i) => [i.ref, i.digest])),
    digestsOfRepo,
    allDigests,
    chains,
    imagesOfChain,
    unknownChain: allDigests.filter((d) => !chains.has(d)),
    snapshots: new Map((input.snapshots ?? []).map((s) => [s.key, s])),
    snapshotsListed: input.snapshots !== undefined,
    configs: input.configs ?? new Map(),
  };
}

/** One use: `user` keeps each of `digests`. */
export interface Use {
  digests: readonly string[];
  user: User;
}

/** What a step found. */
export interface Found {
  /** Who keeps which images, in the order found. */
  uses: Use[];
  warnings: string[];
  /** Containers whose `ctr containers info` would decide more precisely. */
  needInfo: string[];
}

/** A {@linkcode Found}, empty where not given. */
export function found(part: Partial<Found> = {}): Found {
  return { uses: part.uses ?? [], warnings: part.warnings ?? [], needInfo: part.needInfo ?? [] };
}

/** `user` keeps `digests`. */
function uses(digests: readonly string[], user: User): Found {
  return found({ uses: [{ digests, user }] });
}

/** The findings of `parts`, in order. */
export function mergeFound(parts: readonly Found[]): Found {
  return {
    uses: parts.flatMap((p) => p.uses),
    warnings: parts.flatMap((p) => p.warnings),
    needInfo: parts.flatMap((p) => p.needInfo),
  };
}

/** Image target digest → its users: each user once per digest (by id and how), first kept. */
export function usersByDigest(found: readonly Use[]): Map<string, User[]> {
  const usersOf = new Map<string, User[]>();
  for (const { digests, user } of found) {
    for (const d of digests) {
      const list = usersOf.get(d) ?? [];
      if (!list.some((u) => u.id === user.id && u.how === user.how)) list.push(user);
      usersOf.set(d, list);
    }
  }
  return usersOf;
}

/** The image `id` uses cannot be determined: it keeps every image, and a warning says why. */
export function keepAll(idx: LineageIndex, id: string, why: string): Found {
  return found({
    uses: [{ digests: idx.allDigests, user: { id, how: "unknown", why } }],
    warnings: [
      `Cannot tell which image ${id} in namespace ${idx.ns} uses (${why}); keeping every ` +
      `image of the namespace`,
    ],
  });
}

/** Where a snapshot's parents lead. */
export type Lineage =
  | { kind: "chain"; chain: string } // a committed snapshot that is an image's chain ID
  | { kind: "gone" } // complete walk, no image of this namespace has any of these layers
  | { kind: "broken"; why: string }; // a parent not listed, or a loop

/** Walks snapshot `key` through its parents to the first image chain ID. */
export function lineageOf(idx: LineageIndex, key: string): Lineage {
  const seen = new Set<string>();
  let cur = idx.snapshots.get(key);
  while (cur !== undefined && !seen.has(cur.key)) {
    seen.add(cur.key);
    if (cur.kind === "Committed" && idx.imagesOfChain.has(cur.key)) {
      return { kind: "chain", chain: cur.key };
    }
    if (cur.parent === null) return { kind: "gone" };
    const next = idx.snapshots.get(cur.parent);
    if (next === undefined) {
      return { kind: "broken", why: `snapshot ${cur.key} has parent ${cur.parent}, not listed` };
    }
    cur = next;
  }
  return { kind: "broken", why: `snapshot ${key} has a parent loop` };
}

/**
 * What user `id` keeps by its lineage: the images of its chain; every image when the walk broke;
 * when it found no image, the images whose chain is unknown (never prune on a guess).
 */
export function keepLineage(idx: LineageIndex, id: string, how: How, lin: Lineage): Found {
  if (lin.kind === "chain") return uses(idx.imagesOfChain.get(lin.chain) ?? [], { id, how });
  if (lin.kind === "broken") return keepAll(idx, id, lin.why);
  if (idx.unknownChain.length === 0) return found();
  return uses(idx.unknownChain, {
    id,
    how: "unknown",
    why: "its snapshot matches no image whose chain ID is known",
  });
}

/** The images CRI's record of a container (`ImageRef`: a ref or a config digest) names. */
export function criRecordDigests(idx: LineageIndex, info: ContainerInfo | undefined): string[] {
  const ref = info?.criImageRef;
  if (!ref) return [];
  const direct = idx.digestOfRef.get(ref);
  return direct !== undefined ? [direct] : idx.configs.get(ref) ?? [];
}

/** Step 2: `moby-dangling@…` refs, which `docker rmi -f` leaves for images still used. */
export function resolveDangling(idx: LineageIndex): Found {
  return mergeFound(
    [...idx.digestOfRef].filter(([ref]) => ref.startsWith(MOBY_DANGLING))
      .map(([ref, digest]) => uses([digest], { id: ref, how: "moby-dangling" })),
  );
}

/** Step 3: what each container runs from, and the snapshot keys the containers claim. */
export function resolveContainers(
  input: LineageInput,
  idx: LineageIndex,
): Found & { claimed: Set<string> } {
  const claimed = new Set<string>();
  const parts = input.containers.map((c) => {
    const info = input.infos?.get(c.id);
    claimed.add(info?.snapshotKey || c.id);
    return resolveContainer(idx, c, info);
  });
  return { ...mergeFound(parts), claimed };
}

/**
 * What one container runs from. Precedence: CRI's record, then its name when that image's chain
 * is its snapshot's lineage, and only then the lineage.
 */
export function resolveContainer(
  idx: LineageIndex,
  c: ContainerRow,
  info: ContainerInfo | undefined,
): Found {
  const key = info?.snapshotKey || c.id;
  const named = c.image === null ? undefined : idx.digestOfRef.get(c.image);
  if (!idx.snapshots.has(key)) return resolveUnlisted(idx, c, named, info);
  const lin = lineageOf(idx, key);
  if (
    c.image !== null && named !== undefined && lin.kind === "chain" &&
    (idx.chains.get(named)?.has(lin.chain) ?? false)
  ) {
    return resolveAgreeing(idx, { id: c.id, image: c.image, digest: named }, lin.chain, info);
  }
  const byName = named === undefined ? found() : uses([named], { id: c.id, how: "name" });
  const cri = criRecordDigests(idx, info);
  if (cri.length > 0) return mergeFound([byName, uses(cri, { id: c.id, how: "cri-record" })]);
  const ask = found({ needInfo: named !== undefined && info === undefined ? [c.id] : [] });
  return mergeFound([byName, ask, keepLineage(idx, c.id, "snapshot", lin)]);
}

/** A container without a listed snapshot: its name, CRI's record, or its info decides. */
function resolveUnlisted(
  idx: LineageIndex,
  c: ContainerRow,
  named: string | undefined,
  info: ContainerInfo | undefined,
): Found {
  if (named !== undefined) return uses([named], { id: c.id, how: "name" });
  if (c.image !== null) {
    const cri = criRecordDigests(idx, info);
    if (cri.length > 0) return uses(cri, { id: c.id, how: "cri-record" });
    return found({
      warnings: [
        `Container "${c.id}" in namespace ${idx.ns} uses image "${c.image}", which is not in ` +
        `the image list; skipping it`,
      ],
    });
  }
  return idx.snapshotsListed ? resolveImageless(idx, c.id, info) : found();
}

/**
 * A container without image name and without a snapshot under its ID: made from a host rootfs
 * path, or its snapshot has another key or snapshotter. Only its info can tell.
 */
export function resolveImageless(
  idx: LineageIndex,
  id: string,
  info: ContainerInfo | undefined,
): Found {
  if (info === undefined) {
    const why = "no image name, no snapshot under its ID, and no ctr containers info";
    return { ...keepAll(idx, id, why), needInfo: [id] };
  }
  if (DOCKER_LABEL in info.labels) {
    // dockerd sets no SnapshotKey; its snapshot is keyed by the container ID.
    return keepAll(idx, id, "a docker container whose snapshot is not listed");
  }
  if (info.snapshotKey) {
    const of = info.snapshotter ? ` (snapshotter ${info.snapshotter})` : "";
    return keepAll(idx, id, `its snapshot ${info.snapshotKey}${of} is not listed`);
  }
  // Neither an image nor a snapshot key (`ctr run --rootfs`, in any namespace): it uses no image.
  return found();
}

/**
 * A container whose name's image has its snapshot's chain: that image. A tag moved to an image
 * with the same layers (a rebuild that changed only its config) leaves the old digest of that
 * repository with the same chain, and only CRI's record can tell which runs; without one, all.
 */
function resolveAgreeing(
  idx: LineageIndex,
  c: { id: string; image: string; digest: string },
  chain: string,
  info: ContainerInfo | undefined,
): Found {
  const byName = uses([c.digest], { id: c.id, how: "name" });
  const ofRepo = idx.digestsOfRepo.get(repositoryOf(c.image)) ?? [];
  const siblings = [...ofRepo].filter((d) => d !== c.digest && idx.chains.get(d)?.has(chain));
  if (siblings.length === 0) return byName;
  const cri = criRecordDigests(idx, info);
  if (cri.length > 0) return mergeFound([byName, uses(cri, { id: c.id, how: "cri-record" })]);
  const ask = found({ needInfo: info === undefined ? [c.id] : [] });
  return mergeFound([byName, ask, uses(siblings, { id: c.id, how: "snapshot" })]);
}

/** Step 4: active snapshots no container claims (docker's stopped containers, image volumes). */
export function resolveUnclaimed(
  input: LineageInput,
  idx: LineageIndex,
  claimed: ReadonlySet<string>,
): Found & { unclaimed: string[] } {
  const leases = new Set(input.leases ?? []);
  const unclaimed = (input.snapshots ?? [])
    .filter((s) => s.kind !== "Committed" && !claimed.has(s.key)).map((s) => s.key);
  return { ...mergeFound(unclaimed.map((key) => resolveSnapshot(idx, key, leases))), unclaimed };
}

/** What one unclaimed active snapshot keeps (by its lease when one has its ID). */
export function resolveSnapshot(
  idx: LineageIndex,
  key: string,
  leases: ReadonlySet<string>,
): Found {
  const lin = lineageOf(idx, key);
  const volume = imageVolumeOf(key);
  if (
    volume !== null && idx.allDigests.includes(volume.digest) && lin.kind === "chain" &&
    (idx.chains.get(volume.digest)?.has(lin.chain) ?? false)
  ) {
    // containerd 2.1+ CRI image volume: the key names the pod and the image's manifest.
    const how = leases.has(volume.sandbox) ? "lease" : "snapshot";
    return uses([volume.digest], { id: key, how });
  }
  return keepLineage(idx, key, leases.has(key) ? "lease" : "snapshot", lin);
}

/**
 * An image volume's snapshot key as containerd 2.1's CRI makes it:
 * `<state>/io.containerd.grpc.v1.cri/image-volumes/<sandbox id>/<manifest hex>` (seen live on
 * 2.1.9; its lease has the sandbox's ID). null for any other key.
 */
export function imageVolumeOf(key: string): { sandbox: string; digest: string } | null {
  const m = /\/image-volumes\/([0-9a-f]{64})\/([0-9a-f]{64})$/.exec(key);
  return m ? { sandbox: m[1]!, digest: `sha256:${m[2]}` } : null;
}

/** The image refs a started container runs from, through its snapshot (for the recorder). */
export function refsOfSnapshot(
  key: string,
  snapshots: SnapshotRow[],
  images: ImageRow[],
  chains: Map<string, Set<string>>,
): string[] {
  // Only `key` and its parents matter: other snapshots would be resolved and thrown away.
  const byKey = new Map(snapshots.map((s) => [s.key, s]));
  const lineage: SnapshotRow[] = [];
  const seen = new Set<string>();
  for (let s = byKey.get(key); s !== undefined && !seen.has(s.key);) {
    seen.add(s.key);
    lineage.push(s.key === key ? { ...s, kind: "Active" } : s);
    s = s.parent === null ? undefined : byKey.get(s.parent);
  }
  const r = resolveUsers({ ns: "", images, containers: [], snapshots: lineage, chains });
  const digests = new Set(
    [...r.usersOf].filter(([, us]) => us.some((u) => u.id === key && u.how !== "unknown"))
      .map(([d]) => d),
  );
  return images.filter((i) => digests.has(i.digest)).map((i) => i.ref).sort();
}
