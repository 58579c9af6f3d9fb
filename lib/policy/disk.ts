/**
 * What images hold on disk, and what removing some of them frees: pure arithmetic over what ctr
 * lists (content blobs with their labels, images, each snapshotter's snapshots with their usage,
 * containers). The definitions follow `docker system df -v` with the containerd image store
 * (nerdctl `image df`): an image's size is its blobs present plus its unpacked snapshots; a total
 * counts every blob and snapshot once; shared bytes are those another image or a container also
 * holds. Unlike docker's, ctre's reclaimable bytes are what ctre's own prune would free.
 *
 * - Blobs are one store for the whole node: a digest counts once across namespaces, and a blob
 *   goes only when no image of any namespace measured refers to it.
 * - Snapshots belong to one namespace and one snapshotter; a committed snapshot under an active
 *   one (a container's writable layer, a pull's unpack, a docker container's `-init`) stays
 *   while that one exists.
 *
 * @module
 */
import type { ContentBlob, ImageRow, NamespaceSnapshot, SnapshotRow } from "../core/containerd.ts";
import { isLayerLabel } from "./layer_guard.ts";

const CONTENT_PREFIX = "containerd.io/gc.ref.content.";
const SNAPSHOT_PREFIX = "containerd.io/gc.ref.snapshot.";

/** What one namespace holds, as listed (lib/node/inventory.ts). */
export interface DiskInput {
  ns: string;
  images: readonly ImageRow[];
  content: ReadonlyMap<string, ContentBlob>;
  /** Each listed snapshotter's snapshots ("" names ctr's default snapshotter). */
  snapshots: ReadonlyMap<string, readonly SnapshotRow[]>;
  /** Each listed snapshotter's usage: snapshot key → bytes. */
  usage: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Image target → chain IDs read from configs without a snapshot label (any snapshotter). */
  chains?: ReadonlyMap<string, ReadonlySet<string>>;
  /** Containers and their snapshot (key "" when none; snapshotter "" when not known). */
  containers: readonly { id: string; snapshotKey: string; snapshotter: string }[];
}

/** One image's bytes on disk. */
export interface ImageDisk {
  /** Its manifest, config and layer blobs present in the content store. */
  contentBytes: number;
  /** Its committed snapshot chain, in every snapshotter it is unpacked in. */
  snapshotBytes: number;
  /** What removing it alone frees: blobs and snapshots no other image nor container holds. */
  uniqueBytes: number;
}

/** Counts and bytes of a namespace or of the node (the `df` document's shape). */
export interface DiskTotals {
  images: { count: number; contentBytes: number; snapshotBytes: number };
  containers: { count: number; writableBytes: number };
  /** Content and snapshots no image and no container refers to (leases, leftovers). */
  unreferenced: { contentBytes: number; snapshotBytes: number };
}

/** A blob or a snapshot, and who holds it. */
interface Held {
  size: number;
  /** Image id → whether it holds it only as a layer (`gc.ref.content.l.*`). */
  holders: Map<string, boolean>;
  /** Held by an active snapshot above it (snapshots only). */
  pinned: boolean;
}

/** The measured node: every blob and snapshot and who holds it. */
export interface DiskModel {
  blobs: Map<string, Held>;
  /** `ns \0 snapshotter \0 key` → the snapshot. */
  snapshots: Map<string, Held>;
  /** Image id (`ns \0 digest`) → its blobs and snapshots. */
  images: Map<string, { ns: string; blobs: string[]; snapshots: string[]; runnable: boolean }>;
  /** Per namespace: containers, writable bytes, and the blobs its content list shows (sizes). */
  namespaces: Map<string, { containers: number; writable: number; listed: Map<string, number> }>;
  /** Snapshot ids nothing holds (unclaimed active ones included), per namespace. */
  loose: Map<string, string[]>;
}

/** The id of image `digest` in `ns`. */
export function imageId(ns: string, digest: string): string {
  return `${ns}\0${digest}`;
}

