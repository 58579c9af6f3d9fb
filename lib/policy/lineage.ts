/**
 * What containers really run from, as pure functions: images → chain IDs (from content labels or
 * a config's `rootfs.diff_ids`), and users (containers, active snapshots, leases, docker's
 * `moby-dangling` refs) → the images they keep, each with how it was found.
 *
 * Precedence per container: CRI's own record of its image (`ImageRef`), then its `Image` name
 * when that image's chain ID matches the container's snapshot lineage, and only then the lineage
 * (every image of that chain). A name whose chain differs from the lineage is a moved tag: both
 * are kept. A user whose image cannot be determined keeps every image of its namespace.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type {
  ContainerInfo,
  ContainerRow,
  ContentBlob,
  ImageRow,
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

const LABEL_CONFIG = "containerd.io/gc.ref.content.config";
const LABEL_MANIFEST = /^containerd\.io\/gc\.ref\.content\.m\./;
const LABEL_SNAPSHOT = /^containerd\.io\/gc\.ref\.snapshot\.(.+)$/;
const SNAPSHOT_PREFIX = "containerd.io/gc.ref.snapshot.";
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

/** The chain ID of an image's layers: one → diff_ids[0]; more → sha256(prev + " " + next). */
export function chainId(diffIds: readonly string[]): string {
  if (diffIds.length === 0) throw new Error("an image without layers has no chain ID");
  let chain = diffIds[0]!;
  for (const d of diffIds.slice(1)) {
    chain = "sha256:" + createHash("sha256").update(`${chain} ${d}`).digest("hex");
  }
  return chain;
}

/** The chain ID of a config blob's JSON (`rootfs.diff_ids`); throws on anything else. */
export function chainIdOfConfig(json: string): string {
  const ids = JSON.parse(json)?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((d) => DIGEST.test(String(d)))) {
    throw new Error("config has no rootfs.diff_ids");
  }
  return chainId(ids as string[]);
}

/** The snapshotters named by `containerd.io/gc.ref.snapshot.<snapshotter>` labels. */
export function snapshottersOf(content: Map<string, ContentBlob>): string[] {
  const names = new Set<string>();
  for (const blob of content.values()) {
    for (const key of blob.labels.keys()) {
      if (!key.startsWith(SNAPSHOT_PREFIX)) continue; // most keys: no regex run
      const m = LABEL_SNAPSHOT.exec(key);
      if (m?.[1]) names.add(m[1]);
    }
  }
  return [...names].sort();
}

/** What content labels say of each image target's chain IDs. */
export interface LabelChains {
  /** Image target digest → chain IDs (of each platform unpacked here). */
  chains: Map<string, Set<string>>;
  /** Image target digest → config digests whose chain no label gives (blob present). */
  needConfig: Map<string, string[]>;
  /** Image target digest → manifests that name no config in their labels (blob present). */
  needManifest: Map<string, string[]>;
  /** Config digest → image target digests. */
  configs: Map<string, string[]>;
}

/** `containerd.io/gc.ref.content.<n>`: how dockerd's `commit` labels a manifest's children. */
const LABEL_NUMBERED = /^containerd\.io\/gc\.ref\.content\.\d+$/;

function snapshotLabel(blob: ContentBlob | undefined): string | undefined {
  if (blob === undefined) return undefined;
  for (const [k, v] of blob.labels) {
    if (k.startsWith(SNAPSHOT_PREFIX) && LABEL_SNAPSHOT.test(k)) {
      return DIGEST.test(v) ? v : undefined;
    }
  }
  return undefined;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key) ?? [];
  if (!list.includes(value)) list.push(value);
  map.set(key, list);
}

/**
 * Chain IDs of image targets from `ctr content ls` labels: index (`gc.ref.content.m.*`) →
 * manifests (`gc.ref.content.config`, or dockerd commit's numbered `gc.ref.content.<n>`) →
 * configs (`gc.ref.snapshot.<snapshotter>`). What labels do not say is listed to be read.
 */
export function chainsFromLabels(
  targets: Iterable<string>,
  content: Map<string, ContentBlob>,
): LabelChains {
  const out: LabelChains = {
    chains: new Map(),
    needConfig: new Map(),
    needManifest: new Map(),
    configs: new Map(),
  };
  for (const target of new Set(targets)) {
    const blob = content.get(target);
    if (blob === undefined) continue; // no content: chain unknown
    const children = [...blob.labels].filter(([k]) => LABEL_MANIFEST.test(k)).map(([, v]) => v);
    const manifests = children.length > 0 ? children : [target];
    for (const m of manifests) {
      const mb = content.get(m);
      if (mb === undefined) continue; // another platform, not fetched
      const named = mb.labels.get(LABEL_CONFIG);
      const configs = named !== undefined ? [named] : [...mb.labels]
        .filter(([k, v]) => LABEL_NUMBERED.test(k) && snapshotLabel(content.get(v)) !== undefined)
        .map(([, v]) => v);
      if (configs.length === 0) {
        push(out.needManifest, target, m);
        continue;
      }
      for (const config of configs) {
        push(out.configs, config, target);
        const chain = snapshotLabel(content.get(config));
        if (chain !== undefined) {
          const set = out.chains.get(target) ?? new Set<string>();
          set.add(chain);
          out.chains.set(target, set);
        } else if (content.has(config)) push(out.needConfig, target, config);
      }
    }
  }
  return out;
}

