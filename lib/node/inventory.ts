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
import { snapshotUsage } from "../ctr/snapshot_usage.ts";
import type { DiskInput } from "../policy/disk.ts";
import type { ContentBlob, NamespaceSnapshot, SnapshotRow } from "../core/containerd.ts";

const LINEAGE_CONCURRENCY = 4;

/** Content, images and containers of one namespace, and what its containers run from. */
export async function snapshotNamespace(
  ctr: Ctr,
  ns: string,
  opts: { usage?: boolean } = {},
): Promise<NamespaceSnapshot> {
  const content = await listContent(ctr, ns);
  const images = parseImageLs(await ctrOk(ctr, ["-n", ns, "image", "ls"]));
  const containers = parseContainerLs(await ctrOk(ctr, ["-n", ns, "container", "ls"]));
  const snap: NamespaceSnapshot = { ns, images, content, containers };
  if (images.length > 0) await addLineage(ctr, snap, opts.usage ?? true);
  return snap;
}

/** `ctr content ls` of `ns`, by digest. */
async function listContent(ctr: Ctr, ns: string): Promise<Map<string, ContentBlob>> {
  const blobs = parseContentLs(await ctrOk(ctr, ["-n", ns, "content", "ls"]));
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
 * `ctr snapshot ls` of each of `snapshotters`, or of containerd's default one ("") when none is
 * named (its failure throws); with `usage`, also `ctr snapshot usage -b` of each, at the same
 * time (one more process per snapshotter). A named snapshotter whose listing fails gives a line
 * in `errors`; a usage that fails, one in `usageErrors` (its snapshots then count 0 bytes).
 */
async function listSnapshots(
  ns: string,
  run: (args: string[]) => Promise<string>,
  snapshotters: string[],
  usage: ((ns: string, snapshotter: string) => Promise<Map<string, number>>) | null,
): Promise<Listed> {
  const out: Listed = {
    snapshots: [],
    errors: [],
    bySnapshotter: new Map(),
    usage: new Map(),
    usageErrors: [],
  };
  const one = async (s: string) => {
    const measured = usage?.(ns, s).then(
      (u) => void out.usage.set(s, u),
      (e) =>
        void out.usageErrors.push(
          `ctr snapshot usage of ${s || "the default"} failed: ${errorText(e)}`,
        ),
    );
    const which = s === "" ? [] : ["--snapshotter", s];
    try {
      const rows = parseSnapshotLs(await run(["snapshot", ...which, "ls"]));
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
async function addLineage(ctr: Ctr, snap: NamespaceSnapshot, usage: boolean): Promise<void> {
  const ns = snap.ns;
  let calls = 0;
  const run = (args: string[]) => {
    calls++;
    return ctrOk(ctr, ["-n", ns, ...args]);
  };
  // Snapshots after containers: a container created meanwhile shows as an unclaimed snapshot.
  const measure = (n: string, s: string) => {
    calls++;
    return snapshotUsage(ctr, n, s);
  };
  const listed = await listSnapshots(ns, run, snapshottersOf(snap.content), usage ? measure : null);
  snap.snapshots = listed.snapshots;
  snap.snapshotsBy = listed.bySnapshotter;
  snap.usage = listed.usage;
  if (listed.errors.length > 0) snap.snapshotsError = listed.errors.join("; ");
  if (listed.usageErrors.length > 0) snap.usageError = listed.usageErrors.join("; ");
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

/**
 * Snapshots of all `namespaces`, taken concurrently; with `usage: false`, without what the
 * snapshots hold (`ctr snapshot usage` walks every active snapshot: the double-check's passes
 * need only decisions).
 */
export function snapshotAll(
  ctr: Ctr,
  namespaces: string[],
  opts: { usage?: boolean } = {},
): Promise<NamespaceSnapshot[]> {
  return Promise.all(namespaces.map((ns) => snapshotNamespace(ctr, ns, opts)));
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

/**
 * The image refs a container without an `Image` (docker's) runs from: its snapshot (keyed by its
 * ID) through its parents to an image's chain (lib/policy/lineage.ts). Three ctr calls (one more per
 * extra snapshotter): for the recorder, once per start of such a container. `seen`: snapshots
 * the caller learned from events, for those already removed when listing.
 */
export async function refsOfContainerSnapshot(
  ctr: Ctr,
  ns: string,
  id: string,
  seen: SnapshotRow[] = [],
): Promise<string[]> {
  const content = await listContent(ctr, ns);
  const images = parseImageLs(await ctrOk(ctr, ["-n", ns, "image", "ls"]));
  const run = (args: string[]) => ctrOk(ctr, ["-n", ns, ...args]);
  const { snapshots, errors } = await listSnapshots(ns, run, snapshottersOf(content), null);
  if (errors.length > 0) throw new Error(errors.join("; "));
  // Snapshots seen in events first: a `docker run --rm` may be gone before we list.
  const rows = new Map(seen.map((s) => [s.key, s]));
  for (const s of snapshots) rows.set(s.key, s);
  const { chains } = chainsFromLabels(images.map((i) => i.digest), content);
  return refsOfSnapshot(id, [...rows.values()], images, chains);
}

/**
 * Lists the snapshots and their usage of a namespace the planning pass did not (it has no
 * images), so its containers' writable layers and leftovers are measured too.
 */
export async function addDiskUsage(ctr: Ctr, snap: NamespaceSnapshot): Promise<void> {
  if (snap.snapshotsBy !== undefined) return;
  const run = (args: string[]) => ctrOk(ctr, ["-n", snap.ns, ...args]);
  const listed = await listSnapshots(
    snap.ns,
    run,
    snapshottersOf(snap.content),
    (n, s) => snapshotUsage(ctr, n, s),
  );
  snap.snapshots = listed.snapshots;
  snap.snapshotsBy = listed.bySnapshotter;
  snap.usage = listed.usage;
  if (listed.usageErrors.length > 0) snap.usageError = listed.usageErrors.join("; ");
}

/**
 * What containerd holds over `namespaces`, for --max-store-size: the content store (each digest
 * once) plus every snapshot's usage (one `ctr snapshot usage -b` per namespace and snapshotter).
 */
export async function measureStore(ctr: Ctr, namespaces: string[]): Promise<number> {
  const per = await Promise.all(namespaces.map(async (ns) => {
    const content = await listContent(ctr, ns);
    const named = snapshottersOf(content);
    const usages = await Promise.all(
      (named.length > 0 ? named : [""]).map((s) => snapshotUsage(ctr, ns, s)),
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
export async function imagesElsewhere(ctr: Ctr, namespaces: string[]): Promise<DiskInput[]> {
  return await Promise.all(namespaces.map(async (ns) => ({
    ns,
    content: await listContent(ctr, ns),
    images: parseImageLs(await ctrOk(ctr, ["-n", ns, "image", "ls"])),
    snapshots: new Map(),
    usage: new Map(),
    containers: [],
  })));
}
