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
import type {
  ContainerInfo,
  ContentBlob,
  NamespaceSnapshot,
  SnapshotRow,
} from "../core/containerd.ts";

const LINEAGE_CONCURRENCY = 4;

/** Content, images and containers of one namespace, and what its containers run from. */
export async function snapshotNamespace(
  containerd: Containerd,
  ns: string,
): Promise<NamespaceSnapshot> {
  const content = await contentByDigest(containerd, ns);
  const images = await containerd.listImages(ns);
  const containers = await containerd.listContainers(ns);
  const snap: NamespaceSnapshot = { ns, images, content, containers };
  if (images.length > 0) await addLineage(containerd, snap);
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

/**
 * The snapshots of each of `snapshotters` in `ns`, or of containerd's default one when none is
 * named (its failure throws). A named snapshotter whose listing fails gives a line in `errors`.
 */
async function listSnapshots(
  containerd: Containerd,
  ns: string,
  snapshotters: string[],
): Promise<{ snapshots: SnapshotRow[]; errors: string[] }> {
  if (snapshotters.length === 0) {
    return { snapshots: await containerd.listSnapshots(ns), errors: [] };
  }
  const snapshots: SnapshotRow[] = [];
  const errors: string[] = [];
  for (const s of snapshotters) {
    try {
      snapshots.push(...await containerd.listSnapshots(ns, s));
    } catch (e) {
      errors.push(`ctr snapshot ls of snapshotter ${s} failed: ${errorText(e)}`);
    }
  }
  return { snapshots, errors };
}

/** Lists what {@linkcode resolveUsers} needs beyond the three listings. */
async function addLineage(containerd: Containerd, snap: NamespaceSnapshot): Promise<void> {
  const ns = snap.ns;
  // Snapshots after containers: a container created meanwhile shows as an unclaimed snapshot.
  const { snapshots, errors } = await listSnapshots(containerd, ns, snapshottersOf(snap.content));
  snap.snapshots = snapshots;
  if (errors.length > 0) snap.snapshotsError = errors.join("; ");
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

/** Snapshots of all `namespaces`, taken concurrently. */
export function snapshotAll(
  containerd: Containerd,
  namespaces: string[],
): Promise<NamespaceSnapshot[]> {
  return Promise.all(namespaces.map((ns) => snapshotNamespace(containerd, ns)));
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

/**
 * The image refs a container without an `Image` (docker's) runs from: its snapshot (keyed by its
 * ID) through its parents to an image's chain (lib/policy/lineage.ts). Three ctr calls (one more per
 * extra snapshotter): for the recorder, once per start of such a container. `seen`: snapshots
 * the caller learned from events, for those already removed when listing.
 */
export async function refsOfContainerSnapshot(
  containerd: Containerd,
  ns: string,
  id: string,
  seen: SnapshotRow[] = [],
): Promise<string[]> {
  const content = await contentByDigest(containerd, ns);
  const images = await containerd.listImages(ns);
  const { snapshots, errors } = await listSnapshots(containerd, ns, snapshottersOf(content));
  if (errors.length > 0) throw new Error(errors.join("; "));
  // Snapshots seen in events first: a `docker run --rm` may be gone before we list.
  const rows = new Map(seen.map((s) => [s.key, s]));
  for (const s of snapshots) rows.set(s.key, s);
  const { chains } = chainsFromLabels(images.map((i) => i.digest), content);
  return refsOfSnapshot(id, [...rows.values()], images, chains);
}