function hold(map: Map<string, Held>, id: string, size: number, image: string, layer: boolean) {
  const h = map.get(id) ?? { size, holders: new Map<string, boolean>(), pinned: false };
  h.holders.set(image, (h.holders.get(image) ?? true) && layer);
  map.set(id, h);
}

/** Blobs reachable from `target` by content references: digest → reached only as a layer. */
function blobsOf(target: string, content: ReadonlyMap<string, ContentBlob>): Map<string, boolean> {
  const out = new Map<string, boolean>();
  const todo: [string, boolean][] = [[target, false]];
  while (todo.length > 0) {
    const [d, layer] = todo.pop()!;
    const blob = content.get(d);
    if (blob === undefined) continue; // not present (another platform, or not fetched)
    const before = out.get(d);
    if (before === false || (before === true && layer)) continue;
    out.set(d, layer);
    for (const [k, v] of blob.labels) {
      if (k.startsWith(CONTENT_PREFIX)) todo.push([v, isLayerLabel(k)]);
    }
  }
  return out;
}

/** The snapshotter → chain ID pairs the configs among `blobs` name. */
function labelledChains(blobs: Iterable<string>, content: ReadonlyMap<string, ContentBlob>) {
  const out: [string, string][] = [];
  for (const d of blobs) {
    for (const [k, v] of content.get(d)?.labels ?? []) {
      if (k.startsWith(SNAPSHOT_PREFIX)) out.push([k.slice(SNAPSHOT_PREFIX.length), v]);
    }
  }
  return out;
}

/** Measures every namespace of `inputs` into one model. */
export function diskModel(inputs: readonly DiskInput[]): DiskModel {
  const m: DiskModel = {
    blobs: new Map(),
    snapshots: new Map(),
    images: new Map(),
    namespaces: new Map(),
    loose: new Map(),
  };
  for (const input of inputs) addNamespace(m, input);
  return m;
}

/** Adds one namespace's images, snapshots and containers to `m`. */
function addNamespace(m: DiskModel, input: DiskInput): void {
  const { ns, content } = input;
  const parents = new Map<string, Map<string, SnapshotRow>>();
  for (const [s, rows] of input.snapshots) parents.set(s, new Map(rows.map((r) => [r.key, r])));
  const snapId = (s: string, key: string) => `${ns}\0${s}\0${key}`;
  const sizeOf = (s: string, key: string) => input.usage.get(s)?.get(key) ?? 0;
  /** The snapshotter listing `key` committed: `named` if listed, else any that has it. */
  const listing = (named: string | null, key: string) =>
    [...parents.keys()].find((s) =>
      (named === null || s === named || !parents.has(named)) &&
      parents.get(s)!.get(key)?.kind === "Committed"
    );
  for (const digest of new Set(input.images.map((i) => i.digest))) {
    const id = imageId(ns, digest);
    const blobs = blobsOf(digest, content);
    for (const [d, layer] of blobs) hold(m.blobs, d, content.get(d)!.size, id, layer);
    const chains: [string | null, string][] = labelledChains(blobs.keys(), content);
    for (const c of input.chains?.get(digest) ?? []) chains.push([null, c]);
    const snaps = new Set<string>();
    let runnable = false;
    for (const [named, chain] of chains) {
      const s = listing(named, chain);
      if (s === undefined) continue;
      runnable = true;
      for (let key: string | null = chain; key !== null;) {
        const row: SnapshotRow | undefined = parents.get(s)!.get(key);
        if (row === undefined) break;
        const sid = snapId(s, key);
        if (!snaps.has(sid)) hold(m.snapshots, sid, sizeOf(s, key), id, false);
        snaps.add(sid);
        key = row.parent;
      }
    }
    m.images.set(id, { ns, blobs: [...blobs.keys()], snapshots: [...snaps], runnable });
  }
  addContainers(m, input, parents, snapId, sizeOf);
}

