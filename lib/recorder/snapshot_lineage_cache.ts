/**
 * The recorder's per-namespace copy of what maps a docker container's snapshot to its image
 * (images, chains, snapshots: three ctr calls through the gateway). Docker's containers name no
 * image, so without it every container start would cost those three calls. The listing is kept
 * until an image event in the namespace (`/images/create`, `/update`, `/delete`) or a reconnect;
 * snapshots seen in events since complete it. A container whose snapshot leads to no image in it
 * lists again, once per snapshot it stops at (a chain unpacked since the listing), so a busy
 * docker node costs no ctr per container start.
 *
 * @module
 */
import type { Containerd } from "../ctr/gateway.ts";
import { listSnapshotLineage, refsOfSnapshotIn, type SnapshotLineage } from "../node/inventory.ts";
import type { SnapshotRow } from "../core/containerd.ts";

/** Snapshot lineages of namespaces, listed on demand and kept until {@linkcode forget}. */
export class SnapshotLineageCache {
  /** Per namespace: its snapshot lineage as last listed, and the snapshots it was listed for. */
  #lineages = new Map<string, { lineage: SnapshotLineage; triedFor: Set<string> }>();

  constructor(readonly containerd: Containerd) {}

  /** Drops the listing of `ns` (an image there changed): the next look-up lists again. */
  forget(ns: string): void {
    this.#lineages.delete(ns);
  }

  /** Drops every listing (events may have been missed). */
  clear(): void {
    this.#lineages.clear();
  }

  /**
   * The refs container `id`'s snapshot leads to, in the namespace's lineage as last listed. Listed
   * again when none is found and the walk ends where no listing was taken for yet (a chain
   * unpacked since, a container the listing predates). `seen`: snapshots events told of.
   */
  async refsOf(ns: string, id: string, seen: SnapshotRow[]): Promise<string[]> {
    const cached = this.#lineages.get(ns);
    if (cached !== undefined) {
      const found = refsOfSnapshotIn(cached.lineage, id, seen);
      if (found.refs.length > 0 || cached.triedFor.has(found.top)) return found.refs;
    }
    const fresh = {
      lineage: await listSnapshotLineage(this.containerd, ns),
      triedFor: cached?.triedFor ?? new Set<string>(),
    };
    this.#lineages.set(ns, fresh);
    const found = refsOfSnapshotIn(fresh.lineage, id, seen);
    fresh.triedFor.add(found.top);
    return found.refs;
  }
}
