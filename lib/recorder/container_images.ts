/**
 * The recorder's memory of which image refs a container (or an image volume) runs from: what
 * events told it, filled in by containerd when they did not (container info, docker's
 * containers through their snapshot, image volumes through the image list). The only part of
 * the recorder that asks containerd about events. Docker's containers map to their image
 * through a kept listing of the namespace's snapshot lineage (snapshot_lineage_cache.ts).
 *
 * @module
 */
import type { Containerd } from "../ctr/gateway.ts";
import { CtrExitError, errorText, lastStderrLine, ParseError } from "../core/errors.ts";
import { type CtrEvent, field } from "../ctr/events.ts";
import { SnapshotLineageCache } from "./snapshot_lineage_cache.ts";
import { imageVolumeOf } from "../policy/lineage.ts";
import type { SnapshotRow } from "../core/containerd.ts";

/** What the recorder asks of its image cache. */
export interface ImageCache {
  /** `${ns} ${containerId}` → image ref, or null for a container without one: what it knows. */
  readonly images: Map<string, string | null>;
  /** Learns from an event what it tells of containers and snapshots (no ctr call). */
  observe(event: CtrEvent): void;
  /**
   * Replaces what it knows of containers with `ctr container ls` of every namespace; returns
   * the containers it did not know before.
   */
  resync(): Promise<{ ns: string; id: string }[]>;
  /**
   * The refs container `id` runs from: its image, or for a container without one (docker's)
   * the refs its snapshot leads to, looked up again when `fresh`. Null when it has none;
   * undefined when the container is gone (logged).
   */
  refsOf(ns: string, id: string, fresh: boolean): Promise<string[] | null | undefined>;
  /** The refs an image volume's snapshot `key` mounts (none when not an image volume). */
  volumeMounted(ns: string, key: string): Promise<string[]>;
  /** The refs of image volume snapshot `key`, forgotten as it is removed. */
  volumeRemoved(ns: string, key: string): string[];
}

/** Snapshot parents as `/snapshot/prepare` and `/snapshot/commit` events tell them. */
export class SnapshotParents {
  /** `${ns} ${key}` → parent. */
  #parents = new Map<string, string>();

  /** Learns from a snapshot event (other events are ignored). */
  observe(e: CtrEvent): void {
    const key = field(e.payload, "key");
    switch (e.topic) {
      case "/snapshot/prepare": {
        const parent = field(e.payload, "parent");
        if (key !== undefined && parent) this.#parents.set(`${e.ns} ${key}`, parent);
        return;
      }
      case "/snapshot/commit": {
        const name = field(e.payload, "name");
        const parent = this.#parents.get(`${e.ns} ${key}`);
        this.#parents.delete(`${e.ns} ${key}`);
        if (name !== undefined && parent !== undefined) {
          this.#parents.set(`${e.ns} ${name}`, parent);
        }
        return;
      }
      case "/snapshot/remove":
        if (key !== undefined) this.#parents.delete(`${e.ns} ${key}`);
        return;
    }
  }

  /** The parent chain of snapshot `key` as far as events told it, as snapshot rows. */
  chain(ns: string, key: string): SnapshotRow[] {
    const rows: SnapshotRow[] = [];
    const visited = new Set<string>();
    let cur = key;
    while (!visited.has(cur)) {
      visited.add(cur);
      const parent = this.#parents.get(`${ns} ${cur}`);
      if (parent === undefined) {
        if (cur !== key) rows.push({ key: cur, parent: null, kind: "Committed" });
        break;
      }
      rows.push({ key: cur, parent, kind: cur === key ? "Active" : "Committed" });
      cur = parent;
    }
    return rows;
  }
}

/** The refs whose target is `digest` (one image listing); empty on failure, logged. */
async function refsOfDigest(
  containerd: Containerd,
  ns: string,
  digest: string,
  onError: (text: string) => void,
): Promise<string[]> {
  try {
    const images = await containerd.listImages(ns);
    return images.filter((i) => i.digest === digest).map((i) => i.ref).sort();
  } catch (e) {
    onError(`image volume of ${digest} in ${ns}: ${errorText(e)}`);
    return [];
  }
}

