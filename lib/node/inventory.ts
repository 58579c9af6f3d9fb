/**
 * What containerd holds, per namespace: content, images, containers, listed in that order so a
 * container created while we list is seen; then, where the namespace has images, what
 * containers run from (lib/policy/lineage.ts): one `ctr snapshot ls` per snapshotter named by the
 * content labels (one in practice), `ctr content get` of each config no label gives a chain ID
 * for, `ctr leases ls` only when active snapshots no container claims exist, and
 * `ctr containers info` only of containers whose name disagrees with their lineage (or that have
 * neither a name nor a snapshot under their ID).
 *
 * @module
 */
import { mapLimit } from "../core/concurrency.ts";
import type { Containerd } from "../ctr/gateway.ts";
import { errorText } from "../core/errors.ts";
import {
  chainIdOfConfig,
  chainsFromLabels,
  configOfManifest,
  refsOfSnapshot,
  resolveUsers,
  snapshottersOf,
} from "../policy/lineage.ts";
import type { DiskInput } from "../policy/disk.ts";
import type {
  ContainerInfo,
  ContentBlob,
  ImageRow,
  NamespaceSnapshot,
  SnapshotRow,
} from "../core/containerd.ts";

const LINEAGE_CONCURRENCY = 4;

/** Content, images and containers of one namespace, and what its containers run from. */
export async function snapshotNamespace(
  containerd: Containerd,
  ns: string,
  opts: { usage?: boolean } = {},
): Promise<NamespaceSnapshot> {
  const content = await contentByDigest(containerd, ns);
  const images = await containerd.listImages(ns);
  const containers = await containerd.listContainers(ns);
  const snap: NamespaceSnapshot = { ns, images, content, containers };
  if (images.length > 0) await addLineage(containerd, snap, opts.usage ?? true);
  return snap;
}

/** The content of `ns`, by digest. */
async function contentByDigest(
  containerd: Containerd,
  ns: string,
): Promise<Map<string, ContentBlob>> {
  const blobs = await containerd.listContent(ns);
  return new Map(blobs.map((b) => [b.digest, b]));
}

/** What {@linkcode listSnapshots} found. */
interface Listed {
  snapshots: SnapshotRow[];
  errors: string[];
  bySnapshotter: Map<string, SnapshotRow[]>;
  usage: Map<string, Map<string, number>>;
  usageErrors: string[];
}

/**
 * The snapshots of each of `snapshotters` in `ns`, or of containerd's default one ("") when none
 * is named (its failure throws); with `usage`, also what each holds (`ctr snapshot usage -b`), at
 * the same time (one more process per snapshotter). A named snapshotter whose listing fails gives
 * a line in `errors`; a usage that fails, one in `usageErrors` (its snapshots then count 0 bytes).
 */
async function listSnapshots(
  containerd: Containerd,
  ns: string,
  snapshotters: string[],
  usage: boolean,
): Promise<Listed> {
  const out: Listed = {
    snapshots: [],
    errors: [],
    bySnapshotter: new Map(),
    usage: new Map(),
    usageErrors: [],
  };
  const one = async (s: string) => {
    const measured = !usage ? undefined : containerd.snapshotUsage(ns, s || undefined).then(
      (u) => void out.usage.set(s, u),
      (e) =>
        void out.usageErrors.push(
          `ctr snapshot usage of ${s || "the default"} failed: ${errorText(e)}`,
        ),
    );
    try {
      const rows = await containerd.listSnapshots(ns, s || undefined);
      out.bySnapshotter.set(s, rows);
      out.snapshots.push(...rows);
    } finally {
      await measured;
    }
  };
  if (snapshotters.length === 0) {
    await one("");
    return out;
  }
  for (const s of snapshotters) {
    try {
      await one(s);
    } catch (e) {
      out.errors.push(`ctr snapshot ls of snapshotter ${s} failed: ${errorText(e)}`);
    }
  }
  return out;
}