/** Containers' writable layers, what active snapshots pin, and the snapshots nothing holds. */
function addContainers(
  m: DiskModel,
  input: DiskInput,
  parents: Map<string, Map<string, SnapshotRow>>,
  snapId: (s: string, key: string) => string,
  sizeOf: (s: string, key: string) => number,
): void {
  const claimed = new Set<string>();
  for (const c of input.containers) {
    const key = c.snapshotKey || c.id;
    for (const s of parents.keys()) {
      if (c.snapshotter !== "" && parents.has(c.snapshotter) && s !== c.snapshotter) continue;
      if (parents.get(s)!.get(key)?.kind === "Active") claimed.add(snapId(s, key));
    }
  }
  let writable = 0;
  const loose: string[] = [];
  const keep = (sid: string, size: number) => {
    if (!m.snapshots.has(sid)) m.snapshots.set(sid, { size, holders: new Map(), pinned: false });
    return m.snapshots.get(sid)!;
  };
  for (const [s, rows] of parents) {
    for (const row of rows.values()) {
      if (row.kind === "Committed") continue;
      for (let p = row.parent; p !== null; p = rows.get(p)?.parent ?? null) {
        keep(snapId(s, p), sizeOf(s, p)).pinned = true;
      }
      const sid = snapId(s, row.key);
      if (claimed.has(sid)) {
        writable += sizeOf(s, row.key);
      } else {
        keep(sid, sizeOf(s, row.key));
        loose.push(sid);
      }
    }
    for (const row of rows.values()) {
      const sid = snapId(s, row.key);
      if (row.kind === "Committed" && !m.snapshots.has(sid)) {
        keep(sid, sizeOf(s, row.key));
        loose.push(sid);
      }
    }
  }
  m.loose.set(input.ns, loose);
  m.namespaces.set(input.ns, {
    containers: input.containers.length,
    writable,
    listed: new Map([...input.content].map(([d, b]) => [d, b.size])),
  });
}

/** One image's bytes (undefined: not measured). */
export function imageDisk(m: DiskModel, ns: string, digest: string): ImageDisk | undefined {
  const id = imageId(ns, digest);
  const image = m.images.get(id);
  if (image === undefined) return undefined;
  const only = (h: Held | undefined) => h !== undefined && h.holders.size === 1 && !h.pinned;
  let contentBytes = 0, snapshotBytes = 0, uniqueBytes = 0;
  for (const d of image.blobs) {
    const h = m.blobs.get(d)!;
    contentBytes += h.size;
    if (only(h)) uniqueBytes += h.size;
  }
  for (const sid of image.snapshots) {
    const h = m.snapshots.get(sid)!;
    snapshotBytes += h.size;
    if (only(h)) uniqueBytes += h.size;
  }
  return { contentBytes, snapshotBytes, uniqueBytes };
}

/** Counts and bytes of the namespaces `only` names (all when absent), each blob once. */
export function diskTotals(m: DiskModel, only?: ReadonlySet<string>): DiskTotals {
  const inNs = (ns: string) => only === undefined || only.has(ns);
  const blobs = new Set<string>();
  const snaps = new Set<string>();
  let count = 0;
  for (const image of m.images.values()) {
    if (!inNs(image.ns)) continue;
    count++;
    image.blobs.forEach((d) => blobs.add(d));
    image.snapshots.forEach((s) => snaps.add(s));
  }
  const out: DiskTotals = {
    images: { count, contentBytes: 0, snapshotBytes: 0 },
    containers: { count: 0, writableBytes: 0 },
    unreferenced: { contentBytes: 0, snapshotBytes: 0 },
  };
  for (const d of blobs) out.images.contentBytes += m.blobs.get(d)!.size;
  for (const s of snaps) out.images.snapshotBytes += m.snapshots.get(s)!.size;
  const loose = new Map<string, number>();
  for (const [ns, n] of m.namespaces) {
    if (!inNs(ns)) continue;
    out.containers.count += n.containers;
    out.containers.writableBytes += n.writable;
    for (const [d, size] of n.listed) if (!m.blobs.has(d)) loose.set(d, size);
    for (const s of m.loose.get(ns) ?? []) {
      out.unreferenced.snapshotBytes += m.snapshots.get(s)!.size;
    }
  }
  for (const size of loose.values()) out.unreferenced.contentBytes += size;
  return out;
}