/** The config digest a manifest's JSON names; throws on anything else. */
export function configOfManifest(json: string): string {
  const digest = JSON.parse(json)?.config?.digest;
  if (typeof digest !== "string" || !DIGEST.test(digest)) throw new Error("manifest has no config");
  return digest;
}

/** Everything {@linkcode resolveUsers} reads about one namespace. */
export interface LineageInput {
  ns: string;
  images: ImageRow[];
  containers: ContainerRow[];
  /** All snapshots of the namespace (every snapshotter listed); undefined: not listed. */
  snapshots?: SnapshotRow[];
  /** Why snapshots could not (all) be listed; then every image is kept. */
  snapshotsError?: string;
  /** Lease IDs; undefined when not listed. */
  leases?: string[];
  /** Image target digest → chain IDs; an image absent here has an unknown chain. */
  chains?: Map<string, Set<string>>;
  /** Config digest → image target digests. */
  configs?: Map<string, string[]>;
  /** `ctr containers info` of some containers. */
  infos?: Map<string, ContainerInfo>;
}

export interface Resolution {
  /** Image target digest → its users. */
  usersOf: Map<string, User[]>;
  warnings: string[];
  /** Containers whose `ctr containers info` would decide more precisely (not in infos). */
  needInfo: string[];
  /** Active snapshots no container claims (for deciding whether leases are worth listing). */
  unclaimed: string[];
}

type Lineage =
  | { kind: "chain"; chain: string }
  | { kind: "gone" } // complete walk, no image of this namespace has any of these layers
  | { kind: "broken"; why: string };