/** Lists what {@linkcode resolveUsers} needs beyond the three listings. */
async function addLineage(
  containerd: Containerd,
  snap: NamespaceSnapshot,
  usage: boolean,
): Promise<void> {
  const ns = snap.ns;
  // Snapshots after containers: a container created meanwhile shows as an unclaimed snapshot.
  const listed = await listSnapshots(containerd, ns, snapshottersOf(snap.content), usage);
  keepListed(snap, listed);
  if (listed.errors.length > 0) snap.snapshotsError = listed.errors.join("; ");
  const labels = chainsFromLabels(snap.images.map((i) => i.digest), snap.content);
  snap.chains = labels.chains;
  snap.configs = labels.configs;
  const needConfig = await configsOfManifests(containerd, snap, labels);
  await chainsOfConfigs(containerd, snap, needConfig);
  const first = resolveUsers(snap);
  if (first.unclaimed.length > 0) snap.leases = await containerd.listLeases(ns);
  if (first.needInfo.length > 0) snap.infos = await infosOf(containerd, ns, first.needInfo);
}

/**
 * Reads the manifests whose labels name no config, for it; adds what they name to
 * `snap.configs`. Returns, per image target, the configs whose chain must be computed.
 */
async function configsOfManifests(
  containerd: Containerd,
  snap: NamespaceSnapshot,
  labels: ReturnType<typeof chainsFromLabels>,
): Promise<Map<string, string[]>> {
  const manifests = [...new Set([...labels.needManifest.values()].flat())];
  const configOf = new Map<string, string>();
  await mapLimit(manifests, LINEAGE_CONCURRENCY, async (m) => {
    try {
      configOf.set(m, configOfManifest(await containerd.getContent(snap.ns, m)));
    } catch {
      // chain unknown: resolveUsers keeps such images for any user it cannot place
    }
  });
  const needConfig = new Map(labels.needConfig);
  for (const [target, ms] of labels.needManifest) {
    for (const m of ms) {
      const config = configOf.get(m);
      if (config === undefined) continue;
      snap.configs!.set(config, [...(snap.configs!.get(config) ?? []), target]);
      needConfig.set(target, [...(needConfig.get(target) ?? []), config]);
    }
  }
  return needConfig;
}

/** Computes the chain IDs of the configs of `needConfig` and adds them to `snap.chains`. */
async function chainsOfConfigs(
  containerd: Containerd,
  snap: NamespaceSnapshot,
  needConfig: Map<string, string[]>,
): Promise<void> {
  const configs = [...new Set([...needConfig.values()].flat())];
  const computed = new Map<string, string>();
  await mapLimit(configs, LINEAGE_CONCURRENCY, async (config) => {
    try {
      computed.set(config, chainIdOfConfig(await containerd.getContent(snap.ns, config)));
    } catch {
      // chain unknown, as above
    }
  });
  for (const [target, needed] of needConfig) {
    for (const config of needed) {
      const chain = computed.get(config);
      if (chain === undefined) continue;
      const set = snap.chains!.get(target) ?? new Set<string>();
      set.add(chain);
      snap.chains!.set(target, set);
    }
  }
}

/** What containerd knows of containers `ids`; those gone meanwhile or unreadable are left out. */
async function infosOf(
  containerd: Containerd,
  ns: string,
  ids: string[],
): Promise<Map<string, ContainerInfo>> {
  const infos = new Map<string, ContainerInfo>();
  await mapLimit(ids, LINEAGE_CONCURRENCY, async (id) => {
    try {
      infos.set(id, await containerd.containerInfo(ns, id));
    } catch {
      // gone meanwhile, or unreadable: resolveUsers falls back to name and lineage
    }
  });
  return infos;
}

/**
 * Snapshots of all `namespaces`, taken concurrently; with `usage: false`, without what the
 * snapshots hold (`ctr snapshot usage` walks every active snapshot: the double-check's passes
 * need only decisions).
 */
export function snapshotAll(
  containerd: Containerd,
  namespaces: string[],
  opts: { usage?: boolean } = {},
): Promise<NamespaceSnapshot[]> {
  return Promise.all(namespaces.map((ns) => snapshotNamespace(containerd, ns, opts)));
}

/** Sum of blob sizes, each digest counted once across namespaces. */
export function contentBytes(snaps: { content: Map<string, { size: number }> }[]): number {
  const seen = new Map<string, number>();
  for (const s of snaps) for (const [d, b] of s.content) seen.set(d, b.size);
  let total = 0;
  for (const size of seen.values()) total += size;
  return total;
}

/** The content store's size over `namespaces`: one content listing each, digests once. */
export async function measureContent(
  containerd: Containerd,
  namespaces: string[],
): Promise<number> {
  const lists = await Promise.all(
    namespaces.map(async (ns) => ({ content: await contentByDigest(containerd, ns) })),
  );
  return contentBytes(lists);
}

