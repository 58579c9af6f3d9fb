/**
 * The recorder's memory of which image refs a container (or an image volume) runs from: what
 * events told it, filled in by `ctr` when they did not (`containers info`, docker's containers
 * through their snapshot, image volumes through `image ls`). The only part of the recorder
 * that calls ctr for events.
 *
 * Docker's containers name no image: their snapshot leads to one through the namespace's
 * images, chains and snapshots (three ctr calls). That listing is kept per namespace until an
 * image event there (`/images/create`, `/update`, `/delete`) or a reconnect; snapshots seen in
 * events since complete it. A container whose snapshot leads to no image in it lists again,
 * once per snapshot it stops at (a chain unpacked since the listing), so a busy docker node
 * costs no ctr per container start.
 *
 * @module
 */
import { type Ctr, ctrOk } from "../ctr/runner.ts";
import { errorText } from "../core/errors.ts";
import { type CtrEvent, field } from "../ctr/events.ts";
import { listSnapshotLineage, refsOfSnapshotIn, type SnapshotLineage } from "../node/inventory.ts";
import { imageVolumeOf } from "../policy/lineage.ts";
import {
  parseContainerInfo,
  parseContainerLs,
  parseImageLs,
  parseNamespaces,
} from "../ctr/listings.ts";
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

/** {@linkcode ImageCache} over a {@linkcode Ctr}; `onError` gets one line per failed lookup. */
export class CtrImageCache implements ImageCache {
  /** `${ns} ${containerId}` → image ref, or null for containers without an image. */
  readonly images = new Map<string, string | null>();
  /** `${ns} ${key}` → parent, from `/snapshot/prepare` and `/snapshot/commit` events. */
  #snapshotParents = new Map<string, string>();
  /** `${ns} ${key}` → refs of the image an image volume's snapshot mounts. */
  #volumeRefs = new Map<string, string[]>();
  /** `${ns} ${id}` → refs of a container without image found through its snapshot (maybe none). */
  #snapshotRefs = new Map<string, string[]>();
  /** Per namespace: its snapshot lineage as last listed, and the snapshots it was listed for. */
  #lineages = new Map<string, { lineage: SnapshotLineage; triedFor: Set<string> }>();

  constructor(readonly ctr: Ctr, readonly onError: (text: string) => void) {}

  observe(e: CtrEvent): void {
    const p = e.payload;
    switch (e.topic) {
      case "/containers/create":
      case "/containers/update": {
        const id = field(p, "id");
        if (id !== undefined) this.images.set(`${e.ns} ${id}`, field(p, "image") || null);
        return;
      }
      case "/images/create":
      case "/images/update":
      case "/images/delete":
        this.#lineages.delete(e.ns);
        return;
      case "/containers/delete": {
        const id = field(p, "id");
        if (id !== undefined) {
          this.images.delete(`${e.ns} ${id}`);
          this.#snapshotRefs.delete(`${e.ns} ${id}`);
        }
        return;
      }
      case "/snapshot/prepare": {
        const key = field(p, "key");
        const parent = field(p, "parent");
        if (key !== undefined && parent) this.#snapshotParents.set(`${e.ns} ${key}`, parent);
        return;
      }
      case "/snapshot/commit": {
        const key = field(p, "key");
        const name = field(p, "name");
        const parent = this.#snapshotParents.get(`${e.ns} ${key}`);
        this.#snapshotParents.delete(`${e.ns} ${key}`);
        if (name !== undefined && parent !== undefined) {
          this.#snapshotParents.set(`${e.ns} ${name}`, parent);
        }
        return;
      }
      case "/snapshot/remove": {
        const key = field(p, "key");
        if (key !== undefined) this.#snapshotParents.delete(`${e.ns} ${key}`);
        return;
      }
    }
  }

  async resync(): Promise<{ ns: string; id: string }[]> {
    const namespaces = parseNamespaces(await ctrOk(this.ctr, ["namespace", "ls", "-q"]));
    const lists = await Promise.all(
      namespaces.map(async (ns) => ({
        ns,
        rows: parseContainerLs(await ctrOk(this.ctr, ["-n", ns, "container", "ls"])),
      })),
    );
    const appeared: { ns: string; id: string }[] = [];
    // Events may have been missed: listings are taken again when next needed.
    this.#lineages.clear();
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
    const refs = await this.#refsOfDigest(ns, volume.digest);
    this.#volumeRefs.set(`${ns} ${key}`, refs);
    return refs;
  }

  volumeRemoved(ns: string, key: string): string[] {
    const refs = this.#volumeRefs.get(`${ns} ${key}`);
    this.#volumeRefs.delete(`${ns} ${key}`);
    return refs ?? [];
  }

  /** The image of a container: from what it learned, else one `ctr containers info`. */
  async #imageOf(ns: string, id: string): Promise<string | null | undefined> {
    const key = `${ns} ${id}`;
    if (this.images.has(key)) return this.images.get(key);
    const r = await this.ctr.run(["-n", ns, "containers", "info", id]);
    if (r.code !== 0) {
      this.onError(
        `container ${ns} ${id} is already gone, skipping (${r.stderr.trim().split("\n").at(-1)})`,
      );
      return undefined;
    }
    try {
      const image = parseContainerInfo(r.stdout).image || null;
      this.images.set(key, image);
      return image;
    } catch (e) {
      this.onError(`container ${ns} ${id}: ${errorText(e)}`);
      return undefined;
    }
  }

  /** The parent chain of snapshot `key` as far as events told it, as snapshot rows. */
  #seenSnapshots(ns: string, key: string): SnapshotRow[] {
    const rows: SnapshotRow[] = [];
    const visited = new Set<string>();
    let cur = key;
    while (!visited.has(cur)) {
      visited.add(cur);
      const parent = this.#snapshotParents.get(`${ns} ${cur}`);
      if (parent === undefined) {
        if (cur !== key) rows.push({ key: cur, parent: null, kind: "Committed" });
        break;
      }
      rows.push({ key: cur, parent, kind: cur === key ? "Active" : "Committed" });
      cur = parent;
    }
    return rows;
  }

  /** The refs whose target is `digest` (one `ctr image ls`); empty on failure, logged. */
  async #refsOfDigest(ns: string, digest: string): Promise<string[]> {
    try {
      const images = parseImageLs(await ctrOk(this.ctr, ["-n", ns, "image", "ls"]));
      return images.filter((i) => i.digest === digest).map((i) => i.ref).sort();
    } catch (e) {
      this.onError(`image volume of ${digest} in ${ns}: ${errorText(e)}`);
      return [];
    }
  }

  /**
   * The refs container `id`'s snapshot leads to, in the namespace's lineage as last listed. Listed
   * again when none is found and the walk ends where no listing was taken for yet (a chain
   * unpacked since, a container the listing predates).
   */
  async #lineageRefs(ns: string, id: string, seen: SnapshotRow[]): Promise<string[]> {
    const cached = this.#lineages.get(ns);
    if (cached !== undefined) {
      const found = refsOfSnapshotIn(cached.lineage, id, seen);
      if (found.refs.length > 0 || cached.triedFor.has(found.top)) return found.refs;
    }
    const fresh = {
      lineage: await listSnapshotLineage(this.ctr, ns),
      triedFor: cached?.triedFor ?? new Set<string>(),
    };
    this.#lineages.set(ns, fresh);
    const found = refsOfSnapshotIn(fresh.lineage, id, seen);
    fresh.triedFor.add(found.top);
    return found.refs;
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
      const refs = await this.#lineageRefs(ns, id, this.#seenSnapshots(ns, id));
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