/** Decides who uses which image of one namespace. */
export function resolveUsers(input: LineageInput): Resolution {
  const warnings: string[] = [];
  const needInfo: string[] = [];
  const usersOf = new Map<string, User[]>();
  const digestOfRef = new Map(input.images.map((i) => [i.ref, i.digest]));
  /** Repository → the digests its refs name (built once: a node may have thousands). */
  const digestsOfRepo = new Map<string | null, Set<string>>();
  for (const i of input.images) {
    const repo = repositoryOf(i.ref);
    const set = digestsOfRepo.get(repo) ?? new Set<string>();
    digestsOfRepo.set(repo, set.add(i.digest));
  }
  const allDigests = [...new Set(input.images.map((i) => i.digest))];
  const chains = input.chains ?? new Map<string, Set<string>>();
  const imagesOfChain = new Map<string, string[]>();
  for (const [digest, set] of chains) {
    for (const c of set) {
      const list = imagesOfChain.get(c);
      if (list === undefined) imagesOfChain.set(c, [digest]);
      else list.push(digest);
    }
  }
  const unknownChain = allDigests.filter((d) => !chains.has(d));
  const add = (digests: Iterable<string>, user: User) => {
    for (const d of digests) {
      const list = usersOf.get(d) ?? [];
      if (!list.some((u) => u.id === user.id && u.how === user.how)) list.push(user);
      usersOf.set(d, list);
    }
  };
  const keepAll = (id: string, why: string) => {
    add(allDigests, { id, how: "unknown", why });
    warnings.push(
      `Cannot tell which image ${id} in namespace ${input.ns} uses (${why}); keeping every ` +
        `image of the namespace`,
    );
  };

  for (const ref of digestOfRef.keys()) {
    if (ref.startsWith(MOBY_DANGLING)) {
      add([digestOfRef.get(ref)!], { id: ref, how: "moby-dangling" });
    }
  }
  if (input.snapshotsError !== undefined) {
    keepAll("(snapshots)", input.snapshotsError);
  }

  const rows = new Map((input.snapshots ?? []).map((s) => [s.key, s]));
  const lineage = (key: string): Lineage => {
    const seen = new Set<string>();
    let cur = rows.get(key);
    while (cur !== undefined && !seen.has(cur.key)) {
      seen.add(cur.key);
      if (cur.kind === "Committed" && imagesOfChain.has(cur.key)) {
        return { kind: "chain", chain: cur.key };
      }
      if (cur.parent === null) return { kind: "gone" };
      const next = rows.get(cur.parent);
      if (next === undefined) {
        return { kind: "broken", why: `snapshot ${cur.key} has parent ${cur.parent}, not listed` };
      }
      cur = next;
    }
    return { kind: "broken", why: `snapshot ${key} has a parent loop` };
  };
  /** Keeps what a lineage points at; false when it points at nothing known. */
  const keepLineage = (id: string, how: How, lin: Lineage): void => {
    if (lin.kind === "chain") add(imagesOfChain.get(lin.chain) ?? [], { id, how });
    else if (lin.kind === "broken") keepAll(id, lin.why);
    else if (unknownChain.length > 0) {
      // Its image may be one whose chain we could not learn: never prune on a guess.
      add(unknownChain, {
        id,
        how: "unknown",
        why: "its snapshot matches no image whose chain ID is known",
      });
    }
  };
  const byCriRecord = (info: ContainerInfo | undefined): string[] => {
    const ref = info?.criImageRef;
    if (!ref) return [];
    const direct = digestOfRef.get(ref);
    return direct !== undefined ? [direct] : input.configs?.get(ref) ?? [];
  };

  const claimed = new Set<string>();
  for (const c of input.containers) {
    const info = input.infos?.get(c.id);
    const key = info?.snapshotKey || c.id;
    claimed.add(key);
    const row = input.snapshots ? rows.get(key) : undefined;
    const named = c.image === null ? undefined : digestOfRef.get(c.image);
    if (row === undefined) {
      if (named !== undefined) add([named], { id: c.id, how: "name" });
      else if (c.image !== null) {
        const cri = byCriRecord(info);
        if (cri.length > 0) add(cri, { id: c.id, how: "cri-record" });
        else {
          warnings.push(
            `Container "${c.id}" in namespace ${input.ns} uses image "${c.image}", which is ` +
              `not in the image list; skipping it`,
          );
        }
      } else if (input.snapshots !== undefined) {
        // No image name and no snapshot under its ID: made from a host rootfs path, or its
        // snapshot has another key or snapshotter. Only its info can tell.
        if (info === undefined) {
          needInfo.push(c.id);
          keepAll(c.id, "no image name, no snapshot under its ID, and no ctr containers info");
        } else if (DOCKER_LABEL in info.labels) {
          // dockerd sets no SnapshotKey; its snapshot is keyed by the container ID.
          keepAll(c.id, "a docker container whose snapshot is not listed");
        } else if (info.snapshotKey) {
          const of = info.snapshotter ? ` (snapshotter ${info.snapshotter})` : "";
          keepAll(c.id, `its snapshot ${info.snapshotKey}${of} is not listed`);
        }
        // else: neither an image nor a snapshot key (`ctr run --rootfs`, in any namespace): it
        // uses no image.
      }
      continue;
    }
    const lin = lineage(key);
    const agrees = named !== undefined && lin.kind === "chain" &&
      (chains.get(named)?.has(lin.chain) ?? false);
    if (agrees) {
      add([named], { id: c.id, how: "name" });
      // A tag moved to an image with the same layers (a rebuild that changed only its config):
      // the old digest of that repository has the same chain, and only CRI's record can tell
      // which of them runs. Without one, keep them all.
      const ofRepo = digestsOfRepo.get(repositoryOf(c.image!)) ?? [];
      const siblings = [...ofRepo].filter((d) => d !== named && chains.get(d)?.has(lin.chain));
      if (siblings.length > 0) {
        const cri = byCriRecord(info);
        if (cri.length > 0) add(cri, { id: c.id, how: "cri-record" });
        else {
          if (info === undefined) needInfo.push(c.id);
          add(siblings, { id: c.id, how: "snapshot" });
        }
      }
      continue;
    }
    const cri = byCriRecord(info);
    if (named !== undefined) add([named], { id: c.id, how: "name" });
    if (cri.length > 0) {
      add(cri, { id: c.id, how: "cri-record" });
      continue;
    }
    if (named !== undefined && info === undefined) needInfo.push(c.id);
    keepLineage(c.id, "snapshot", lin);
  }

  const leases = new Set(input.leases ?? []);
  const unclaimed: string[] = [];
  for (const s of input.snapshots ?? []) {
    if (s.kind === "Committed" || claimed.has(s.key)) continue;
    unclaimed.push(s.key);
    const lin = lineage(s.key);
    const volume = imageVolumeOf(s.key);
    if (volume !== null) {
      // containerd 2.1+ CRI image volume: the key names the pod and the image's manifest.
      const how = leases.has(volume.sandbox) ? "lease" : "snapshot";
      const exact = allDigests.includes(volume.digest) && lin.kind === "chain" &&
        (chains.get(volume.digest)?.has(lin.chain) ?? false);
      if (exact) {
        add([volume.digest], { id: s.key, how });
        continue;
      }
    }
    keepLineage(s.key, leases.has(s.key) ? "lease" : "snapshot", lin);
  }
  return { usersOf, warnings, needInfo, unclaimed };
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