/** What mapping a docker container's snapshot to its image needs of one namespace. */
export interface SnapshotLineage {
  images: ImageRow[];
  /** Chain ID → image digests, from the content labels. */
  chains: Map<string, Set<string>>;
  snapshots: SnapshotRow[];
}

/**
 * The images, chains and snapshots of `ns` (lib/policy/lineage.ts): three ctr calls (one more
 * per extra snapshotter).
 */
export async function listSnapshotLineage(
  containerd: Containerd,
  ns: string,
): Promise<SnapshotLineage> {
  const content = await contentByDigest(containerd, ns);
  const images = await containerd.listImages(ns);
  const { snapshots, errors } = await listSnapshots(containerd, ns, snapshottersOf(content), false);
  if (errors.length > 0) throw new Error(errors.join("; "));
  const { chains } = chainsFromLabels(images.map((i) => i.digest), content);
  return { images, chains, snapshots };
}

/**
 * The image refs a container without an `Image` (docker's) runs from: its snapshot (keyed by its
 * ID) through its parents to an image's chain, in `lineage`; and `top`, the farthest snapshot
 * that walk reached (the container's own when it knows none). `seen`: snapshots learned from
 * events since, which win over the listing (a `docker run --rm` may be gone before it is listed).
 */
export function refsOfSnapshotIn(
  lineage: SnapshotLineage,
  id: string,
  seen: SnapshotRow[] = [],
): { refs: string[]; top: string } {
  const rows = new Map(lineage.snapshots.map((s) => [s.key, s]));
  // A seen top without parent only says it exists: the listing may know more of it.
  for (const s of seen) if (s.parent !== null || !rows.has(s.key)) rows.set(s.key, s);
  let top = id;
  const walked = new Set<string>();
  for (let p = rows.get(id)?.parent; p && !walked.has(p); p = rows.get(p)?.parent) {
    walked.add(p);
    top = p;
  }
  return { refs: refsOfSnapshot(id, [...rows.values()], lineage.images, lineage.chains), top };
}

/** Keeps in `snap` the snapshots `listed` found and what they hold. */
function keepListed(snap: NamespaceSnapshot, listed: Listed): void {
  snap.snapshots = listed.snapshots;
  snap.snapshotsBy = listed.bySnapshotter;
  snap.usage = listed.usage;
  if (listed.usageErrors.length > 0) snap.usageError = listed.usageErrors.join("; ");
}

/**
 * Lists the snapshots and their usage of a namespace the planning pass did not (it has no
 * images), so its containers' writable layers and leftovers are measured too.
 */
export async function addDiskUsage(containerd: Containerd, snap: NamespaceSnapshot): Promise<void> {
  if (snap.snapshotsBy !== undefined) return;
  keepListed(snap, await listSnapshots(containerd, snap.ns, snapshottersOf(snap.content), true));
}

/**
 * What containerd holds over `namespaces`, for --max-store-size: the content store (each digest
 * once) plus every snapshot's usage (one `ctr snapshot usage -b` per namespace and snapshotter).
 */
export async function measureStore(containerd: Containerd, namespaces: string[]): Promise<number> {
  const per = await Promise.all(namespaces.map(async (ns) => {
    const content = await contentByDigest(containerd, ns);
    const named = snapshottersOf(content);
    const usages = await Promise.all(
      (named.length > 0 ? named : [undefined]).map((s) => containerd.snapshotUsage(ns, s)),
    );
    let snapshots = 0;
    for (const u of usages) for (const b of u.values()) snapshots += b;
    return { content, snapshots };
  }));
  return contentBytes(per) + per.reduce((sum, p) => sum + p.snapshots, 0);
}

/**
 * The images and blobs of namespaces prune does not look at (`-n` left them out): they still
 * hold the blobs they share with the selected ones, which therefore do not go. Two ctr calls per
 * namespace; no snapshots (those belong to one namespace) and no containers.
 */
export async function imagesElsewhere(
  containerd: Containerd,
  namespaces: string[],
): Promise<DiskInput[]> {
  return await Promise.all(namespaces.map(async (ns) => ({
    ns,
    content: await contentByDigest(containerd, ns),
    images: await containerd.listImages(ns),
    snapshots: new Map(),
    usage: new Map(),
    containers: [],
  })));
}
