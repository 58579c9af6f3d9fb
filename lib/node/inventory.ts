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
import { type Ctr, ctrOk } from "../ctr/runner.ts";
import { errorText } from "../core/errors.ts";
import {
  chainIdOfConfig,
  chainsFromLabels,
  configOfManifest,
  refsOfSnapshot,
  resolveUsers,
  snapshottersOf,
} from "../policy/lineage.ts";
import {
  parseContainerInfo,
  parseContainerLs,
  parseContentLs,
  parseImageLs,
  parseLeaseIds,
  parseSnapshotLs,
} from "../ctr/listings.ts";
import type { ContentBlob, ImageRow, NamespaceSnapshot, SnapshotRow } from "../core/containerd.ts";

const LINEAGE_CONCURRENCY = 4;

/** Content, images and containers of one namespace, and what its containers run from. */
export async function snapshotNamespace(ctr: Ctr, ns: string): Promise<NamespaceSnapshot> {
  const content = await listContent(ctr, ns);
  const images = parseImageLs(await ctrOk(ctr, ["-n", ns, "image", "ls"]));
  const containers = parseContainerLs(await ctrOk(ctr, ["-n", ns, "container", "ls"]));
  const snap: NamespaceSnapshot = { ns, images, content, containers };
  if (images.length > 0) await addLineage(ctr, snap);
  return snap;
}

/** `ctr content ls` of `ns`, by digest. */
async function listContent(ctr: Ctr, ns: string): Promise<Map<string, ContentBlob>> {
  const blobs = parseContentLs(await ctrOk(ctr, ["-n", ns, "content", "ls"]));
  return new Map(blobs.map((b) => [b.digest, b]));
}

/**
 * `ctr snapshot ls` of each of `snapshotters`, or of containerd's default one when none is
 * named (its failure throws). A named snapshotter whose listing fails gives a line in `errors`.
 */
async function listSnapshots(
  run: (args: string[]) => Promise<string>,
  snapshotters: string[],
): Promise<{ snapshots: SnapshotRow[]; errors: string[] }> {
  if (snapshotters.length === 0) {
    return { snapshots: parseSnapshotLs(await run(["snapshot", "ls"])), errors: [] };
  }
  const snapshots: SnapshotRow[] = [];
  const errors: string[] = [];
  for (const s of snapshotters) {
    try {
      snapshots.push(...parseSnapshotLs(await run(["snapshot", "--snapshotter", s, "ls"])));
    } catch (e) {
      errors.push(`ctr snapshot ls of snapshotter ${s} failed: ${errorText(e)}`);
    }
  }
  return { snapshots, errors };
}

/** Lists what {@linkcode resolveUsers} needs beyond the three listings. */
async function addLineage(ctr: Ctr, snap: NamespaceSnapshot): Promise<void> {
  const ns = snap.ns;
  let calls = 0;
  const run = (args: string[]) => {
    calls++;
    return ctrOk(ctr, ["-n", ns, ...args]);
  };
  // Snapshots after containers: a container created meanwhile shows as an unclaimed snapshot.
  const { snapshots, errors } = await listSnapshots(run, snapshottersOf(snap.content));
  snap.snapshots = snapshots;
  if (errors.length > 0) snap.snapshotsError = errors.join("; ");
  const labels = chainsFromLabels(snap.images.map((i) => i.digest), snap.content);
  snap.chains = labels.chains;
  snap.configs = labels.configs;
  // Manifests whose labels name no config: read them for it (then its config, below).
  const manifests = [...new Set([...labels.needManifest.values()].flat())];
  const configOf = new Map<string, string>();
  await mapLimit(manifests, LINEAGE_CONCURRENCY, async (m) => {
    try {
      configOf.set(m, configOfManifest(await run(["content", "get", m])));
    } catch {
      // chain unknown: resolveUsers keeps such images for any user it cannot place
    }
  });
  const needConfig = new Map(labels.needConfig);
  for (const [target, ms] of labels.needManifest) {
    for (const m of ms) {
      const config = configOf.get(m);
      if (config === undefined) continue;
      snap.configs.set(config, [...(snap.configs.get(config) ?? []), target]);
      needConfig.set(target, [...(needConfig.get(target) ?? []), config]);
    }
  }
  const configs = [...new Set([...needConfig.values()].flat())];
  const computed = new Map<string, string>();
  await mapLimit(configs, LINEAGE_CONCURRENCY, async (config) => {
    try {
      computed.set(config, chainIdOfConfig(await run(["content", "get", config])));
    } catch {
      // chain unknown, as above
    }
  });
  for (const [target, needed] of needConfig) {
    for (const config of needed) {
      const chain = computed.get(config);
      if (chain === undefined) continue;
      const set = snap.chains.get(target) ?? new Set<string>();
      set.add(chain);
      snap.chains.set(target, set);
    }
  }
  const first = resolveUsers(snap);
  if (first.unclaimed.length > 0) snap.leases = parseLeaseIds(await run(["leases", "ls"]));
  if (first.needInfo.length > 0) {
    snap.infos = new Map();
    await mapLimit(first.needInfo, LINEAGE_CONCURRENCY, async (id) => {
      try {
        snap.infos!.set(id, parseContainerInfo(await run(["containers", "info", id])));
      } catch {
        // gone meanwhile, or unreadable: resolveUsers falls back to name and lineage
      }
    });
  }
  snap.lineageCalls = calls;
}

/** Snapshots of all `namespaces`, taken concurrently. */
export function snapshotAll(ctr: Ctr, namespaces: string[]): Promise<NamespaceSnapshot[]> {
  return Promise.all(namespaces.map((ns) => snapshotNamespace(ctr, ns)));
}

/** Sum of blob sizes, each digest counted once across namespaces. */
export function contentBytes(snaps: { content: Map<string, { size: number }> }[]): number {
  const seen = new Map<string, number>();
  for (const s of snaps) for (const [d, b] of s.content) seen.set(d, b.size);
  let total = 0;
  for (const size of seen.values()) total += size;
  return total;
}

/** The content store's size over `namespaces`: one `ctr content ls` each, digests once. */
export async function measureContent(ctr: Ctr, namespaces: string[]): Promise<number> {
  const lists = await Promise.all(
    namespaces.map(async (ns) => ({ content: await listContent(ctr, ns) })),
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
export async function listSnapshotLineage(ctr: Ctr, ns: string): Promise<SnapshotLineage> {
  const content = await listContent(ctr, ns);
  const images = parseImageLs(await ctrOk(ctr, ["-n", ns, "image", "ls"]));
  const run = (args: string[]) => ctrOk(ctr, ["-n", ns, ...args]);
  const { snapshots, errors } = await listSnapshots(run, snapshottersOf(content));
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