/** {@linkcode ImageCache} over the gateway; `onError` gets one line per failed lookup. */
export class ContainerdImageCache implements ImageCache {
  /** `${ns} ${containerId}` → image ref, or null for containers without an image. */
  readonly images = new Map<string, string | null>();
  readonly snapshots = new SnapshotParents();
  /** `${ns} ${key}` → refs of the image an image volume's snapshot mounts. */
  #volumeRefs = new Map<string, string[]>();
  /** `${ns} ${id}` → refs of a container without image found through its snapshot (maybe none). */
  #snapshotRefs = new Map<string, string[]>();
  readonly #lineages: SnapshotLineageCache;

  constructor(readonly containerd: Containerd, readonly onError: (text: string) => void) {
    this.#lineages = new SnapshotLineageCache(containerd);
  }

  observe(e: CtrEvent): void {
    this.snapshots.observe(e);
    if (e.topic.startsWith("/images/")) return this.#lineages.forget(e.ns);
    const id = field(e.payload, "id");
    if (id === undefined) return;
    if (e.topic === "/containers/create" || e.topic === "/containers/update") {
      this.images.set(`${e.ns} ${id}`, field(e.payload, "image") || null);
    } else if (e.topic === "/containers/delete") {
      this.images.delete(`${e.ns} ${id}`);
      this.#snapshotRefs.delete(`${e.ns} ${id}`);
    }
  }

  async resync(): Promise<{ ns: string; id: string }[]> {
    const namespaces = await this.containerd.namespaces();
    const lists = await Promise.all(
      namespaces.map(async (ns) => ({ ns, rows: await this.containerd.listContainers(ns) })),
    );
    const appeared: { ns: string; id: string }[] = [];
    this.#lineages.clear(); // events may have been missed: listed again when next needed
    const known = new Set(this.images.keys());
    this.images.clear();
    for (const { ns, rows } of lists) {
      for (const c of rows) {
        if (!known.has(`${ns} ${c.id}`)) appeared.push({ ns, id: c.id });
        this.images.set(`${ns} ${c.id}`, c.image);
      }
    }
    return appeared;
  }

  async refsOf(ns: string, id: string, fresh: boolean): Promise<string[] | null | undefined> {
    const image = await this.#imageOf(ns, id);
    if (image === undefined) return undefined;
    if (image !== null) return [image];
    const refs = await this.#refsOfSnapshot(ns, id, fresh);
    return refs.length > 0 ? refs : null;
  }

  async volumeMounted(ns: string, key: string): Promise<string[]> {
    const volume = imageVolumeOf(key);
    if (volume === null) return [];
    const refs = await refsOfDigest(this.containerd, ns, volume.digest, this.onError);
    this.#volumeRefs.set(`${ns} ${key}`, refs);
    return refs;
  }

  volumeRemoved(ns: string, key: string): string[] {
    const refs = this.#volumeRefs.get(`${ns} ${key}`);
    this.#volumeRefs.delete(`${ns} ${key}`);
    return refs ?? [];
  }

  /** The image of a container: from what it learned, else one look at the container. */
  async #imageOf(ns: string, id: string): Promise<string | null | undefined> {
    const key = `${ns} ${id}`;
    if (this.images.has(key)) return this.images.get(key);
    try {
      const image = (await this.containerd.containerInfo(ns, id)).image || null;
      this.images.set(key, image);
      return image;
    } catch (e) {
      if (e instanceof CtrExitError) {
        this.onError(
          `container ${ns} ${id} is already gone, skipping (${lastStderrLine(e.stderr)})`,
        );
      } else if (e instanceof ParseError) {
        this.onError(`container ${ns} ${id}: ${errorText(e)}`);
      } else {
        throw e;
      }
      return undefined;
    }
  }

  /**
   * The refs a container without `Image` (docker's) runs from, through its snapshot; looked up
   * at start (`fresh`), remembered for its exit, also when none is found (empty).
   */
  async #refsOfSnapshot(ns: string, id: string, fresh: boolean): Promise<string[]> {
    const key = `${ns} ${id}`;
    const known = this.#snapshotRefs.get(key);
    if (known !== undefined && !fresh) return known;
    try {
      const seen = this.snapshots.chain(ns, id);
      const refs = await this.#lineages.refsOf(ns, id, seen);
      // Remembered also when empty: its exit then costs no second look-up that would find
      // the same nothing (a failed look-up is not remembered, so the exit tries again).
      this.#snapshotRefs.set(key, refs);
      return refs;
    } catch (e) {
      this.onError(`container ${ns} ${id}: cannot map its snapshot to an image: ${errorText(e)}`);
      return [];
    }
  }
}