/** Bytes on disk, split as containerd keeps them. */
export interface Bytes {
  contentBytes: number;
  snapshotBytes: number;
}

/**
 * What goes when the images `ids` ({@linkcode imageId}) go: blobs and snapshots every holder of
 * which is among them and no active snapshot pins. With `contentPrune` (a namespace → whether
 * prune's content prune runs there) and at least one image going, also the layer blobs that
 * content prune leaves to GC: those every remaining holder refers to only as a layer and can run
 * without (unpacked: lib/policy/layer_guard.ts keeps the layers of the others).
 */
export function freedBytes(
  m: DiskModel,
  ids: ReadonlySet<string>,
  contentPrune: ((ns: string) => boolean) | null,
): Bytes {
  const strip = ids.size > 0 ? contentPrune : null;
  const stays = (holder: string, layerOnly: boolean) => {
    if (ids.has(holder)) return false;
    const image = m.images.get(holder);
    return !(strip !== null && layerOnly && image !== undefined && image.runnable &&
      strip(image.ns));
  };
  const out: Bytes = { contentBytes: 0, snapshotBytes: 0 };
  for (const h of m.blobs.values()) {
    if (h.holders.size > 0 && ![...h.holders].some(([id, layer]) => stays(id, layer))) {
      out.contentBytes += h.size;
    }
  }
  for (const h of m.snapshots.values()) {
    if (h.holders.size > 0 && !h.pinned && [...h.holders.keys()].every((id) => ids.has(id))) {
      out.snapshotBytes += h.size;
    }
  }
  return out;
}

/**
 * Removal one image at a time, as disk-pressure mode takes them (LRU): each call says how many
 * bytes that image frees given those taken before it (shared layers go with the last holder).
 */
export function reclaimer(m: DiskModel): (ns: string, digest: string) => number {
  const left = new Map<string, number>();
  const take = (map: Map<string, Held>, key: string, prefix: string) => {
    const h = map.get(key)!;
    const n = (left.get(prefix + key) ?? h.holders.size) - 1;
    left.set(prefix + key, n);
    return n === 0 && !h.pinned ? h.size : 0;
  };
  return (ns, digest) => {
    const image = m.images.get(imageId(ns, digest));
    if (image === undefined) return 0;
    let freed = 0;
    for (const d of image.blobs) freed += take(m.blobs, d, "b");
    for (const s of image.snapshots) freed += take(m.snapshots, s, "s");
    return freed;
  };
}

/** The disk input of one namespace's inventory (no snapshots listed: none counted). */
export function diskInputOf(snap: NamespaceSnapshot): DiskInput {
  const containers = snap.containers.map((c) => {
    const info = snap.infos?.get(c.id);
    return { id: c.id, snapshotKey: info?.snapshotKey ?? "", snapshotter: info?.snapshotter ?? "" };
  });
  return {
    ns: snap.ns,
    images: snap.images,
    content: snap.content,
    snapshots: snap.snapshotsBy ?? new Map(),
    usage: snap.usage ?? new Map(),
    ...(snap.chains === undefined ? {} : { chains: snap.chains }),
    containers,
  };
}

/**
 * What a prune removing `prunable` frees: in all, and per namespace as `ctre prune -n <ns>`
 * would (a blob another namespace's prunable image also holds counts only in the total).
 */
export function reclaimable(
  m: DiskModel,
  prunable: readonly { ns: string; digest: string }[],
  contentPrune: ((ns: string) => boolean) | null,
): { total: Bytes; byNamespace: Map<string, Bytes> } {
  const byNamespace = new Map<string, Bytes>();
  for (const ns of m.namespaces.keys()) {
    const ids = new Set(prunable.filter((p) => p.ns === ns).map((p) => imageId(p.ns, p.digest)));
    const only = contentPrune === null ? null : (n: string) => n === ns && contentPrune(n);
    byNamespace.set(ns, freedBytes(m, ids, only));
  }
  const all = new Set(prunable.map((p) => imageId(p.ns, p.digest)));
  return { total: freedBytes(m, all, contentPrune), byNamespace };
}
